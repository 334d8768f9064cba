"""Outcome sidecars: whether each run succeeded, for logs that have no field for it.

OpenTelemetry, OpenInference, the Agents SDK and AG2 record what an agent did,
not whether it solved the task. A sidecar (`outcomes.jsonl`) says so, one
JSON object per line, joined to the traces on ids:

    {"trace_id": "conv-42", "score": 1.0, "passed": true}
    {"task_id": "algebra-17", "passed": false}

`trace_id` matches a trace's id (or an id the import recorded beside it: the
OTLP trace ids of a conversation, AG2's session id, the Agents SDK group id);
`task_id` matches every trace of that task. A trace-id row beats a task-id row.
`score` is a number in 0..1, `passed` a boolean; a row with only `passed`
scores 1.0 or 0.0. Optional `toolset_version` and `split` override the
trace's. Rows that are wrong are reported with file:line and skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funcforge.traces.formats import Malformed, kind_of
from funcforge.traces.model import Trace

ALIAS_KEYS = ("otel_trace_ids", "ag2_session_id", "group_id")
SIDECAR_NAME = "outcomes.jsonl"


class BadRow(ValueError):
    """A sidecar line that cannot be used (the message says why)."""


@dataclass(frozen=True)
class OutcomeRow:
    """One sidecar line: the outcome it gives and where it is."""

    score: float | None
    passed: bool | None
    toolset_version: str | None
    split: str | None
    line: int


@dataclass
class Outcomes:
    """A loaded sidecar: rows by trace id and by task id, and the lines it skipped."""

    file: str
    by_trace: dict[str, OutcomeRow] = field(default_factory=dict)
    by_task: dict[str, OutcomeRow] = field(default_factory=dict)
    malformed: list[Malformed] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.by_trace) + len(self.by_task)

    def lookup(self, trace: Trace) -> OutcomeRow | None:
        """The row for `trace`: by its id or an alias first, then by its task id."""
        for key in trace_keys(trace):
            row = self.by_trace.get(key)
            if row is not None:
                return row
        if trace.task is not None:
            return self.by_task.get(trace.task.id)
        return None

    def apply(self, trace: Trace) -> bool:
        """Give `trace` its sidecar outcome (and version, split); False when none matches."""
        row = self.lookup(trace)
        if row is None:
            return False
        self.used.add(row.line)
        if row.score is not None:
            trace.outcome.score = row.score
        if row.passed is not None:
            trace.outcome.passed = row.passed
        if row.toolset_version is not None:
            trace.toolset_version = row.toolset_version
        if row.split is not None:
            trace.split = row.split
        return True

    def unused(self) -> list[Malformed]:
        """Rows that matched no trace (a typo in an id, or traces not imported)."""
        out = []
        for kind, rows in (("trace_id", self.by_trace), ("task_id", self.by_task)):
            for key, row in rows.items():
                if row.line not in self.used:
                    out.append(Malformed(self.file, row.line, f"{kind} {key!r} matched no trace"))
        return sorted(out, key=lambda m: m.line)


def trace_keys(trace: Trace) -> list[str]:
    """The ids a sidecar's `trace_id` may name for this trace."""
    keys = [trace.id]
    for alias in ALIAS_KEYS:
        value = trace.extra.get(alias)
        if isinstance(value, list):
            keys += [str(v) for v in value]
        elif value not in (None, ""):
            keys.append(str(value))
    return keys


def _ident(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise BadRow(f"'{name}' must be a non-empty string, got {kind_of(value)}")
    return str(value)


def parse_row(obj: Any, line: int) -> tuple[str, str, OutcomeRow]:
    """One sidecar object -> ("trace_id" or "task_id", the id, the row); raises `BadRow`."""
    if not isinstance(obj, dict):
        raise BadRow(f"expected an object, got {kind_of(obj)}")
    trace_id = _ident(obj.get("trace_id"), "trace_id")
    task_id = _ident(obj.get("task_id"), "task_id")
    if trace_id is None and task_id is None:
        raise BadRow("needs 'trace_id' or 'task_id'")
    score = obj.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise BadRow(f"'score' must be a number, got {kind_of(score)}")
        if not 0 <= score <= 1:
            raise BadRow(f"'score' must be between 0 and 1, got {score!r}")
        score = float(score)
    passed = obj.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise BadRow(f"'passed' must be true or false, got {kind_of(passed)}")
    if score is None and passed is None:
        raise BadRow("needs 'score' or 'passed'")
    if score is None:
        score = 1.0 if passed else 0.0
    extras: dict[str, str | None] = {}
    for key in ("toolset_version", "split"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise BadRow(f"'{key}' must be a string, got {kind_of(value)}")
        extras[key] = value
    row = OutcomeRow(score, passed, extras["toolset_version"], extras["split"], line)
    return ("trace_id", trace_id, row) if trace_id is not None else ("task_id", str(task_id), row)


def load_outcomes(path: Path, rel: str | None = None) -> Outcomes:
    """Read a sidecar; bad lines land in `malformed` (file:line and why), never raise."""
    name = rel if rel is not None else str(path)
    out = Outcomes(name)
    data = path.read_bytes()
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            out.malformed.append(Malformed(name, n, "invalid UTF-8"))
            continue
        except ValueError as exc:
            reason = (
                "unfinished last line (truncated: no newline at the end)"
                if n == len(lines)
                else f"bad JSON: {getattr(exc, 'msg', exc)}"
            )
            out.malformed.append(Malformed(name, n, reason))
            continue
        try:
            kind, key, row = parse_row(obj, n)
        except BadRow as exc:
            out.malformed.append(Malformed(name, n, str(exc)))
            continue
        table = out.by_trace if kind == "trace_id" else out.by_task
        if key in table:
            out.malformed.append(
                Malformed(
                    name, table[key].line, f"{kind} {key!r} given again on line {n}; that one wins"
                )
            )
        table[key] = row
    return out


def looks_like_sidecar(obj: Any) -> bool:
    """Whether a decoded JSON line is a sidecar row rather than a trace."""
    return (
        isinstance(obj, dict)
        and ("trace_id" in obj or "task_id" in obj)
        and ("score" in obj or "passed" in obj)
        and "messages" not in obj
    )
