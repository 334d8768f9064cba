"""Record and replay of LLM exchanges, so an optimizer run is reproducible offline.

A transcript is JSON Lines (docs/architecture.md, "LLM transcript"): line 1 is
`{"type": "header", "format": 1, "note": ...}`, each further line
`{"type": "exchange", "request_hash", "request", "response"}` with the raw
chat.completion object as `response`. Hand-written entries may leave out
`request_hash` and `request`: they are answered in order, without a warning.
A transcript never holds an API key or an HTTP header.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from funcforge import __version__ as FUNCFORGE_VERSION
from funcforge.fsutil import clean_text, dumps
from funcforge.optimizer.llm import (
    LOG,
    ChatClient,
    ContextOverflowError,
    LLMError,
    LLMReply,
    Usage,
    reply_from_completion,
)

FORMAT = 1
REDACTED = "[REDACTED]"
# Shorter "keys" (test placeholders) are only scrubbed where they are a whole string,
# so that scrubbing cannot mangle ordinary text.
_MIN_SUBSTRING_SECRET = 8


def canonical_request(request: dict[str, Any]) -> str:
    """The request as canonical JSON (sorted keys, no spaces): what is hashed."""
    return dumps(request, sort_keys=True, separators=(",", ":"))


def request_hash(request: dict[str, Any]) -> str:
    """sha256 hex digest of the canonical request."""
    return hashlib.sha256(canonical_request(request).encode("utf-8")).hexdigest()


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON value with every secret string replaced by [REDACTED]."""
    keys = [s for s in secrets if s]
    if not keys:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            if item in keys:
                return REDACTED
            for key in keys:
                if len(key) >= _MIN_SUBSTRING_SECRET and key in item:
                    item = item.replace(key, REDACTED)
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


@dataclass(frozen=True)
class Exchange:
    """One answer of a transcript; `request_hash` is None for hand-written entries."""

    line: int
    request_hash: str | None
    request: dict[str, Any] | None
    response: dict[str, Any]
    reply: LLMReply
    # A recorded context-length refusal: replayed as this error for the same request.
    error: ContextOverflowError | None = None


@dataclass(frozen=True)
class Transcript:
    path: Path
    header: dict[str, Any]
    exchanges: list[Exchange]
    # What the endpoint said about tokens, so a replay builds the very same prompts:
    # sha256 of a counted text -> its tokens; the tokenizer's name; the context window.
    token_counts: dict[str, int] = field(default_factory=dict)
    tokenizer: str | None = None
    context_window: int | None = None


def text_hash(text: str) -> str:
    """sha256 hex digest of a counted text (cleaned), the key of a `tokens` entry."""
    return hashlib.sha256(clean_text(text).encode("utf-8")).hexdigest()


