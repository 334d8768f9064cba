"""A client wrapper that spaces model calls across threads (requests per second)."""

from __future__ import annotations

import threading
import time
from typing import Any

from funcforge.optimizer.llm import ChatClient, LLMReply, Usage


class RateLimitedClient(ChatClient):
    """At most `rate` calls per second through `inner`, whatever the concurrency."""

    def __init__(self, inner: ChatClient, rate: float | None) -> None:
        super().__init__(inner.model)
        self.inner, self.rate = inner, rate
        self._lock = threading.Lock()
        self._next = 0.0

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        if self.rate:
            with self._lock:
                now = time.monotonic()
                wait = self._next - now
                self._next = max(now, self._next) + 1.0 / self.rate
            if wait > 0:
                time.sleep(wait)
        return self.inner.complete(messages, tools, tool_choice)

    def secrets(self) -> tuple[str, ...]:
        return self.inner.secrets()

    def close(self) -> None:
        self.inner.close()
