"""autogen-agentchat message dumps, one run per JSON line.

A line is one of:
- a `TaskResult` dump (`{"messages": [...], "stop_reason": ...}`) or an array
  of agentchat messages: `TextMessage`, `ToolCallRequestEvent` (a list of
  `FunctionCall` {id, name, arguments}), `ToolCallExecutionEvent` (a list of
  `FunctionExecutionResult` {call_id, name, content, is_error}),
  `ToolCallSummaryMessage`, ...;
- an agent's `save_state()` (`AssistantAgentState` with `llm_context.messages`:
  `SystemMessage`, `UserMessage`, `AssistantMessage`, `FunctionExecutionResultMessage`),
  or a team's state holding such agent states (one run per agent).

`is_error` is kept on the tool message, so a failure whose text is just
`'mile'` still counts. A run is named after its place (`file:line`, `#n` for
the n-th agent of a team state) unless the line has an `id`; keys the native
format knows (`task`, `outcome`, `toolset_version`, ...) are honoured.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from funcforge.traces.formats import (
    INCOMPLETE,
    JSONL_SUFFIXES,
    TraceFormat,
    first_record,
    kind_of,
)
from funcforge.traces.formats.assemble import arguments_text, build_trace, iso_time, render
from funcforge.traces.formats.native import parse_outcome, parse_task
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

CHAT_TYPES = frozenset(
    {
        "TextMessage",
        "ToolCallRequestEvent",
        "ToolCallExecutionEvent",
        "ToolCallSummaryMessage",
        "HandoffMessage",
        "StopMessage",
        "MultiModalMessage",
        "StructuredMessage",
        "ThoughtEvent",
        "MemoryQueryEvent",
        "UserInputRequestedEvent",
    }
)
LLM_TYPES = frozenset(
    {"SystemMessage", "UserMessage", "AssistantMessage", "FunctionExecutionResultMessage"}
)
_TEXT_TYPES = frozenset(
    {
        "TextMessage",
        "ToolCallSummaryMessage",
        "HandoffMessage",
        "StopMessage",
        "MultiModalMessage",
        "StructuredMessage",
    }
)
_HEAD = re.compile(  # agentchat's own keys and type names, for a first line longer than the head
    rb'"(models_usage|llm_context)"\s*:'
    rb'|"type"\s*:\s*"(TextMessage|ToolCallRequestEvent|AssistantAgentState|TeamState|UserMessage)"'
)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal: strings and images
        return "".join(c for c in content if isinstance(c, str))
    return "" if content is None else render(content)


def _calls(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise MalformedTrace(
            f"{where}.content must be an array of FunctionCall, got {kind_of(content)}"
        )
    out = []
    for j, fc in enumerate(content):
        if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
            raise MalformedTrace(f"{where}.content[{j}] is not a FunctionCall (no 'name')")
        out.append(
            {
                "id": str(fc.get("id") or f"call-{j + 1}"),
                "type": "function",
                "function": {"name": fc["name"], "arguments": arguments_text(fc.get("arguments"))},
            }
        )
    return out


def _results(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise MalformedTrace(
            f"{where}.content must be an array of FunctionExecutionResult, got {kind_of(content)}"
        )
    out = []
    for j, res in enumerate(content):
        if not isinstance(res, dict) or "call_id" not in res:
            raise MalformedTrace(f"{where}.content[{j}] is not a FunctionExecutionResult")
        msg: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": str(res["call_id"]),
            "content": _text(res.get("content")),
        }
        if isinstance(res.get("is_error"), bool):
            msg["is_error"] = res["is_error"]
        out.append(msg)
    return out


def chat_messages(messages: list[Any], where: str = "messages") -> list[dict[str, Any]]:
    """agentchat messages or model-context messages -> OpenAI chat messages."""
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(msg, dict):
            raise MalformedTrace(f"{at} must be an object, got {kind_of(msg)}")
        kind = msg.get("type")
        content = msg.get("content")
        if kind in ("ToolCallRequestEvent",) or (
            kind == "AssistantMessage" and isinstance(content, list)
        ):
            out.append({"role": "assistant", "content": None, "tool_calls": _calls(content, at)})
        elif kind in ("ToolCallExecutionEvent", "FunctionExecutionResultMessage"):
            out += _results(content, at)
        elif kind == "SystemMessage":
            out.append({"role": "system", "content": _text(content)})
        elif kind == "UserMessage":
            out.append({"role": "user", "content": _text(content)})
        elif kind == "AssistantMessage":
            out.append({"role": "assistant", "content": _text(content)})
        elif kind in _TEXT_TYPES:
            role = "user" if msg.get("source") == "user" else "assistant"
            out.append({"role": role, "content": _text(content)})
        elif not isinstance(kind, str):
            raise MalformedTrace(f"{at} has no 'type' (not an agentchat message)")
        # other events (thoughts, memory queries, streaming chunks) hold no tool calls
    return out


def _contexts(obj: Any, path: str = "") -> list[tuple[str, list[Any]]]:
    """Every `llm_context.messages` inside a (team or agent) state, with where it is."""
    found: list[tuple[str, list[Any]]] = []
    if isinstance(obj, dict):
        ctx = obj.get("llm_context")
        if isinstance(ctx, dict) and isinstance(ctx.get("messages"), list):
            found.append((path, ctx["messages"]))
        for key, value in obj.items():
            if key != "llm_context" and isinstance(value, (dict, list)):
                found += _contexts(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += _contexts(value, f"{path}[{i}]")
    return found


def parse_record(obj: Any, ref: SourceRef) -> list[Trace]:
    """One JSON line -> its run(s)."""
    base = f"{ref.file}:{ref.line}"
    native: dict[str, Any] = {}
    if isinstance(obj, list):
        runs = [("", obj)]
    elif isinstance(obj, dict) and isinstance(obj.get("messages"), list):
        runs, native = [("", obj["messages"])], obj
    elif isinstance(obj, dict):
        runs = _contexts(obj)
        native = obj
        if not runs:
            raise MalformedTrace("no agentchat messages: no 'messages' or 'llm_context.messages'")
    else:
        raise MalformedTrace(
            f"expected a TaskResult, a message array or a state, got {kind_of(obj)}"
        )
    task = parse_task(native.get("task")) if isinstance(native.get("task"), dict) else None
    given_id = native.get("id")
    out = []
    for n, (where, messages) in enumerate(runs, 1):
        trace_id = str(given_id) if isinstance(given_id, (str, int)) else base
        if len(runs) > 1:
            trace_id = f"{trace_id}#{n}"
        extra = {"agent_state": where} if where else {}
        out.append(
            build_trace(
                trace_id,
                messages=chat_messages(messages, f"{where}.messages" if where else "messages"),
                source=ref,
                task_id=task.id if task else None,
                task_input=task.input if task and task.input else None,
                expected=task.expected if task else None,
                version=native.get("toolset_version")
                if isinstance(native.get("toolset_version"), str)
                else None,
                outcome=parse_outcome(native.get("outcome")),
                split=native.get("split") if isinstance(native.get("split"), str) else None,
                time=native.get("time")
                if isinstance(native.get("time"), str)
                else _started(messages),
                extra=extra,
            )
        )
    return out


def _started(messages: list[Any]) -> str | None:
    """When the run began: the first message's `created_at` (agentchat messages have one)."""
    for msg in messages:
        stamp = msg.get("created_at") if isinstance(msg, dict) else None
        if isinstance(stamp, str):
            try:
                return iso_time(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
            except ValueError:
                return None
    return None


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in CHAT_TYPES | LLM_TYPES


def sniff(path: Path, head: bytes) -> bool:
    """JSON Lines of agentchat dumps: typed messages (with `source`) or agent/team states."""
    if not path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    first = first_record(head)
    if first is INCOMPLETE:
        return _HEAD.search(head) is not None
    if isinstance(first, list):
        return bool(first) and _is_message(first[0])
    if not isinstance(first, dict):
        return False
    messages = first.get("messages")
    if isinstance(messages, list):
        return bool(messages) and _is_message(messages[0])
    kind = first.get("type")
    return (isinstance(kind, str) and kind.endswith("State")) or bool(_contexts(first))


FORMAT = TraceFormat(
    name="autogen-agentchat",
    description="autogen-agentchat TaskResult / message / save_state dumps, one per line",
    sniff=sniff,
    parse_record=parse_record,
    priority=30,  # before openai-chat, which takes any {"messages": [...]}
)
