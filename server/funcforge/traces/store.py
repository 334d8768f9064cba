"""`TraceStore`: the incremental index over the workspace's trace files.

Only what statistics need stays in memory: per trace a compact `TraceSummary`
(location, task, outcome, tool-call counts, failed calls); full traces are
re-read lazily from their byte offset. `refresh()` reads only the bytes
appended since the last refresh; a truncated or replaced file (smaller size,
new inode, or a different first/last KB of what was read) is re-read whole,
as is a whole-file format's file on any change. Malformed records are listed
and skipped, never fatal. One refresh runs at a time; readers (the language
server's threads) take a short lock and never see a half-applied refresh.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from itertools import islice, repeat
from pathlib import Path
from typing import Any, TypeVar

import orjson

from funcforge import paths
from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.fsutil import ensure_state_dir
from funcforge.traces.formats import (
    Malformed,
    TraceFormat,
    TraceSummary,
    detect,
    get_format,
    summarize,
)
from funcforge.traces.index import (
    AGG_TASKS_ALL,
    AGG_TOOL,
    AGG_VERSION,
    AggRow,
    IndexUnusable,
    TaskPair,
    TraceIndex,
    Writer,
    is_environmental,
)
from funcforge.traces.model import MalformedTrace, SourceRef, ToolCall, Trace
from funcforge.traces.splits import Which, check_view, in_view, is_held_out

__all__ = [
    "UNVERSIONED",
    "FileInfo",
    "Malformed",
    "StaleTraceError",
    "ToolStats",
    "TraceStore",
    "TraceSummary",
    "VersionStats",
    "Which",
]

UNVERSIONED = "unversioned"  # the `version_stats()` key of traces without a toolset version
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
HEAD_BYTES = 64 * 1024  # what format detection looks at
FINGERPRINT_BYTES = 1024  # first/last KB that tell an append from a replacement
EXAMPLES_PER_TYPE = 3
RECENT_ERRORS = 20


SINK_BATCH = 20000  # summaries handed to the index at a time while a file is read
TASK_BATCH = 100_000  # (tool, task) pairs collected before they are written to the index
COUNTED_PAIRS = 5_000  # up to this many at once are written one by one, counting as they go
LEARNABLE_BIT, HELD_OUT_BIT = 1, 2  # a pair's side in the index's `tool_tasks`
INDEX_FILE = "traces.sqlite"
Sink = Callable[[list[TraceSummary]], None]
_T = TypeVar("_T")


def _index_path(config: Config) -> Path:
    """`<state folder>/cache/traces.sqlite`; a private temporary folder when that is not
    writable, or when the folder is no workspace yet (no configuration, no state folder,
    no trace file): `funcforge stats` run in /tmp or $HOME leaves nothing behind there."""
    try:
        root = Path(config.root)
        if (
            root.is_dir()
            and config.source is None
            and not config.state_path.exists()
            and not paths.find_files(root, config.traces, exclude=[config.state_dir])
        ):
            return _private_index_path()
        if root.is_dir():
            state = ensure_state_dir(config.state_path)
            cache = state / "cache"
            cache.mkdir(exist_ok=True)
            if os.access(cache, os.W_OK):
                return cache / INDEX_FILE
    except OSError:
        pass
    return _private_index_path()


def _private_index_path() -> Path:
    """An index file of this process alone, in a temporary folder removed at exit."""
    tmp = tempfile.mkdtemp(prefix="funcforge-index-")
    atexit.register(shutil.rmtree, tmp, True)
    return Path(tmp) / INDEX_FILE


class StaleTraceError(UserError):
    """A trace changed on disk since it was indexed; refresh and try again."""


@dataclass
class ToolStats:
    """Evidence about one tool across the indexed traces."""

    name: str
    calls: int = 0
    errors: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[SourceRef]] = field(default_factory=dict)  # a few per error type
    traces: int = 0  # traces that called the tool
    tasks: int = 0  # distinct tasks among them
    passed: int = 0  # of those traces, how many passed
    judged: int = 0  # of those traces, how many have `passed` set
    recent_errors: list[tuple[SourceRef, str, str]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        """Passed / judged traces that used the tool; None when none was judged."""
        return self.passed / self.judged if self.judged else None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def top_error(self) -> tuple[str, int] | None:
        common = self.error_types.most_common(1)
        return common[0] if common else None


@dataclass
class VersionStats:
    """Traces recorded with one toolset version, and how they scored."""

    version: str
    n: int = 0
    scored: int = 0
    score_sum: float = 0.0
    passed: int = 0
    judged: int = 0
    first_time: str | None = None
    last_time: str | None = None

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None


@dataclass(frozen=True)
class FileInfo:
    """One trace file as indexed: its format, trace and malformed counts, bytes read."""

    file: str
    format: str | None
    traces: int
    malformed: int
    size: int


@dataclass
class _FileState:
    """Per-file progress: what was read up to where, and how to recognise the file."""

    rel: str
    path: Path
    format: TraceFormat | None = None
    dev: int = 0
    ino: int = 0
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0  # changes on every write, even one that restores size and mtime
    offset: int = 0  # bytes consumed (line-based formats)
    line: int = 1  # line number at `offset`
    open_tail: bool = False  # consumed bytes end inside a line (a complete JSON value)
    head_len: int = 0
    head_hash: bytes = b""
    tail_start: int = 0
    tail_hash: bytes = b""
    count: int = 0  # traces indexed (their summaries are in the persistent index)
    malformed: list[Malformed] = field(default_factory=list)
    pending: Malformed | None = None  # an unfinished last line, reported by final refreshes

    def to_dict(self) -> dict[str, Any]:
        """The progress saved in the index (not `pending`: a final refresh re-judges it)."""
        return {
            "format": self.format.name if self.format else None,
            "dev": self.dev,
            "ino": self.ino,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "ctime_ns": self.ctime_ns,
            "offset": self.offset,
            "line": self.line,
            "open_tail": self.open_tail,
            "head_len": self.head_len,
            "head_hash": self.head_hash.hex(),
            "tail_start": self.tail_start,
            "tail_hash": self.tail_hash.hex(),
            "count": self.count,
            "malformed": [[m.line, m.reason] for m in self.malformed],
        }

    @classmethod
    def from_dict(cls, rel: str, path: Path, data: dict[str, Any]) -> _FileState:
        fmt = data.get("format")
        return cls(
            rel,
            path,
            get_format(fmt) if fmt else None,
            data["dev"],
            data["ino"],
            data["size"],
            data["mtime_ns"],
            data["ctime_ns"],
            data["offset"],
            data["line"],
            data["open_tail"],
            data["head_len"],
            bytes.fromhex(data["head_hash"]),
            data["tail_start"],
            bytes.fromhex(data["tail_hash"]),
            data["count"],
            [Malformed(rel, line, reason) for line, reason in data["malformed"]],
        )


class _Restart(Exception):
    """An append turned out to continue an already indexed line: re-read the file."""


class _ToolAgg:
    """Running statistics of one tool (mutable; snapshots are handed out as `ToolStats`)."""

    __slots__ = (
        "by_version",
        "calls",
        "error_order",
        "error_types",
        "errors",
        "examples",
        "judged",
        "last",
        "new_tasks",
        "passed",
        "recent",
        "tasks",
        "traces",
    )

    def __init__(self) -> None:
        self.calls = self.traces = self.judged = self.passed = self.errors = 0
        self.tasks = 0  # distinct tasks (the pairs themselves are in the index)
        self.new_tasks: set[str] = set()  # tasks of its traces not yet handed to the index
        self.last: TraceSummary | None = None  # the last trace counted in `traces`
        self.error_types: Counter[str] = Counter()
        self.examples: dict[str, list[SourceRef]] = {}
        self.recent: deque[tuple[SourceRef, str, str]] = deque(maxlen=RECENT_ERRORS)
        self.by_version: dict[str, list[int]] = {}  # version -> [calls, failed calls]
        self.error_order: list[str] = []  # versions with failed calls, as last seen


class _Aggregates:
    """Running statistics of one side; `add` is incremental, a replaced file rebuilds
    from summaries. The tasks each tool is called for go to its `new_tasks` for the
    index (as (tool, task) pairs: `_SplitAggregates.take_pairs`), which
    keeps them and says which are new (`tasks` counts); touched rows are `dirty`."""

    def __init__(self, bit: int) -> None:
        self.tools: dict[str, _ToolAgg] = {}
        self.versions: dict[str, VersionStats] = {}
        self.bit = bit
        self.dirty_tools: set[str] = set()
        self.dirty_versions: set[str] = set()

    def add(self, summaries: Iterable[TraceSummary]) -> None:
        tools, versions = self.tools, self.versions
        dirty_tools, dirty_versions = self.dirty_tools, self.dirty_versions
        last_key: str | None = None
        v = VersionStats(UNVERSIONED)
        for s in summaries:
            key = s.version or UNVERSIONED
            if key is not last_key:  # traces of one version come in runs
                found = versions.get(key)
                if found is None:
                    found = versions[key] = VersionStats(key)
                v, last_key = found, key
                dirty_versions.add(key)
            v.n += 1
            passed = s.passed
            if s.score is not None:
                v.scored += 1
                v.score_sum += s.score
            if passed is not None:
                v.judged += 1
                v.passed += passed
            when = s.time
            if when is not None:
                if v.first_time is None or when < v.first_time:
                    v.first_time = when
                if v.last_time is None or when > v.last_time:
                    v.last_time = when
            task_id = s.task_id
            for name in s.tool_names:
                agg = tools.get(name)
                if agg is None:
                    agg = tools[name] = _ToolAgg()
                agg.calls += 1
                per = agg.by_version.get(key)
                if per is None:
                    per = agg.by_version[key] = [0, 0]
                per[0] += 1
                if agg.last is not s:  # the first call of this tool in this trace
                    agg.last = s
                    agg.traces += 1
                    dirty_tools.add(name)
                    if task_id is not None:
                        agg.new_tasks.add(task_id)  # a str's hash is cached: no tuple
                    if passed is not None:
                        agg.judged += 1
                        agg.passed += passed
            if s.errors:
                ref = s.ref
                for name, etype, message in s.errors:
                    agg = tools[name]
                    agg.errors += 1
                    agg.error_types[etype] += 1
                    examples = agg.examples.setdefault(etype, [])
                    if len(examples) < EXAMPLES_PER_TYPE:
                        examples.append(ref)
                    agg.recent.append((ref, etype, message))
                    agg.by_version[key][1] += 1
                    order = agg.error_order
                    if not order or order[-1] != key:
                        if key in order:
                            order.remove(key)
                        order.append(key)

    def to_rows(self, side: int, everything: bool) -> list[AggRow]:
        """The index rows of this side: the dirty ones, or all with `everything`."""
        dumps = orjson.dumps
        tools = self.tools if everything else self.dirty_tools
        versions = self.versions if everything else self.dirty_versions
        rows: list[AggRow] = []
        for name in tools:
            a = self.tools[name]
            data = [
                a.calls,
                a.traces,
                a.judged,
                a.passed,
                a.errors,
                a.tasks,
                dict(a.error_types),
                {k: [[r.file, r.line, r.offset] for r in v] for k, v in a.examples.items()},
                [[r.file, r.line, r.offset, et, msg] for r, et, msg in a.recent],
                a.by_version,
                a.error_order,
            ]
            rows.append((side, AGG_TOOL, name, dumps(data)))
        for key in versions:
            rows.append((side, AGG_VERSION, key, dumps(dataclasses.astuple(self.versions[key]))))
        return rows

    def load_row(self, kind: int, name: str, row: list[Any]) -> None:
        """Take one row of `to_rows` back."""
        intern = sys.intern
        if kind == AGG_VERSION:
            self.versions[name] = VersionStats(*row)
            return
        calls, traces, judged, passed, errors, tasks, types, examples, recent = row[:9]
        a = self.tools[intern(name)] = _ToolAgg()
        a.calls, a.traces, a.judged, a.passed, a.errors = calls, traces, judged, passed, errors
        a.tasks = tasks
        a.error_types = Counter({intern(k): v for k, v in types.items()})
        a.examples = {k: [SourceRef(f, ln, o) for f, ln, o in v] for k, v in examples.items()}
        a.recent.extend((SourceRef(f, ln, o), et, msg) for f, ln, o, et, msg in recent)
        a.by_version = {intern(k): list(v) for k, v in row[9].items()}
        a.error_order = [intern(v) for v in row[10]]

    def snapshot_tool(self, name: str) -> ToolStats:
        agg = self.tools[name]
        return ToolStats(
            name=name,
            calls=agg.calls,
            errors=agg.errors,
            error_types=Counter(agg.error_types),
            examples={k: list(v) for k, v in agg.examples.items()},
            traces=agg.traces,
            tasks=agg.tasks,
            passed=agg.passed,
            judged=agg.judged,
            recent_errors=list(agg.recent),
        )


class _SplitAggregates:
    """The running statistics of the learnable and of the held-out traces, kept apart.

    Each summary is counted in exactly one side (see `funcforge.traces.splits`);
    the "all" view is the two merged on demand, its distinct tasks per tool kept
    in `tasks_all` (a task may be on both sides). `fresh`: built from nothing in
    this refresh (all rows written), else loaded from the index (dirty rows written).
    """

    def __init__(self, fresh: bool = True) -> None:
        self.learnable = _Aggregates(LEARNABLE_BIT)
        self.held_out = _Aggregates(HELD_OUT_BIT)
        self.tasks_all: dict[str, int] = {}
        self.dirty_all: set[str] = set()
        self.recount: set[str] = set()  # tools whose pairs were written without counting
        self.fresh = fresh
        # ToolStats handed out, by view and tool; dropped for the tools a refresh changed
        # (`saved`), so asking after each refresh copies only what changed.
        self._snapshots: dict[str, dict[str, ToolStats]] = {}

    def add(self, summaries: Iterable[TraceSummary]) -> None:
        learn: list[TraceSummary] = []
        held: list[TraceSummary] = []
        sides: dict[str | None, list[TraceSummary]] = {
            None: learn
        }  # split -> its side's list (a few distinct splits)
        for s in summaries:
            side = sides.get(s.split)
            if side is None:
                side = sides[s.split] = held if is_held_out(s.split) else learn
            side.append(s)
        if learn:
            self.learnable.add(learn)
        if held:
            self.held_out.add(held)

    def pending_pairs(self) -> int:
        """How many (tool, task, side) pairs wait to be handed to the index."""
        return sum(
            len(a.new_tasks)
            for side in (self.learnable, self.held_out)
            for a in side.tools.values()
        )

    def take_pairs(self) -> list[TaskPair]:
        """The pairs waiting for the index, as (tool, task, side bit); none wait after."""
        rows: list[TaskPair] = []
        for side in (self.learnable, self.held_out):
            bit = side.bit
            for name, agg in side.tools.items():
                if agg.new_tasks:
                    rows.extend(zip(repeat(name), agg.new_tasks, repeat(bit)))
                    agg.new_tasks = set()
        return rows

    def side(self, bit: int) -> _Aggregates:
        return self.learnable if bit == LEARNABLE_BIT else self.held_out

    def count_task(self, tool: str, bit: int, new_in_all: bool) -> None:
        """A (tool, task) pair new on side `bit` (and on both sides, `new_in_all`)."""
        side = self.side(bit)
        side.tools[tool].tasks += 1
        side.dirty_tools.add(tool)
        if new_in_all:
            self.tasks_all[tool] = self.tasks_all.get(tool, 0) + 1
            self.dirty_all.add(tool)

    def set_tasks(self, counts: dict[str, tuple[int, int, int]], tools: Iterable[str]) -> None:
        """Distinct task counts of `tools` as counted by the index (`Writer.task_counts`)."""
        for name in tools:
            every, learnable, held_out = counts.get(name, (0, 0, 0))
            for side, n in ((self.learnable, learnable), (self.held_out, held_out)):
                agg = side.tools.get(name)
                if agg is not None and agg.tasks != n:
                    agg.tasks = n
                    side.dirty_tools.add(name)
            if self.tasks_all.get(name, 0) != every:
                self.tasks_all[name] = every
                self.dirty_all.add(name)

    def all_tools(self) -> set[str]:
        return set(self.learnable.tools) | set(self.held_out.tools)

    def to_rows(self) -> list[AggRow]:
        """The rows to save: every row when fresh, else those this refresh changed."""
        fresh = self.fresh
        rows = self.learnable.to_rows(0, fresh) + self.held_out.to_rows(1, fresh)
        names = self.tasks_all if fresh else self.dirty_all
        rows.extend((0, AGG_TASKS_ALL, n, orjson.dumps(self.tasks_all.get(n, 0))) for n in names)
        return rows

    def saved(self) -> None:
        """The rows are in the index: nothing is dirty, later refreshes write changes only."""
        changed = self.dirty_all | self.learnable.dirty_tools | self.held_out.dirty_tools
        for cached in self._snapshots.values():
            for name in changed:
                cached.pop(name, None)
        for side in (self.learnable, self.held_out):
            side.dirty_tools.clear()
            side.dirty_versions.clear()
        self.dirty_all.clear()
        self.fresh = False

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int, str, bytes]]) -> _SplitAggregates:
        out = cls(fresh=False)
        for side, kind, name, data in rows:
            if kind == AGG_TASKS_ALL:
                out.tasks_all[sys.intern(name)] = orjson.loads(data)
            else:
                (out.learnable if side == 0 else out.held_out).load_row(
                    kind, name, orjson.loads(data)
                )
        return out

    def tools(self, which: Which) -> dict[str, ToolStats]:
        """Per-tool snapshots of a view (shared between calls until the tool changes)."""
        learn, held = self.learnable.tools, self.held_out.tools
        if which == "learnable":
            names: Iterable[str] = learn
        elif which == "held_out":
            names = held
        else:
            names = [*learn, *(n for n in held if n not in learn)]
        cached = self._snapshots.setdefault(which, {})
        out: dict[str, ToolStats] = {}
        for name in names:
            stats = cached.get(name)
            if stats is None:
                stats = cached[name] = self._snapshot(which, name)
            out[name] = stats
        return out

    def _snapshot(self, which: Which, name: str) -> ToolStats:
        if which == "learnable":
            return self.learnable.snapshot_tool(name)
        if which == "held_out" or name not in self.learnable.tools:
            return self.held_out.snapshot_tool(name)
        a = self.learnable.snapshot_tool(name)
        if name not in self.held_out.tools:
            return a
        return _merge_tool(a, self.held_out.snapshot_tool(name), self.tasks_all.get(name, 0))

    def failures(self, which: Which) -> dict[str, tuple[dict[str, tuple[int, int]], list[str]]]:
        sides = {
            "learnable": [self.learnable],
            "held_out": [self.held_out],
            "all": [self.learnable, self.held_out],
        }[which]
        out: dict[str, tuple[dict[str, tuple[int, int]], list[str]]] = {}
        for side in sides:
            for name, agg in side.tools.items():
                counts, order = out.setdefault(name, ({}, []))
                for version, (calls, errors) in agg.by_version.items():
                    c, e = counts.get(version, (0, 0))
                    counts[version] = (c + calls, e + errors)
                order.extend(v for v in agg.error_order if v not in order)
        return out

    def versions(self, which: Which) -> dict[str, VersionStats]:
        if which != "all":
            side = self.learnable if which == "learnable" else self.held_out
            return {k: dataclasses.replace(v) for k, v in side.versions.items()}
        out = {k: dataclasses.replace(v) for k, v in self.learnable.versions.items()}
        for k, h in self.held_out.versions.items():
            out[k] = _merge_version(out[k], h) if k in out else dataclasses.replace(h)
        return out


def _merge_tool(a: ToolStats, b: ToolStats, tasks: int) -> ToolStats:
    """One tool's learnable and held-out statistics as one (`tasks`: distinct on both)."""
    examples = {k: list(v) for k, v in a.examples.items()}
    for etype, refs in b.examples.items():
        have = examples.setdefault(etype, [])
        have.extend(refs[: max(0, EXAMPLES_PER_TYPE - len(have))])
    return ToolStats(
        name=a.name,
        calls=a.calls + b.calls,
        errors=a.errors + b.errors,
        error_types=a.error_types + b.error_types,
        examples=examples,
        traces=a.traces + b.traces,
        tasks=tasks,
        passed=a.passed + b.passed,
        judged=a.judged + b.judged,
        recent_errors=(a.recent_errors + b.recent_errors)[-RECENT_ERRORS:],
    )


