"""OpenAI Agents SDK trace exports: `trace` and `trace.span` objects, one per line.

What `Trace.export()` / `Span.export()` give (and the SDK uploads in
`{"data": [...]}` batches, also accepted per line): a `trace` carries the id,
`workflow_name`, `group_id` and `metadata`; spans point at it by `trace_id`.
`function` spans are the tool runs (`name`, `input` arguments, `output`, and an
`error` object when the tool failed); `generation` spans (Chat Completions
models) carry the messages; `agent` spans list the tool names. Task id,
`funcforge.toolset_version` and split come from the trace's metadata
(`task_id` or `funcforge.task.id`). A whole-file format: one run's spans follow
its trace object over many lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from funcforge.traces.formats import (
    INCOMPLETE,
    JSONL_SUFFIXES,
    Malformed,
    TraceFormat,
    first_record,
    kind_of,
)
from funcforge.traces.formats.assemble import ToolRun, arguments_text, build_trace, iso_time
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

_HEAD = re.compile(rb'^\s*\{\s*("data"\s*:\s*\[\s*\{\s*)?"object"\s*:\s*"trace(\.span)?"')
TASK_KEYS = ("task_id", "funcforge.task.id")
VERSION_KEY = "funcforge.toolset_version"
SPLIT_KEYS = ("funcforge.split", "split")


@dataclass
class _Run:
    trace_id: str
    line: int
    meta: dict[str, Any] = field(default_factory=dict)
    spans: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # start, order


def _clean(msg: Any) -> Any:
    """A message as the SDK exported it, without its null fields (`refusal`, `audio`, ...)."""
    if not isinstance(msg, dict):
        return msg
    out = {k: v for k, v in msg.items() if v is not None or k == "content"}
    if "content" not in out and not out.get("tool_calls"):
        out["content"] = ""
    return out


def _messages(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The longest input + output of the run's generation spans (later wins ties)."""
    best: list[dict[str, Any]] = []
    for data in spans:
        if data.get("type") != "generation":
            continue
        inp, out = data.get("input"), data.get("output")
        msgs = [_clean(m) for m in (inp if isinstance(inp, list) else [])]
        msgs += [_clean(m) for m in (out if isinstance(out, list) else [])]
        msgs = [m for m in msgs if isinstance(m, dict) and isinstance(m.get("role"), str)]
        if len(msgs) >= len(best) and msgs:
            best = msgs
    return best


def _tool_run(data: dict[str, Any], error: Any) -> ToolRun:
    output = data.get("output")
    message = None
    if isinstance(error, dict):
        detail = error.get("data")
        detail = detail.get("error") if isinstance(detail, dict) else None
        message = str(detail) if detail else str(error.get("message") or "") or None
    return ToolRun(
        name=str(data.get("name") or "unknown"),
        arguments=arguments_text(data.get("input")),
        result=None if output is None else str(output),
        is_error=error is not None,
        error_message=message,
    )


