"""OTLP JSON Lines: the OpenTelemetry file exporter's format, read as agent runs.

Each line is one `TracesData` (`resourceSpans`) or `LogsData` (`resourceLogs`)
object in the OTLP JSON encoding: hex trace and span ids (base64 ids from
protobuf's JSON mapping are accepted too), attributes as key/value lists.
Spans are grouped into runs by `gen_ai.conversation.id` or OpenInference's
`session.id` (one id per OTLP trace; a trace that holds several conversations
is split by the nearest ancestor carrying one), else by trace id. Log records
(the GenAI per-message events) join the run of their trace.

Each run becomes a `Trace` through the GenAI (`genai.py`) and OpenInference
(`openinference.py`) mappings: the longest conversation a span records gives
the messages, tool spans give the tool runs with their errors. The run's
`funcforge.toolset_version`, `funcforge.task.id` and `funcforge.split` come
from span attributes, OpenInference `metadata`, or resource attributes; a
`gen_ai.evaluation.result` event gives the outcome. A whole-file format:
spans of one run may be spread over many lines. A file holding one
pretty-printed TracesData document (a collector's `.json` export) is read whole.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funcforge.traces.formats import (
    JSONL_SUFFIXES,
    Malformed,
    TraceFormat,
    genai,
    kind_of,
    openinference,
)
from funcforge.traces.formats.assemble import ToolRun, build_trace, iso_time
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

VERSION_KEY = "funcforge.toolset_version"
TASK_KEYS = ("funcforge.task.id", "task_id", "task.id")
SPLIT_KEYS = ("funcforge.split", "split")
CONVERSATION_KEYS = ("gen_ai.conversation.id", "session.id")
_HEAD = re.compile(rb'^(?:\xef\xbb\xbf)?\s*\{\s*"(resourceSpans|resourceLogs)"\s*:')
STATUS_ERROR = 2


@dataclass
class Event:
    name: str
    attrs: dict[str, Any]
    time: int = 0


@dataclass
class Span:
    """One span, decoded: the parts the GenAI and OpenInference mappings read."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    attrs: dict[str, Any]
    events: list[Event]
    status_code: int
    status_message: str
    start: int
    end: int
    resource: dict[str, Any]
    line: int
    order: int

    @property
    def failed(self) -> bool:
        return self.status_code == STATUS_ERROR

    def exception(self) -> tuple[str | None, str | None]:
        """(type, message) of the span's `exception` event, if it has one."""
        for event in self.events:
            if event.name == "exception":
                etype = event.attrs.get("exception.type")
                message = event.attrs.get("exception.message")
                return (
                    str(etype) if etype is not None else None,
                    str(message) if message is not None else None,
                )
        return None, None


@dataclass
class LogEvent:
    """One log record (a GenAI per-message or evaluation event)."""

    name: str
    body: Any
    attrs: dict[str, Any]
    trace_id: str
    span_id: str | None
    time: int
    resource: dict[str, Any]
    line: int
    order: int


@dataclass
class _Run:
    key: str
    spans: list[Span] = field(default_factory=list)
    logs: list[LogEvent] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)


# -- decoding ----------------------------------------------------------------------


def any_value(value: Any) -> Any:
    """An OTLP `AnyValue` (`{"stringValue": ...}` etc.) as a plain Python value."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError):
            return value["doubleValue"]
    if "arrayValue" in value:
        items = (value["arrayValue"] or {}).get("values") or []
        return [any_value(v) for v in items]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values") or [])
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(items: Any) -> dict[str, Any]:
    """An OTLP key/value list (or an already plain object) as a dict."""
    if isinstance(items, dict):
        return {str(k): any_value(v) for k, v in items.items()}
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = any_value(item.get("value"))
    return out


def hex_id(value: Any, size: int) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id as lowercase hex; base64 is converted."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == size * 2 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == size else None


def _nanos(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _status_code(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        return STATUS_ERROR if value.upper().endswith("ERROR") else 0
    return 0


def _single_document(data: bytes) -> Any:
    """The file as one JSON object when it is one spread over several lines, else None."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    first = text.split(b"\n", 1)[0]
    if b"\n" not in text.rstrip() or not text.startswith(b"{"):
        return None
    try:
        json.loads(first)
        return None  # the first line stands alone: JSON Lines
    except ValueError:
        pass
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


