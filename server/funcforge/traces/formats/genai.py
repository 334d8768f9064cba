"""The OpenTelemetry GenAI semantic conventions, mapped to chat messages and tool runs.

- `execute_tool {name}` spans: `gen_ai.tool.name`, `gen_ai.tool.call.id`,
  `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result`; a failure from
  `error.type`, the span's error status or its `exception` event.
- Messages: `gen_ai.input.messages` / `gen_ai.output.messages` (parts `text`,
  `tool_call`, `tool_call_response` with `response` or `result`) and
  `gen_ai.system_instructions`; the older per-message events
  (`gen_ai.{system,user,assistant,tool}.message`, `gen_ai.choice`) as span
  events or log records; the oldest `gen_ai.content.prompt/completion` events.
- The older OpenLLMetry attributes: `gen_ai.prompt.{i}.role/content/tool_call_id`,
  `gen_ai.prompt.{i}.tool_calls.{j}.id/name/arguments`, the same under
  `gen_ai.completion.{i}`, and `llm.request.functions.{i}.name/description/parameters`.
- `gen_ai.evaluation.result` events -> the outcome; `gen_ai.tool.definitions`
  -> the tool definitions (for the toolset-version fallback).

Pure functions over `otlp.Span` / `otlp.LogEvent` (no file reading here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from funcforge.traces.formats.assemble import ToolRun, arguments_text, indexed, render
from funcforge.traces.model import Outcome

if TYPE_CHECKING:
    from funcforge.traces.formats.otlp import Span

MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
EVALUATION_EVENT = "gen_ai.evaluation.result"
PASS_LABELS = frozenset({"pass", "passed", "true", "correct", "success", "succeeded", "yes"})
FAIL_LABELS = frozenset({"fail", "failed", "false", "incorrect", "failure", "error", "no"})


def _json(value: Any) -> Any:
    """A JSON-in-a-string attribute decoded (other values as they are)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def is_tool_span(span: Span) -> bool:
    op = span.attrs.get("gen_ai.operation.name")
    return op == "execute_tool" or (op is None and span.name.startswith("execute_tool"))


def tool_run(span: Span) -> ToolRun:
    """The tool execution an `execute_tool` span records."""
    attrs = span.attrs
    name = attrs.get("gen_ai.tool.name")
    if not isinstance(name, str) or not name:
        name = span.name.removeprefix("execute_tool").strip() or "unknown"
    result = attrs.get("gen_ai.tool.call.result")
    etype = attrs.get("error.type")
    exc_type, exc_message = span.exception()
    is_error = span.failed or etype is not None or exc_type is not None
    call_id = attrs.get("gen_ai.tool.call.id")
    return ToolRun(
        name=name,
        arguments=arguments_text(attrs.get("gen_ai.tool.call.arguments")),
        result=None if result is None else render(result),
        call_id=str(call_id) if call_id is not None else None,
        is_error=is_error,
        error_type=(str(etype) if etype not in (None, "_OTHER") else None) or exc_type,
        error_message=exc_message or span.status_message or None,
    )


# -- messages ----------------------------------------------------------------------


def _tool_call(part: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(part.get("id") or ""),
        "type": "function",
        "function": {
            "name": str(part.get("name") or ""),
            "arguments": arguments_text(part.get("arguments")),
        },
    }


def chat_messages(value: Any) -> list[dict[str, Any]]:
    """`gen_ai.input/output.messages` (role + parts) -> OpenAI chat messages."""
    value = _json(value)
    if not isinstance(value, list):
        return []
    out: list[dict[str, Any]] = []
    for msg in value:
        if not isinstance(msg, dict):
            continue
        role = str(msg.get("role") or "user")
        parts = msg.get("parts")
        if not isinstance(parts, list):  # an older shape: content directly on the message
            parts = [{"type": "text", "content": msg.get("content")}]
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        responses: list[dict[str, Any]] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and part.get("content") is not None:
                texts.append(render(part["content"]))
            elif kind == "tool_call":
                calls.append(_tool_call(part))
            elif kind == "tool_call_response":
                responses.append(part)
        if responses:  # a tool message (its text parts, when any, repeat the result)
            for part in responses:
                result = part.get("response", part.get("result"))
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(part.get("id") or ""),
                        "content": "" if result is None else render(result),
                    }
                )
            continue
        chat: dict[str, Any] = {"role": role, "content": "".join(texts) if texts else None}
        if role == "tool" and msg.get("id") is not None:
            chat["tool_call_id"] = str(msg["id"])
        if calls:
            chat["tool_calls"] = calls
        elif chat["content"] is None:
            chat["content"] = ""
        out.append(chat)
    return out


def _system_instructions(value: Any) -> dict[str, Any] | None:
    value = _json(value)
    if isinstance(value, str):
        return {"role": "system", "content": value}
    if isinstance(value, list):
        texts = [
            render(p.get("content"))
            for p in value
            if isinstance(p, dict) and p.get("content") is not None
        ]
        if texts:
            return {"role": "system", "content": "".join(texts)}
    return None