def _time(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return iso_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def build_run(run: _Run, rel: str) -> Trace | None:
    """One exported trace and its spans -> a `Trace` (None when it ran no tool nor model)."""
    ordered = [data for _, _, data in sorted(run.spans, key=lambda s: (s[0], s[1]))]
    messages = _messages(ordered)
    runs: list[ToolRun] = []
    names: list[str] = []
    for data in ordered:
        if data.get("type") == "function":
            runs.append(_tool_run(data, data.get("__error")))
        elif data.get("type") == "agent" and isinstance(data.get("tools"), list):
            names += [t for t in data["tools"] if isinstance(t, str) and t not in names]
    if not messages and not runs:
        return None
    meta = run.meta.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    task_id = next((str(meta[k]) for k in TASK_KEYS if meta.get(k) not in (None, "")), None)
    split = next((str(meta[k]) for k in SPLIT_KEYS if meta.get(k) not in (None, "")), None)
    version = meta.get(VERSION_KEY)
    extra: dict[str, Any] = {}
    for key in ("workflow_name", "group_id"):
        if run.meta.get(key) is not None:
            extra[key] = run.meta[key]
    starts = sorted(s for s, _, _ in run.spans if s)
    return build_trace(
        run.trace_id,
        messages=messages,
        runs=runs,
        source=SourceRef(rel, run.line),
        task_id=task_id,
        version=str(version) if version not in (None, "") else None,
        definitions=names,
        split=split,
        time=_time(starts[0]) if starts else None,
        extra=extra,
    )


def _objects(obj: Any) -> list[Any]:
    """A line's exported objects: one object, an upload batch `{"data": [...]}`, or an array."""
    if isinstance(obj, dict) and "object" not in obj and isinstance(obj.get("data"), list):
        return list(obj["data"])
    if isinstance(obj, list):
        return obj
    return [obj]


def parse_file(path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """Every exported trace in the file, then the lines that were skipped."""
    runs: dict[str, _Run] = {}
    bad: list[Malformed] = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    order = 0
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            bad.append(Malformed(rel, n, "invalid UTF-8"))
            continue
        except ValueError as exc:
            if n == len(lines):
                bad.append(
                    Malformed(rel, n, "unfinished last line (truncated: no newline at the end)")
                )
            else:
                bad.append(Malformed(rel, n, f"bad JSON: {getattr(exc, 'msg', exc)}"))
            continue
        for item in _objects(obj):
            try:
                order += 1
                _add(runs, item, n, order)
            except MalformedTrace as exc:
                bad.append(Malformed(rel, n, str(exc)))
    for run in sorted(runs.values(), key=lambda r: r.line):
        try:
            trace = build_run(run, rel)
        except MalformedTrace as exc:
            bad.append(Malformed(rel, run.line, f"trace {run.trace_id}: {exc}"))
            continue
        if trace is not None:
            yield trace
    yield from sorted(bad, key=lambda m: m.line)


def _add(runs: dict[str, _Run], item: Any, line: int, order: int) -> None:
    if not isinstance(item, dict):
        raise MalformedTrace(f"expected a trace or trace.span object, got {kind_of(item)}")
    kind = item.get("object")
    if kind == "trace":
        trace_id = item.get("id")
        if not isinstance(trace_id, str) or not trace_id:
            raise MalformedTrace("trace object without an 'id'")
        run = runs.setdefault(trace_id, _Run(trace_id, line))
        run.meta = item
        run.line = min(run.line, line)
    elif kind == "trace.span":
        trace_id = item.get("trace_id")
        if not isinstance(trace_id, str) or not trace_id:
            raise MalformedTrace(f"span {item.get('id')!r} without a 'trace_id'")
        data = item.get("span_data")
        if not isinstance(data, dict):
            raise MalformedTrace(f"span {item.get('id')!r}: 'span_data' must be an object")
        run = runs.setdefault(trace_id, _Run(trace_id, line))
        start = item.get("started_at")
        run.spans.append(
            (start if isinstance(start, str) else "", order, {**data, "__error": item.get("error")})
        )
    else:
        raise MalformedTrace(f"not an Agents SDK export: 'object' is {kind!r}")


def sniff(path: Path, head: bytes) -> bool:
    """JSON Lines whose first record is an exported `trace` or `trace.span` (or a batch of them)."""
    if not path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    first = first_record(head)
    if first is INCOMPLETE:
        return _HEAD.match(head.lstrip(b"\xef\xbb\xbf")) is not None
    items = _objects(first) if first is not None else []
    return (
        bool(items)
        and isinstance(items[0], dict)
        and items[0].get("object")
        in (
            "trace",
            "trace.span",
        )
    )


FORMAT = TraceFormat(
    name="openai-agents",
    description="OpenAI Agents SDK trace exports (trace and trace.span objects)",
    sniff=sniff,
    parse_file=parse_file,
    priority=20,
)
