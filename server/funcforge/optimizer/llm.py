"""The optimizer's LLM client: the `openai` SDK against any OpenAI-compatible endpoint.

`LLMClient` talks to OpenAI, Azure OpenAI (when `api_version` is configured),
Ollama, vLLM or a llama.cpp server. The SDK's own retries are switched off
(`max_retries=0`) so the retry policy is ours, explicit and testable:
exponential backoff with jitter, capped, on 429, 5xx, timeouts and connection
errors, honouring `Retry-After`. Every failure the user can act on becomes an
`LLMError` with a one-line message; the API key never appears in a message,
a log line or `repr`.

`make_client` picks the client for a run: the configured endpoint, a replay of
a transcript (`replay:FILE`), either one optionally recorded to a transcript.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import os
import random
import re
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import openai

from funcforge.errors import UserError
from funcforge.fsutil import clean_json, clean_text, dumps

if TYPE_CHECKING:
    from funcforge.config import Config

LOG = logging.getLogger("funcforge.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
# Local servers (Ollama, llama.cpp, vLLM) accept any key; the SDK insists on one.
PLACEHOLDER_KEY = "funcforge-local-no-key"
RETRY_STATUSES = frozenset({408, 429})
_MAX_DETAIL = 200
PROBE_TIMEOUT = 10.0  # seconds for a tokenize or discovery request
PROBE_MAX_BYTES = 4_000_000
MAX_BODY_BYTES = 16_000_000  # a chat completion's body; one action is at most ~100 kB


def plausible_count(text: str, count: int) -> bool:
    """Whether some tokenizer could count `text` as `count` tokens.

    At most a token per UTF-8 byte (byte fallback), plus a few special tokens;
    at least a token per 64 characters (even long whitespace runs are split
    sooner). A count outside is a broken or lying tokenize endpoint.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return False
    least = (len(text) + 63) // 64
    return least <= count <= len(text.encode("utf-8", "replace")) + 64


class LLMError(UserError):
    """The model endpoint failed in a way the user can act on (one-line message)."""


class ContextOverflowError(LLMError):
    """The endpoint refused the prompt as longer than the model's context.

    `limit` is the context window and `requested` the prompt's tokens, as far
    as the endpoint's message says; the optimizer shrinks the prompt and asks again.
    """

    def __init__(self, message: str, limit: int | None = None, requested: int | None = None):
        super().__init__(message)
        self.limit = limit
        self.requested = requested


class _Malformed(Exception):
    """A 200 answer whose body is not a usable chat completion (retried like a 5xx)."""


_OVERFLOW_HINTS = (
    "maximum context length",  # OpenAI, vLLM, llama-cpp-python
    "context_length_exceeded",
    "exceeds the available context size",  # llama.cpp's llama-server, Ollama (truncate: false)
    "exceed_context_size",
    "context window",  # llama-cpp-python's own words, OpenAI's newer ones
    "maximum model length",  # vLLM's engine ("decoder prompt (length N) is longer than ...")
    "context length",  # Ollama ("the prompt is longer than the context length ...")
    "configured limit of",  # OpenAI ("Input tokens exceed the configured limit of N tokens")
    "prompt is too long",
    "too many tokens",
    "contextwindowexceeded",  # LiteLLM's proxy
    "exceeds the maximum number of tokens",  # Gemini's OpenAI-compatible endpoint
)
# `\W{0,6}` lets a key match inside JSON that was escaped once more (Ollama wraps llama.cpp's).
_LIMIT_PATTERNS = (
    re.compile(r"maximum context length is (\d+)"),
    re.compile(r"n_ctx\W{0,6}(\d+)"),
    re.compile(r"context (?:window|size|length) of (\d+)"),
    re.compile(r"context size \((\d+) tokens\)"),
    re.compile(r"maximum model length of (\d+)"),
    re.compile(r"configured limit of (\d+)"),
    re.compile(r"exceeds limit of (\d+)"),
    re.compile(r"tokens? > (\d+) maximum"),
    re.compile(r"(\d+) maximum context length"),  # Mistral
    re.compile(r"maximum number of tokens allowed \((\d+)\)"),  # Gemini
)
# The prompt's own tokens: "you requested N tokens (P in the messages, C in the completion)"
# counts the answer's cap too, so P (or N - C) comes first.
_REQUESTED_PATTERNS = (
    re.compile(r"\((\d+) in the messages"),
    re.compile(r"request has (\d+) input tokens"),
    re.compile(r"(?:decoder )?prompt \(length (\d+)\)"),
    re.compile(r"prompt length of (\d+)"),
    re.compile(r"input prompt \((\d+) tokens\)"),
    re.compile(r"request \((\d+) tokens\)"),
    re.compile(r"requested tokens \((\d+)\)"),
    re.compile(r"n_prompt_tokens\W{0,6}(\d+)"),
    re.compile(r"prompt contains (\d+) tokens"),
    re.compile(r"input token count \((\d+)\)"),
    re.compile(r"(?:resulted in|prompt has|prompt is too long:?)\s*(\d+)\s*tokens"),
    re.compile(r"requested\s*(\d+)\s*tokens"),
)
_COMPLETION_PATTERN = re.compile(r"(\d+) in the completion")


