"""The on-save hand check runs one at a time: saves while a (hostile, slow) check runs
ask for one more run after it, never checks beside it, and never stale findings."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from funcforge.lsp import handcheck
from funcforge.lsp.features.handcheck import HandCheckFeature


class Recorder:
    """A stand-in for the check: slow, and counting how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.runs = 0

    def __call__(self, session: Any) -> dict[str, Any]:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.runs += 1
            run = self.runs
        time.sleep(0.3)
        with self.lock:
            self.active -= 1
        return {"run": run}


def _feature(threads: list[threading.Thread]) -> HandCheckFeature:
    def debounce(key: str, delay: float, fn: Any) -> None:  # each save's timer fires at once
        thread = threading.Thread(target=fn)
        threads.append(thread)
        thread.start()

    ls = SimpleNamespace(
        session=SimpleNamespace(settings=SimpleNamespace(allow_execution=True)),
        debounce=debounce,
        show=lambda *a: None,
        log_line=lambda *a: None,
        diagnostics=SimpleNamespace(publish=lambda **k: None),
    )
    return HandCheckFeature(ls)  # type: ignore[arg-type]


def _join(threads: list[threading.Thread]) -> None:
    for thread in list(threads):
        thread.join(timeout=20)
        assert not thread.is_alive()


def test_saves_while_a_check_runs_queue_one_more_run(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(handcheck, "hand_edit_findings", recorder)
    threads: list[threading.Thread] = []
    feature = _feature(threads)
    for _ in range(6):
        feature.schedule()
        time.sleep(0.02)
    _join(threads)
    assert recorder.most == 1, f"{recorder.most} checks ran at once"
    assert recorder.runs == 2  # the first, and one for every save during it
    assert feature.findings == {"run": 2}  # the last run's findings


def test_a_check_begun_before_clear_drops_its_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(handcheck, "hand_edit_findings", recorder)
    threads: list[threading.Thread] = []
    feature = _feature(threads)
    feature.schedule()
    time.sleep(0.1)
    feature.clear()  # an apply committed new files meanwhile
    _join(threads)
    assert feature.findings == {}
