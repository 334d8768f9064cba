"""Shared by the import formats: one `Trace` out of messages, logged tool runs and metadata.

Imported logs tell a run twice: the conversation the model saw (messages) and
the tool executions the agent recorded (spans, rows), which carry the error
the conversation may hide. `build_trace` reconciles the two so that the
messages alone reproduce the tool calls — the native format keeps only the
messages — and the richer error details of the execution records win.

Also here: the toolset-version fallback, a hash of the tool definitions seen
in the run, identical for the same tools whatever format logged them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from funcforge.traces.formats.chat import (
    classify_result,
    content_text,
    split_exception,
    tool_calls_from_messages,
)
from funcforge.traces.model import Outcome, SourceRef, Task, ToolCall, Trace

VERSION_PREFIX = "tools-"
_INDEXED = re.compile(r"(\d+)\.(.+)")


@dataclass
class ToolRun:
    """One tool execution as a log recorded it outside the messages."""

    name: str
    arguments: str = ""
    result: str | None = None
    call_id: str | None = None
    is_error: bool = False
    error_type: str | None = None
    error_message: str | None = None


def render(value: Any) -> str:
    """A tool result as text: a string as is, anything else as JSON (repr when not JSON)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def arguments_text(value: Any) -> str:
    """Tool arguments as the raw JSON text chat messages carry."""
    if value is None:
        return ""
    return value if isinstance(value, str) else render(value)


def error_details(
    result: str | None, error_type: str | None, message: str | None
) -> tuple[str | None, str | None]:
    """The best (type, message) of a failed call from what a log recorded.

    An explicit type wins; else `KeyError: 'mile'` in the message, else the
    `Error: <Type>: ...` convention or a traceback in the result.
    """
    etype, emsg = error_type, message
    if etype is None and emsg:
        parsed = split_exception(emsg.strip().splitlines()[0] if emsg.strip() else "")
        if parsed is not None:
            etype, emsg = parsed
    if etype is None and result:
        is_err, rtype, rmsg = classify_result(result)
        if is_err and rtype and rtype != "Error":
            etype, emsg = rtype, emsg or rmsg
    if etype is not None:
        etype = etype.rsplit(".", 1)[-1] if etype.startswith("builtins.") else etype
    return etype, emsg


def indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened `prefix.{i}.rest` span attributes -> a list (by i) of {rest: value}."""
    found: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in attrs.items():
        if not key.startswith(start):
            continue
        m = _INDEXED.fullmatch(key[len(start) :])
        if m is not None:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return [found[i] for i in sorted(found)]


def iso_time(value: datetime | float | int | None) -> str | None:
    """A timestamp (datetime or seconds since the epoch) as `2026-11-20T10:00:00Z`."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), tz=timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    text = value.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


# -- the toolset-version fallback ------------------------------------------------


