"""Shared helper: tool calls out of OpenAI chat messages, paired with their results.

An assistant message's `tool_calls` (or the legacy `function_call`) is paired
with the `tool` (or legacy `function`) message that answers it, by
`tool_call_id` when there is one and in order otherwise. A result is an error
when its message says `"is_error": true`, when it holds a Python traceback, or
when it starts with `Error:`; the error type comes from `KeyError: ...` (the
convention `Error: <Type>: <message>`) or the traceback's last line. An
explicit `"is_error": false` is trusted: the logger knew better than a prefix.
"""

from __future__ import annotations

import builtins
import json
import re
from typing import Any

from funcforge.traces.formats import kind_of
from funcforge.traces.model import MalformedTrace, ToolCall

TRACEBACK_MARK = "Traceback (most recent call last)"
_EXC_LINE = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?::\s*(.*))?", re.DOTALL)
_BUILTIN_EXCEPTIONS = frozenset(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), BaseException)
)
_EXC_SUFFIXES = ("Error", "Exception", "Warning", "Exit", "Interrupt", "Timeout")


def split_exception(line: str) -> tuple[str, str] | None:
    """`"KeyError: 'mile'"` -> `("KeyError", "'mile'")`; None when `line` names no exception."""
    m = _EXC_LINE.fullmatch(line.strip())
    if m is None:
        return None
    name = m.group(1)
    short = name.rsplit(".", 1)[-1]
    if short not in _BUILTIN_EXCEPTIONS and not short.endswith(_EXC_SUFFIXES):
        return None
    return name, (m.group(2) or "").strip()


def classify_result(content: str, is_error: Any = None) -> tuple[bool, str | None, str | None]:
    """Whether a tool result is an error, and its type and message (first line only)."""
    if is_error is False:
        return False, None, None
    if TRACEBACK_MARK in content:
        lines = [ln for ln in content.splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else ""
        parsed = split_exception(last)
        return True, *(parsed or ("Error", last))
    stripped = content.lstrip()
    if stripped[:6].lower() == "error:":
        first = stripped[6:].strip().split("\n", 1)[0].strip()
        parsed = split_exception(first)
        return True, *(parsed or ("Error", first))
    if is_error is True:
        first = stripped.split("\n", 1)[0].strip()
        parsed = split_exception(first)
        return True, *(parsed or ("Error", first))
    return False, None, None


def content_text(content: Any) -> str:
    """A message's content as text: strings as is, text parts joined, other JSON dumped."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return json.dumps(content, ensure_ascii=False)


def parse_arguments(raw: str) -> dict[str, Any] | None:
    """The arguments as a dict, or None when `raw` is not a JSON object."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _function_of(tc: Any, where: str) -> tuple[str, str, Any]:
    """(name, raw arguments, parsed-or-None marker) of one `tool_calls` entry."""
    if type(tc) is not dict:
        raise MalformedTrace(f"{where} must be an object, got {kind_of(tc)}")
    fn = tc.get("function")
    if type(fn) is not dict:
        raise MalformedTrace(f"{where}.function must be an object, got {kind_of(fn)}")
    name = fn.get("name")
    if type(name) is not str:
        raise MalformedTrace(f"{where}.function.name must be a string, got {kind_of(name)}")
    args = fn.get("arguments", "")
    if type(args) is str:
        return name, args, None
    if type(args) is dict:  # some loggers store the decoded object
        return name, json.dumps(args, ensure_ascii=False), args
    if args is None:
        return name, "", None
    raise MalformedTrace(f"{where}.function.arguments must be a string, got {kind_of(args)}")


def tool_calls_from_messages(
    messages: list[Any], *, parse_args: bool = True, where: str = "messages"
) -> list[ToolCall]:
    """Every tool call in `messages`, in order, each paired with its result.

    A call without a result is kept with `result=None`. Raises `MalformedTrace`
    when a message or tool call has the wrong shape. With `parse_args=False`
    the arguments are left unparsed (`arguments=None`): the indexing fast path.
    """
    calls: list[ToolCall] = []
    pending: dict[str, ToolCall] = {}
    for i, msg in enumerate(messages):
        if type(msg) is not dict:
            raise MalformedTrace(f"{where}[{i}] must be an object, got {kind_of(msg)}")
        role = msg.get("role")
        if role == "assistant":
            tcs = msg.get("tool_calls")
            if tcs:
                if type(tcs) is not list:
                    raise MalformedTrace(f"{where}[{i}].tool_calls must be an array")
                for j, tc in enumerate(tcs):
                    name, raw, obj = _function_of(tc, f"{where}[{i}].tool_calls[{j}]")
                    cid = tc.get("id")
                    if type(cid) is not str or not cid:
                        cid = f"call-{len(calls) + 1}"
                    if obj is None and parse_args:
                        obj = parse_arguments(raw)
                    call = ToolCall(cid, name, raw, obj)
                    calls.append(call)
                    pending[cid] = call
            fc = msg.get("function_call")
            if fc:
                name, raw, obj = _function_of({"function": fc}, f"{where}[{i}]")
                if obj is None and parse_args:
                    obj = parse_arguments(raw)
                call = ToolCall(f"call-{len(calls) + 1}", name, raw, obj)
                calls.append(call)
                pending[call.id] = call
        elif role in ("tool", "function"):
            answered = _answered(pending, msg, role)
            if answered is None:
                continue
            text = content_text(msg.get("content"))
            answered.result = text
            answered.is_error, answered.error_type, answered.error_message = classify_result(
                text, msg.get("is_error")
            )
        elif type(role) is not str:
            raise MalformedTrace(f"{where}[{i}].role must be a string, got {kind_of(role)}")
    return calls


def _answered(pending: dict[str, ToolCall], msg: dict[str, Any], role: str) -> ToolCall | None:
    """The pending call a tool/function message answers (and no longer pending)."""
    cid = msg.get("tool_call_id")
    if type(cid) is str and cid in pending:
        return pending.pop(cid)
    if not pending:
        return None
    name = msg.get("name")
    for key, call in pending.items():  # oldest first: dicts keep insertion order
        if (role == "tool" and cid is None) or (role == "function" and call.name == name):
            return pending.pop(key)
    return None