def _event_message(name: str, body: Any) -> dict[str, Any] | None:
    """One per-message event (body from a log record, or a span event's attributes)."""
    body = _json(body)
    if not isinstance(body, dict):
        body = {"content": body} if body is not None else {}
    if isinstance(body.get("gen_ai.event.content"), str):
        decoded = _json(body["gen_ai.event.content"])
        if isinstance(decoded, dict):
            body = decoded
    if name == CHOICE_EVENT:
        if body.get("index", 0) not in (0, "0"):
            return None
        inner = _json(body.get("message"))
        body = inner if isinstance(inner, dict) else {}
        role = "assistant"
    else:
        role = MESSAGE_EVENTS[name]
    msg: dict[str, Any] = {"role": str(body.get("role") or role)}
    content = _json(body.get("content"))
    msg["content"] = None if content is None else render(content)
    calls = _json(body.get("tool_calls"))
    if isinstance(calls, list) and calls:
        out_calls = []
        for tc in calls:
            if not isinstance(tc, dict):
                continue
            fn = _json(tc.get("function"))
            fn = fn if isinstance(fn, dict) else {}
            out_calls.append(
                {
                    "id": str(tc.get("id") or ""),
                    "type": "function",
                    "function": {
                        "name": str(fn.get("name") or tc.get("name") or ""),
                        "arguments": arguments_text(fn.get("arguments", tc.get("arguments"))),
                    },
                }
            )
        msg["tool_calls"] = out_calls
    if msg["role"] == "tool" and body.get("id") is not None:
        msg["tool_call_id"] = str(body["id"])
    if msg["content"] is None and not msg.get("tool_calls"):
        msg["content"] = ""
    return msg


def messages_from_events(events: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Per-message events `(name, body)` in order -> chat messages (others ignored)."""
    out: list[dict[str, Any]] = []
    for name, body in events:
        if name in MESSAGE_EVENTS or name == CHOICE_EVENT:
            msg = _event_message(name, body)
            if msg is not None:
                out.append(msg)
        elif name in ("gen_ai.content.prompt", "gen_ai.content.completion"):
            key = "gen_ai.prompt" if name.endswith("prompt") else "gen_ai.completion"
            value = _json(body.get(key) if isinstance(body, dict) else None)
            if isinstance(value, list):
                out.extend(dict(m) for m in value if isinstance(m, dict) and "role" in m)
            elif isinstance(value, str):
                out.append({"role": "assistant", "content": value})
    return out


def _indexed_message(flat: dict[str, Any]) -> dict[str, Any]:
    """One `gen_ai.prompt.{i}.*` / `gen_ai.completion.{i}.*` attribute set -> a chat message."""
    msg: dict[str, Any] = {"role": str(flat.get("role") or "assistant")}
    content = flat.get("content")
    msg["content"] = None if content is None else render(content)
    calls = [
        {
            "id": str(tc.get("id") or ""),
            "type": "function",
            "function": {
                "name": str(tc.get("name") or ""),
                "arguments": arguments_text(tc.get("arguments")),
            },
        }
        for tc in indexed(flat, "tool_calls")
    ]
    if calls:
        msg["tool_calls"] = calls
    elif msg["content"] is None:
        msg["content"] = ""
    if flat.get("tool_call_id") is not None:
        msg["tool_call_id"] = str(flat["tool_call_id"])
    return msg


def span_messages(span: Span) -> list[dict[str, Any]]:
    """The conversation one span records (attributes first, else its events)."""
    attrs = span.attrs
    msgs: list[dict[str, Any]] = []
    legacy = indexed(attrs, "gen_ai.prompt") + indexed(attrs, "gen_ai.completion")
    if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        msgs = chat_messages(attrs.get("gen_ai.input.messages"))
        msgs += chat_messages(attrs.get("gen_ai.output.messages"))
    elif legacy:
        msgs = [_indexed_message(m) for m in legacy if "role" in m or "content" in m]
    else:
        msgs = messages_from_events((e.name, e.attrs) for e in span.events)
    if msgs and not any(m.get("role") == "system" for m in msgs):
        system = _system_instructions(attrs.get("gen_ai.system_instructions"))
        if system is not None:
            msgs.insert(0, system)
    return msgs


# -- definitions and outcome ----------------------------------------------------------


def tool_definitions(span: Span) -> list[Any]:
    """Tool definitions a span lists (`gen_ai.tool.definitions`, `llm.request.functions.{i}`)."""
    value = _json(span.attrs.get("gen_ai.tool.definitions"))
    defs = list(value) if isinstance(value, list) else []
    for fn in indexed(span.attrs, "llm.request.functions"):
        if isinstance(fn.get("name"), str):
            defs.append(
                {k: fn[k] for k in ("name", "description", "parameters") if fn.get(k) is not None}
            )
    return defs


def evaluation_outcome(evaluations: Iterable[dict[str, Any]]) -> Outcome | None:
    """`gen_ai.evaluation.result` attribute sets -> one outcome (mean score, all passed)."""
    scores: list[float] = []
    verdicts: list[bool] = []
    for attrs in evaluations:
        score = attrs.get("gen_ai.evaluation.score.value")
        if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 1:
            scores.append(float(score))
        label = attrs.get("gen_ai.evaluation.score.label")
        if isinstance(label, bool):
            verdicts.append(label)
        elif isinstance(label, str):
            low = label.strip().lower()
            if low in PASS_LABELS:
                verdicts.append(True)
            elif low in FAIL_LABELS:
                verdicts.append(False)
    if not scores and not verdicts:
        return None
    return Outcome(
        score=sum(scores) / len(scores) if scores else None,
        passed=all(verdicts) if verdicts else None,
    )