def read_transcript(path: Path) -> Transcript:
    """Load and check a transcript; a problem is an `LLMError` naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LLMError(f"transcript {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LLMError(f"transcript {path} cannot be read: {exc}") from None
    header: dict[str, Any] | None = None
    exchanges: list[Exchange] = []
    counts: dict[str, int] = {}
    tokenizer: str | None = None
    window: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LLMError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        except RecursionError:
            raise LLMError(f"{where}: JSON nested too deep to read") from None
        if not isinstance(obj, dict):
            raise LLMError(f"{where}: each line must be a JSON object")
        if header is None:
            if obj.get("type") != "header":
                raise LLMError(
                    f'{where}: not a funcforge transcript: the first line must be {{"type": '
                    f'"header", "format": {FORMAT}, "note": "..."}}'
                )
            if obj.get("format") != FORMAT:
                raise LLMError(
                    f"{where}: transcript format {obj.get('format')!r} is not supported "
                    f"(expected {FORMAT})"
                )
            header = obj
            continue
        if obj.get("type") == "tokens":
            digest, count = obj.get("text_sha256"), obj.get("count")
            if not isinstance(digest, str) or not isinstance(count, int):
                raise LLMError(f"{where}: a tokens entry needs 'text_sha256' and 'count'")
            counts[digest] = count
            if isinstance(obj.get("tokenizer"), str):
                tokenizer = obj["tokenizer"]
            continue
        if obj.get("type") == "context_window":
            if not isinstance(obj.get("tokens"), int):
                raise LLMError(f"{where}: a context_window entry needs 'tokens' (an integer)")
            window = obj["tokens"]
            continue
        exchanges.append(_exchange(obj, number, where))
    if header is None:
        raise LLMError(f"transcript {path} is empty; the first line must be a header")
    return Transcript(path, header, exchanges, counts, tokenizer, window)


def _exchange(obj: dict[str, Any], number: int, where: str) -> Exchange:
    if obj.get("type") != "exchange":
        raise LLMError(f'{where}: expected "type": "exchange", got {obj.get("type")!r}')
    request = obj.get("request")
    if request is not None and not isinstance(request, dict):
        raise LLMError(f"{where}: 'request' must be an object")
    digest = obj.get("request_hash")
    if digest is not None and not isinstance(digest, str):
        raise LLMError(f"{where}: 'request_hash' must be a string")
    if digest is None and request is not None:
        digest = request_hash(request)
    overflow = obj.get("context_overflow")
    if isinstance(overflow, dict):
        if digest is None:
            raise LLMError(f"{where}: a context_overflow entry needs 'request_hash'")
        error = ContextOverflowError(
            str(overflow.get("message") or "the prompt is longer than the model's context"),
            overflow.get("limit") if isinstance(overflow.get("limit"), int) else None,
            overflow.get("requested") if isinstance(overflow.get("requested"), int) else None,
        )
        empty = LLMReply({"role": "assistant", "content": None}, Usage())
        return Exchange(number, digest, request, {}, empty, error)
    if "response" not in obj:
        raise LLMError(f"{where}: missing 'response' (a chat.completion object)")
    try:
        reply = reply_from_completion(obj["response"])
    except (ValueError, RecursionError) as exc:
        raise LLMError(f"{where}: bad response: {exc}") from None
    return Exchange(number, digest, request, obj["response"], reply)


def _with_window(transcript: Transcript, window: int) -> Transcript:
    return Transcript(
        transcript.path,
        transcript.header,
        transcript.exchanges,
        transcript.token_counts,
        transcript.tokenizer,
        window,
    )


class ReplayClient(ChatClient):
    """Answers from a transcript: by request hash, else the next unused entry.

    Falling back to the next entry warns (through `warn`) unless that entry is
    hand-written (no hash). Running out is an `LLMError`. With `strict`, a
    request that matches no recorded entry is an error too.
    """

    def __init__(
        self,
        path: Path,
        model: str,
        *,
        temperature: float | None = None,
        warn: Callable[[str], None] | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(model, temperature)
        self.path = Path(path)
        self.transcript = read_transcript(self.path)
        self.warn = warn or LOG.warning
        self.strict = strict
        self._used: set[int] = set()
        self._lock = threading.Lock()
        if any(
            e.request is not None and "max_completion_tokens" in e.request
            for e in self.transcript.exchanges
        ):
            self.max_tokens_key = "max_completion_tokens"  # recorded from OpenAI

    @property
    def used(self) -> int:
        """How many entries have been answered."""
        return len(self._used)

    @property
    def remaining(self) -> int:
        return len(self.transcript.exchanges) - len(self._used)

    def describe(self) -> str:
        return f"replay of {self.path}"

    def count_tokens(self, text: str) -> int | None:
        return self.transcript.token_counts.get(text_hash(text))

    def tokenizer_name(self) -> str | None:
        return self.transcript.tokenizer

    def context_window(self) -> int | None:
        return self.transcript.context_window

    def __repr__(self) -> str:
        return f"ReplayClient(path={str(self.path)!r}, model={self.model!r}, used={self.used})"

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        digest = request_hash(self.build_request(messages, tools, tool_choice))
        with self._lock:
            exchange, matched = self._pick(digest)
            self._used.add(exchange.line)
        if exchange.error is not None:
            if exchange.error.limit:
                self.transcript = _with_window(self.transcript, exchange.error.limit)
            raise exchange.error
        if not matched and exchange.request_hash is not None:
            self.warn(
                f"transcript {self.path}: no recorded answer matches this request "
                f"(hash {digest[:12]}); answering with the entry at line {exchange.line} instead"
            )
        self._count(exchange.reply.usage)
        return exchange.reply

    def _pick(self, digest: str) -> tuple[Exchange, bool]:
        unused = [e for e in self.transcript.exchanges if e.line not in self._used]
        for exchange in unused:
            if exchange.request_hash == digest:
                return exchange, True
        unused = [e for e in unused if e.error is None]  # refusals answer only their request
        if not unused:
            raise LLMError(f"transcript {self.path} has no more answers (used {self.used})")
        if self.strict:
            raise LLMError(
                f"transcript {self.path} has no answer for this request (hash {digest[:12]})"
            )
        return unused[0], False


class RecordingClient(ChatClient):
    """Wraps a client and appends each exchange to a transcript as it happens.

    The file is written anew with a header, then one line per answered
    request, flushed at once (a crash keeps what was answered). Errors are not
    recorded. Any string equal to a secret (and any text containing one) is
    replaced by [REDACTED] before writing.
    """

    def __init__(
        self,
        inner: ChatClient,
        path: Path,
        *,
        note: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        super().__init__(inner.model, inner.temperature)
        self.inner = inner
        self.path = Path(path)
        self._secrets = tuple(dict.fromkeys([*inner.secrets(), *secrets]))
        self._lock = threading.Lock()
        self._counted: set[str] = set()
        self._window: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise LLMError(f"cannot write transcript {self.path}: {exc.strerror}") from None
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        header = {
            "type": "header",
            "format": FORMAT,
            "note": note
            or f"recorded by funcforge {FUNCFORGE_VERSION} from {inner.describe()} at {stamp}",
        }
        self._write(header)

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def reset_usage(self) -> Usage:
        return self.inner.reset_usage()

    def build_request(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> dict[str, Any]:
        return self.inner.build_request(messages, tools, tool_choice)

    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def count_tokens(self, text: str) -> int | None:
        count = self.inner.count_tokens(text)
        if count is not None:
            digest = text_hash(text)
            if digest not in self._counted:
                self._counted.add(digest)
                entry = {"type": "tokens", "text_sha256": digest, "count": count}
                self._write({**entry, "tokenizer": self.inner.tokenizer_name()})
        return count

    def tokenizer_name(self) -> str | None:
        return self.inner.tokenizer_name()

    def context_window(self) -> int | None:
        window = self.inner.context_window()
        if window is not None and window != self._window:
            self._window = window
            self._write({"type": "context_window", "tokens": window})
        return window

    def describe(self) -> str:
        return f"{self.inner.describe()}, recorded to {self.path}"

    def __repr__(self) -> str:
        return f"RecordingClient({self.inner!r}, path={str(self.path)!r})"

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        request = self.build_request(messages, tools, tool_choice)
        try:
            reply = self.inner.complete(messages, tools, tool_choice)
        except ContextOverflowError as exc:  # recorded: the optimizer recovers from it
            self._write(
                {
                    "type": "exchange",
                    "request_hash": request_hash(request),
                    "context_overflow": {
                        "message": str(exc),
                        "limit": exc.limit,
                        "requested": exc.requested,
                    },
                }
            )
            if exc.limit:
                self._window = exc.limit
            raise
        self._write(
            {
                "type": "exchange",
                "request_hash": request_hash(request),
                "request": request,
                "response": reply.response,
            }
        )
        return reply

    def _write(self, obj: dict[str, Any]) -> None:
        line = dumps(scrub(obj, self._secrets))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()
        self.inner.close()
