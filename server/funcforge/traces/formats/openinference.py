"""OpenInference (Arize Phoenix) span attributes, mapped to chat messages and tool runs.

- TOOL spans (`openinference.span.kind` = TOOL): `tool.name`, `input.value`
  (the arguments), `output.value` (the result), `tool_call.id`; a failure from
  the error status and its `exception` event.
- LLM spans: `llm.input_messages.{i}.message.{role,content,tool_call_id}`,
  `...message.contents.{k}.message_content.text`,
  `...message.tool_calls.{j}.tool_call.{id,function.name,function.arguments}`,
  the same under `llm.output_messages`; `llm.tools.{i}.tool.json_schema`.
- `session.id` groups spans into a run; `metadata` (JSON) may carry the task
  id and `funcforge.toolset_version`.

Pure functions over `otlp.Span` (no file reading here).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from funcforge.traces.formats.assemble import ToolRun, arguments_text, indexed, render

if TYPE_CHECKING:
    from funcforge.traces.formats.otlp import Span

KIND = "openinference.span.kind"


def kind(span: Span) -> str | None:
    value = span.attrs.get(KIND)
    return value.upper() if isinstance(value, str) else None


def _message(flat: dict[str, Any]) -> dict[str, Any]:
    """One `message.*` attribute set -> an OpenAI chat message."""
    msg: dict[str, Any] = {"role": str(flat.get("message.role") or "user")}
    content = flat.get("message.content")
    if content is None:
        texts = [
            render(part.get("message_content.text"))
            for part in indexed(flat, "message.contents")
            if part.get("message_content.text") is not None
        ]
        content = "".join(texts) if texts else None
    msg["content"] = None if content is None else render(content)
    calls = []
    for tc in indexed(flat, "message.tool_calls"):
        calls.append(
            {
                "id": str(tc.get("tool_call.id") or ""),
                "type": "function",
                "function": {
                    "name": str(tc.get("tool_call.function.name") or ""),
                    "arguments": arguments_text(tc.get("tool_call.function.arguments")),
                },
            }
        )
    fname = flat.get("message.function_call_name")
    if not calls and isinstance(fname, str) and fname:
        calls.append(
            {
                "id": "",
                "type": "function",
                "function": {
                    "name": fname,
                    "arguments": arguments_text(flat.get("message.function_call_arguments_json")),
                },
            }
        )
    if calls:
        msg["tool_calls"] = calls
    elif msg["content"] is None:
        msg["content"] = ""
    if flat.get("message.tool_call_id") is not None:
        msg["tool_call_id"] = str(flat["message.tool_call_id"])
    if isinstance(flat.get("message.name"), str):
        msg["name"] = flat["message.name"]
    return msg


def span_messages(span: Span) -> list[dict[str, Any]]:
    """The conversation an LLM span records (input messages, then output messages)."""
    attrs = span.attrs
    out = [_message(m) for m in indexed(attrs, "llm.input_messages")]
    out += [_message(m) for m in indexed(attrs, "llm.output_messages")]
    return out


def tool_definitions(span: Span) -> list[Any]:
    """The tools an LLM span offered the model (`llm.tools.{i}.tool.json_schema`)."""
    defs: list[Any] = []
    for tool in indexed(span.attrs, "llm.tools"):
        schema = tool.get("tool.json_schema")
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError:
                continue
        if isinstance(schema, dict):
            defs.append(schema)
    return defs


def tool_run(span: Span) -> ToolRun:
    """The tool execution a TOOL span records."""
    attrs = span.attrs
    name = attrs.get("tool.name")
    if not isinstance(name, str) or not name:
        name = span.name or "unknown"
    output = attrs.get("output.value")
    exc_type, exc_message = span.exception()
    call_id = attrs.get("tool_call.id")
    return ToolRun(
        name=name,
        arguments=arguments_text(attrs.get("input.value")),
        result=None if output is None else render(output),
        call_id=str(call_id) if call_id is not None else None,
        is_error=span.failed or exc_type is not None,
        error_type=exc_type,
        error_message=exc_message or span.status_message or None,
    )


def metadata(span: Span) -> dict[str, Any]:
    """The span's `metadata` attribute (a JSON object as text) decoded, or {}."""
    value = span.attrs.get("metadata")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def input_text(span: Span) -> str | None:
    """A plain-text `input.value` (the task an AGENT/CHAIN span was given)."""
    value = span.attrs.get("input.value")
    mime = span.attrs.get("input.mime_type")
    if isinstance(value, str) and value and mime in (None, "text/plain"):
        return value
    return None
