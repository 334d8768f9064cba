"""The trace store's persistent index: per-trace summaries and aggregates in SQLite.

`TraceStore` keeps only per-file progress and the aggregates in memory; the
per-trace summaries live here, in `<state folder>/cache/traces.sqlite`, so a
million traces cost the server no more memory than ten, and a restart with
unchanged files reads nothing but this file. Summaries are kept `BLOCK` to a
row (consecutive traces of one file, keyed by the last one's sequence number):
one SQLite row and one JSON encoding per block, not per trace, is most of what
made a cold ingest of a million traces cheaper. Rows are written in the same
transaction as the file progress (offset, identity, fingerprints) and the
aggregates, so the index on disk is always one consistent refresh.

What grows with the traces stays on disk: the distinct (tool, task) pairs
behind each tool's "tasks" figure are rows of `tool_tasks` (one per pair,
a bit per split side), added with an upsert that says whether the pair is
new, so the counts are kept up to date from the appended traces alone.
The aggregates are one small row per (side, tool) and (side, version): a
refresh rewrites only the rows its traces touched. A
`generation` counter tells a store that another process (the CLI beside the
language server) refreshed in between, so it reloads instead of re-appending.

The index is rebuilt from the trace files when it is missing, of another
format (`SCHEMA`, or the code that makes summaries changed: `code_stamp`),
made for other settings, or unreadable (corrupt): then a notice says so.
SQLite from the standard library: no server, no dependency, WAL mode so the
language server's readers never wait for a refresh.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import operator
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from funcforge.traces.formats import TraceSummary

log = logging.getLogger("funcforge.traces")

SCHEMA = 4  # bump when the tables or the meaning of a column change
_intern = sys.intern
FILE_SHIFT = (
    40  # a file's traces are the sequence numbers [id << 40, (id + 1) << 40), in line order
)
BLOCK = 128  # summaries per `traces` row (consecutive traces of one file)
_dumps = orjson.dumps

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    rel TEXT UNIQUE NOT NULL,
    state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    key INTEGER PRIMARY KEY,  -- file id << 40 | the sequence number of the row's LAST trace
    line INTEGER NOT NULL,    -- the line of the row's last trace
    data BLOB NOT NULL        -- a JSON array of up to BLOCK summaries, each an array (`_FIELDS`)
);
CREATE TABLE IF NOT EXISTS tools (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS tool_tasks (
    tool INTEGER NOT NULL,    -- tools.id
    task TEXT NOT NULL,
    sides INTEGER NOT NULL,   -- bits: 1 learnable traces called the tool for the task, 2 held-out
    PRIMARY KEY (tool, task)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aggregates (
    side INTEGER NOT NULL,    -- 0 learnable, 1 held out (the all-sides task counts: 0)
    kind INTEGER NOT NULL,    -- AGG_TOOL, AGG_VERSION or AGG_TASKS_ALL
    name TEXT NOT NULL,
    data BLOB NOT NULL,       -- a JSON array
    PRIMARY KEY (side, kind, name)
) WITHOUT ROWID;
"""
_ALL_TABLES = ("meta", "files", "traces", "tools", "tool_tasks", "aggregates")
AGG_TOOL, AGG_VERSION, AGG_TASKS_ALL = 0, 1, 2
AggRow = tuple[int, int, str, bytes]  # (side, kind, name, data)
TaskPair = tuple[str, str, int]  # (tool, task, side bit)
# Add the side bit to a (tool, task) pair; RETURNING says what changed: the new pair
# (sides == bit: new on its side and in all), a new side (sides != bit), or no row (known).
_UPSERT_TASK = (
    "INSERT INTO tool_tasks VALUES (?, ?, ?) ON CONFLICT (tool, task) "
    "DO UPDATE SET sides = sides | excluded.sides WHERE sides & excluded.sides = 0"
)


_tool_of = operator.itemgetter(0)