class _Reader:
    """Decodes the lines of one file into spans and log events, noting what it skips."""

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.spans: list[Span] = []
        self.logs: list[LogEvent] = []
        self.malformed: list[Malformed] = []
        self.order = 0

    def bad(self, line: int, reason: str) -> None:
        self.malformed.append(Malformed(self.rel, line, reason))

    def read(self, path: Path) -> None:
        data = path.read_bytes()
        whole = _single_document(data)
        if whole is not None:  # one pretty-printed TracesData (a collector's .json export)
            try:
                self.record(whole, 1)
            except MalformedTrace as exc:
                self.bad(1, str(exc))
            return
        lines = data.split(b"\n")
        unfinished = not data.endswith(b"\n")
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.bad(n, "invalid UTF-8")
                continue
            except ValueError as exc:
                if unfinished and n == len(lines):
                    self.bad(n, "unfinished last line (truncated: no newline at the end)")
                else:
                    self.bad(n, f"bad JSON: {getattr(exc, 'msg', exc)}")
                continue
            try:
                self.record(obj, n)
            except MalformedTrace as exc:
                self.bad(n, str(exc))

    def record(self, obj: Any, line: int) -> None:
        if not isinstance(obj, dict):
            raise MalformedTrace(f"expected an OTLP TracesData object, got {kind_of(obj)}")
        if "resourceSpans" in obj:
            self._resource_spans(obj["resourceSpans"], line)
        elif "resourceLogs" in obj:
            self._resource_logs(obj["resourceLogs"], line)
        elif "resourceMetrics" in obj:
            raise MalformedTrace("OTLP metrics hold no traces")
        else:
            raise MalformedTrace("not OTLP JSON: no 'resourceSpans' or 'resourceLogs'")

    def _resource_spans(self, value: Any, line: int) -> None:
        if not isinstance(value, list):
            raise MalformedTrace(f"'resourceSpans' must be an array, got {kind_of(value)}")
        for i, rs in enumerate(value):
            if not isinstance(rs, dict):
                raise MalformedTrace(f"resourceSpans[{i}] must be an object")
            resource = attributes((rs.get("resource") or {}).get("attributes"))
            scopes = rs.get("scopeSpans", rs.get("instrumentationLibrarySpans")) or []
            for j, ss in enumerate(scopes if isinstance(scopes, list) else []):
                spans = ss.get("spans") if isinstance(ss, dict) else None
                for k, sp in enumerate(spans if isinstance(spans, list) else []):
                    where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    try:
                        self.spans.append(self._span(sp, resource, line, where))
                    except MalformedTrace as exc:
                        self.bad(line, str(exc))

    def _span(self, sp: Any, resource: dict[str, Any], line: int, where: str) -> Span:
        if not isinstance(sp, dict):
            raise MalformedTrace(f"{where} must be an object, got {kind_of(sp)}")
        trace_id = hex_id(sp.get("traceId"), 16)
        span_id = hex_id(sp.get("spanId"), 8)
        if trace_id is None:
            raise MalformedTrace(f"{where}: missing or invalid traceId")
        if span_id is None:
            raise MalformedTrace(f"{where}: missing or invalid spanId")
        status = sp.get("status")
        if not isinstance(status, dict):
            status = {}
        events = [
            Event(
                str(e.get("name") or ""),
                attributes(e.get("attributes")),
                _nanos(e.get("timeUnixNano")),
            )
            for e in sp.get("events") or []
            if isinstance(e, dict)
        ]
        self.order += 1
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_id=hex_id(sp.get("parentSpanId"), 8),
            name=str(sp.get("name") or ""),
            attrs=attributes(sp.get("attributes")),
            events=events,
            status_code=_status_code(status.get("code")),
            status_message=str(status.get("message") or ""),
            start=_nanos(sp.get("startTimeUnixNano")),
            end=_nanos(sp.get("endTimeUnixNano")),
            resource=resource,
            line=line,
            order=self.order,
        )

    def _resource_logs(self, value: Any, line: int) -> None:
        if not isinstance(value, list):
            raise MalformedTrace(f"'resourceLogs' must be an array, got {kind_of(value)}")
        for i, rl in enumerate(value):
            if not isinstance(rl, dict):
                raise MalformedTrace(f"resourceLogs[{i}] must be an object")
            resource = attributes((rl.get("resource") or {}).get("attributes"))
            scopes = rl.get("scopeLogs") or []
            for j, sl in enumerate(scopes if isinstance(scopes, list) else []):
                records = sl.get("logRecords") if isinstance(sl, dict) else None
                for k, rec in enumerate(records if isinstance(records, list) else []):
                    where = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                    if not isinstance(rec, dict):
                        self.bad(line, f"{where} must be an object")
                        continue
                    attrs = attributes(rec.get("attributes"))
                    name = rec.get("eventName") or attrs.get("event.name")
                    if not isinstance(name, str) or not name.startswith("gen_ai."):
                        continue  # an ordinary log line, not a GenAI event
                    trace_id = hex_id(rec.get("traceId"), 16)
                    if trace_id is None:
                        self.bad(line, f"{where}: GenAI event without a traceId")
                        continue
                    self.order += 1
                    self.logs.append(
                        LogEvent(
                            name=name,
                            body=any_value(rec.get("body")),
                            attrs=attrs,
                            trace_id=trace_id,
                            span_id=hex_id(rec.get("spanId"), 8),
                            time=_nanos(rec.get("timeUnixNano"))
                            or _nanos(rec.get("observedTimeUnixNano")),
                            resource=resource,
                            line=line,
                            order=self.order,
                        )
                    )


