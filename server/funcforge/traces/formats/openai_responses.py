"""OpenAI Responses API items, one run per JSON line.

A line is one of:
- an array of items (the run's `input` list, as OpenAI's function-calling
  guide grows it, plus the last response's `output`);
- `{"request": {...}, "response": {...}}`: a logged request (its `input`,
  `instructions`, `tools`, `metadata`) and the response object it got;
- a response object (`"object": "response"`), whose `output` holds the items;
- an object with `items` (or `input`, plus an optional `output`) and the keys
  the native format knows (`id`, `task`, `outcome`, `toolset_version`, ...).

`function_call` / `custom_tool_call` items are paired with their
`function_call_output` / `custom_tool_call_output` by `call_id`; messages keep
their text. Task id, `funcforge.toolset_version` and split may sit in the
request's `metadata`; without a version, the request's tool definitions are
hashed. A run without an id is named after its place (`file:line`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from funcforge.traces.formats import (
    INCOMPLETE,
    JSONL_SUFFIXES,
    TraceFormat,
    first_record,
    kind_of,
)
from funcforge.traces.formats.assemble import arguments_text, build_trace, render
from funcforge.traces.formats.native import parse_outcome, parse_task
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

CALL_TYPES = {"function_call": "arguments", "custom_tool_call": "input"}
OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
ITEM_TYPES = frozenset({*CALL_TYPES, *OUTPUT_TYPES, "message", "reasoning"})
TASK_KEYS = ("task_id", "funcforge.task.id")
SPLIT_KEYS = ("funcforge.split", "split")
_HEAD_TYPE = re.compile(
    rb'"type"\s*:\s*"(function_call|function_call_output|custom_tool_call)"|"call_id"\s*:'
)
_HEAD_OBJ = re.compile(rb'^\s*\{\s*("request"|"object"\s*:\s*"response")')


def _text(content: Any) -> str:
    """Message content: a string, or parts (`input_text`, `output_text`, `text`) joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text"))
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return "" if content is None else render(content)