def code_stamp() -> str:
    """A hash of the code that turns records into summaries: a change means rebuild."""
    here = Path(__file__).resolve().parent
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(SCHEMA).encode())
    # splits.py decides which side of the aggregates a trace is counted in, outcomes.py
    # what a sidecar changes in a summary: both shape what the index holds.
    code = [here / "store.py", here / "index.py", here / "splits.py", here / "outcomes.py"]
    for path in sorted([*code, *(here / "formats").glob("*.py")]):
        try:
            digest.update(path.name.encode() + path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()


BUSY_SECONDS = 30.0  # how long to wait for another process's write to the index
WAL_LIMIT = 64 << 20  # bytes of write-ahead log kept on disk after a checkpoint

# SQLite result codes of an index that is sound but cannot be used from here, now:
# another process holds it (BUSY, LOCKED), it or its folder is read-only (READONLY, PERM,
# CANTOPEN), the disk is full or failing (FULL, IOERR). Rebuilding it in place would
# delete what another process is using, or fail again: the store goes elsewhere instead.
_ENVIRONMENT_CODES = frozenset({3, 5, 6, 8, 10, 13, 14})


def is_environmental(exc: BaseException) -> bool:
    """Whether a database error says the index cannot be used here rather than that it is bad."""
    if isinstance(exc, IndexUnusable):
        return exc.environmental
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _ENVIRONMENT_CODES


class IndexUnusable(Exception):
    """The index file cannot be used: corrupt or of another format (rebuild it), or
    `environmental` (locked by another process, read-only, disk full: use another)."""

    def __init__(self, message: str, environmental: bool = False) -> None:
        super().__init__(message)
        self.environmental = environmental


@dataclass
class Snapshot:
    """What a store loads from the index: file progress, aggregates, sidecar stamps."""

    generation: int
    files: dict[str, dict[str, Any]]  # rel -> the file's progress, as saved
    aggregates: list[AggRow]
    sidecars: dict[str, list[int]]


# What a row keeps of each summary (its file is the row's), in this order.
_FIELDS = operator.attrgetter(
    "line",
    "offset",
    "ordinal",
    "id",
    "task_id",
    "has_expected",
    "score",
    "passed",
    "version",
    "split",
    "time",
    "tool_names",
    "errors",
)


def _block(summaries: list[TraceSummary]) -> bytes:
    """One `traces` row's data: the summaries as arrays (tuples made in C, one dumps)."""
    return _dumps(list(map(_FIELDS, summaries)))


def _summary(rel: str, entry: list[Any]) -> TraceSummary:
    (
        line,
        offset,
        ordinal,
        tid,
        task_id,
        has_expected,
        score,
        passed,
        version,
        split,
        when,
        tools,
        errs,
    ) = entry
    return TraceSummary(
        tid,
        rel,
        line,
        offset,
        ordinal,
        task_id,
        has_expected,
        score,
        passed,
        _intern(version) if version else None,
        _intern(split) if split else None,
        when,
        tuple(_intern(n) for n in tools),
        tuple((_intern(a), _intern(b), c) for a, b, c in errs) if errs else (),
    )


def _summaries(rel: str, rows: Iterable[tuple[bytes]]) -> Iterator[TraceSummary]:
    for (data,) in rows:
        for entry in orjson.loads(data):
            yield _summary(rel, entry)


def _span(file_id: int) -> tuple[int, int]:
    return file_id << FILE_SHIFT, ((file_id + 1) << FILE_SHIFT) - 1


class TraceIndex:
    """One SQLite file: a writer connection (the refreshing thread) and readers per thread."""

    def __init__(
        self,
        path: Path,
        settings: str,
        notices: list[str] | None = None,
        *,
        memory: bool = False,
    ) -> None:
        self.path = path
        self.settings = settings  # what the summaries depend on besides code (format choices)
        self.notices: list[str] = [] if notices is None else notices
        # `memory`: a last resort when no file can be written (a full disk): the database
        # lives in this process (shared by its connections), and readers may see a refresh
        # in progress (shared-cache readers read uncommitted rows rather than wait).
        self.memory = memory
        self._uri = f"file:funcforge-index-{os.getpid()}-{id(self)}?mode=memory&cache=shared"
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._tool_ids: dict[str, int] = {}  # tools.id by name (rows are never renumbered)
        self._users: int | None = None  # `<index>.users`, share-locked while this index is open
        try:
            self._writer = self._open_checked()
        except BaseException:
            self._release_users()
            raise

    # -- opening ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.memory:
            conn = sqlite3.connect(
                self._uri, uri=True, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA read_uncommitted = 1")
            conn.execute("PRAGMA temp_store = MEMORY")
            return conn
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        return conn

    def _open_checked(self) -> sqlite3.Connection:
        existed = False
        if not self.memory:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise IndexUnusable(f"cannot make its folder: {exc}", environmental=True) from exc
            self._hold_users()
            existed = self.path.exists()
        try:
            conn = self._connect()
            reason = self._check(conn) if existed else None
        except sqlite3.DatabaseError as exc:
            if is_environmental(exc):  # locked by another process, unreadable here: keep it
                raise IndexUnusable(str(exc), environmental=True) from exc
            reason = f"unreadable ({exc})"
            conn = None
        if reason is not None:
            if conn is not None:
                conn.close()
            self._remove_files()  # unless other processes have it open
            self._notice(f"trace index {self.path} {reason}; rebuilding it from the trace files")
            conn = self._connect()
        assert conn is not None
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # A cold build's WAL would otherwise keep its full size (the index's) on disk.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            conn.executescript(_TABLES)
            stamp = self._stamp()
            conn.execute("BEGIN IMMEDIATE")
            found = dict(conn.execute("SELECT key, value FROM meta WHERE key = 'stamp'").fetchall())
            if found.get("stamp") != stamp:
                for table in _ALL_TABLES:
                    conn.execute(f"DELETE FROM {table}")
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("stamp", stamp), ("generation", 1), ("sidecars", b"{}")],
                )
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise IndexUnusable(str(exc), is_environmental(exc)) from exc
        self._share_users()  # after a rebuild in place: others may open it again
        return conn

    def _stamp(self) -> str:
        return f"{code_stamp()}:{self.settings}"

    def _check(self, conn: sqlite3.Connection) -> str | None:
        """Why an existing index cannot be used as is (None: it can)."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not set(_ALL_TABLES) <= tables:
            return "is not a funcforge trace index"
        row = conn.execute("SELECT value FROM meta WHERE key = 'stamp'").fetchone()
        if row is None:
            return "has no format stamp"
        if row[0] != self._stamp():
            return "was made by another version of funcforge or other settings"
        return None

    # Every open index holds a shared lock on `<index>.users`; removing the files needs
    # the exclusive one. A process of another funcforge version (or other settings) that
    # finds the file in use leaves it to its users and goes elsewhere for the session
    # (IndexUnusable, environmental), instead of deleting what they have open.

    def _hold_users(self) -> None:
        if self._users is not None:
            return
        try:
            fd = os.open(f"{self.path}.users", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return  # a folder it cannot write: opening the index itself will say so
        deadline = time.monotonic() + BUSY_SECONDS
        while True:  # an exclusive holder is removing files: a moment at most
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise IndexUnusable(
                        "another process is rebuilding it", environmental=True
                    ) from None
                time.sleep(0.05)
        self._users = fd

    def _share_users(self) -> None:
        if self._users is not None:
            fcntl.flock(self._users, fcntl.LOCK_SH)

    def _release_users(self) -> None:
        if self._users is not None:
            os.close(self._users)  # releases the lock
            self._users = None

    def _remove_files(self) -> None:
        if self.memory:
            return
        self._hold_users()
        if self._users is not None:
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._share_users()  # a failed conversion may have dropped the shared lock
                raise IndexUnusable(
                    "in use by another funcforge process (another version or other "
                    "settings); left as it is",
                    environmental=True,
                ) from None
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        log.warning("%s", message)

    def reset(self, reason: str) -> None:
        """Throw the index away and start empty (after a database error mid-use)."""
        self.close()
        self._remove_files()  # unless other processes have it open
        self._notice(f"trace index {self.path} {reason}; rebuilding it from the trace files")
        self._tool_ids.clear()
        self._writer = self._open_checked()

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        with suppress(sqlite3.Error):
            self._writer.close()
        self._release_users()

    # -- loading ---------------------------------------------------------------------

    def generation(self) -> int:
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def snapshot(self) -> Snapshot:
        """Everything a store keeps in memory, as last committed."""
        conn = self._writer
        self._tool_ids.clear()  # another process may have made the index anew
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        files = {
            rel: orjson.loads(state)
            for rel, state in conn.execute("SELECT rel, state FROM files ORDER BY rel")
        }
        aggregates = conn.execute("SELECT side, kind, name, data FROM aggregates").fetchall()
        sidecars = orjson.loads(meta.get("sidecars") or b"{}")
        return Snapshot(int(meta.get("generation") or 0), files, aggregates, sidecars)

    # -- writing (one refresh = one transaction) ----------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """A write transaction; committed when the block ends, rolled back on an exception."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Writer(conn, self._tool_ids)
        except BaseException:
            self._tool_ids.clear()  # ids given in this transaction are void
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reading (any thread) ------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _file_id(self, conn: sqlite3.Connection, rel: str) -> int | None:
        row = conn.execute("SELECT id FROM files WHERE rel = ?", (rel,)).fetchone()
        return int(row[0]) if row else None

    def summaries(self, rel: str) -> Iterator[TraceSummary]:
        """The committed summaries of one file in line order."""
        conn = self._reader()
        fid = self._file_id(conn, rel)
        if fid is None:
            return
        lo, hi = _span(fid)
        rows = conn.execute(
            "SELECT data FROM traces WHERE key BETWEEN ? AND ? ORDER BY key", (lo, hi)
        )
        yield from _summaries(rel, rows)

    def find(self, rel: str, line: int) -> TraceSummary | None:
        """The first trace indexed at `rel:line`: in the first row whose last line is at
        or after it (a binary search over the keys: lines grow with them)."""
        conn = self._reader()
        fid = self._file_id(conn, rel)
        if fid is None:
            return None
        lo, hi = _span(fid)
        last = conn.execute(
            "SELECT key, line FROM traces WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1",
            (lo, hi),
        ).fetchone()
        if last is None or last[1] < line:
            return None
        found = int(last[0])  # a row whose last line >= `line`; an earlier one is sought
        a, b = lo, found - 1
        first_at = "SELECT key, line FROM traces WHERE key BETWEEN ? AND ? ORDER BY key LIMIT 1"
        while a <= b:
            mid = (a + b) // 2
            row = conn.execute(first_at, (mid, b)).fetchone()
            if row is None:  # no row in [mid, b]
                b = mid - 1
            elif row[1] >= line:  # the answer is this row or one before `mid`
                found, b = int(row[0]), mid - 1
            else:  # every row up to this one ends before `line`
                a = int(row[0]) + 1
        data = conn.execute("SELECT data FROM traces WHERE key = ?", (found,)).fetchone()[0]
        for entry in orjson.loads(data):
            if entry[0] >= line:
                return _summary(rel, entry) if entry[0] == line else None
        return None