# -- grouping ----------------------------------------------------------------------


SpanReader = _Reader  # the receiver (traces/receiver.py) reads requests with it


def _conversation(span: Span) -> str | None:
    for key in CONVERSATION_KEYS:
        value = span.attrs.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def group_runs(spans: list[Span], logs: list[LogEvent]) -> list[_Run]:
    """Spans and log events grouped into runs, in the order they first appear."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    runs: dict[str, _Run] = {}
    span_key: dict[tuple[str, str], str] = {}

    def run_for(key: str, trace_id: str) -> _Run:
        run = runs.get(key)
        if run is None:
            run = runs[key] = _Run(key)
        if trace_id not in run.trace_ids:
            run.trace_ids.append(trace_id)
        return run

    for trace_id, members in by_trace.items():
        convs = {c for c in map(_conversation, members) if c is not None}
        if len(convs) <= 1:
            key = next(iter(convs), trace_id)
            for span in members:
                span_key[(trace_id, span.span_id)] = key
                run_for(key, trace_id).spans.append(span)
            continue
        index = {s.span_id: s for s in members}
        for span in members:
            node: Span | None = span
            found: str | None = None
            seen: set[str] = set()
            while node is not None and node.span_id not in seen:
                seen.add(node.span_id)
                found = _conversation(node)
                if found is not None:
                    break
                node = index.get(node.parent_id) if node.parent_id else None
            span_key[(trace_id, span.span_id)] = found or trace_id
            run_for(found or trace_id, trace_id).spans.append(span)
    for event in logs:
        key = span_key.get((event.trace_id, event.span_id or ""), event.trace_id)
        if key == event.trace_id and event.trace_id in by_trace:
            keys = {span_key[(event.trace_id, s.span_id)] for s in by_trace[event.trace_id]}
            if len(keys) == 1:
                key = keys.pop()
        run_for(key, event.trace_id).logs.append(event)
    return sorted(runs.values(), key=_first_order)


def _first_order(run: _Run) -> tuple[int, int]:
    items = [(s.line, s.order) for s in run.spans] + [(e.line, e.order) for e in run.logs]
    return min(items)


# -- building traces -----------------------------------------------------------------


def _depth(span: Span, index: dict[str, Span]) -> int:
    depth, node, seen = 0, span, set()
    while node.parent_id and node.parent_id in index and node.span_id not in seen:
        seen.add(node.span_id)
        node = index[node.parent_id]
        depth += 1
    return depth


def _lookup(run: _Run, ordered: list[Span], keys: tuple[str, ...]) -> str | None:
    """The first value of `keys` on the spans (root first), OpenInference metadata, resources."""
    for span in ordered:
        for key in keys:
            if span.attrs.get(key) not in (None, ""):
                return str(span.attrs[key])
    for span in ordered:
        meta = openinference.metadata(span)
        for key in keys:
            if meta.get(key) not in (None, ""):
                return str(meta[key])
    for event in run.logs:
        for key in keys:
            if event.attrs.get(key) not in (None, ""):
                return str(event.attrs[key])
    for holder in [s.resource for s in ordered] + [e.resource for e in run.logs]:
        for key in keys:
            if holder.get(key) not in (None, ""):
                return str(holder[key])
    return None


def _messages(run: _Run) -> list[dict[str, Any]]:
    """The longest conversation any span (or span's log events) records; later wins ties."""
    best: list[dict[str, Any]] = []
    best_end = -1
    candidates: list[tuple[list[dict[str, Any]], int]] = []
    for span in run.spans:
        kind = openinference.kind(span)
        msgs = openinference.span_messages(span) if kind == "LLM" else genai.span_messages(span)
        candidates.append((msgs, span.end))
    by_span: dict[str, list[LogEvent]] = {}
    for event in run.logs:
        by_span.setdefault(event.span_id or event.trace_id, []).append(event)
    for events in by_span.values():
        events.sort(key=lambda e: (e.time, e.order))
        msgs = genai.messages_from_events((e.name, e.body) for e in events)
        candidates.append((msgs, max(e.time for e in events)))
    for msgs, end in candidates:
        if len(msgs) > len(best) or (msgs and len(msgs) == len(best) and end >= best_end):
            best, best_end = msgs, end
    return best


def _runs(run: _Run) -> list[ToolRun]:
    tools: list[tuple[int, int, ToolRun]] = []
    for span in run.spans:
        if openinference.kind(span) == "TOOL":
            tools.append((span.start, span.order, openinference.tool_run(span)))
        elif genai.is_tool_span(span):
            tools.append((span.start, span.order, genai.tool_run(span)))
    return [t for _, _, t in sorted(tools, key=lambda t: (t[0], t[1]))]


def _definitions(run: _Run) -> list[Any]:
    """The tool definitions the model was offered (a tool span describes only itself)."""
    offered: list[Any] = []
    for span in run.spans:
        offered += genai.tool_definitions(span)
        if openinference.kind(span) == "LLM":
            offered += openinference.tool_definitions(span)
    return offered


def build_run(run: _Run, rel: str) -> Trace | None:
    """One run -> a `Trace`, or None when it holds neither messages nor tool runs."""
    messages = _messages(run)
    tool_runs = _runs(run)
    if not messages and not tool_runs:
        return None
    index = {s.span_id: s for s in run.spans}
    ordered = sorted(run.spans, key=lambda s: (_depth(s, index), s.start, s.order))
    evaluations = [e.attrs for s in run.spans for e in s.events if e.name == genai.EVALUATION_EVENT]
    evaluations += [
        {**(e.body if isinstance(e.body, dict) else {}), **e.attrs}
        for e in run.logs
        if e.name == genai.EVALUATION_EVENT
    ]
    task_input = None
    for span in ordered:
        if openinference.kind(span) in ("AGENT", "CHAIN"):
            task_input = openinference.input_text(span)
            if task_input:
                break
    starts = [s.start for s in run.spans if s.start] + [e.time for e in run.logs if e.time]
    line = min([s.line for s in run.spans] + [e.line for e in run.logs])
    extra: dict[str, Any] = {}
    if run.trace_ids != [run.key]:
        extra["otel_trace_ids"] = list(run.trace_ids)
    return build_trace(
        run.key,
        messages=messages,
        runs=tool_runs,
        source=SourceRef(rel, line),
        task_id=_lookup(run, ordered, TASK_KEYS),
        task_input=None if any(m.get("role") == "user" for m in messages) else task_input,
        version=_lookup(run, ordered, (VERSION_KEY,)),
        definitions=_definitions(run),
        outcome=genai.evaluation_outcome(evaluations),
        split=_lookup(run, ordered, SPLIT_KEYS),
        time=iso_time(min(starts) / 1e9) if starts else None,
        extra=extra,
    )


def parse_file(path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """Every run in an OTLP JSON Lines file, then the lines and spans that were skipped."""
    reader = _Reader(rel)
    reader.read(path)
    for run in group_runs(reader.spans, reader.logs):
        try:
            trace = build_run(run, rel)
        except MalformedTrace as exc:
            line = _first_order(run)[0]
            yield Malformed(rel, line, f"run {run.key}: {exc}")
            continue
        if trace is not None:
            yield trace
    yield from reader.malformed


def sniff(path: Path, head: bytes) -> bool:
    """A JSON Lines file whose first line opens a TracesData or LogsData object."""
    if not path.name.lower().endswith((*JSONL_SUFFIXES, ".json")):
        return False
    return _HEAD.match(head.lstrip(b" \t\r\n")) is not None


FORMAT = TraceFormat(
    name="otlp",
    description="OpenTelemetry OTLP JSON Lines (file exporter): GenAI and OpenInference spans",
    sniff=sniff,
    parse_file=parse_file,
    priority=20,
)
