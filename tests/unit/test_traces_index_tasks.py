"""The index's (tool, task) pairs and per-tool aggregate rows: exact counts, written
incrementally, whatever path a refresh takes (append, ingest, rebuild, restart, rollback)."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.traces import store as store_module
from funcforge.traces.index import Writer
from funcforge.traces.splits import Which
from funcforge.traces.store import TraceStore
from tests.unit.test_traces_store import trace

VIEWS: tuple[Which, ...] = ("learnable", "held_out", "all")


def _config(root: Path) -> Config:
    (root / "traces").mkdir(parents=True, exist_ok=True)
    return Config(root=root, traces=["traces/**/*.jsonl"])


def _append(path: Path, records: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def _random_records(rng: random.Random, start: int, n: int) -> list[dict]:
    """Traces over few tools and tasks, so tasks repeat within and across the splits."""
    out = []
    for i in range(start, start + n):
        tools = [(rng.choice("abcdef"), rng.choice(["ok", "Error: KeyError: 'x'"])) for _ in "xy"]
        task = rng.choice([None, *(f"t{k}" for k in range(6))])
        split = rng.choice([None, "train", "test", "test"])
        extra = {"split": split} if split else {}
        out.append(trace(i, tools[: rng.randint(1, 2)], task=task, **extra))
    return out


def _by_pass(store: TraceStore, which: Which) -> dict[str, tuple[int, int, int]]:
    """Per tool (calls, traces, distinct tasks) by a pass over the summaries."""
    calls: dict[str, int] = {}
    traces: dict[str, int] = {}
    tasks: dict[str, set[str]] = {}
    for s in store.summaries(which=which):
        for name in s.tool_names:
            calls[name] = calls.get(name, 0) + 1
        for name in set(s.tool_names):
            traces[name] = traces.get(name, 0) + 1
            if s.task_id is not None:
                tasks.setdefault(name, set()).add(s.task_id)
    return {n: (calls[n], traces[n], len(tasks.get(n, ()))) for n in calls}


def _counts(store: TraceStore, which: Which) -> dict[str, tuple[int, int, int]]:
    return {n: (s.calls, s.traces, s.tasks) for n, s in store.tool_stats(which).items()}


def _check(store: TraceStore) -> None:
    for which in VIEWS:
        assert _counts(store, which) == _by_pass(store, which), which
        assert store.count(which) == len(store.summaries(which=which))


@pytest.mark.parametrize("few", [False, True])
def test_task_counts_stay_exact_through_appends_restarts_truncation_and_sharing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, few: bool
) -> None:
    if few:  # force the batched writes and recounts onto small refreshes too
        monkeypatch.setattr(store_module, "TASK_BATCH", 3)
        monkeypatch.setattr(store_module, "COUNTED_PAIRS", 2)
    rng = random.Random(18)
    config = _config(tmp_path / "ws")
    path = tmp_path / "ws" / "traces" / "runs.jsonl"
    _append(path, _random_records(rng, 0, 40))
    store = TraceStore(config)
    store.refresh()
    _check(store)
    n = 40
    for step in range(12):
        _append(path, _random_records(rng, n, rng.randint(1, 6)))
        n += 6
        if step % 4 == 1:  # a restart: counts come back from the index's rows
            store.close()
            store = TraceStore(config)
            _check(store)
        if step == 6:  # truncated: old traces leave, the counts are rebuilt
            lines = path.read_bytes().splitlines(keepends=True)
            path.write_bytes(b"".join(lines[:25]))
        if step == 9:  # another process appends and refreshes in between
            other = TraceStore(config)
            other.refresh()
            _check(other)
            other.close()
            _append(path, _random_records(rng, n, 3))
            n += 3
        store.refresh()
        _check(store)
    fresh = TraceStore(config, index_path=tmp_path / "fresh.sqlite")
    fresh.refresh()
    for which in VIEWS:
        assert store.tool_stats(which) == fresh.tool_stats(which)


def test_a_task_on_both_sides_counts_once_in_all(tmp_path: Path) -> None:
    config = _config(tmp_path / "ws")
    path = tmp_path / "ws" / "traces" / "runs.jsonl"
    _append(path, [trace(1, [("f", "ok")], task="t1", split="train")])
    store = TraceStore(config)
    store.refresh()
    _append(
        path,
        [
            trace(2, [("f", "ok")], task="t1", split="test"),  # same task, held out
            trace(3, [("f", "ok")], task="t1", split="train"),  # nothing new anywhere
            trace(4, [("f", "ok")], task="t2", split="test"),
        ],
    )
    store.refresh()
    tasks = {w: store.tool_stats(w)["f"].tasks for w in VIEWS}
    assert tasks == {"learnable": 1, "held_out": 2, "all": 2}
    store.close()
    again = TraceStore(config)
    assert {w: again.tool_stats(w)["f"].tasks for w in VIEWS} == tasks


def _audit(index: Path) -> None:
    """Record every aggregate row written from now on (a trigger in the index file)."""
    with sqlite3.connect(index) as conn:
        conn.execute("CREATE TABLE audit (side INTEGER, kind INTEGER, name TEXT)")
        conn.execute(
            "CREATE TRIGGER audit_rows AFTER INSERT ON aggregates BEGIN "
            "INSERT INTO audit VALUES (new.side, new.kind, new.name); END"
        )
    conn.close()


def test_an_append_writes_only_the_rows_it_touched(tmp_path: Path) -> None:
    config = _config(tmp_path / "ws")
    path = tmp_path / "ws" / "traces" / "runs.jsonl"
    tools = [f"tool_{k}" for k in range(30)]
    _append(
        path,
        [trace(i, [(t, "ok")], task=f"t{i}", version="v1") for i, t in enumerate(tools * 3)],
    )
    store = TraceStore(config)
    store.refresh()
    store.close()
    _audit(store.index_path)
    _append(path, [trace(500, [("tool_3", "Error: KeyError: 'x'")], task="t-new", version="v1")])
    store = TraceStore(config)
    assert store.refresh() == ["traces/runs.jsonl"]
    with sqlite3.connect(store.index_path) as conn:
        written = sorted(conn.execute("SELECT side, kind, name FROM audit").fetchall())
        pairs = conn.execute("SELECT count(*) FROM tool_tasks").fetchone()[0]
    conn.close()
    # The tool's row, its all-sides task count and the version: not the 29 other tools.
    assert written == [(0, 0, "tool_3"), (0, 1, "v1"), (0, 2, "tool_3")]
    assert pairs == 91  # one row per distinct (tool, task), on disk, not in memory
    s = store.tool_stats()["tool_3"]
    assert (s.calls, s.errors, s.traces, s.tasks) == (4, 1, 4, 4)


def test_a_rolled_back_refresh_leaves_no_stale_tool_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tool ids handed out inside a rolled-back refresh must not be reused for others."""
    config = _config(tmp_path / "ws")
    path = tmp_path / "ws" / "traces" / "runs.jsonl"
    _append(path, [trace(1, [("a", "ok")], task="t1")])
    store = TraceStore(config)
    store.refresh()
    _append(path, [trace(2, [("b", "ok")], task="t1")])  # b gets a tool id, then...
    real_finish = Writer.finish

    def failing_finish(self: Writer, sidecars: dict) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Writer, "finish", failing_finish)
    with pytest.raises(RuntimeError):
        store.refresh()  # ...the transaction is rolled back
    monkeypatch.setattr(Writer, "finish", real_finish)
    _append(path, [trace(3, [("c", "ok")], task="t1")])  # c may take b's freed id
    store.refresh()
    stats = store.tool_stats()
    assert {n: (s.traces, s.tasks) for n, s in stats.items()} == {
        "a": (1, 1),
        "b": (1, 1),
        "c": (1, 1),
    }
    store.close()
    again = TraceStore(config)
    assert {n: s.tasks for n, s in again.tool_stats().items()} == {"a": 1, "b": 1, "c": 1}


def test_stats_snapshots_are_reused_until_their_tool_changes(tmp_path: Path) -> None:
    config = _config(tmp_path / "ws")
    path = tmp_path / "ws" / "traces" / "runs.jsonl"
    _append(path, [trace(1, [("a", "ok")], task="t1"), trace(2, [("b", "ok")], task="t2")])
    store = TraceStore(config)
    store.refresh()
    first = store.tool_stats("all")
    _append(path, [trace(3, [("a", "Error: KeyError: 'x'")], task="t3", split="test")])
    store.refresh()
    second = store.tool_stats("all")
    assert second["b"] is first["b"]  # untouched: not copied again
    assert (first["a"].calls, first["a"].tasks) == (1, 1)  # a snapshot stays as it was
    assert (second["a"].calls, second["a"].errors, second["a"].tasks) == (2, 1, 2)
    assert store.tool_stats("learnable")["a"].calls == 1
