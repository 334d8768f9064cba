"""Trace file formats: one module per format, each registered here.

A format is either *line-based* (JSON Lines: the store decodes each line and
hands the object to `parse_record`, so a growing file is read incrementally) or
*whole-file* (`parse_file` reads the file and may group many lines or spans
into one trace; the store re-reads such a file whenever it changes). Every
module in this package defines `FORMAT = TraceFormat(...)` (or `FORMATS`, a
list, when one module serves several layouts); they are discovered with
`pkgutil`, so adding a format means adding a module.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from funcforge import paths
from funcforge.errors import UserError
from funcforge.traces.model import SourceRef, Trace

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")


@dataclass(frozen=True)
class Malformed:
    """A trace record that was skipped: where (file, 1-based line) and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


MESSAGE_CHARS = 300  # error messages are kept this short in summaries
_intern = sys.intern

# (tool name, error type, error message) of one failed call.
ErrorDigest = tuple[str, str, str]


@dataclass(slots=True)
class TraceSummary:
    """What the index keeps of one trace: where it is and what statistics need."""

    id: str
    file: str
    line: int
    offset: int  # byte offset of the line (line-based formats)
    ordinal: int  # index of the trace in its record (line-based) or in its file
    task_id: str | None
    has_expected: bool
    score: float | None
    passed: bool | None
    version: str | None
    split: str | None
    time: str | None
    tool_names: tuple[str, ...]  # the tool of each call, in call order
    errors: tuple[ErrorDigest, ...]  # (tool, error type, message) of each failed call

    @property
    def ref(self) -> SourceRef:
        return SourceRef(self.file, self.line, self.offset)

    @property
    def calls(self) -> int:
        return len(self.tool_names)

    @property
    def tools(self) -> dict[str, int]:
        """Calls per tool name."""
        out: dict[str, int] = {}
        for name in self.tool_names:
            out[name] = out.get(name, 0) + 1
        return out

    @property
    def tool_errors(self) -> dict[str, int]:
        """Failed calls per tool name."""
        out: dict[str, int] = {}
        for name, _, _ in self.errors:
            out[name] = out.get(name, 0) + 1
        return out


def make_summary(
    trace_id: str,
    file: str,
    line: int,
    offset: int,
    ordinal: int,
    task_id: str | None,
    has_expected: bool,
    score: float | None,
    passed: bool | None,
    version: str | None,
    split: str | None,
    time: str | None,
    tool_names: list[str],
    errors: list[tuple[str, str | None, str | None]],
) -> TraceSummary:
    """A `TraceSummary` from plain values; repeated strings are interned to save memory.

    `tool_names` should already be interned (`sys.intern`): the fast paths do it
    while they read.
    """
    return TraceSummary(
        trace_id,
        file,
        line,
        offset,
        ordinal,
        _intern(task_id) if task_id else task_id,
        has_expected,
        score,
        passed,
        _intern(version) if version else None,
        _intern(split) if split else None,
        time,
        tuple(tool_names),
        error_digests(errors) if errors else (),
    )


def error_digests(errors: list[tuple[str, str | None, str | None]]) -> tuple[ErrorDigest, ...]:
    """(tool, type, message) of failed calls as kept in a summary: interned, messages capped."""
    return tuple(
        (_intern(name), _intern(etype or "Error"), (message or "")[:MESSAGE_CHARS])
        for name, etype, message in errors
    )


def summarize(trace: Trace, ref: SourceRef, ordinal: int) -> TraceSummary:
    """The index entry of a parsed trace."""
    task = trace.task
    calls = trace.tool_calls
    return make_summary(
        trace.id,
        ref.file,
        ref.line,
        ref.offset,
        ordinal,
        task.id if task is not None else None,
        task is not None and task.expected is not None,
        trace.outcome.score,
        trace.outcome.passed,
        trace.toolset_version,
        trace.split,
        trace.time,
        [_intern(c.name) for c in calls],
        [(c.name, c.error_type, c.error_message) for c in calls if c.is_error],
    )