def parse_context_overflow(text: str) -> tuple[int | None, int | None] | None:
    """(context window, prompt tokens) from a context-length error's text, or None if not one."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _OVERFLOW_HINTS):
        return None

    def first(patterns: tuple[re.Pattern[str], ...]) -> int | None:
        for pattern in patterns:
            match = pattern.search(lowered)
            if match:
                return int(match.group(1))
        return None

    requested = first(_REQUESTED_PATTERNS)
    total = re.search(r"requested\s*(\d+)\s*tokens", lowered)
    completion = _COMPLETION_PATTERN.search(lowered)
    if total and completion:  # messages and function definitions: all but the answer's cap
        requested = max(0, int(total.group(1)) - int(completion.group(1)))
    return first(_LIMIT_PATTERNS), requested


def context_overflow(exc: BaseException, model: str) -> ContextOverflowError | None:
    """The `ContextOverflowError` an SDK error stands for, or None."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 413, 422):
        return None
    body = exc.body
    text = json.dumps(body) if isinstance(body, (dict, list)) else str(body or "")
    text = f"{text} {exc.code or ''} {exc.response.text if body is None else ''}"
    parsed = parse_context_overflow(text)
    if parsed is None and exc.status_code == 413:
        parsed = (None, None)  # "Request Entity Too Large" (a proxy's page): smaller will do
    if parsed is None:
        return None
    limit, requested = parsed
    said = f" (the endpoint allows {limit} tokens" if limit else ""
    if said and requested:
        said += f", the prompt had {requested})"
    elif said:
        said += ")"
    return ContextOverflowError(
        f"the prompt is longer than the context of model '{model}'{said}; "
        "lower token_budget or set context_window in [tool.funcforge]",
        limit,
        requested,
    )


def _placeholder_request(url: str) -> Any:
    """A request object for SDK exceptions raised by our own deadline."""
    import httpx2

    return httpx2.Request("POST", url)


@dataclass
class Usage:
    """Token usage and call counts, accumulated per client and reset per step."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        """Add `other`'s counts to this one."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.retries += other.retries

    def copy(self) -> Usage:
        return Usage(self.calls, self.prompt_tokens, self.completion_tokens, self.retries)

    def to_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "retries": self.retries,
        }


@dataclass(frozen=True)
class LLMReply:
    """One answer of the model.

    `message` is the assistant message in OpenAI chat format, ready to append
    to the conversation: `role`, `content` (str or None) and, only when the
    model called tools, `tool_calls` as `{id, type, function: {name,
    arguments}}` with `arguments` a JSON string. `response` is the raw
    chat.completion object (what a transcript stores).
    """

    message: dict[str, Any]
    usage: Usage
    response: dict[str, Any] = field(default_factory=dict, repr=False)
    finish_reason: str | None = None
    model: str | None = None  # the model that answered, as the response names it

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return list(self.message.get("tool_calls") or [])

    @property
    def content(self) -> str | None:
        content = self.message.get("content")
        return content if isinstance(content, str) else None


