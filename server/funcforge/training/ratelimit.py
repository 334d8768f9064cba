"""A client wrapper that spaces model calls across threads (requests per second)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from funcforge.optimizer.llm import ChatClient, LLMReply, Usage


class RateLimitedClient(ChatClient):
    """At most `rate` calls per second through `inner`, whatever the concurrency."""

    def __init__(
        self,
        inner: ChatClient,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(inner.model)
        self.inner, self.rate = inner, rate
        self.clock, self.sleep = clock, sleep
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
            with self._lock:  # each caller takes the next free slot, then waits for it
                now = self.clock()
                wait = self._next - now
                self._next = max(now, self._next) + 1.0 / self.rate
            if wait > 0:
                self.sleep(wait)
        return self.inner.complete(messages, tools, tool_choice)

    def secrets(self) -> tuple[str, ...]:
        return self.inner.secrets()

    def close(self) -> None:
        self.inner.close()