def _definition(value: Any) -> dict[str, Any] | None:
    """One tool definition in any logged shape -> {name, description, parameters}."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                return _definition(json.loads(text))
            except ValueError:
                return None
        return {"name": text} if text else None
    if not isinstance(value, dict):
        return None
    inner = value.get("function")
    if isinstance(inner, dict) and isinstance(inner.get("name"), str):
        value = inner  # Chat Completions: {"type": "function", "function": {...}}
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    out: dict[str, Any] = {"name": name}
    description = value.get("description")
    if isinstance(description, str) and description:
        out["description"] = description
    params = value.get("parameters", value.get("input_schema"))
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = None
    if isinstance(params, dict) and params:
        out["parameters"] = params
    return out


def definitions_version(definitions: Iterable[Any]) -> str | None:
    """`tools-<12 hex>`: a hash of the tool definitions (name, description, parameters).

    The same tools give the same hash whichever format logged them (Chat
    Completions or flat Responses/GenAI shape); None when no definition is known.
    """
    seen: dict[str, dict[str, Any]] = {}
    for raw in definitions:
        d = _definition(raw)
        if d is None:
            continue
        old = seen.get(d["name"])
        if old is None or len(d) > len(old):  # keep the fullest definition of a name
            seen[d["name"]] = d
    if not seen:
        return None
    canonical = json.dumps(
        [seen[name] for name in sorted(seen)], sort_keys=True, separators=(",", ":")
    )
    return VERSION_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


# -- reconciling messages with tool runs -------------------------------------------


def _tool_message_index(messages: list[dict[str, Any]], call_id: str) -> int | None:
    for i, msg in enumerate(messages):
        if msg.get("role") == "tool" and msg.get("tool_call_id") == call_id:
            return i
    return None


def _assistant_index(messages: list[dict[str, Any]], call_id: str) -> int | None:
    for i, msg in enumerate(messages):
        if msg.get("role") != "assistant":
            continue
        for tc in msg.get("tool_calls") or []:
            if isinstance(tc, dict) and tc.get("id") == call_id:
                return i
    return None


def _mark_error(msg: dict[str, Any], run: ToolRun) -> None:
    """Flag a tool message as failed when its text alone would not say so."""
    text = content_text(msg.get("content"))
    is_err, _, _ = classify_result(text, msg.get("is_error"))
    if not is_err:
        msg["is_error"] = True
    if run.error_type and not msg.get("error_type"):
        msg["error_type"] = run.error_type


def _tool_message(call_id: str, run: ToolRun) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "content": run.result or ""}
    if run.is_error:
        _mark_error(msg, run)
    return msg


def _insert_at(messages: list[dict[str, Any]]) -> int:
    """Where synthesised calls go: before a final plain assistant answer, else at the end."""
    last = messages[-1] if messages else None
    if last is not None and last.get("role") == "assistant" and not last.get("tool_calls"):
        return len(messages) - 1
    return len(messages)


def reconcile(messages: list[dict[str, Any]], runs: list[ToolRun]) -> list[dict[str, Any]]:
    """Messages that show every tool run: paired by call id, else by name in order.

    A run the messages lack is added as an assistant tool call and its tool
    message; a failed run whose tool message reads as a success gets
    `"is_error": true` (and `"error_type"`). Returns a new list (copied dicts).
    """
    msgs = [dict(m) for m in messages]
    calls = tool_calls_from_messages(msgs, parse_args=False)
    unpaired = list(calls)
    by_id = {c.id: c for c in calls}
    extra: list[tuple[str, ToolRun]] = []
    for n, run in enumerate(runs, 1):
        call: ToolCall | None = None
        if run.call_id and run.call_id in by_id and by_id[run.call_id] in unpaired:
            call = by_id[run.call_id]
        else:
            call = next((c for c in unpaired if c.name == run.name), None)
        if call is None:
            extra.append((run.call_id or f"call-{len(calls) + n}", run))
            continue
        unpaired.remove(call)
        ti = _tool_message_index(msgs, call.id)
        if ti is not None:
            if run.is_error:
                _mark_error(msgs[ti], run)
            continue
        ai = _assistant_index(msgs, call.id)
        if ai is not None and (run.result is not None or run.is_error):
            pos = ai + 1
            while pos < len(msgs) and msgs[pos].get("role") == "tool":
                pos += 1
            msgs.insert(pos, _tool_message(call.id, run))
    if extra:
        at = _insert_at(msgs)
        added: list[dict[str, Any]] = []
        for call_id, run in extra:
            added.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": run.name, "arguments": run.arguments},
                        }
                    ],
                }
            )
            added.append(_tool_message(call_id, run))
        msgs[at:at] = added
    return msgs


def _overlay(calls: list[ToolCall], runs: list[ToolRun]) -> None:
    """Give the message-derived calls the error details the runs recorded."""
    remaining = list(runs)
    for call in calls:
        run = next((r for r in remaining if r.call_id and r.call_id == call.id), None)
        if run is None:
            run = next((r for r in remaining if r.name == call.name), None)
        if run is None:
            continue
        remaining.remove(run)
        if run.is_error:
            call.is_error = True
            etype, emsg = error_details(call.result, run.error_type, run.error_message)
            generic = call.error_type in (None, "Error")
            if etype and (generic or run.error_type):
                call.error_type = etype
            if emsg and (generic or not call.error_message):
                call.error_message = emsg  # the log's own account beats the text the model saw
            if call.error_type is None:
                call.error_type = "Error"


def first_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The text of the first user message (the task's input, as the agent got it)."""
    for msg in messages:
        if msg.get("role") == "user":
            text = content_text(msg.get("content"))
            if text:
                return text
    return None


def build_trace(
    trace_id: str,
    *,
    messages: list[dict[str, Any]] | None = None,
    runs: list[ToolRun] | None = None,
    source: SourceRef,
    task_id: str | None = None,
    task_input: str | None = None,
    expected: str | None = None,
    version: str | None = None,
    definitions: Iterable[Any] = (),
    outcome: Outcome | None = None,
    split: str | None = None,
    time: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Trace:
    """A `Trace` whose messages reproduce its tool calls (see `reconcile`).

    Without an explicit version the tool-definition hash is used; without a
    task id but with an input, the trace id stands in as the task id.
    """
    runs = runs or []
    msgs = reconcile(messages or [], runs)
    calls = tool_calls_from_messages(msgs)
    _overlay(calls, runs)
    task_input = task_input or first_user_text(msgs)
    task = None
    if task_id is not None or task_input:
        task = Task(task_id or trace_id, task_input or "", expected)
    return Trace(
        id=trace_id,
        task=task,
        messages=msgs,
        tool_calls=calls,
        outcome=outcome or Outcome(),
        toolset_version=version or definitions_version(definitions),
        split=split,
        time=time,
        source=source,
        extra=dict(extra or {}),
    )