def reply_from_completion(completion: Any) -> LLMReply:
    """Turn a chat.completion object (a dict) into an `LLMReply`.

    Lenient where hand-written transcripts need it (missing ids, `arguments`
    given as an object); raises `ValueError` naming what is wrong otherwise.
    """
    if not isinstance(completion, dict):
        raise ValueError(
            f"a chat completion must be a JSON object, got {type(completion).__name__}"
        )
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        error = completion.get("error")
        if isinstance(error, dict) and error.get("message"):
            raise ValueError(f"no choices; error: {one_line(str(error['message']))}")
        raise ValueError("no 'choices' in the chat completion")
    choice = choices[0]
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise ValueError("choices[0] has no 'message' object")
    raw = choice["message"]
    content = _content_text(raw.get("content"))
    message: dict[str, Any] = {"role": "assistant", "content": content}
    calls = []
    raw_calls = raw.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ValueError("choices[0].message.tool_calls must be a list")
    for i, call in enumerate(raw_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ValueError(f"tool_calls[{i}] has no 'function' object")
        # A null or missing name is kept as "" so that the caller can feed the
        # problem back to the model instead of ending the run.
        name = function.get("name")
        name = name if isinstance(name, str) else ""
        arguments = function.get("arguments", "")
        if arguments is None:
            arguments = ""
        if not isinstance(arguments, str):
            arguments = dumps(arguments)
        calls.append(
            {
                "id": str(call.get("id") or f"call_{i}"),
                "type": "function",
                "function": {
                    "name": clean_text(name),
                    "arguments": clean_text(arguments),
                },
            }
        )
    if calls:
        message["tool_calls"] = calls
    usage = completion.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    finish = choice.get("finish_reason")
    answered = completion.get("model")
    return LLMReply(
        message=message,
        usage=Usage(
            calls=1,
            prompt_tokens=_token_figure(usage.get("prompt_tokens")),
            completion_tokens=_token_figure(usage.get("completion_tokens")),
        ),
        response=completion,
        finish_reason=finish if isinstance(finish, str) else None,
        model=answered if isinstance(answered, str) and answered else None,
    )


def _token_figure(value: Any) -> int:
    """A usage figure as a count of tokens: 0 for anything that is not a finite number >= 0.

    A usable answer with a garbled `usage` ([1], 1e400, NaN, "lots", -5) is kept, not retried.
    """
    if isinstance(value, bool):
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return min(int(value), 10**12)
    return 0


def _content_text(content: Any) -> str | None:
    """A message's content as text: a string, or the text parts of a list of parts joined."""
    if content is None:
        return None
    if isinstance(content, str):
        return clean_text(content)
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
        return clean_text("".join(texts))
    raise ValueError("choices[0].message.content must be a string, a list of parts or null")


def build_request(
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    tool_choice: Any = "auto",
    temperature: float | None = None,
) -> dict[str, Any]:
    """The chat completion request body (also what a transcript hashes).

    Strings are `clean_text`-ed: a lone surrogate from a trace cannot be sent as UTF-8.
    """
    request: dict[str, Any] = {"model": model, "messages": clean_json(messages)}
    if tools:
        request["tools"] = clean_json(tools)
        request["tool_choice"] = tool_choice
    if temperature is not None:
        request["temperature"] = temperature
    return request


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    """Collapse whitespace and cut to `limit` characters, for one-line messages.

    Lone surrogates (a server's JSON may carry them) are escaped: messages get printed and written.
    """
    flat = clean_text(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_local(url: str) -> bool:
    """Whether `url` points at this machine (where endpoints accept any key)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".localhost")


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a `Retry-After` (or `retry-after-ms`) header asks to wait, or None.

    `Retry-After` is either a number of seconds or an HTTP date.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" dates parse as naive; HTTP dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff for retry number `attempt` (0-based), capped, minus up to 25 %."""
    delay = min(cap, base * (2**attempt))
    return delay * (1 - 0.25 * rng.random())


_LOCAL = threading.local()


def _deadlines() -> threading.local:
    return _LOCAL


class ChatClient(ABC):
    """What the optimizer talks to: a live endpoint, a replay, or a recorder.

    Subclasses implement `complete`. Usage accumulates across calls until
    `reset_usage()`, which the optimizer calls at the start of each step.
    """

    def __init__(self, model: str, temperature: float | None = None) -> None:
        self.model = model
        self.temperature = temperature
        self._usage = Usage()
        self._usage_lock = threading.Lock()

    @property
    def usage(self) -> Usage:
        """Usage since the last reset (a copy)."""
        with self._usage_lock:
            return self._usage.copy()

    def reset_usage(self) -> Usage:
        """Start counting afresh; returns the usage counted until now."""
        with self._usage_lock:
            previous, self._usage = self._usage, Usage()
        return previous

    def _count(self, usage: Usage) -> None:
        with self._usage_lock:
            self._usage.add(usage)

    def build_request(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> dict[str, Any]:
        """The request this client sends (or would send) for these arguments.

        Under `answer_limit(n)` the request caps the answer at n tokens
        (`max_tokens_key`: `max_tokens`, or `max_completion_tokens` on OpenAI).
        """
        request = build_request(self.model, messages, tools, tool_choice, self.temperature)
        limit = getattr(_deadlines(), "answer_tokens", None)
        if limit:
            request[self.max_tokens_key] = int(limit)
        return request

    max_tokens_key = "max_tokens"

    @contextmanager
    def answer_limit(self, tokens: int | None) -> Iterator[None]:
        """Within this block, this thread's requests ask for at most `tokens` in the answer."""
        local = _deadlines()
        previous = getattr(local, "answer_tokens", None)
        local.answer_tokens = tokens
        try:
            yield
        finally:
            local.answer_tokens = previous

    @abstractmethod
    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        """Ask the model; returns its reply or raises `LLMError`."""

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be written anywhere (the API key)."""
        return ()

    # -- what the endpoint can tell about tokens (the prompt's budget) ----------

    def count_tokens(self, text: str) -> int | None:
        """Tokens of `text` by the endpoint's own tokenizer, or None when it offers none."""
        return None

    def context_window(self) -> int | None:
        """The model's context window as the endpoint tells it, or None."""
        return None

    def tokenizer_name(self) -> str | None:
        """How `count_tokens` counts (e.g. "endpoint /extras/tokenize/count"), or None."""
        return None

    # -- a wall-clock limit for the calling thread (the optimizer's step_timeout) --

    @contextmanager
    def time_limit(self, seconds: float | None) -> Iterator[None]:
        """Within this block, requests from this thread end `seconds` from now at the latest."""
        local = _deadlines()
        previous = getattr(local, "deadline", None)
        local.deadline = None if seconds is None else time.monotonic() + seconds
        if previous is not None and local.deadline is not None:
            local.deadline = min(previous, local.deadline)
        try:
            yield
        finally:
            local.deadline = previous

    @staticmethod
    def time_left() -> float | None:
        """Seconds left under the calling thread's `time_limit`, or None without one."""
        deadline = getattr(_deadlines(), "deadline", None)
        return None if deadline is None else deadline - time.monotonic()

    def describe(self) -> str:
        """A short, secret-free description for notes and messages."""
        return f"model {self.model}"

    def close(self) -> None:  # noqa: B027 - optional hook: most clients hold nothing
        """Release connections or files."""

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LLMClient(ChatClient):
    """A live OpenAI-compatible endpoint, with our own retry loop."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        api_version: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        temperature: float | None = None,
        key_name: str = "OPENAI_API_KEY",
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(model, temperature)
        self.base_url = base_url
        self.api_version = api_version
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.key_name = key_name
        self.logger = logger or LOG
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.__key = api_key
        self._sdk: openai.OpenAI
        if api_version and not base_url:
            raise LLMError(
                "api_version is set (Azure OpenAI) but base_url is not; set base_url to "
                "https://RESOURCE.openai.azure.com in [tool.funcforge]"
            )
        self._sdk = self._make_sdk()
        if api_version or urlsplit(self.endpoint).hostname == "api.openai.com":
            self.max_tokens_key = "max_completion_tokens"  # o-series models refuse max_tokens
        self._probe_lock = threading.Lock()
        self._tokenize: Callable[[str], int | None] | None = None
        self._probed_tokenize = False
        self._window: int | None = None
        self._probed_window = False
        self._probe_stalled = False

    def _make_sdk(self) -> openai.OpenAI:
        """A new SDK client (our retries, so the SDK's own are off)."""
        key, base_url, api_version = self.__key, self.base_url, self.api_version
        if api_version:
            assert base_url is not None
            if "/openai" in urlsplit(base_url).path:
                return openai.AzureOpenAI(
                    base_url=base_url,
                    api_key=key,
                    api_version=api_version,
                    timeout=self.timeout,
                    max_retries=0,
                )
            return openai.AzureOpenAI(
                azure_endpoint=base_url,
                api_key=key,
                api_version=api_version,
                timeout=self.timeout,
                max_retries=0,
            )
        return openai.OpenAI(
            api_key=key,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=self.timeout,
            max_retries=0,
        )

    @classmethod
    def from_config(
        cls, config: Config, *, logger: logging.Logger | None = None, **options: Any
    ) -> LLMClient:
        """The client of the configured endpoint; the key comes from `config.api_key_env`.

        `base_url` in the configuration wins over the `OPENAI_BASE_URL`
        environment variable. `options` go to the constructor (backoff, sleep, ...).
        """
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = os.environ.get(config.api_key_env, "").strip()
        if not key:
            if base_url and is_local(base_url):
                key = PLACEHOLDER_KEY
            else:
                raise LLMError(
                    f"{config.api_key_env} is not set; set it or api_key_env in [tool.funcforge]"
                )
        return cls(
            config.model,
            api_key=key,
            base_url=base_url,
            api_version=config.api_version,
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            key_name=config.api_key_env,
            logger=logger,
            **options,
        )

    @property
    def endpoint(self) -> str:
        """The endpoint's URL, for messages."""
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")

    def __repr__(self) -> str:
        azure = f", api_version={self.api_version!r}" if self.api_version else ""
        return f"LLMClient(model={self.model!r}, endpoint={self.endpoint!r}{azure})"

    def describe(self) -> str:
        return f"model {self.model} at {self.endpoint}"

    def secrets(self) -> tuple[str, ...]:
        return () if self.__key == PLACEHOLDER_KEY else (self.__key,)

    def close(self) -> None:
        self._sdk.close()

    # -- tokenizer and context window, where the endpoint offers them ------------

    @property
    def root_url(self) -> str:
        """The server's root: the endpoint without its trailing /v1."""
        url = self.endpoint
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def _http(self, method: str, url: str, body: Any = None) -> Any:
        """One small JSON request to the endpoint (probes), or None when it fails.

        Bounded by wall time, not per read: a server trickling its answer a byte
        at a time is abandoned at the deadline (the request runs in a helper thread).
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.__key != PLACEHOLDER_KEY:
            headers["Authorization"] = f"Bearer {self.__key}"
        if self._probe_stalled:
            return None  # a server that stalled one probe is not asked again
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        timeout = min(self.timeout, PROBE_TIMEOUT)
        left = self.time_left()
        if left is not None:
            timeout = max(0.1, min(timeout, left))
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    raw = response.read(PROBE_MAX_BYTES)
                result["value"] = json.loads(raw)
            except (OSError, ValueError, RecursionError, http.client.HTTPException):
                pass

        worker = threading.Thread(target=run, name="funcforge-llm-probe", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            self._probe_stalled = True
            self.logger.warning(
                "%s did not answer within %.1f s; going on without it", url, timeout
            )
            return None
        return result.get("value")

    def _tokenize_routes(self) -> list[tuple[str, str, Callable[[str], Any], Callable[[Any], Any]]]:
        """(name, url, body for a text, count from the answer) per known tokenize route."""
        root = self.root_url

        def count_of(answer: Any) -> Any:
            if not isinstance(answer, dict):
                return None
            if isinstance(answer.get("count"), int):
                return answer["count"]
            tokens = answer.get("tokens")
            return len(tokens) if isinstance(tokens, list) else None

        model = self.model
        return [
            # llama-cpp-python's server (0.2.6x and later; earlier without /extras)
            (
                "/extras/tokenize/count",
                f"{root}/extras/tokenize/count",
                lambda t: {"input": t, "model": model},
                count_of,
            ),
            (
                "/tokenize/count",
                f"{root}/tokenize/count",
                lambda t: {"input": t, "model": model},
                count_of,
            ),
            # vLLM ("prompt") and llama.cpp's llama-server ("content")
            (
                "/tokenize",
                f"{root}/tokenize",
                lambda t: {"model": model, "prompt": t, "content": t, "add_special_tokens": False},
                count_of,
            ),
        ]

    def _probe_tokenize(self) -> None:
        with self._probe_lock:
            if self._probed_tokenize:
                return
            self._probed_tokenize = True
            if self.api_version or urlsplit(self.endpoint).hostname == "api.openai.com":
                return  # OpenAI and Azure have no tokenize route: tiktoken counts there
            for name, url, body, parse in self._tokenize_routes():
                probed = parse(self._http("POST", url, body("hello world")))
                if isinstance(probed, int) and plausible_count("hello world", probed):

                    def tokenize(
                        text: str, url: str = url, body: Any = body, parse: Any = parse
                    ) -> int | None:
                        count = parse(self._http("POST", url, body(text)))
                        return count if isinstance(count, int) and count is not True else None

                    self._tokenize = tokenize
                    self._tokenize_name = f"endpoint {name}"
                    self.logger.info("counting tokens with %s%s", self.root_url, name)
                    return

    def count_tokens(self, text: str) -> int | None:
        """The endpoint tokenizer's count; None once it failed or answered implausibly.

        A tokenizer that errs, stalls or lies (a count no tokenizer could give for
        this text) is dropped for good: the prompt is then counted by the estimate.
        """
        self._probe_tokenize()
        tokenize = self._tokenize
        if tokenize is None:
            return None
        cleaned = clean_text(text)
        count = tokenize(cleaned)
        if count is None or not plausible_count(cleaned, count):
            with self._probe_lock:
                if self._tokenize is tokenize:
                    self._tokenize = None
                    self.logger.warning(
                        "the endpoint's tokenizer (%s) answered %s for %d characters; "
                        "counting tokens by estimate from now on",
                        self._tokenize_name,
                        "nothing usable" if count is None else count,
                        len(cleaned),
                    )
            return None
        return count

    def tokenizer_name(self) -> str | None:
        self._probe_tokenize()
        return getattr(self, "_tokenize_name", None) if self._tokenize else None

    def context_window(self) -> int | None:
        """The model's context from vLLM's `/v1/models` (`max_model_len`) or llama.cpp's `/props`."""
        with self._probe_lock:
            if not self._probed_window:
                self._probed_window = True
                if not (self.api_version or urlsplit(self.endpoint).hostname == "api.openai.com"):
                    self._window = self._discover_window()
            return self._window

    def learn_context_window(self, tokens: int) -> None:
        """Remember the context window an error message revealed."""
        with self._probe_lock:
            self._probed_window = True
            self._window = tokens

    def _discover_window(self) -> int | None:
        models = self._http("GET", f"{self.endpoint}/models")
        if isinstance(models, dict) and isinstance(models.get("data"), list):
            entries = [m for m in models["data"] if isinstance(m, dict)]
            mine = [m for m in entries if m.get("id") == self.model] or entries[:1]
            for entry in mine:
                for key in ("max_model_len", "context_window", "context_length", "n_ctx"):
                    if _window_size(entry.get(key)):
                        return int(entry[key])
        props = self._http("GET", f"{self.root_url}/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            for holder in (settings, props):
                if isinstance(holder, dict) and _window_size(holder.get("n_ctx")):
                    return int(holder["n_ctx"])
        return None

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        request = self.build_request(messages, tools, tool_choice)
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            limit = self.time_left()
            if limit is not None and limit <= 0:
                raise LLMError(
                    "the step's time limit (step_timeout) ran out before the model answered"
                )
            budget = self.timeout if limit is None else min(self.timeout, limit)
            try:
                text = self._post_with_deadline(request, budget)
                reply = self._parse(text)
            except (openai.APIError, _Malformed) as exc:
                if isinstance(exc, _Malformed):
                    transient, hint, what = True, None, str(exc)
                else:
                    overflow = context_overflow(exc, self.model)
                    if overflow is not None:
                        if overflow.limit:
                            self.learn_context_window(overflow.limit)
                        raise overflow from None
                    transient, hint, what = self._classify(exc, budget)
                if not transient:
                    raise LLMError(self._fatal_message(exc)) from None  # type: ignore[arg-type]
                if attempt + 1 >= attempts:
                    raise LLMError(
                        f"{what}; gave up after {attempts} attempt"
                        f"{'s' if attempts > 1 else ''} (max_retries = {self.max_retries})"
                    ) from None
                wait = (
                    min(hint, self.max_retry_after)
                    if hint is not None
                    else backoff_delay(attempt, self.backoff_base, self.backoff_max, self._rng)
                )
                left = self.time_left()
                if left is not None and wait >= left:
                    # Sleeping past the step's deadline would only end in its error, later.
                    raise LLMError(
                        f"{what}; not retried: waiting {wait:.1f} s would pass the step's time "
                        f"limit ({max(0.0, left):.1f} s left of step_timeout)"
                    ) from None
                self.logger.warning(
                    "%s; retrying in %.2f s (retry %d of %d)",
                    what,
                    wait,
                    attempt + 1,
                    self.max_retries,
                )
                self._count(Usage(retries=1))
                self._sleep(wait)
                continue
            reply = LLMReply(
                message=reply.message,
                usage=Usage(
                    calls=1,
                    prompt_tokens=reply.usage.prompt_tokens,
                    completion_tokens=reply.usage.completion_tokens,
                    retries=attempt,
                ),
                response=reply.response,
                finish_reason=reply.finish_reason,
                model=reply.model,
            )
            self._count(Usage(1, reply.usage.prompt_tokens, reply.usage.completion_tokens))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_with_deadline(self, request: dict[str, Any], seconds: float) -> str:
        """The response body of one request, within `seconds` of wall time in all.

        The SDK's timeout applies per read, so a server trickling a byte at a
        time could hold a request for far longer; the request runs in a helper
        thread and is abandoned (its connection closed) at the deadline.
        """
        result: dict[str, Any] = {}
        sdk = self._sdk
        abandoned = threading.Event()
        endpoint = self.endpoint

        def run() -> None:
            try:
                with sdk.chat.completions.with_streaming_response.create(
                    **request, timeout=seconds
                ) as response:
                    result["text"] = _read_body(response.http_response, abandoned, endpoint)
            except BaseException as exc:  # handed to the caller's thread
                result["error"] = exc

        worker = threading.Thread(target=run, name="funcforge-llm-request", daemon=True)
        worker.start()
        worker.join(seconds + 0.5)  # the SDK's own timeout usually fires first
        if worker.is_alive():
            abandoned.set()
            # Close the connections under the stuck read and start a fresh client.
            self._sdk = self._make_sdk()
            threading.Thread(target=sdk.close, daemon=True).start()
            raise openai.APITimeoutError(request=_placeholder_request(self.endpoint))
        if "error" in result:
            raise result["error"]
        return str(result["text"])

    # -- helpers -------------------------------------------------------------------

    def _parse(self, text: str) -> LLMReply:
        """The reply in a 200's body; a body that is no chat completion is `_Malformed`."""
        try:
            completion = json.loads(text)
        except RecursionError:
            raise _Malformed(
                f"the model endpoint {self.endpoint} answered with JSON nested too deep to read"
            ) from None
        except ValueError:
            raise _Malformed(
                f"the model endpoint {self.endpoint} answered with something that is not JSON: "
                f"{self._detail(text)!r}"
            ) from None
        try:
            return reply_from_completion(completion)
        except (ValueError, RecursionError) as exc:
            raise _Malformed(
                f"the model endpoint {self.endpoint} answered with a malformed chat completion: "
                f"{self._detail(str(exc))}"
            ) from None

    def _detail(self, text: str) -> str:
        """A one-line, key-free excerpt of a server's text."""
        for secret in self.secrets():
            text = text.replace(secret, "[REDACTED]")
        return one_line(text)

    def _server_message(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        if isinstance(body, dict):
            message = body.get("message") or body.get("error") or json.dumps(body)
        elif body is None:
            message = exc.response.text or exc.response.reason_phrase
        else:
            message = body
        return self._detail(str(message))

    def _classify(
        self, exc: openai.APIError, budget: float | None = None
    ) -> tuple[bool, float | None, str]:
        """(transient?, server-requested wait, one-line description) of a failure."""
        if isinstance(exc, openai.APITimeoutError):
            seconds = self.timeout if budget is None else budget
            return True, None, f"request to {self.endpoint} timed out after {seconds:g} s"
        if isinstance(exc, openai.APIConnectionError):
            return True, None, f"cannot reach the model endpoint {self.endpoint} ({_cause(exc)})"
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 429 and exc.code == "insufficient_quota":
                return False, None, ""
            if status in RETRY_STATUSES or status >= 500:
                hint = retry_after_seconds(exc.response.headers)
                label = "rate limited" if status == 429 else "error"
                what = (
                    f"the model endpoint {self.endpoint} answered {status} ({label}: "
                    f"{self._server_message(exc)})"
                )
                return True, hint, what
        return False, None, ""

    def _fatal_message(self, exc: openai.APIError) -> str:
        if not isinstance(exc, openai.APIStatusError):
            return f"the model endpoint {self.endpoint} failed: {self._detail(str(exc))}"
        status, detail = exc.status_code, self._server_message(exc)
        if status == 401:
            return (
                f"the model endpoint {self.endpoint} rejected the API key from "
                f"{self.key_name} (401); check the key"
            )
        if status == 403:
            return f"the model endpoint {self.endpoint} refused access (403: {detail})"
        if status == 404:
            code = (exc.code or "").lower()
            if "model" in code or "deployment" in code or "model" in detail.lower():
                return (
                    f"model '{self.model}' is not available at {self.endpoint} (404: {detail}); "
                    "set model in [tool.funcforge]"
                )
            return (
                f"the model endpoint {self.endpoint} has no chat completions API (404: {detail}); "
                "check base_url or OPENAI_BASE_URL"
            )
        if status == 400 and _no_tool_calling(detail):
            return (
                f"model '{self.model}' at {self.endpoint} does not support tool calling "
                f"(400: {detail}); use a model with function calling"
            )
        if status == 429:
            return f"the model endpoint {self.endpoint} refused the request (429: {detail})"
        return f"the model endpoint {self.endpoint} rejected the request ({status}: {detail})"


def _window_size(value: Any) -> bool:
    """Whether an advertised context window is a usable figure (`true`, 0 and -5 are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _read_body(response: Any, abandoned: threading.Event, endpoint: str) -> str:
    """A 200's body as text, read in chunks: at most `MAX_BODY_BYTES` (else `_Malformed`).

    A server streaming an endless body would otherwise fill memory at network
    speed until the wall-clock deadline; an abandoned request stops reading.
    """
    import httpx2

    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            if abandoned.is_set():
                return ""
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _Malformed(
                    f"the model endpoint {endpoint} answered with more than "
                    f"{MAX_BODY_BYTES // 1_000_000} MB"
                )
            chunks.append(chunk)
    except httpx2.TimeoutException as exc:  # a read stalled mid-body: as the SDK would say
        raise openai.APITimeoutError(request=response.request) from exc
    except httpx2.HTTPError as exc:  # reset, cut or undecodable mid-body
        raise openai.APIConnectionError(request=response.request) from exc
    charset = getattr(response, "charset_encoding", None) or "utf-8"
    data = b"".join(chunks)
    try:
        return data.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


_NO_TOOLS_HINTS = ("support", "requires", "unrecognized", "enable", "not allowed", "unknown")


def _no_tool_calling(detail: str) -> bool:
    """Whether a 400's message says the endpoint cannot do tool calls at all.

    Seen in the wild: "tools not supported", Ollama's "... does not support
    tools", vLLM's "auto tool choice requires --enable-auto-tool-choice",
    llama.cpp's "tools param requires --jinja flag". An invalid schema of one
    tool is a different problem and is not matched.
    """
    text = detail.lower()
    if "tool" not in text or "invalid schema" in text:
        return False
    return any(hint in text for hint in _NO_TOOLS_HINTS)


def _cause(exc: BaseException) -> str:
    """The low-level reason of a connection error, in a few words."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    reason = ""
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        reason = reason or str(seen)
        seen = seen.__cause__ or seen.__context__
    return one_line(reason, 120) if reason else "connection error"


def make_client(
    config: Config,
    llm: str | None = None,
    record: Path | None = None,
    logger: logging.Logger | None = None,
    **options: Any,
) -> ChatClient:
    """The client for a run.

    `llm` is None (the configured endpoint) or `replay:FILE` (answers from a
    transcript; a relative FILE is looked up in the working directory, then
    in the workspace root). `record` wraps the client so every exchange is
    appended to that transcript. `options` go to `LLMClient`.
    """
    from funcforge.optimizer.transcript import RecordingClient, ReplayClient

    log = logger or LOG
    client: ChatClient
    if llm is None or llm == "":
        client = LLMClient.from_config(config, logger=log, **options)
    elif llm.startswith("replay:") and llm[len("replay:") :].strip():
        path = Path(llm[len("replay:") :].strip()).expanduser()
        if not path.is_absolute() and not path.exists() and (config.root / path).exists():
            path = config.root / path
        client = ReplayClient(path, config.model, warn=log.warning)
    else:
        raise LLMError(
            f"--llm must be replay:FILE (or left out for the configured endpoint), got {llm!r}"
        )
    if record is not None:
        secrets = list(client.secrets())
        env_key = os.environ.get(config.api_key_env, "").strip()
        if env_key:
            secrets.append(env_key)
        client = RecordingClient(client, Path(record), secrets=secrets)
    return client
