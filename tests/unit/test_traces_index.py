"""The store's persistent index: restarts, truncation/rotation/replacement, corruption, sharing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.traces import index as index_module
from funcforge.traces.formats import TraceSummary
from funcforge.traces.index import TraceIndex
from funcforge.traces.model import SourceRef
from funcforge.traces.store import TraceStore
from tests.unit.test_traces_store import trace


def _config(root: Path) -> Config:
    (root / "traces").mkdir(parents=True, exist_ok=True)
    return Config(root=root, traces=["traces/**/*.jsonl"])


def _write(path: Path, records: list[dict], mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def _records(start: int, n: int, split: str | None = None) -> list[dict]:
    out = []
    for i in range(start, start + n):
        failing = i % 3 == 0
        results = [("convert_units", "Error: KeyError: 'mile'" if failing else "1.6")]
        if i % 2:
            results.append(("format_money", "$1.00"))
        extra = {"split": split} if split else {}
        out.append(
            trace(
                i, results, task=f"task-{i % 5}", passed=not failing, version=f"v{i // 4}", **extra
            )
        )
    return out


def _stats(store: TraceStore) -> tuple:
    views = ("learnable", "held_out", "all")
    return (
        len(store),
        {w: store.tool_stats(w) for w in views},
        {w: store.version_stats(w) for w in views},
        [
            (s.id, s.file, s.line, s.offset, s.tool_names, s.errors)
            for s in store.summaries(which="all")
        ],
        sorted(str(m) for m in store.malformed),
    )


@pytest.fixture
def ws(tmp_path: Path) -> tuple[Config, Path]:
    config = _config(tmp_path / "ws")
    path = tmp_path / "ws" / "traces" / "runs.jsonl"
    _write(path, _records(0, 30) + _records(30, 10, split="test"))
    with open(path, "a") as f:
        f.write("{not json\n")
    return config, path


def test_index_persists_across_restarts_and_reads_nothing_for_unchanged_files(ws) -> None:
    config, _ = ws
    first = TraceStore(config)
    first.refresh()
    expected = _stats(first)
    assert first.index_path == config.state_path / "cache" / "traces.sqlite"
    assert first.index_path.is_file()
    first.close()

    second = TraceStore(config)
    assert _stats(second) == expected  # before any refresh: from the index alone
    assert second.refresh() == []
    assert second.bytes_read == 0 and _stats(second) == expected
    assert not second.notices
    # Full traces are still read lazily from the trace file.
    summary = second.summaries()[3]
    assert second.load(summary).id == summary.id
    assert second.load(SourceRef(summary.file, summary.line)).id == summary.id
    # The held-out split is kept apart as before (test traces are not learnable).
    assert second.version_stats("learnable") != second.version_stats("all")
    assert all(s.split != "test" for s in second.summaries())
    assert len(second.summaries(which="held_out")) == 10
    assert "runs.jsonl:41: bad JSON" in " ".join(str(m) for m in second.malformed)


def test_append_after_restart_reads_only_the_new_bytes(ws) -> None:
    config, path = ws
    a = TraceStore(config)
    a.refresh()
    a.close()
    size = path.stat().st_size
    _write(path, _records(100, 5), mode="a")
    b = TraceStore(config)
    assert b.refresh() == ["traces/runs.jsonl"]
    assert b.bytes_read == path.stat().st_size - size
    assert len(b) == 45
    fresh = TraceStore(config, index_path=config.root / "other.sqlite")
    fresh.refresh()
    assert _stats(b) == _stats(fresh)  # same as indexing from scratch


@pytest.mark.parametrize("change", ["truncate", "rotate", "replace_same_size", "edit_head"])
def test_changed_files_are_reread_with_the_index_present(ws, change: str) -> None:
    config, path = ws
    a = TraceStore(config)
    a.refresh()
    a.close()
    if change == "truncate":
        _write(path, _records(0, 7))
    elif change == "rotate":
        os.rename(path, path.with_suffix(".old"))  # not matched by the glob
        _write(path, _records(200, 12))
    elif change == "replace_same_size":
        data = path.read_bytes().replace(b"convert_units", b"convert_uNits")
        os.utime(path, ns=(1, 1))
        path.write_bytes(data)
    else:  # a longer file whose first records differ: not an append
        data = path.read_bytes().replace(b"question 0", b"QUESTION 0")
        path.write_bytes(data + json.dumps(_records(300, 1)[0]).encode() + b"\n")
    b = TraceStore(config)
    b.refresh()
    fresh = TraceStore(config, index_path=config.root / "fresh.sqlite")
    fresh.refresh()
    assert _stats(b) == _stats(fresh)
    if change == "truncate":
        assert len(b) == 7
    if change == "replace_same_size":
        assert "convert_uNits" in b.tool_stats("all") and "convert_units" not in b.tool_stats("all")


def test_a_removed_file_leaves_the_index(ws) -> None:
    config, path = ws
    other = path.with_name("more.jsonl")
    _write(other, _records(500, 4))
    a = TraceStore(config)
    a.refresh()
    assert len(a) == 44
    a.close()
    other.unlink()
    b = TraceStore(config)
    assert b.refresh() == ["traces/more.jsonl"]
    assert len(b) == 40 and {f.file for f in b.files()} == {"traces/runs.jsonl"}
    assert b.tool_stats("all")["convert_units"].traces == 40


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_corrupt_index_is_rebuilt_with_a_message(ws, damage: str, caplog) -> None:
    config, _ = ws
    a = TraceStore(config)
    a.refresh()
    expected = _stats(a)
    index = a.index_path
    a.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    if damage == "garbage":
        index.write_bytes(b"this is not a database at all\n" * 100)
    elif damage == "truncated":
        index.write_bytes(index.read_bytes()[:1500])
    else:
        index.unlink()
        with sqlite3.connect(index) as conn:
            conn.execute("CREATE TABLE something (x)")
        conn.close()
    b = TraceStore(config)
    b.refresh()
    assert _stats(b) == expected
    assert b.notices and "rebuilding it from the trace files" in b.notices[0]
    assert str(index) in b.notices[0]
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    b.close()
    c = TraceStore(config)  # and the rebuilt index is good again
    assert c.refresh() == [] and c.bytes_read == 0 and not c.notices


def test_an_index_of_another_format_is_rebuilt(ws) -> None:
    config, _ = ws
    a = TraceStore(config)
    a.refresh()
    expected = _stats(a)
    index = a.index_path
    a.close()
    with sqlite3.connect(index) as conn:
        conn.execute("UPDATE meta SET value = 'old-format' WHERE key = 'stamp'")
    conn.close()
    b = TraceStore(config)
    assert len(b) == 0  # nothing trusted from the old index
    b.refresh()
    assert _stats(b) == expected and "another version" in b.notices[0]


def test_two_stores_share_one_index_without_counting_twice(ws) -> None:
    config, path = ws
    server, cli = TraceStore(config), TraceStore(config)
    server.refresh()
    cli.refresh()
    assert cli.bytes_read == 0  # the server's refresh was committed; the CLI took it over
    _write(path, _records(700, 3), mode="a")
    cli.refresh()
    server.refresh()
    assert len(server) == len(cli) == 43
    assert server.tool_stats("all")["convert_units"].traces == 43
    assert [s.id for s in server.summaries(which="all")] == [
        s.id for s in cli.summaries(which="all")
    ]


def test_outcome_sidecar_still_applies_after_a_restart(ws) -> None:
    config, path = ws
    sidecar = path.with_name("outcomes.jsonl")
    sidecar.write_text(json.dumps({"trace_id": "run-1", "score": 0.25, "passed": False}) + "\n")
    config.traces.append("traces/**/outcomes.jsonl")
    a = TraceStore(config)
    a.refresh()
    a.close()
    b = TraceStore(config)
    assert b.refresh() == [] and b.bytes_read == 0
    s = next(s for s in b.summaries() if s.id == "run-1")
    assert s.score == 0.25 and s.passed is False
    assert b.load(s).outcome.score == 0.25
    sidecar.write_text(json.dumps({"trace_id": "run-1", "score": 0.75}) + "\n")
    b.refresh()
    assert next(s for s in b.summaries() if s.id == "run-1").score == 0.75


def test_unwritable_state_folder_falls_back_to_a_private_index(tmp_path: Path) -> None:
    config = Config(root=tmp_path / "missing", traces=["traces/*.jsonl"])
    store = TraceStore(config)
    store.refresh()
    assert len(store) == 0
    assert not (tmp_path / "missing").exists()  # nothing created in a missing workspace
    assert store.index_path.parent != config.state_path / "cache"


def _failures_by_pass(store: TraceStore) -> dict:
    """The per-tool, per-version failure counts by a pass over every summary."""
    out: dict = {}
    for s in store.summaries(which="all"):
        version = s.version or "unversioned"
        for name in s.tool_names:
            counts, order = out.setdefault(name, ({}, []))
            c, e = counts.get(version, (0, 0))
            counts[version] = (c + 1, e)
        for name, _t, _m in s.errors:
            counts, order = out[name]
            c, e = counts[version]
            counts[version] = (c, e + 1)
            if not order or order[-1] != version:
                if version in order:
                    order.remove(version)
                order.append(version)
    return out


def test_failures_by_version_come_from_the_aggregates_and_survive_restarts(ws) -> None:
    config, path = ws
    a = TraceStore(config)
    a.refresh()
    _write(path, _records(60, 9), mode="a")  # an append, added to the live aggregates
    a.refresh()
    expected = _failures_by_pass(a)
    assert {k: v[0] for k, v in a.failures_by_version("all").items()} == {
        k: v[0] for k, v in expected.items()
    }
    assert a.failures_by_version("all")["convert_units"][1]  # versions with failures
    a.close()
    b = TraceStore(config)
    assert b.failures_by_version("all") == a.failures_by_version("all")
    assert sum(c for c, _ in b.failures_by_version("held_out")["convert_units"][0].values()) == 10


def _summary_at(line: int, ordinal: int) -> TraceSummary:
    return TraceSummary(
        f"t{line}.{ordinal}", "runs.jsonl", line, line * 100, ordinal, None, False, None, None,
        None, None, None, ("a",), (),
    )  # fmt: skip


@pytest.mark.parametrize("block", [1, 2, 3, 128])
def test_rows_of_many_summaries_are_found_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Summaries are kept `BLOCK` to a row: every line is found, as its first trace, also
    where one line's traces straddle two rows and after appends made small rows."""
    monkeypatch.setattr(index_module, "BLOCK", block)
    lines = [1, 2, 2, 2, 3, 5, 5, 8, 9, 9, 9, 9, 12, 13]
    summaries = [_summary_at(ln, lines[:i].count(ln)) for i, ln in enumerate(lines)]
    index = TraceIndex(tmp_path / "traces.sqlite", "settings")
    for part in (summaries[:5], summaries[5:6], summaries[6:]):  # a cold read, then appends
        with index.transaction() as tx:
            tx.add("runs.jsonl", part)
    assert list(index.summaries("runs.jsonl")) == summaries
    for line in range(15):
        first = next((s for s in summaries if s.line == line), None)
        assert index.find("runs.jsonl", line) == first, line
    assert index.find("other.jsonl", 1) is None
    with index.transaction() as tx:
        assert list(tx.all_summaries(["runs.jsonl"])) == summaries
        tx.clear_file("runs.jsonl")
        tx.add("runs.jsonl", summaries[:2])
    assert list(index.summaries("runs.jsonl")) == summaries[:2]
    assert index.find("runs.jsonl", 2) == summaries[1]
    assert index.find("runs.jsonl", 3) is None
    index.close()