def chat_messages(items: list[Any], where: str = "items") -> list[dict[str, Any]]:
    """Responses items -> OpenAI chat messages (consecutive calls share one assistant message)."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedTrace(f"{where}[{i}] must be an object, got {kind_of(item)}")
        kind = item.get("type")
        if kind in CALL_TYPES:
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise MalformedTrace(f"{where}[{i}]: {kind} without a 'name'")
            call_id = item.get("call_id") or item.get("id") or f"call-{i + 1}"
            call = {
                "id": str(call_id),
                "type": "function",
                "function": {"name": name, "arguments": arguments_text(item.get(CALL_TYPES[kind]))},
            }
            last = out[-1] if out else None
            if last is not None and last.get("role") == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in OUTPUT_TYPES:
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise MalformedTrace(f"{where}[{i}]: {kind} without a 'call_id'")
            output = item.get("output")
            text = _text(output) if isinstance(output, list) else render(output or "")
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        elif kind in (None, "message") and "role" in item:
            role = item.get("role")
            if not isinstance(role, str):
                raise MalformedTrace(f"{where}[{i}].role must be a string, got {kind_of(role)}")
            out.append(
                {
                    "role": "system" if role == "developer" else role,
                    "content": _text(item.get("content")),
                }
            )
        # other items (reasoning, web_search_call, ...) say nothing about our tools
    return out


def _as_items(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        return value
    raise MalformedTrace(f"'{where}' must be an array of items, got {kind_of(value)}")


def _run(obj: Any) -> tuple[list[Any], dict[str, Any], list[Any], str | None, dict[str, Any]]:
    """(items, metadata, tool definitions, id, native keys) of one line."""
    if isinstance(obj, list):
        return obj, {}, [], None, {}
    if not isinstance(obj, dict):
        raise MalformedTrace(f"expected an array of items or an object, got {kind_of(obj)}")
    if "request" in obj or "response" in obj:
        request = obj.get("request", {})
        response = obj.get("response", {})
        request = {} if request is None else request
        response = {} if response is None else response
        if not isinstance(request, dict) or not isinstance(response, dict):
            raise MalformedTrace("'request' and 'response' must be objects")
        items: list[Any] = []
        if isinstance(request.get("instructions"), str):
            items.append({"role": "system", "content": request["instructions"]})
        items += _as_items(request.get("input"), "request.input")
        items += _as_items(response.get("output"), "response.output")
        meta = request.get("metadata") or response.get("metadata") or {}
        tools = request.get("tools") or response.get("tools") or []
        rid = obj.get("id") or response.get("id")
        return items, meta if isinstance(meta, dict) else {}, tools, rid, obj
    if obj.get("object") == "response":
        items = _as_items(obj.get("input"), "input") + _as_items(obj.get("output"), "output")
        meta = obj.get("metadata") or {}
        return (
            items,
            meta if isinstance(meta, dict) else {},
            obj.get("tools") or [],
            obj.get("id"),
            {},
        )
    if "items" in obj or "input" in obj:
        items = _as_items(obj.get("items", obj.get("input")), "items")
        items += _as_items(obj.get("output"), "output")
        meta = obj.get("metadata") or {}
        return (
            items,
            meta if isinstance(meta, dict) else {},
            obj.get("tools") or [],
            obj.get("id"),
            obj,
        )
    raise MalformedTrace("not Responses API items: no 'items', 'input', 'request' or 'output'")


def parse_record(obj: Any, ref: SourceRef) -> list[Trace]:
    """One JSON line -> one run."""
    items, meta, tools, run_id, native = _run(obj)
    if not items:
        raise MalformedTrace("no items (an empty run)")
    messages = chat_messages(items)
    task = parse_task(native.get("task")) if isinstance(native.get("task"), dict) else None
    task_id = (
        task.id
        if task
        else next((str(meta[k]) for k in TASK_KEYS if meta.get(k) not in (None, "")), None)
    )
    version = native.get("toolset_version") or meta.get("funcforge.toolset_version")
    split = native.get("split") or next(
        (str(meta[k]) for k in SPLIT_KEYS if meta.get(k) not in (None, "")), None
    )
    return [
        build_trace(
            str(run_id) if run_id not in (None, "") else f"{ref.file}:{ref.line}",
            messages=messages,
            source=ref,
            task_id=task_id,
            task_input=task.input if task and task.input else None,
            expected=task.expected if task else None,
            version=str(version) if version else None,
            definitions=tools if isinstance(tools, list) else [],
            outcome=parse_outcome(native.get("outcome")),
            split=str(split) if split else None,
            time=native.get("time") if isinstance(native.get("time"), str) else None,
        )
    ]


def _looks_like(first: Any) -> bool:
    if isinstance(first, list):
        return any(isinstance(i, dict) and i.get("type") in ITEM_TYPES for i in first)
    if not isinstance(first, dict):
        return False
    if first.get("object") == "response":
        return True
    if isinstance(first.get("request"), dict) and isinstance(first.get("response"), dict):
        return True
    items = first.get("items", first.get("input"))
    return isinstance(items, list) and _looks_like(items)


def sniff(path: Path, head: bytes) -> bool:
    """JSON Lines whose first record holds Responses items (typed `function_call`, `message`...)."""
    if not path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    first = first_record(head)
    if first is INCOMPLETE:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return _HEAD_OBJ.match(start) is not None or (
            start[:1] == b"[" and _HEAD_TYPE.search(head) is not None
        )
    return _looks_like(first)


FORMAT = TraceFormat(
    name="openai-responses",
    description="OpenAI Responses API items (function_call / function_call_output), one run per line",
    sniff=sniff,
    parse_record=parse_record,
    priority=30,  # before openai-chat, which takes any array
)
