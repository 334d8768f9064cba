"""TraceStore: incremental indexing, truncation and replacement, malformed lines, statistics."""

from __future__ import annotations

import gc
import json
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from funcforge.config import Config
from funcforge.traces import formats
from funcforge.traces.formats import Malformed, TraceFormat, UnknownFormatError
from funcforge.traces.model import MalformedTrace, SourceRef, Trace
from funcforge.traces.store import UNVERSIONED, StaleTraceError, TraceStore


def trace(
    n: int,
    results: list[tuple[str, str]] | None = None,
    *,
    task: str | None = None,
    passed: bool | None = True,
    score: float | None = None,
    version: str | None = "v1",
    time: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A native trace calling each (tool, result) in turn."""
    results = [("convert_units", "1.6")] if results is None else results
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"question {n}"}]
    for k, (name, content) in enumerate(results):
        cid = f"c{n}-{k}"
        messages.append(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps({"n": n})},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": cid, "content": content})
    messages.append({"role": "assistant", "content": "done"})
    rec: dict[str, Any] = {"id": f"run-{n}", "messages": messages, **extra}
    if task is not None:
        rec["task"] = {"id": task, "input": "q", "expected": "a"}
    outcome: dict[str, Any] = {}
    if passed is not None:
        outcome["passed"] = passed
    if score is not None:
        outcome["score"] = score
    rec["outcome"] = outcome
    if version is not None:
        rec["toolset_version"] = version
    if time is not None:
        rec["time"] = time
    return rec


def lines(*records: Any) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def make_store(root: Path, **kw: Any) -> TraceStore:
    config = Config(root=root, traces=kw.pop("traces", ["traces/**/*.jsonl"]))
    config.formats = kw.pop("formats", {})
    return TraceStore(config, **kw)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "traces").mkdir()
    return tmp_path


def write(path: Path, data: bytes, mode: str = "wb") -> None:
    with open(path, mode) as f:
        f.write(data)


# -- statistics ------------------------------------------------------------------


def test_tool_and_version_statistics(ws: Path) -> None:
    a = ws / "traces" / "a.jsonl"
    write(
        a,
        lines(
            trace(
                1,
                [("convert_units", "Error: KeyError: 'mile'")],
                task="t1",
                passed=False,
                score=0.0,
                time="2026-01-02T00:00:00Z",
            ),
            trace(
                2,
                [("convert_units", "1.6"), ("fmt", "1.60")],
                task="t1",
                passed=True,
                score=1.0,
                time="2026-01-01T00:00:00Z",
            ),
            trace(
                3,
                [("convert_units", "Error: KeyError: 'mile'"), ("convert_units", "2")],
                task="t2",
                passed=False,
                score=0.5,
                version="v2",
            ),
        ),
    )
    write(
        ws / "traces" / "b.jsonl",
        lines(trace(4, [("fmt", "Error: bad input")], passed=None, version=None)),
    )
    store = make_store(ws)
    assert store.refresh() == ["traces/a.jsonl", "traces/b.jsonl"]
    stats = store.tool_stats()
    cu = stats["convert_units"]
    assert (cu.calls, cu.errors, cu.traces, cu.tasks, cu.passed, cu.judged) == (4, 2, 3, 2, 1, 3)
    assert cu.error_types == {"KeyError": 2}
    assert cu.pass_rate == pytest.approx(1 / 3)
    assert cu.error_rate == 0.5 and cu.top_error == ("KeyError", 2)
    assert [str(r) for r in cu.examples["KeyError"]] == ["traces/a.jsonl:1", "traces/a.jsonl:3"]
    assert [(str(r), t, m) for r, t, m in cu.recent_errors] == [
        ("traces/a.jsonl:1", "KeyError", "'mile'"),
        ("traces/a.jsonl:3", "KeyError", "'mile'"),
    ]
    fmt = stats["fmt"]
    assert (fmt.calls, fmt.errors, fmt.traces, fmt.passed, fmt.judged) == (2, 1, 2, 1, 1)
    assert fmt.error_types == {"Error": 1} and fmt.pass_rate == 1.0
    versions = store.version_stats()
    assert set(versions) == {"v1", "v2", UNVERSIONED}
    v1 = versions["v1"]
    assert (v1.n, v1.mean_score, v1.passed, v1.judged) == (2, 0.5, 1, 2)
    assert (v1.first_time, v1.last_time) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert versions[UNVERSIONED].n == 1 and versions[UNVERSIONED].mean_score is None
    assert [s.id for s in store.summaries(version="v1")] == ["run-1", "run-2"]
    assert [s.id for s in store.summaries(tool="fmt")] == ["run-2", "run-4"]
    assert [s.id for s in store.summaries(version=UNVERSIONED)] == ["run-4"]
    s3 = store.summaries()[2]
    assert (s3.task_id, s3.has_expected, s3.score, s3.passed, s3.version) == (
        "t2",
        True,
        0.5,
        False,
        "v2",
    )
    assert s3.tools == {"convert_units": 2} and s3.tool_errors == {"convert_units": 1}
    assert s3.calls == 2 and s3.ref == SourceRef("traces/a.jsonl", 3, s3.offset)
    assert len(store) == 4 and not store.malformed
    assert [(f.file, f.format, f.traces) for f in store.files()] == [
        ("traces/a.jsonl", "native", 3),
        ("traces/b.jsonl", "native", 1),
    ]


def test_held_out_traces_are_kept_out_of_the_default_statistics(ws: Path) -> None:
    """split "test" is held out: tool/version statistics, summaries and calls skip it."""
    write(
        ws / "traces" / "a.jsonl",
        lines(
            trace(1, [("f", "1")], task="t1", score=1.0, split="train"),
            trace(2, [("f", "Error: KeyError: 'x'")], task="t2", score=0.0, split="test"),
            trace(3, [("f", "Error: KeyError: 'y'"), ("g", "2")], task="t3", score=0.0),
            trace(4, [("g", "Error: bad")], task="t4", score=0.5, split="test", version="v2"),
            trace(5, [("f", "3")], task="t5", score=1.0, split="dev"),
        ),
    )
    store = make_store(ws)
    store.refresh()
    learn = store.tool_stats()
    assert (learn["f"].calls, learn["f"].errors, learn["f"].traces, learn["f"].tasks) == (
        3,
        1,
        3,
        3,
    )
    assert [str(r) for r in learn["f"].examples["KeyError"]] == ["traces/a.jsonl:3"]
    assert (learn["g"].calls, learn["g"].errors) == (1, 0)
    held = store.tool_stats("held_out")
    assert (held["f"].calls, held["f"].errors, held["g"].errors) == (1, 1, 1)
    every = store.tool_stats("all")
    assert (every["f"].calls, every["f"].errors, every["f"].traces, every["f"].tasks) == (
        4,
        2,
        4,
        4,
    )
    assert every["f"].error_types == {"KeyError": 2} and every["g"].errors == 1
    assert [str(r) for r in every["f"].examples["KeyError"]] == [
        "traces/a.jsonl:3",
        "traces/a.jsonl:2",
    ]
    versions = store.version_stats()
    assert set(versions) == {"v1"} and versions["v1"].n == 3
    assert versions["v1"].mean_score == pytest.approx(2 / 3)
    tests = store.version_stats("held_out")
    assert (tests["v1"].n, tests["v1"].mean_score, tests["v2"].n) == (1, 0.0, 1)
    both = store.version_stats("all")
    assert (both["v1"].n, both["v1"].mean_score, both["v2"].n) == (4, 0.5, 1)
    assert [s.id for s in store.summaries()] == ["run-1", "run-3", "run-5"]
    assert [s.id for s in store.summaries(which="held_out")] == ["run-2", "run-4"]
    assert [s.id for s in store.summaries(version="v2")] == []
    assert [s.id for s in store.summaries(version="v2", which="all")] == ["run-4"]
    assert [s.id for s, _ in store.calls("f")] == ["run-1", "run-3", "run-5"]
    assert [s.id for s, _ in store.calls("f", which="held_out")] == ["run-2"]
    assert [s.id for s, _ in store.calls("f", which="all")] == ["run-1", "run-2", "run-3", "run-5"]
    with pytest.raises(ValueError, match="learnable"):
        store.tool_stats("train")  # type: ignore[arg-type]


def test_a_trace_moved_to_the_test_split_by_a_sidecar_leaves_the_learnable_view(ws: Path) -> None:
    write(ws / "traces" / "a.jsonl", lines(trace(1, task="t1"), trace(2, task="t2")))
    store = make_store(ws)
    store.refresh()
    assert store.version_stats()["v1"].n == 2
    write(
        ws / "traces" / "outcomes.jsonl", lines({"trace_id": "run-2", "score": 1, "split": "test"})
    )
    store.refresh()
    assert store.version_stats()["v1"].n == 1
    assert store.version_stats("held_out")["v1"].n == 1
    assert [s.id for s in store.summaries()] == ["run-1"]


def test_snapshots_do_not_change_under_later_refreshes(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1, [("f", "Error: x")])))
    store = make_store(ws)
    store.refresh()
    before, versions = store.tool_stats(), store.version_stats()
    write(path, lines(trace(2, [("f", "Error: y")])), "ab")
    store.refresh()
    assert before["f"].calls == 1 and before["f"].error_types == {"Error": 1}
    assert len(before["f"].recent_errors) == 1 and versions["v1"].n == 1
    assert store.tool_stats()["f"].calls == 2


# -- incremental reading -----------------------------------------------------------


def test_append_reads_only_the_new_bytes(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(*(trace(i) for i in range(50))))
    store = make_store(ws)
    store.refresh()
    assert store.bytes_read == path.stat().st_size
    assert store.refresh() == [] and store.bytes_read == path.stat().st_size
    more = lines(trace(50, [("convert_units", "Error: KeyError: 'km'")]), trace(51))
    before, checked = store.bytes_read, store.check_bytes
    write(path, more, "ab")
    assert store.refresh() == ["traces/a.jsonl"]
    assert store.bytes_read - before == len(more)  # only the appended bytes were read
    assert store.check_bytes - checked <= 4 * 1024  # and first/last KB, before and after
    summaries = store.summaries()
    assert len(summaries) == 52 and [s.line for s in summaries[-2:]] == [51, 52]
    assert summaries[-1].offset == path.stat().st_size - len(json.dumps(trace(51))) - 1
    stats = store.tool_stats()["convert_units"]
    assert (stats.calls, stats.errors, stats.traces) == (52, 1, 52)
    assert store.load(summaries[-2]).id == "run-50"


def test_a_partial_last_line_waits_for_the_next_refresh(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    full = json.dumps(trace(3)).encode()
    write(path, lines(trace(1), trace(2)) + full[:40])
    store = make_store(ws)
    store.refresh()
    assert [s.id for s in store.summaries()] == ["run-1", "run-2"] and not store.malformed
    write(path, full[40:] + b"\n", "ab")
    before = store.bytes_read
    assert store.refresh() == ["traces/a.jsonl"]
    assert store.bytes_read - before == len(full) + 1  # the waiting part, then the rest
    assert [(s.id, s.line) for s in store.summaries()] == [("run-1", 1), ("run-2", 2), ("run-3", 3)]


def test_unfinished_last_line_is_reported_only_by_a_final_refresh(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1)) + b'{"id": "run-2", "mess')
    store = make_store(ws)
    store.refresh()
    assert store.malformed == []
    store.refresh(final=True)
    assert store.malformed == [
        Malformed("traces/a.jsonl", 2, "unfinished last line (no newline at the end)")
    ]
    store.refresh()
    assert store.malformed == []


def test_a_complete_last_line_without_newline_is_indexed_and_continued(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1)) + json.dumps(trace(2)).encode())
    store = make_store(ws)
    store.refresh()
    assert [s.id for s in store.summaries()] == ["run-1", "run-2"]
    before = store.bytes_read
    write(path, b"\n" + lines(trace(3)), "ab")
    store.refresh()
    assert store.bytes_read - before == 1 + len(lines(trace(3)))  # no re-read
    assert [(s.id, s.line) for s in store.summaries()] == [("run-1", 1), ("run-2", 2), ("run-3", 3)]


def test_a_line_that_goes_on_after_being_indexed_forces_a_reread(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1)) + json.dumps(trace(2)).encode())
    store = make_store(ws)
    store.refresh()
    write(path, b' {"extra": 1}\n' + lines(trace(3)), "ab")
    store.refresh()
    assert [s.id for s in store.summaries()] == ["run-1", "run-3"]
    [bad] = store.malformed
    assert bad.line == 2 and bad.reason.startswith("bad JSON: Extra data")


def test_an_indexed_last_line_that_grows_without_newline_forces_a_reread(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1)) + json.dumps(trace(2)).encode())
    store = make_store(ws)
    store.refresh()
    assert len(store) == 2
    write(path, b" trailing", "ab")  # the same line goes on: it was never a complete record
    store.refresh()
    assert [s.id for s in store.summaries()] == ["run-1"]  # the rest waits for its newline
    store.refresh(final=True)
    assert [m.line for m in store.malformed] == [2]


def test_refresh_restores_the_garbage_collector_setting(ws: Path) -> None:
    write(ws / "traces" / "a.jsonl", lines(trace(1)))
    store = make_store(ws)
    assert gc.isenabled()
    store.refresh()
    assert gc.isenabled()
    gc.disable()
    try:
        write(ws / "traces" / "a.jsonl", lines(trace(2)), "ab")
        store.refresh()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_truncated_file_is_reread_and_statistics_rebuilt(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(*(trace(i, [("f", "Error: x")]) for i in range(5))))
    store = make_store(ws)
    store.refresh()
    assert store.tool_stats()["f"].errors == 5
    write(path, lines(trace(10, [("g", "ok")])))  # smaller: truncated and rewritten
    assert store.refresh() == ["traces/a.jsonl"]
    assert [s.id for s in store.summaries()] == ["run-10"]
    assert set(store.tool_stats()) == {"g"}


def test_replaced_file_of_the_same_size_is_reread(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1), trace(2)))
    store = make_store(ws)
    store.refresh()
    st = path.stat()
    write(path, lines(trace(3), trace(4)))  # same length, other content
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert store.refresh() == ["traces/a.jsonl"]
    assert [s.id for s in store.summaries()] == ["run-3", "run-4"]


def test_replaced_file_that_grew_is_reread_not_appended(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1), trace(2)))
    store = make_store(ws)
    store.refresh()
    write(path, lines(trace(7), trace(8), trace(9)))  # bigger, but the head changed
    store.refresh()
    assert [s.id for s in store.summaries()] == ["run-7", "run-8", "run-9"]
    assert store.tool_stats()["convert_units"].calls == 3


def test_replaced_by_rename_is_reread(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(trace(1)))
    store = make_store(ws)
    store.refresh()
    tmp = ws / "new.tmp"
    write(tmp, lines(trace(1), trace(5)))  # same first line, new inode
    os.replace(tmp, path)
    store.refresh()
    assert [s.id for s in store.summaries()] == ["run-1", "run-5"]
    assert store.tool_stats()["convert_units"].calls == 2


def test_new_and_removed_files(ws: Path) -> None:
    write(ws / "traces" / "a.jsonl", lines(trace(1, [("f", "1")])))
    store = make_store(ws)
    store.refresh()
    (ws / "traces" / "day2").mkdir()
    write(ws / "traces" / "day2" / "b.jsonl", lines(trace(2, [("g", "1")])))
    assert store.refresh() == ["traces/day2/b.jsonl"]
    assert set(store.tool_stats()) == {"f", "g"}
    (ws / "traces" / "a.jsonl").unlink()
    assert store.refresh() == ["traces/a.jsonl"]
    assert set(store.tool_stats()) == {"g"} and len(store) == 1


def test_empty_file_gets_a_format_once_it_has_content(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    path.touch()
    store = make_store(ws)
    store.refresh()
    assert len(store) == 0 and store.files()[0].format is None
    write(path, lines([{"role": "user", "content": "hi"}]), "ab")
    store.refresh()
    assert store.files()[0].format == "openai-chat" and len(store) == 1


# -- malformed input -------------------------------------------------------------------


def test_malformed_lines_are_listed_and_skipped(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    good = lines(trace(1))
    write(
        path,
        good
        + b"{not json\n"
        + b"\n"  # blank lines are skipped but counted
        + json.dumps({"messages": []}).encode()
        + b"\n"
        + json.dumps({"id": "x", "messages": [], "outcome": {"score": "high"}}).encode()
        + b"\n"
        + b'{"id": "x", "messages": [], "note": "\xff\xfe"}\n'
        + b"[1, 2]\n"
        + b"x" * 3000
        + b"\n"
        + lines(trace(2)).replace(b"\n", b"\r\n"),  # CRLF is fine
    )
    store = make_store(ws, max_line_bytes=2000, chunk_bytes=256)
    store.refresh()
    assert [(s.id, s.line) for s in store.summaries()] == [("run-1", 1), ("run-2", 9)]
    got = [(m.line, m.reason) for m in store.malformed]
    assert got[0] == (2, "bad JSON: Expecting property name enclosed in double quotes (column 2)")
    assert got[1:] == [
        (4, "missing field 'id'"),
        (5, "'outcome.score' must be a number, got string"),
        (6, "invalid UTF-8"),
        (7, "expected a JSON object, got array"),
        (8, "line of 3000 bytes is longer than the limit of 2000 bytes; skipped"),
    ]
    assert all(m.file == "traces/a.jsonl" for m in store.malformed)
    assert str(store.malformed[1]) == "traces/a.jsonl:4: missing field 'id'"
    assert store.files()[0].malformed == 6


def test_a_utf8_bom_on_the_first_line_is_accepted(ws: Path) -> None:
    write(ws / "traces" / "a.jsonl", b"\xef\xbb\xbf" + lines(trace(1), trace(2)))
    store = make_store(ws)
    store.refresh()
    assert len(store) == 2 and not store.malformed


def test_a_50_mb_line_is_skipped_without_being_held_in_memory(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    with open(path, "wb") as f:
        f.write(lines(trace(1)))
        f.write(b'{"id": "huge", "messages": [], "blob": "')
        block = b"a" * (1024 * 1024)
        for _ in range(50):
            f.write(block)
        f.write(b'"}\n')
        f.write(lines(trace(3)))
    store = make_store(ws)  # the default 16 MB limit
    tracemalloc.start()
    try:
        store.refresh()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(s.id, s.line) for s in store.summaries()] == [("run-1", 1), ("run-3", 3)]
    [bad] = store.malformed
    assert bad.line == 2 and "longer than the limit of 16777216 bytes" in bad.reason
    assert peak < 30 * 1024 * 1024, f"peak {peak} bytes: the line was held in memory"


def test_unknown_format_is_reported_once_per_file(ws: Path) -> None:
    write(ws / "traces" / "notes.txt", b"hello\n")
    store = make_store(ws, traces=["traces/*.txt"])
    store.refresh()
    assert store.malformed == [
        Malformed(
            "traces/notes.txt", 1, "unknown trace format (set [tool.funcforge] formats to name one)"
        )
    ]


def test_configured_format_overrides_sniffing_and_unknown_names_fail_early(ws: Path) -> None:
    write(
        ws / "traces" / "a.jsonl",
        lines({"id": "conv", "messages": [{"role": "user", "content": "q"}]}),
    )
    store = make_store(ws, formats={"traces/*.jsonl": "openai-chat"})
    store.refresh()
    assert store.files()[0].format == "openai-chat"
    with pytest.raises(UnknownFormatError, match="'nope'"):
        make_store(ws, formats={"traces/*.jsonl": "nope"})


def test_a_format_that_crashes_only_loses_its_record(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(obj: Any, ref: SourceRef) -> list[Trace]:
        if obj.get("boom"):
            raise ZeroDivisionError("division by zero")
        return [Trace(id=str(obj["id"]), source=ref)]

    fake = TraceFormat(name="fragile", description="", sniff=lambda p, h: False, parse_record=parse)
    monkeypatch.setitem(formats._registry(), "fragile", fake)
    write(ws / "traces" / "a.jsonl", lines({"id": 1}, {"id": 2, "boom": True}, {"id": 3}))
    store = make_store(ws, formats={"**/*.jsonl": "fragile"})
    store.refresh()
    assert [s.id for s in store.summaries()] == ["1", "3"]
    assert store.malformed == [
        Malformed("traces/a.jsonl", 2, "ZeroDivisionError: division by zero")
    ]
    assert store.load(store.summaries()[1]).id == "3"


# -- lazy access ------------------------------------------------------------------------


def test_load_and_calls_read_full_traces_lazily(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(
        path,
        lines(
            trace(1, [("f", "Error: KeyError: 'mile'"), ("g", "2")], agent="react"),
            trace(2, [("g", "3")]),
            trace(3, [("f", "4")]),
        ),
    )
    store = make_store(ws)
    store.refresh()
    first = store.summaries()[0]
    full = store.load(first)
    assert full.id == "run-1" and len(full.messages) == 6 and full.extra == {"agent": "react"}
    assert full.tool_calls[0].arguments == {"n": 1}  # parsed on load (the index skips it)
    assert store.load(SourceRef("traces/a.jsonl", 3)).id == "run-3"
    calls = [(s.id, c.result, c.error_type) for s, c in store.calls("f")]
    assert calls == [("run-1", "Error: KeyError: 'mile'", "KeyError"), ("run-3", "4", None)]
    with pytest.raises(StaleTraceError):
        store.load(SourceRef("traces/a.jsonl", 99))
    write(path, lines(trace(9, [("f", "1")]), trace(10, [("f", "1")]), trace(11, [("f", "1")])))
    with pytest.raises(StaleTraceError, match="changed on disk"):
        store.load(first)  # not refreshed yet: the line holds another trace
    assert list(store.calls("f")) == []


def test_whole_file_json_conversations(ws: Path) -> None:
    conv = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "a", "content": "Error: ValueError: v"},
    ]
    path = ws / "traces" / "chats.json"
    path.write_text(json.dumps([conv, {"id": "two", "messages": conv}], indent=1))
    store = make_store(ws, traces=["traces/*.json"])
    store.refresh()
    assert [s.id for s in store.summaries()] == ["traces/chats.json#1", "two"]
    assert store.files()[0].format == "openai-chat-json"
    assert store.tool_stats()["f"].error_types == {"ValueError": 2}
    assert store.load(store.summaries()[1]).messages == conv
    assert [s.id for s, _ in store.calls("f")] == ["traces/chats.json#1", "two"]
    path.write_text(json.dumps([conv]))
    assert store.refresh() == ["traces/chats.json"]
    assert len(store) == 1 and store.tool_stats()["f"].calls == 1


# -- concurrency -------------------------------------------------------------------------


def test_readers_in_threads_while_refreshing(ws: Path) -> None:
    path = ws / "traces" / "a.jsonl"
    write(path, lines(*(trace(i, [("f", "Error: x"), ("g", "1")]) for i in range(200))))
    store = make_store(ws, chunk_bytes=4096)
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                for t in store.tool_stats().values():
                    if t.errors > t.calls or t.traces > t.calls:
                        problems.append(f"inconsistent {t}")
                summaries = store.summaries()
                ids = [int(s.id.split("-")[1]) for s in summaries]
                if ids != sorted(ids) or len(set(ids)) != len(ids):
                    problems.append("summaries out of order")
                for s in summaries[-3:]:
                    store.load(s)
            except StaleTraceError:
                pass
            except Exception as exc:  # any other error is a bug
                problems.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(200, 260):
            store.refresh()
            write(path, lines(trace(i, [("f", "Error: x"), ("g", "1")])), "ab")
        store.refresh()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []
    stats = store.tool_stats()
    assert (stats["f"].calls, stats["f"].errors, stats["g"].calls) == (260, 260, 260)


def test_parse_record_errors_are_malformed_trace() -> None:
    """The store relies on formats raising MalformedTrace for bad records."""
    with pytest.raises(MalformedTrace):
        formats.get_format("native").parse_record({"id": 1}, SourceRef("f", 1))  # type: ignore[misc]
