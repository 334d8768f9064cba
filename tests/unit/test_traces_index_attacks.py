"""The persistent index against what happens to real files and disks: a copy put back
with the old size and mtime, a lock held by another process, a full disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funcforge.traces import index as index_module
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


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "BUSY_SECONDS", 0.5)


def _hold_lock(index: Path) -> subprocess.Popen:
    """Another process holding the index's write lock until killed."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(index)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_an_index_locked_by_another_process_is_left_alone_not_fatal(ws, short_wait) -> None:  # noqa: F811
    config, path = ws
    first = TraceStore(config)
    first.refresh()
    shared = first.index_path
    before = _stats(first)
    live = TraceStore(config)  # open before the lock (a language server), refreshes during it
    first.close()
    inode = shared.stat().st_ino
    holder = _hold_lock(shared)
    try:
        started = TraceStore(config)  # a CLI started while the lock is held
        assert started.refresh() == ["traces/runs.jsonl"]
        assert _stats(started) == before
        assert "database is locked" in started.notices[0]
        assert "private index" in started.notices[0] and started.index_path != shared
        _write(path, _records(100, 4), mode="a")
        assert live.refresh() == ["traces/runs.jsonl"]
        assert len(live) == len(before[3]) + 4 and "private index" in live.notices[0]
        assert shared.stat().st_ino == inode  # the shared index was not deleted under its user
    finally:
        holder.kill()
        holder.wait()
    again = TraceStore(config)  # the lock gone: the shared index, intact, is used again
    assert again.index_path == shared and not again.notices
    assert _stats(again) == before


def test_a_full_disk_falls_back_to_an_index_in_memory(ws) -> None:  # noqa: F811
    config, path = ws
    _write(path, _records(100, 2000), mode="a")  # an index of about 1 MB
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from funcforge.config import Config\n"
        "from funcforge.traces.store import TraceStore\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        f"store = TraceStore(Config(root=Path({str(config.root)!r}), traces=['traces/**/*.jsonl']))\n"
        "store.refresh()\n"
        "print(len(store), store.tool_stats('all')['convert_units'].traces)\n"
        "print('\\n'.join(store.notices))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts, *notices = done.stdout.splitlines()
    assert counts == "2040 2040"
    assert "private index" in notices[0] and "in memory" in notices[-1]


OLDER_VERSION = """
import sys
from pathlib import Path
from funcforge.config import Config
from funcforge.traces import index
index.code_stamp = lambda: "an-older-funcforge"  # what another version's code stamps
from funcforge.traces.store import TraceStore
store = TraceStore(Config(root=Path(sys.argv[1]), traces=["traces/**/*.jsonl"]))
store.refresh()
print(len(store), store.index_path, flush=True)
for line in sys.stdin:  # each line: refresh and say how many traces it sees
    store.refresh()
    print(len(store), "|".join(store.notices), flush=True)
"""


def test_another_version_in_use_is_left_to_its_users_then_taken_over(ws) -> None:  # noqa: F811
    """Two funcforge versions on one index deleted each other's files in turn."""
    config, path = ws
    older = subprocess.Popen(
        [sys.executable, "-c", OLDER_VERSION, str(config.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert older.stdin is not None and older.stdout is not None
    try:
        count, shared_name = older.stdout.readline().split(maxsplit=1)
        shared = Path(shared_name.strip())
        inode = shared.stat().st_ino
        mine = TraceStore(config)  # this version, while the older one has the index open
        mine.refresh()
        assert len(mine) == int(count)
        assert "in use by another funcforge process" in mine.notices[0]
        assert "private index" in mine.notices[0] and mine.index_path != shared
        assert shared.stat().st_ino == inode
        _write(path, _records(100, 3), mode="a")
        older.stdin.write("refresh\n")
        older.stdin.flush()
        seen, _, notices = older.stdout.readline().partition(" ")
        assert int(seen) == int(count) + 3 and not notices.strip()  # its index still works
        mine.close()
    finally:
        older.stdin.close()
        older.wait(timeout=60)
    taken = TraceStore(config)  # nobody else uses it now: rebuilt in place for this version
    taken.refresh()
    assert taken.index_path == shared and len(taken) == int(count) + 3
    assert "was made by another version of funcforge" in taken.notices[0]
    limit = taken._index._writer.execute("PRAGMA journal_size_limit").fetchone()[0]
    assert limit == index_module.WAL_LIMIT
