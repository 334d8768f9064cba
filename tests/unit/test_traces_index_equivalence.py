"""The indexing fast paths give exactly what the full parser gives, over a varied corpus.

A store whose formats have no `index_record` builds every summary from `parse_record`
+ `summarize` (the slow, reference path). Both stores ingest the same files — native
traces with errors, outcomes, splits, versions, unicode and malformed lines, and an
OpenAI chat file — then an append; the summaries, the statistics of every view, the
malformed-line reports and what the persistent index holds (aggregate rows, the
(tool, task) pairs) must be identical.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from funcforge.config import Config
from funcforge.traces import formats
from funcforge.traces.splits import VIEWS, Which
from funcforge.traces.store import TraceStore

TOOLS = ["convert_units", "évaluer", "sum_column", "lookup_cell", "工具", "f"]
RESULTS: list[Any] = [
    "1.6",
    "Error: KeyError: 'mile'",
    "error: ValueError: bad «value»",
    "  Error: something",
    "Error:",
    'Traceback (most recent call last):\n  File "x.py", line 1\nZeroDivisionError: division',
    "Traceback (most recent call last):\nnot an exception line",
    "EOF reached",
    "e",
    "",
    None,
    [{"type": "text", "text": "Error: "}, "IndexError: i"],
    {"error": "x"},
    "ok ✓ 😀",
]
SPLITS: list[Any] = [None, None, "train", "test", " TEST ", "validation", "dev", ""]
VERSIONS: list[Any] = [None, "v1", "v2", "v2", "ünï"]


def _native(rng: random.Random, n: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"question {n} ☃"}]
    calls = []
    for k in range(rng.choice((0, 1, 1, 2, 3, 4))):
        cid = f"c{n}-{k}" if rng.random() > 0.02 else ""
        calls.append((cid, rng.choice(TOOLS)))
    batch = rng.random() < 0.2  # several calls in one assistant message
    if batch and calls:
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": c, "type": "function", "function": {"name": t, "arguments": "{}"}}
                    for c, t in calls
                ],
            }
        )
    order = list(calls)
    if batch:
        rng.shuffle(order)  # results in another order than the calls
    for cid, name in order:
        if not batch:
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            "function": {"name": name, "arguments": "1"},
                        }
                    ],
                }
            )
        if rng.random() < 0.05:
            continue  # a call without result
        msg: dict[str, Any] = {"role": "tool", "tool_call_id": cid, "content": rng.choice(RESULTS)}
        r = rng.random()
        if r < 0.05:
            msg["is_error"] = True
        elif r < 0.1:
            msg["is_error"] = False
        elif r < 0.12:
            msg["is_error"] = "yes"
        if rng.random() < 0.05:
            msg["error_type"] = rng.choice(["RateLimit", "", 3])
        messages.append(msg)
    if rng.random() < 0.03:
        messages.append({"role": "tool", "tool_call_id": "nobody", "content": "Error: stray"})
    messages.append({"role": "assistant", "content": "done"})
    rec: dict[str, Any] = {"id": f"run-{n}" if rng.random() > 0.1 else n, "messages": messages}
    r = rng.random()
    if r < 0.7:
        task: dict[str, Any] = {"id": f"task-{rng.randrange(30)}", "input": "q"}
        if rng.random() < 0.6:
            task["expected"] = rng.choice(["a", 7, None, [1, 2]])
        if rng.random() < 0.1:
            task["split"] = rng.choice(SPLITS)
        rec["task"] = task
    outcome: dict[str, Any] = {}
    if rng.random() < 0.8:
        outcome["passed"] = rng.random() < 0.6
    if rng.random() < 0.5:
        outcome["score"] = rng.choice([0.0, 1.0, 0.5, 0, 1, 0.25])
    if outcome or rng.random() < 0.5:
        rec["outcome"] = outcome
    version = rng.choice(VERSIONS)
    if version is not None:
        rec["toolset_version"] = version
    split = rng.choice(SPLITS)
    if split is not None:
        rec["split"] = split
    if rng.random() < 0.7:
        rec["time"] = f"2026-11-{1 + rng.randrange(28):02d}T0{rng.randrange(10)}:00:00Z"
    if rng.random() < 0.05:
        rec["extra_key"] = {"x": "ÿ"}
    return rec


MALFORMED: list[bytes] = [
    b"{not json",
    b"[1, 2]",
    b'"a string"',
    b'{"id": "x"}',
    b'{"id": "x", "messages": 3}',
    b'{"id": 1.5, "messages": []}',
    b'{"id": "x", "messages": [], "outcome": {"score": 2}}',
    b'{"id": "x", "messages": [], "outcome": {"score": "high"}}',
    b'{"id": "x", "messages": [], "outcome": {"passed": "yes"}}',
    b'{"id": "x", "messages": [], "outcome": 7}',
    b'{"id": "x", "messages": [], "toolset_version": 3}',
    b'{"id": "x", "messages": [], "split": ["a"]}',
    b'{"id": "x", "messages": [], "time": 12}',
    b'{"id": "x", "messages": [], "time": 12, "task": {"id": "t", "split": 5}}',
    b'{"id": "x", "messages": [], "split": 3, "task": {"id": "t", "split": 5}}',
    b'{"id": "x", "messages": [], "toolset_version": 3, "split": 3, "time": 1}',
    b'{"id": "x", "messages": [], "task": {"id": "t", "split": 5}}',
    b'{"id": "x", "messages": [], "split": "", "task": {"id": "t", "split": "test"}}',
    b'{"id": "x", "messages": [], "split": null, "task": {"id": "t", "split": "TEST"}}',
    b'{"id": "x", "messages": [], "toolset_version": "", "time": ""}',
    b'{"id": "x", "messages": [], "task": {"id": 5}}',
    b'{"id": "x", "messages": [], "task": {"id": "t", "input": 5}}',
    b'{"id": "x", "messages": [], "task": "t"}',
    b'{"id": "x", "messages": [{"role": 5}]}',
    b'{"id": "x", "messages": [{"role": "assistant", "tool_calls": [{"id": "a"}]}]}',
    b'{"id": "x", "messages": [], "outcome": {"score": NaN}}',
    b'{"id": "\xff", "messages": []}',
    b'{"id": "x", "messages": [], "n": 123456789012345678901234567890}',
    b'\xef\xbb\xbf{"id": "bom", "messages": []}',
]


def _native_lines(seed: int, count: int, start: int) -> bytes:
    rng = random.Random(seed)
    out = list(MALFORMED) if start == 0 else []  # each at least once
    for n in range(start, start + count):
        if rng.random() < 0.04:
            out.append(rng.choice(MALFORMED))
        else:
            out.append(json.dumps(_native(rng, n), ensure_ascii=rng.random() < 0.5).encode())
    return b"\n".join(out) + b"\n"


def _chat_lines(seed: int, count: int) -> bytes:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        messages = _native(rng, n)["messages"]
        if rng.random() < 0.3:
            record: Any = {"messages": messages, "metadata": {"n": n}}
        else:
            record = messages
        out.append(json.dumps(record).encode())
    out.insert(5, b"[]")
    out.insert(9, b'{"x": 1}')
    return b"\n".join(out) + b"\n"


def _slow_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, fmt in list(formats._registry().items()):
        if fmt.index_record is not None:
            monkeypatch.setitem(
                formats._registry(), name, dataclasses.replace(fmt, index_record=None)
            )


def _snapshot(store: TraceStore) -> dict[str, Any]:
    con = sqlite3.connect(store.index_path)
    try:
        aggregates = [
            (side, kind, name, json.loads(data))
            for side, kind, name, data in con.execute(
                "SELECT side, kind, name, data FROM aggregates ORDER BY side, kind, name"
            )
        ]
        pairs = con.execute(
            "SELECT tools.name, task, sides FROM tool_tasks JOIN tools ON tools.id = tool "
            "ORDER BY 1, 2"
        ).fetchall()
    finally:
        con.close()
    views = [cast(Which, w) for w in VIEWS]
    return {
        "summaries": store.summaries(which="all"),
        "malformed": store.malformed,
        "tools": {w: store.tool_stats(w) for w in views},
        "versions": {w: store.version_stats(w) for w in views},
        "failures": {w: store.failures_by_version(w) for w in views},
        "aggregates": aggregates,
        "pairs": pairs,
    }


def _ingest(root: Path, index: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = Config(root=root, traces=["traces/**/*.jsonl"])
    config.formats = {"traces/chat*.jsonl": "openai-chat"}
    store = TraceStore(config, index_path=index)
    store.refresh(final=True)
    cold = _snapshot(store)
    with open(root / "traces" / "runs.jsonl", "ab") as f:
        f.write(_native_lines(7, 150, 10_000))
    store.refresh(final=True)
    appended = _snapshot(store)
    store.close()
    return cold, appended


def test_fast_index_paths_match_the_full_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {f.name for f in formats._registry().values() if f.index_record is not None}
    assert {"native", "openai-chat"} <= names, names
    results = []
    for label in ("fast", "slow"):
        if label == "slow":
            _slow_formats(monkeypatch)
        root = tmp_path / label
        (root / "traces").mkdir(parents=True)
        (root / "traces" / "runs.jsonl").write_bytes(_native_lines(1, 3000, 0))
        (root / "traces" / "chat.jsonl").write_bytes(_chat_lines(2, 300))
        results.append(_ingest(root, tmp_path / f"{label}.sqlite"))
    (fast_cold, fast_appended), (slow_cold, slow_appended) = results
    assert len(fast_cold["summaries"]) > 2500 and len(fast_cold["malformed"]) > 50
    assert any(s.errors for s in fast_cold["summaries"])
    assert {s.file for s in fast_cold["summaries"]} == {"traces/runs.jsonl", "traces/chat.jsonl"}
    assert fast_cold["tools"]["held_out"] and fast_cold["pairs"]
    for key in fast_cold:
        assert fast_cold[key] == slow_cold[key], key
        assert fast_appended[key] == slow_appended[key], key
