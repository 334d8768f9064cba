"""The persistent index against what happens to real files and disks: a copy put back
with the old size and mtime, a lock held by another process, a full disk."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from funcforge.traces.store import TraceStore
from tests.unit.test_traces_index import _records, _stats, _write, ws  # noqa: F401

TICK = 0.05  # past the file system's timestamp granularity (a jiffy on Linux)


def _put_back(path: Path, data: bytes, like: os.stat_result) -> None:
    """Overwrite `path` in place (same inode) with `data`, then give it `like`'s mtime."""
    time.sleep(TICK)
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
    os.utime(path, ns=(like.st_atime_ns, like.st_mtime_ns))
    st = path.stat()
    assert (st.st_ino, st.st_size, st.st_mtime_ns) == (like.st_ino, like.st_size, like.st_mtime_ns)


def test_a_same_size_copy_with_the_old_mtime_is_reread(ws) -> None:  # noqa: F811
    config, path = ws
    before = path.stat()
    other = path.read_bytes().replace(b"convert_units", b"convert_uNits")
    live = TraceStore(config)
    live.refresh()
    live.close()
    _put_back(path, other, before)  # e.g. `cp -p` of an older copy over the file
    restarted = TraceStore(config)
    assert restarted.refresh() == ["traces/runs.jsonl"]
    assert "convert_uNits" in restarted.tool_stats("all")
    assert "convert_units" not in restarted.tool_stats("all")
    # And within one session: put the first content back, again same size and mtime.
    _put_back(path, other.replace(b"convert_uNits", b"convert_units"), before)
    assert restarted.refresh() == ["traces/runs.jsonl"]
    fresh = TraceStore(config, index_path=config.root / "fresh.sqlite")
    fresh.refresh()
    assert _stats(restarted) == _stats(fresh)


def test_a_sidecar_put_back_with_the_old_size_and_mtime_is_reread(ws) -> None:  # noqa: F811
    config, path = ws
    config.traces.append("traces/**/outcomes.jsonl")
    sidecar = path.with_name("outcomes.jsonl")
    sidecar.write_text(json.dumps({"trace_id": "run-1", "score": 0.25}) + "\n")
    before = sidecar.stat()
    store = TraceStore(config)
    store.refresh()
    store.close()
    _put_back(sidecar, (json.dumps({"trace_id": "run-1", "score": 0.75}) + "\n").encode(), before)
    again = TraceStore(config)
    again.refresh()
    assert next(s for s in again.summaries() if s.id == "run-1").score == 0.75
