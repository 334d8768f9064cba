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
import json
import logging
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
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


class LLMError(UserError):
    """The model endpoint failed in a way the user can act on (one-line message)."""


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
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("choices[0].message.content must be a string or null")
    if isinstance(content, str):
        content = clean_text(content)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    calls = []
    for i, call in enumerate(raw.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"tool_calls[{i}] has no function name")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = dumps(arguments)
        calls.append(
            {
                "id": str(call.get("id") or f"call_{i}"),
                "type": "function",
                "function": {
                    "name": clean_text(function["name"]),
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
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        ),
        response=completion,
        finish_reason=finish if isinstance(finish, str) else None,
        model=answered if isinstance(answered, str) and answered else None,
    )


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
    """Collapse whitespace and cut to `limit` characters, for one-line messages."""
    flat = " ".join(text.split())
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
        """The request this client sends (or would send) for these arguments."""
        return build_request(self.model, messages, tools, tool_choice, self.temperature)

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
        if api_version:
            if not base_url:
                raise LLMError(
                    "api_version is set (Azure OpenAI) but base_url is not; set base_url to "
                    "https://RESOURCE.openai.azure.com in [tool.funcforge]"
                )
            if "/openai" in urlsplit(base_url).path:
                self._sdk = openai.AzureOpenAI(
                    base_url=base_url,
                    api_key=api_key,
                    api_version=api_version,
                    timeout=timeout,
                    max_retries=0,
                )
            else:
                self._sdk = openai.AzureOpenAI(
                    azure_endpoint=base_url,
                    api_key=api_key,
                    api_version=api_version,
                    timeout=timeout,
                    max_retries=0,
                )
        else:
            self._sdk = openai.OpenAI(
                api_key=api_key,
                base_url=base_url or DEFAULT_BASE_URL,
                timeout=timeout,
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

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        request = self.build_request(messages, tools, tool_choice)
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                raw = self._sdk.chat.completions.with_raw_response.create(**request)
                text = raw.text
            except openai.APIError as exc:
                transient, hint, what = self._classify(exc)
                if not transient:
                    raise LLMError(self._fatal_message(exc)) from None
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
            reply = self._parse(text)
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

    # -- helpers -------------------------------------------------------------------

    def _parse(self, text: str) -> LLMReply:
        try:
            completion = json.loads(text)
        except ValueError:
            raise LLMError(
                f"the model endpoint {self.endpoint} answered with something that is not JSON: "
                f"{self._detail(text)!r}"
            ) from None
        try:
            return reply_from_completion(completion)
        except ValueError as exc:
            raise LLMError(
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

    def _classify(self, exc: openai.APIError) -> tuple[bool, float | None, str]:
        """(transient?, server-requested wait, one-line description) of a failure."""
        if isinstance(exc, openai.APITimeoutError):
            return True, None, f"request to {self.endpoint} timed out after {self.timeout:g} s"
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
