"""The rate limit on model calls: slots spaced 1/rate apart, whatever the threads."""

from __future__ import annotations

import threading
from typing import Any

from funcforge.optimizer.llm import ChatClient, LLMReply, Usage
from funcforge.training.ratelimit import RateLimitedClient


class Instant(ChatClient):
    def __init__(self) -> None:
        super().__init__("m")
        self.calls = 0

    def complete(self, messages: Any, tools: Any = None, tool_choice: Any = "auto") -> LLMReply:
        self.calls += 1
        return LLMReply({"role": "assistant", "content": "ok"}, Usage(calls=1))


def test_calls_are_spaced_by_the_rate_across_threads() -> None:
    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(round(seconds, 6))

    inner = Instant()
    client = RateLimitedClient(inner, rate=4.0, clock=lambda: 100.0, sleep=sleep)
    threads = [threading.Thread(target=client.complete, args=([],)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.calls == 8
    # With the clock standing still, the 8 callers get slots 0, .25, .5, ... 1.75 s out.
    assert sorted(waits) == [0.25 * i for i in range(1, 8)]


def test_no_rate_means_no_waiting() -> None:
    waits: list[float] = []
    client = RateLimitedClient(Instant(), rate=None, sleep=waits.append)
    for _ in range(5):
        client.complete([])
    assert waits == []