def _merge_version(a: VersionStats, b: VersionStats) -> VersionStats:
    """One version's learnable and held-out statistics as one."""
    firsts = [t for t in (a.first_time, b.first_time) if t is not None]
    lasts = [t for t in (a.last_time, b.last_time) if t is not None]
    return VersionStats(
        version=a.version,
        n=a.n + b.n,
        scored=a.scored + b.scored,
        score_sum=a.score_sum + b.score_sum,
        passed=a.passed + b.passed,
        judged=a.judged + b.judged,
        first_time=min(firsts) if firsts else None,
        last_time=max(lasts) if lasts else None,
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a refresh allocates many long-lived objects.

    Every summary survives, so collections during a bulk load only re-scan
    them (a large share of ingest time); reference counting still frees
    everything else. The previous setting is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class TraceStore:
    """Incremental index over the trace files matched by `config.traces`."""

    def __init__(
        self,
        config: Config,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
        index_path: Path | None = None,
    ) -> None:
        self.config = config
        self.root = Path(config.root)
        self.max_line_bytes = max_line_bytes
        self.chunk_bytes = chunk_bytes
        for name in config.formats.values():
            get_format(name)  # an unknown format name is a configuration error, said early
        self.bytes_read = 0  # bytes read to parse records (tests and benchmarks watch it)
        self.check_bytes = 0  # bytes read to fingerprint files (at most 2 KB per check)
        self._files: dict[str, _FileState] = {}
        self._agg = _SplitAggregates()
        self._lock = threading.RLock()  # guards _files and _agg for readers
        self._refresh_lock = threading.Lock()  # one refresh at a time
        # Outcome sidecars (`outcomes.jsonl`) by folder, and what each was when indexed.
        self._sidecars: dict[str, Any] = {}
        self._sidecar_stamps: dict[str, tuple[int, ...]] = {}
        self._settings = json.dumps([sorted(config.formats.items()), max_line_bytes])
        self._notices: list[str] = []  # the index's, kept when the store changes index
        self.index_path = index_path or _index_path(config)
        self._generation = -1
        self._fallbacks = 0  # how many times the store left an index it could not use
        with self._refresh_lock:
            try:
                self._index = TraceIndex(self.index_path, self._settings, self._notices)
            except IndexUnusable as exc:
                self._index = self._next_index(str(exc))
            self._recovering(self._load_snapshot)

    @property
    def notices(self) -> list[str]:
        """Messages about the index itself (rebuilt because it was corrupt, and so on)."""
        return list(self._notices)

    def _next_index(self, reason: str) -> TraceIndex:
        """An index for this session when the current one cannot be used here (locked by
        another process past `BUSY_SECONDS`, read-only, disk full): a private temporary
        file, else one in memory; said in a notice. The shared file is left untouched."""
        while True:
            self._fallbacks += 1
            if self._fallbacks == 1:
                path, memory, where = _private_index_path(), False, "a private index"
            elif self._fallbacks == 2:
                path, memory, where = Path(":memory:"), True, "an index in memory"
            else:
                raise UserError(f"no trace index can be used: {reason}")
            message = (
                f"trace index {self.index_path} cannot be used ({reason}); "
                f"using {where} for this session"
            )
            self._notices.append(message)
            logging.getLogger("funcforge.traces").warning("%s", message)
            try:
                index = TraceIndex(path, self._settings, self._notices, memory=memory)
            except IndexUnusable as exc:
                reason = str(exc)
                continue
            self.index_path = path
            return index

    def _recovering(self, work: Callable[[], _T]) -> _T:
        """`work()`, again after each recovery from a database error: a corrupt index is
        rebuilt in place (once); one that cannot be used here, or fails again, is left
        for another (`_next_index`, which gives up with a `UserError` after memory)."""
        reload, resets = False, 0
        while True:
            try:
                if reload:
                    self._load_snapshot()
                    reload = False
                return work()
            except (sqlite3.DatabaseError, IndexUnusable) as exc:
                reload = True
                if not is_environmental(exc) and not resets:
                    resets += 1
                    try:
                        self._index.reset(f"failed ({exc})")
                        continue
                    except IndexUnusable as again:
                        exc = again
                with suppress(sqlite3.Error):
                    self._index.close()
                self._index = self._next_index(str(exc))

    def close(self) -> None:
        """Close the index's connections (a store is usable until then)."""
        self._index.close()

    def _load_snapshot(self) -> None:
        """Take file progress and aggregates from the index as last committed."""
        try:
            snap = self._index.snapshot()
            files = {
                rel: _FileState.from_dict(rel, self._abs(rel), data)
                for rel, data in snap.files.items()
            }
            agg = _SplitAggregates.from_rows(snap.aggregates)
        except (KeyError, ValueError, TypeError, UserError) as exc:
            self._index.reset(f"could not be read ({type(exc).__name__}: {exc})")
            snap = self._index.snapshot()
            files, agg = {}, _SplitAggregates()
        with self._lock:
            self._files = files
            self._agg = agg
            self._sidecar_stamps = {k: tuple(v) for k, v in snap.sidecars.items()}
            self._sidecars = {}  # read again on the next refresh
            self._generation = snap.generation

    def _abs(self, rel: str) -> Path:
        return Path(rel) if os.path.isabs(rel) else self.root / rel

    # -- discovery -------------------------------------------------------------

    def discover(self) -> dict[str, Path]:
        """Workspace-relative POSIX path -> absolute path of every file the globs match
        (`funcforge.paths`: the state folder and editor lock/backup files are skipped)."""
        found = paths.find_files(self.root, self.config.traces, exclude=[self.config.state_dir])
        return {rel: self.root / rel for rel in found}

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    # -- refresh ---------------------------------------------------------------

    def refresh(self, final: bool = False) -> list[str]:
        """Bring the index up to date; returns the files whose traces changed.

        A last line without a newline is left for the next refresh unless it is
        already a complete JSON value. With `final=True` (one-shot commands) an
        unfinished last line is also listed in `malformed`. The new summaries,
        the files' progress and the aggregates are committed to the persistent
        index together; an index that fails mid-way is rebuilt with a notice.
        """
        with self._refresh_lock, _gc_paused():
            return self._recovering(lambda: self._refresh(final))

    def _refresh(self, final: bool) -> list[str]:
        index = self._index
        try:
            with index.transaction() as tx:
                if index.generation() != self._generation:
                    self._load_snapshot()  # another process refreshed the index meanwhile
                return self._refresh_in(tx, final)
        except BaseException:
            self._load_snapshot()  # in-memory progress went ahead of the rolled-back index
            raise

    def _refresh_in(self, tx: Writer, final: bool) -> list[str]:
        found = self.discover()
        changed: list[str] = []
        touched: set[str] = set()
        rebuild = False
        # New traces go into a fresh aggregate when the index was empty (a cold ingest,
        # outside the readers' lock), else into the live one under the lock (small
        # appends); a rolled-back refresh reloads the aggregates from the index.
        agg: _SplitAggregates | None = None if self._files else _SplitAggregates()
        if agg is not None:
            tx.clear_tasks()  # nothing indexed: no pair may be counted already
        added = False

        def sink(rel: str, batch: list[TraceSummary]) -> None:
            nonlocal added
            self._join_outcomes(rel, batch)
            tx.add(rel, batch)
            added = True
            if rebuild:
                return
            if agg is not None:
                agg.add(batch)
                self._write_tasks(tx, agg, final=False)
            else:
                with self._lock:
                    self._agg.add(batch)
                self._write_tasks(tx, self._agg, final=False)

        old_stamps = dict(self._sidecar_stamps)
        stale_dirs = self._load_sidecars(found)
        for rel in [r for r in self._files if r not in found]:
            with self._lock:
                gone = self._files.pop(rel)
            tx.drop_file(rel)
            changed.append(rel)
            rebuild = rebuild or gone.count > 0
        for rel, path in found.items():
            state = self._files.get(rel)
            try:
                st = path.stat()
            except FileNotFoundError:
                if state is not None:
                    with self._lock:
                        del self._files[rel]
                    tx.drop_file(rel)
                    changed.append(rel)
                    rebuild = rebuild or state.count > 0
                continue
            mode = self._plan(state, st)
            if state is not None and _folder(rel) in stale_dirs:
                mode = "full"  # its outcomes changed with the sidecar beside it
            if mode is None and state is not None:
                if not final and state.pending is not None:
                    with self._lock:
                        state.pending = None
                elif (
                    final
                    and state.pending is None
                    and state.offset < state.size
                    and state.format is not None
                    and state.format.line_based  # a whole-file format has no last line
                ):
                    mode = "append"  # only to judge the unfinished last line
            if mode is None:
                continue
            if mode == "append":
                assert state is not None
                try:
                    new = self._read_from(state, final, functools.partial(sink, rel))
                except _Restart:
                    mode = "full"
                else:
                    state.dev, state.ino, state.size = st.st_dev, st.st_ino, st.st_size
                    state.mtime_ns, state.ctime_ns = st.st_mtime_ns, st.st_ctime_ns
                    touched.add(rel)
                    if new:
                        changed.append(rel)
                    continue
            if state is not None and state.count:
                rebuild = True  # its old traces are counted in the aggregates
            tx.clear_file(rel)
            fresh = _FileState(rel, path)
            fresh.dev, fresh.ino, fresh.size = st.st_dev, st.st_ino, st.st_size
            fresh.mtime_ns, fresh.ctime_ns = st.st_mtime_ns, st.st_ctime_ns
            self._read_full(fresh, final, functools.partial(sink, rel))
            with self._lock:
                self._files[rel] = fresh
            touched.add(rel)
            changed.append(rel)
        if rebuild:
            # Old traces left the index: aggregate afresh from the index (this transaction's
            # view), outside the readers' lock, a batch at a time; readers wait only for
            # the swap.
            agg = _SplitAggregates()
            tx.clear_tasks()
            every = tx.all_summaries(sorted(self._files))
            while batch := list(islice(every, SINK_BATCH)):
                agg.add(batch)
                self._write_tasks(tx, agg, final=False)
        if not (touched or added or rebuild or changed) and old_stamps == self._sidecar_stamps:
            return changed
        for rel in touched:
            if rel in self._files:
                tx.save_file(rel, self._files[rel].to_dict())
        current = agg if agg is not None else self._agg
        self._write_tasks(tx, current, final=True)
        tx.save_aggregates(current.to_rows(), replace_all=current.fresh)
        generation = tx.finish({k: list(v) for k, v in self._sidecar_stamps.items()})
        with self._lock:
            current.saved()
            self._agg = current
            self._generation = generation
        return changed

    def _write_tasks(self, tx: Writer, agg: _SplitAggregates, final: bool) -> None:
        """Hand the collected (tool, task) pairs to the index and keep the task counts.

        A few pairs (an append) are written one by one, each saying whether it is
        new, so the counts move by exactly what the new traces added; many (an
        ingest, a rebuild) are written at once and the tools they touch recounted
        by the index when the refresh ends (`final`). The pairs in memory never
        exceed `TASK_BATCH`, whatever the number of traces.
        """
        live = agg is self._agg  # readers see it: change its counts under their lock
        guard: AbstractContextManager[Any] = self._lock if live else nullcontext()
        waiting = agg.pending_pairs()
        if waiting and (final or waiting >= TASK_BATCH):
            rows = agg.take_pairs()
            if agg.fresh or agg.recount or len(rows) > COUNTED_PAIRS:
                tx.add_tasks(rows)
                if not agg.fresh:
                    agg.recount.update(tool for tool, _, _ in rows)
            else:
                news = list(tx.add_tasks_counted(rows))
                with guard:
                    for tool, bit, new_in_all in news:
                        agg.count_task(tool, bit, new_in_all)
        if final and (agg.fresh or agg.recount):
            tools = agg.all_tools() if agg.fresh else set(agg.recount)
            counts = tx.task_counts(None if agg.fresh else tools)
            with guard:
                agg.set_tasks(counts, tools)
            agg.recount.clear()

    def _load_sidecars(self, found: dict[str, Path]) -> set[str]:
        """(Re)read the `outcomes.jsonl` files among `found`; returns folders whose changed."""
        from funcforge.traces.outcomes import SIDECAR_NAME, load_outcomes

        stamps: dict[str, tuple[int, ...]] = {}
        paths: dict[str, tuple[str, Path]] = {}
        for rel, path in found.items():
            if path.name != SIDECAR_NAME:
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            folder = _folder(rel)
            stamps[folder] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            paths[folder] = (rel, path)
        stale = {
            d
            for d in set(stamps) | set(self._sidecar_stamps)
            if stamps.get(d) != self._sidecar_stamps.get(d)
        }
        unloaded = {d for d in paths if d not in self._sidecars}  # e.g. after a restart
        for folder in stale | unloaded:
            if folder in paths:
                rel, path = paths[folder]
                self._sidecars[folder] = load_outcomes(path, rel)
            else:
                self._sidecars.pop(folder, None)
        self._sidecar_stamps = stamps
        return stale

    def _join_outcomes(self, rel: str, summaries: list[TraceSummary]) -> None:
        """Give the summaries of `rel` the outcomes of the sidecar in its folder."""
        sidecar = self._sidecars.get(_folder(rel))
        if sidecar is None or not summaries:
            return
        for summary in summaries:
            row = sidecar.by_trace.get(summary.id)
            if row is None and summary.task_id is not None:
                row = sidecar.by_task.get(summary.task_id)
            if row is None:
                continue
            if row.score is not None:
                summary.score = row.score
            if row.passed is not None:
                summary.passed = row.passed
            if row.toolset_version is not None:
                summary.version = row.toolset_version
            if row.split is not None:
                summary.split = row.split

    def _plan(self, state: _FileState | None, st: os.stat_result) -> str | None:
        """None (unchanged), "append" (read new bytes) or "full" (re-read the file)."""
        if state is None:
            return "full"
        if (st.st_dev, st.st_ino) != (state.dev, state.ino) or st.st_size < state.size:
            return "full"
        if st.st_size == state.size:
            # Same size: unchanged only if neither time moved. A copy put back over the
            # file with its old mtime (`cp -p`, `rsync -t`, `touch -r`) still moves ctime.
            same = (st.st_mtime_ns, st.st_ctime_ns) == (state.mtime_ns, state.ctime_ns)
            return None if same else "full"
        if state.format is None or not state.format.line_based:
            return "full"
        return "append" if self._fingerprint_matches(state) else "full"

    def _fingerprint_matches(self, state: _FileState) -> bool:
        try:
            with open(state.path, "rb") as f:
                head = f.read(state.head_len)
                f.seek(state.tail_start)
                tail = f.read(state.offset - state.tail_start)
        except OSError:
            return False
        self.check_bytes += len(head) + len(tail)
        return _digest(head) == state.head_hash and _digest(tail) == state.tail_hash

    def _fingerprint(self, state: _FileState, f: Any) -> None:
        state.head_len = min(FINGERPRINT_BYTES, state.offset)
        f.seek(0)
        head = f.read(state.head_len)
        state.tail_start = max(0, state.offset - FINGERPRINT_BYTES)
        f.seek(state.tail_start)
        tail = f.read(state.offset - state.tail_start)
        self.check_bytes += len(head) + len(tail)
        state.head_hash, state.tail_hash = _digest(head), _digest(tail)

    def _read_full(self, state: _FileState, final: bool, sink: Sink) -> None:
        try:
            with open(state.path, "rb") as f:
                head = f.read(HEAD_BYTES)
        except OSError as exc:
            state.malformed.append(Malformed(state.rel, 1, f"cannot read: {exc.strerror}"))
            return
        if not head:
            return  # empty: its format is decided once it has content
        state.format = detect(state.path, head, self.config.formats, state.rel)
        if state.format is None:
            state.malformed.append(
                Malformed(
                    state.rel,
                    1,
                    "unknown trace format (set [tool.funcforge] formats to name one)",
                )
            )
            return
        if state.format.line_based:
            self._read_from(state, final, sink)  # from offset 0: no line can be open
        else:
            self._read_whole(state, sink)

    def _read_whole(self, state: _FileState, sink: Sink) -> None:
        fmt = state.format
        assert fmt is not None and fmt.parse_file is not None
        ordinal = 0
        out: list[TraceSummary] = []
        try:
            for item in fmt.parse_file(state.path, state.rel):
                if isinstance(item, Malformed):
                    state.malformed.append(item)
                    continue
                ref = item.source or SourceRef(state.rel, 1)
                out.append(summarize(item, ref, ordinal))
                ordinal += 1
        except Exception as exc:  # a format's bug must not stop the index
            state.malformed.append(Malformed(state.rel, 1, f"{type(exc).__name__}: {exc}"))
        self.bytes_read += state.size
        if out:
            sink(out)
            state.count += len(out)

    def _read_from(self, state: _FileState, final: bool, sink: Sink) -> int:
        """Parse the complete lines after `state.offset`, hand their summaries to `sink`.

        Returns how many traces were added. Reads in chunks, so a line over
        `max_line_bytes` is skipped without being held in memory, and hands
        summaries over in batches, so memory does not grow with the file.
        Raises `_Restart` (state untouched, nothing handed over) when the
        appended bytes continue a line that was already indexed as complete.
        """
        fmt = state.format
        assert fmt is not None
        rel, limit = state.rel, self.max_line_bytes
        out: list[TraceSummary] = []
        bad: list[Malformed] = []
        record = _line_reader(fmt, rel, out, bad)
        added = 0
        pos = state.offset  # where the line being assembled starts
        line_no = state.line
        open_tail = state.open_tail  # that line was already indexed (a complete value)
        carry: list[bytes] = []  # its bytes so far (dropped while skipping)
        carry_len = 0
        skipping = False  # it is over the limit
        with open(state.path, "rb") as f:
            f.seek(pos)
            while True:
                chunk = f.read(self.chunk_bytes)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                pieces = chunk.split(b"\n")
                rest = pieces.pop()
                if pieces:
                    first = 0
                    if carry_len or skipping or open_tail:  # finish the line in progress
                        size = carry_len + len(pieces[0])
                        line = b"".join(carry) + pieces[0]
                        if open_tail:
                            if line.strip():
                                raise _Restart
                        elif skipping or size > limit:
                            bad.append(Malformed(rel, line_no, _too_long(size, limit)))
                        elif line and not line.isspace():
                            record(line, pos, line_no)
                        pos += size + 1
                        line_no += 1
                        carry, carry_len, skipping, open_tail = [], 0, False, False
                        first = 1
                    for k in range(first, len(pieces)):
                        piece = pieces[k]
                        size = len(piece)
                        if size > limit:
                            bad.append(Malformed(rel, line_no, _too_long(size, limit)))
                        elif piece and not piece.isspace():
                            record(piece, pos, line_no)
                        pos += size + 1
                        line_no += 1
                if len(out) >= SINK_BATCH:
                    added += len(out)
                    sink(out[:])
                    out.clear()
                if rest:
                    carry_len += len(rest)
                    if open_tail:  # only whitespace may follow an indexed line
                        if rest.strip():
                            raise _Restart
                    elif not skipping:
                        carry.append(rest)
                        if carry_len > limit:
                            skipping, carry = True, []
            unfinished: Malformed | None = None
            tail = b"".join(carry)
            if not open_tail and tail.strip() and not skipping:
                if _complete_json(tail):  # index it now; the line stays open
                    record(tail, pos, line_no)
                    pos += len(tail)
                    open_tail = True
                elif final:
                    unfinished = Malformed(
                        rel, line_no, "unfinished last line (no newline at the end)"
                    )
            if out:
                added += len(out)
                sink(out[:])
                out.clear()
            with self._lock:
                state.count += added
                state.malformed.extend(bad)
                state.pending = unfinished
            state.offset, state.line, state.open_tail = pos, line_no, open_tail
            self._fingerprint(state, f)
        return added

    # -- readers ---------------------------------------------------------------

    @property
    def malformed(self) -> list[Malformed]:
        """Every skipped record, by file and line."""
        with self._lock:
            out: list[Malformed] = []
            for state in self._files.values():
                out.extend(state.malformed)
                if state.pending is not None:
                    out.append(state.pending)
            return out

    def files(self) -> list[FileInfo]:
        """The indexed files with their format and counts."""
        with self._lock:
            return [
                FileInfo(
                    s.rel,
                    s.format.name if s.format else None,
                    s.count,
                    len(s.malformed) + (s.pending is not None),
                    s.size,
                )
                for s in self._files.values()
            ]

    def __len__(self) -> int:
        with self._lock:
            return sum(s.count for s in self._files.values())

    def count(self, which: Which = "learnable") -> int:
        """How many traces a view holds, from the aggregates (no pass over the traces)."""
        check_view(which)
        if which == "all":
            return len(self)
        with self._lock:
            return sum(v.n for v in self._agg.versions(which).values())

    def tool_stats(self, which: Which = "learnable") -> dict[str, ToolStats]:
        """Per-tool statistics (a snapshot: later refreshes do not change it).

        By default of the learnable traces only (split other than "test"; see
        `funcforge.traces.splits`); `which="held_out"` or `"all"` to ask for others.
        """
        check_view(which)
        with self._lock:
            return self._agg.tools(which)

    def version_stats(self, which: Which = "learnable") -> dict[str, VersionStats]:
        """Per-toolset-version statistics (a snapshot), keyed by version or `UNVERSIONED`.

        By default of the learnable traces only; `which` as in `tool_stats`.
        """
        check_view(which)
        with self._lock:
            return self._agg.versions(which)

    def failures_by_version(
        self, which: Which = "learnable"
    ) -> dict[str, tuple[dict[str, tuple[int, int]], list[str]]]:
        """Per tool: version -> (calls, failed calls), and the versions with failed calls in
        the order they were last seen. From the aggregates: no pass over the traces."""
        check_view(which)
        with self._lock:
            return self._agg.failures(which)

    def summaries(
        self, version: str | None = None, tool: str | None = None, which: Which = "learnable"
    ) -> list[TraceSummary]:
        """Index entries in file and line order, optionally of one version and/or tool.

        By default the learnable traces only; `which` as in `tool_stats`.
        """
        return list(self.iter_summaries(version, tool, which))

    def iter_summaries(
        self, version: str | None = None, tool: str | None = None, which: Which = "learnable"
    ) -> Iterator[TraceSummary]:
        """`summaries()` one at a time, read from the persistent index as committed."""
        check_view(which)
        with self._lock:
            rels = sorted(rel for rel, state in self._files.items() if state.count)
        for rel in rels:
            for s in self._index.summaries(rel):
                if version is not None and (s.version or UNVERSIONED) != version:
                    continue
                if tool is not None and tool not in s.tool_names:
                    continue
                if not in_view(which, s.split):
                    continue
                yield s

    def load(self, item: TraceSummary | SourceRef) -> Trace:
        """The full trace behind an index entry (or a file:line reference), read from disk."""
        summary = item if isinstance(item, TraceSummary) else self._find(item)
        with self._lock:
            state = self._files.get(summary.file)
        if state is None or state.format is None:
            raise StaleTraceError(f"{summary.file}: no longer indexed; refresh")
        trace = _Loader(state, self.max_line_bytes).load(summary)
        sidecar = self._sidecars.get(_folder(summary.file))
        if sidecar is not None:
            sidecar.apply(trace)
        return trace

    def calls(
        self, tool: str, which: Which = "learnable"
    ) -> Iterator[tuple[TraceSummary, ToolCall]]:
        """Every logged call of `tool` with its trace's entry, loading traces lazily.

        By default of the learnable traces only (`which` as in `tool_stats`).
        Traces that changed on disk since indexing are skipped.
        """
        current: _Loader | None = None
        for summary in self.iter_summaries(tool=tool, which=which):
            with self._lock:
                state = self._files.get(summary.file)
            if state is None or state.format is None:
                continue
            if current is None or current.state is not state:
                current = _Loader(state, self.max_line_bytes)
            try:
                trace = current.load(summary)
            except StaleTraceError:
                continue
            for call in trace.tool_calls:
                if call.name == tool:
                    yield summary, call

    def _find(self, ref: SourceRef) -> TraceSummary:
        with self._lock:
            state = self._files.get(ref.file)
        found = self._index.find(ref.file, ref.line) if state is not None else None
        if found is not None:
            return found
        raise StaleTraceError(f"{ref}: no trace indexed there")


class _Loader:
    """Reads full traces of one file; a whole-file format's file is parsed once."""

    def __init__(self, state: _FileState, max_line_bytes: int) -> None:
        self.state = state
        self.max_line_bytes = max_line_bytes
        self._whole: list[Trace] | None = None

    def load(self, summary: TraceSummary) -> Trace:
        fmt = self.state.format
        assert fmt is not None
        if fmt.parse_record is not None:
            trace = self._load_line(fmt, summary)
        else:
            if self._whole is None:
                assert fmt.parse_file is not None
                self._whole = [
                    t
                    for t in fmt.parse_file(self.state.path, self.state.rel)
                    if isinstance(t, Trace)
                ]
            whole = self._whole
            trace = whole[summary.ordinal] if summary.ordinal < len(whole) else None
        if trace is None or trace.id != summary.id:
            raise StaleTraceError(f"{summary.ref}: trace {summary.id} changed on disk; refresh")
        return trace

    def _load_line(self, fmt: TraceFormat, summary: TraceSummary) -> Trace | None:
        assert fmt.parse_record is not None
        try:
            with open(self.state.path, "rb") as f:
                f.seek(summary.offset)
                line = f.readline(self.max_line_bytes + 1)
            traces = fmt.parse_record(_decode_std(line), summary.ref)  # exact numbers
        except (OSError, ValueError, MalformedTrace):
            return None
        return traces[summary.ordinal] if summary.ordinal < len(traces) else None


_orjson_loads: Callable[[bytes], Any] = orjson.loads
_DECODER = json.JSONDecoder()
# The C scanner behind `raw_decode`, without its Python-level wrappers (the hot path).
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_BOM = b"\xef\xbb\xbf"


def _decode(line: bytes) -> Any:
    """One JSON line (UTF-8) to a value; `ValueError` (incl. invalid UTF-8) otherwise.

    For indexing: orjson parses the line (faster than the standard library;
    it reads an integer past 64 bits as a float, which no summary field needs
    exact — `load()` reads full traces with `_decode_std`);
    whatever it refuses goes through the standard library, which accepts a
    little more (NaN, a BOM, lone surrogates, integers past 64 bits) and
    words the error reports (message and column) as funcforge always has.
    """
    try:
        return _orjson_loads(line)
    except ValueError:
        return _decode_std(line)


def _decode_std(line: bytes) -> Any:
    """The standard library's decoding: the C scanner directly on the common shape,
    `JSONDecoder.decode` otherwise (for its error messages)."""
    text = line.decode("utf-8")
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text.removeprefix("\ufeff"))
    if end != len(text):
        return _DECODER.decode(text)
    return obj