_KILLED_MID_BUILD = """
import os, signal, sys
from pathlib import Path
from funcforge.config import Config
from funcforge.traces import index, store

store.SINK_BATCH = 5  # several batches, so the process dies between two of them
original = index.Writer.add
def add(self, rel, summaries):
    original(self, rel, summaries)
    os.kill(os.getpid(), signal.SIGKILL)  # mid-build: rows written, nothing committed
index.Writer.add = add
config = Config(root=Path(sys.argv[1]), traces=["traces/**/*.jsonl"])
store.TraceStore(config).refresh()
"""


def test_a_cold_build_killed_midway_is_not_trusted(ws, tmp_path: Path) -> None:
    """A process killed while it builds the index leaves nothing that a later store takes
    for indexed: the next refresh reads every trace again and gets the same statistics."""
    config, path = ws
    reference = TraceStore(config, index_path=tmp_path / "reference" / "traces.sqlite")
    reference.refresh()
    expected = _stats(reference)
    reference.close()
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_BUILD, str(config.root)], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    index = config.state_path / "cache" / "traces.sqlite"
    assert index.exists()
    store = TraceStore(config)
    assert store.refresh() == ["traces/runs.jsonl"]
    assert store.bytes_read == path.stat().st_size
    assert _stats(store) == expected
    assert not store.notices  # rolled back, not damaged: nothing to rebuild
    store.close()