ParseRecord = Callable[[Any, SourceRef], list[Trace]]
IndexRecord = Callable[[Any, str, int, int], list[TraceSummary]]
ParseFile = Callable[[Path, str], Iterator[Trace | Malformed]]


@dataclass(frozen=True)
class TraceFormat:
    """One trace file format.

    Exactly one of `parse_record` (line-based: one decoded JSON line -> traces;
    raises `MalformedTrace` with a reason) or `parse_file` (whole file ->
    traces and `Malformed` entries, each trace with its `source` set) is given.
    `index_record(obj, file, line, offset)` is an optional fast path for
    line-based formats: it returns the `TraceSummary` of each trace the record
    holds (what `summarize(parse_record(...))` gives, same errors raised)
    without building messages, parsed arguments or `Trace` objects; the store
    indexes with it and loads full traces with `parse_record`. `sniff(path, head)` says whether a file, given its first
    bytes, is in this format; lower `priority` sniffs first.
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], bool]
    parse_record: ParseRecord | None = None
    parse_file: ParseFile | None = None
    index_record: IndexRecord | None = None
    priority: int = 50

    def __post_init__(self) -> None:
        if (self.parse_record is None) == (self.parse_file is None):
            raise ValueError(f"format {self.name}: give exactly one of parse_record, parse_file")

    @property
    def line_based(self) -> bool:
        """True when the file is JSON Lines read record by record (and incrementally)."""
        return self.parse_record is not None


class UnknownFormatError(UserError):
    """A configured format name that no module provides."""


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _registry() -> dict[str, TraceFormat]:
    found: dict[str, TraceFormat] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        formats = list(getattr(module, "FORMATS", []))
        if hasattr(module, "FORMAT"):
            formats.insert(0, module.FORMAT)
        for fmt in formats:
            if fmt.name in found:
                raise ValueError(f"trace format {fmt.name!r} defined twice ({info.name})")
            found[fmt.name] = fmt
    return found


def all_formats() -> list[TraceFormat]:
    """Every registered format, in sniffing order (priority, then name)."""
    with _lock:
        registry = _registry()
    return sorted(registry.values(), key=lambda f: (f.priority, f.name))


def get_format(name: str) -> TraceFormat:
    """The format called `name`; `UnknownFormatError` names the known ones otherwise."""
    with _lock:
        registry = _registry()
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise UnknownFormatError(f"unknown trace format {name!r} (known: {known})") from None


def glob_match(pattern: str, path: str) -> bool:
    """Whether a POSIX `path` matches a glob (the workspace's one dialect: `funcforge.paths`)."""
    return paths.matches([pattern], path)


def detect(
    path: Path,
    head: bytes,
    overrides: Mapping[str, str] | None = None,
    rel: str | None = None,
) -> TraceFormat | None:
    """The format of the file at `path` (POSIX `rel` relative to the workspace).

    A configured override (`[tool.funcforge] formats`: glob -> format name)
    wins; otherwise the first format whose `sniff` accepts the head. None when
    nothing fits (an empty file, or an unknown layout).
    """
    target = rel if rel is not None else path.as_posix()
    for pattern, name in (overrides or {}).items():
        if glob_match(pattern, target):
            return get_format(name)
    for fmt in all_formats():
        try:
            if fmt.sniff(path, head):
                return fmt
        except Exception:  # a sniffer must not break detection of the others
            continue
    return None


INCOMPLETE = object()  # `first_record`: the head ends inside the first line


def first_record(head: bytes) -> Any:
    """The first non-blank JSON line of `head` decoded, `INCOMPLETE`, or None when invalid/empty."""
    start = 0
    while start < len(head):
        end = head.find(b"\n", start)
        line = head[start:] if end < 0 else head[start:end]
        if line.strip():
            if end < 0:
                try:
                    return json.loads(line)
                except ValueError:
                    return INCOMPLETE
            try:
                return json.loads(line)
            except ValueError:
                return None
        if end < 0:
            break
        start = end + 1
    return None


def kind_of(value: Any) -> str:
    """A JSON-ish type name for error messages ("array", "number", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