def _complete_json(data: bytes) -> bool:
    try:
        _decode(data)
    except (ValueError, RecursionError):
        return False
    return True


def _line_reader(
    fmt: TraceFormat, rel: str, out: list[TraceSummary], bad: list[Malformed]
) -> Callable[[bytes, int, int], None]:
    """A function that decodes one line, indexes its traces into `out`, or notes it in `bad`."""
    index, parse = fmt.index_record, fmt.parse_record
    assert parse is not None
    loads = _orjson_loads

    def record(line: bytes, start: int, number: int) -> None:
        try:
            try:  # `_decode`, inlined: this runs once per line
                obj = loads(line)
            except ValueError:
                obj = _decode_std(line)
        except UnicodeDecodeError:
            bad.append(Malformed(rel, number, "invalid UTF-8"))
            return
        except ValueError as exc:
            bad.append(Malformed(rel, number, f"bad JSON: {_json_reason(exc)}"))
            return
        except RecursionError:
            bad.append(Malformed(rel, number, "bad JSON: nested too deeply"))
            return
        try:
            if index is not None:
                out.extend(index(obj, rel, number, start))
            else:
                ref = SourceRef(rel, number, start)
                for i, trace in enumerate(parse(obj, ref)):
                    out.append(summarize(trace, ref, i))
        except MalformedTrace as exc:
            bad.append(Malformed(rel, number, str(exc)))
        except Exception as exc:  # a format's bug must not stop the index
            bad.append(Malformed(rel, number, f"{type(exc).__name__}: {exc}"))

    return record


def _json_reason(exc: ValueError) -> str:
    msg = getattr(exc, "msg", None)
    col = getattr(exc, "colno", None)
    return f"{msg} (column {col})" if msg and col else str(exc)


def _too_long(size: int, limit: int) -> str:
    return f"line of {size} bytes is longer than the limit of {limit} bytes; skipped"


def _folder(rel: str) -> str:
    """The folder part of a workspace-relative POSIX path ('' at the root)."""
    return rel.rpartition("/")[0]
