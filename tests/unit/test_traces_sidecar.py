"""An `outcomes.jsonl` beside trace files gives them their outcomes in the store."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.config import load_config
from funcforge.traces.store import TraceStore


def trace(i: int, task: str) -> dict:
    return {
        "id": f"run-{i}",
        "task": {"id": task, "input": "q"},
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "toolset_version": "v1",
    }


def test_sidecar_outcomes_are_joined_and_follow_its_changes(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "runs.jsonl").write_text(
        "".join(json.dumps(trace(i, f"t{i % 2}")) + "\n" for i in range(4))
    )
    sidecar = traces / "outcomes.jsonl"
    sidecar.write_text(
        '{"trace_id": "run-0", "score": 1.0, "passed": true}\n'
        '{"task_id": "t1", "passed": false}\n'
        '{"task_id": 5}\n'
    )
    store = TraceStore(load_config(tmp_path))
    store.refresh()
    by_id = {s.id: (s.score, s.passed) for s in store.summaries()}
    assert by_id == {
        "run-0": (1.0, True),
        "run-1": (0.0, False),
        "run-2": (None, None),
        "run-3": (0.0, False),
    }
    assert store.version_stats()["v1"].mean_score == 1.0 / 3
    assert [m.line for m in store.malformed] == [3]
    run0 = next(s for s in store.summaries() if s.id == "run-0")
    assert store.load(run0).outcome.passed is True

    sidecar.write_text('{"task_id": "t0", "score": 0.5, "passed": false}\n')
    assert "traces/runs.jsonl" in store.refresh()  # re-read for its new outcomes
    by_id = {s.id: (s.score, s.passed) for s in store.summaries()}
    assert by_id["run-0"] == (0.5, False) and by_id["run-1"] == (None, None)

    sidecar.unlink()
    store.refresh()
    assert all(s.score is None for s in store.summaries())