class Writer:
    """The writes of one refresh, inside its transaction."""

    def __init__(self, conn: sqlite3.Connection, tool_ids: dict[str, int]) -> None:
        self.conn = conn
        self._ids: dict[str, int] = {}
        self._next: dict[int, int] = {}  # file id -> the sequence number of its next trace
        self._tool_ids = tool_ids  # tool name -> tools.id (few: one per tool), the index's

    def file_id(self, rel: str) -> int:
        found = self._ids.get(rel)
        if found is None:
            row = self.conn.execute("SELECT id FROM files WHERE rel = ?", (rel,)).fetchone()
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO files (rel, state) VALUES (?, ?)", (rel, b"{}")
                )
                found = int(cur.lastrowid or 0)
            else:
                found = int(row[0])
            self._ids[rel] = found
        return found

    def clear_file(self, rel: str) -> None:
        """Drop a file's traces (it is re-read from the start)."""
        fid = self.file_id(rel)
        lo, hi = _span(fid)
        self.conn.execute("DELETE FROM traces WHERE key BETWEEN ? AND ?", (lo, hi))
        self._next[fid] = lo

    def drop_file(self, rel: str) -> None:
        """Forget a file that is gone."""
        self.clear_file(rel)
        self.conn.execute("DELETE FROM files WHERE rel = ?", (rel,))
        self._ids.pop(rel, None)

    def add(self, rel: str, summaries: list[TraceSummary]) -> None:
        fid = self.file_id(rel)
        start = self._next.get(fid)
        if start is None:
            lo, hi = _span(fid)
            top = self.conn.execute(
                "SELECT max(key) FROM traces WHERE key BETWEEN ? AND ?", (lo, hi)
            ).fetchone()[0]
            start = lo if top is None else int(top) + 1
        block = _block
        rows = []
        for i in range(0, len(summaries), BLOCK):
            part = summaries[i : i + BLOCK]
            rows.append((start + i + len(part) - 1, part[-1].line, block(part)))
        self.conn.executemany("INSERT INTO traces VALUES (?, ?, ?)", rows)
        self._next[fid] = start + len(summaries)

    def save_file(self, rel: str, state: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE files SET state = ? WHERE id = ?", (orjson.dumps(state), self.file_id(rel))
        )

    # -- the (tool, task) pairs behind each tool's "tasks" figure ------------------------

    def _tool_ids_of(self, names: Iterable[str]) -> dict[str, int]:
        ids = self._tool_ids
        missing = [n for n in names if n not in ids]
        if missing:
            self.conn.executemany(
                "INSERT OR IGNORE INTO tools (name) VALUES (?)", [(n,) for n in missing]
            )
            ids.update(self.conn.execute("SELECT name, id FROM tools").fetchall())
        return ids

    def add_tasks(self, pairs: list[TaskPair]) -> None:
        """Record many (tool, task, side bit) pairs at once (counts: `task_counts`)."""
        ids = self._tool_ids
        try:
            rows = [(ids[t], task, bit) for t, task, bit in pairs]
        except KeyError:  # a tool new to the index
            self._tool_ids_of({p[0] for p in pairs})
            rows = [(ids[t], task, bit) for t, task, bit in pairs]
        rows.sort(key=_tool_of)  # one tool's rows together: fewer B-tree pages touched
        self.conn.executemany(_UPSERT_TASK, rows)

    def add_tasks_counted(self, pairs: list[TaskPair]) -> Iterator[tuple[str, int, bool]]:
        """Record pairs one by one; yields (tool, side bit, also new in all sides) for
        each pair that is new on its side (known pairs yield nothing)."""
        ids = self._tool_ids_of({p[0] for p in pairs})
        execute = self.conn.execute
        sql = _UPSERT_TASK + " RETURNING sides"
        for tool, task, bit in pairs:
            row = execute(sql, (ids[tool], task, bit)).fetchone()
            if row is not None:
                yield tool, bit, row[0] == bit

    def task_counts(self, tools: Iterable[str] | None) -> dict[str, tuple[int, int, int]]:
        """Distinct tasks per tool as (all sides, side bit 1, side bit 2); every tool
        with pairs when `tools` is None."""
        sql = (
            "SELECT tools.name, count(*), sum(sides & 1 != 0), sum(sides & 2 != 0) "
            "FROM tool_tasks JOIN tools ON tools.id = tool_tasks.tool"
        )
        if tools is None:
            rows = self.conn.execute(sql + " GROUP BY tool_tasks.tool").fetchall()
        else:
            ids = self._tool_ids_of(tools)
            rows = []
            for name in sorted(set(tools)):
                rows.extend(
                    self.conn.execute(sql + " WHERE tool_tasks.tool = ?", (ids[name],)).fetchall()
                )
        return {name: (n, a, b) for name, n, a, b in rows if n}

    def clear_tasks(self) -> None:
        """Forget every pair (the aggregates are rebuilt from the summaries)."""
        self.conn.execute("DELETE FROM tool_tasks")

    def all_summaries(self, rels: Iterable[str]) -> Iterator[TraceSummary]:
        """Every summary (this transaction's view), file by file, to aggregate afresh."""
        for rel in rels:
            lo, hi = _span(self.file_id(rel))
            rows = self.conn.execute(
                "SELECT data FROM traces WHERE key BETWEEN ? AND ? ORDER BY key", (lo, hi)
            )
            yield from _summaries(rel, rows)

    def save_aggregates(self, rows: list[AggRow], replace_all: bool) -> None:
        """Write aggregate rows: those a refresh changed, or all of them (`replace_all`)."""
        if replace_all:
            self.conn.execute("DELETE FROM aggregates")
        self.conn.executemany("INSERT OR REPLACE INTO aggregates VALUES (?, ?, ?, ?)", rows)

    def finish(self, sidecars: dict[str, list[int]]) -> int:
        """Save the sidecar stamps, bump the generation; returns it."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = (int(row[0]) if row else 0) + 1
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("generation", generation), ("sidecars", orjson.dumps(sidecars))],
        )
        return generation
