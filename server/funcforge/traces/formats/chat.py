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
import sys
from functools import lru_cache
from typing import Any

from funcforge.traces.formats import kind_of
from funcforge.traces.model import MalformedTrace, ToolCall

TRACEBACK_MARK = "Traceback (most recent call last)"
_ERROR_PREFIX = re.compile(r"\s*error:", re.IGNORECASE)
_PREFIX_FIRST = frozenset("eE \t\r\n")  # first characters an `Error:` prefix can start with
_BUILTIN_EXCEPTIONS = frozenset(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), BaseException)
)
_EXC_SUFFIXES = ("Error", "Exception", "Warning", "Exit", "Interrupt", "Timeout")
_NOT_ERROR: tuple[bool, str | None, str | None] = (False, None, None)
_CACHE_CHARS = 2000  # results up to this long are classified through a small cache


def split_exception(line: str) -> tuple[str, str] | None:
    """`"KeyError: 'mile'"` -> `("KeyError", "'mile'")`; None when `line` names no exception."""
    name, _, message = line.strip().partition(":")
    if not name or not all(part.isidentifier() for part in name.split(".")):
        return None
    short = name.rpartition(".")[2]
    if short not in _BUILTIN_EXCEPTIONS and not short.endswith(_EXC_SUFFIXES):
        return None
    return name, message.strip()


def classify_result(content: str, is_error: Any = None) -> tuple[bool, str | None, str | None]:
    """Whether a tool result is an error, and its type and message (first line only).

    `is_error` is the tool message's flag: `True` and `False` decide, anything
    else leaves it to the content.
    """
    flag = is_error if is_error is True or is_error is False else None
    if flag is False:
        return _NOT_ERROR
    if len(content) <= _CACHE_CHARS:  # agents repeat the same errors: classify each once
        return _classify_cached(content, flag)
    return _classify(content, flag)


def _classify(content: str, flag: bool | None) -> tuple[bool, str | None, str | None]:
    if TRACEBACK_MARK in content:
        body = content.rstrip()
        return _error_from(body[body.rfind("\n") + 1 :])
    prefix = _ERROR_PREFIX.match(content)
    if prefix is not None:
        return _error_from(content[prefix.end() :].strip().split("\n", 1)[0])
    if flag is True:
        return _error_from(content.strip().split("\n", 1)[0])
    return _NOT_ERROR


_classify_cached = lru_cache(maxsize=512)(_classify)


def _error_from(line: str) -> tuple[bool, str | None, str | None]:
    """An error's (True, type, message) from its text: `Type: message`, else type "Error"."""
    line = line.strip()
    parsed = split_exception(line)
    return (True, parsed[0], parsed[1]) if parsed else (True, "Error", line)


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
    custom = tc.get("custom")
    if tc.get("type") == "custom" and type(custom) is dict:
        # A custom (free-form) tool: its input is text, not JSON arguments.
        name = custom.get("name")
        if type(name) is not str:
            raise MalformedTrace(f"{where}.custom.name must be a string, got {kind_of(name)}")
        text = custom.get("input", "")
        return name, text if type(text) is str else json.dumps(text, ensure_ascii=False), None
    fn = tc.get("function")
    if type(fn) is not dict:
        raise MalformedTrace(f"{where}.function must be an object, got {kind_of(fn)}")
    name = fn.get("name")
    if type(name) is not str:
        raise MalformedTrace(f"{where}.function.name must be a string, got {kind_of(name)}")
    args = fn.get("arguments", "")
    if type(args) is str:
        return name, args, None
    if args is None:
        return name, "", None
    # Some loggers store the decoded value: keep its JSON text; only an object is parsed.
    return name, json.dumps(args, ensure_ascii=False), args if type(args) is dict else None


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
                    if type(cid) is not str:
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
            logged_type = msg.get("error_type")
            if answered.is_error and type(logged_type) is str and logged_type:
                answered.error_type = logged_type  # the logger knew the exception's type
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


def call_digests(
    messages: list[Any],
) -> tuple[list[str], list[tuple[str, str | None, str | None]]]:
    """The indexing fast path: the tool of each call, and (tool, type, message) of failures.

    Gives what `tool_calls_from_messages` gives for the same messages (and
    raises the same errors): any shape off the common path (a missing key, a
    wrong type, legacy function calls) is handed to it. Tool names come back
    interned.
    """
    names: list[str] = []
    failed: list[tuple[int, str | None, str | None]] = []  # (call index, type, message)
    pending: dict[str, int] = {}
    intern = sys.intern
    prefix_first, traceback = _PREFIX_FIRST, TRACEBACK_MARK
    try:
        for msg in messages:
            role = msg["role"]
            if role == "assistant":
                tcs = msg.get("tool_calls")
                if tcs:
                    if tcs.__class__ is not list:
                        return _slow_digests(messages)
                    for tc in tcs:
                        cid = tc["id"]
                        if cid.__class__ is not str:
                            return _slow_digests(messages)
                        pending[cid] = len(names)
                        # intern() raises TypeError (-> the full parser) unless name is a str
                        names.append(intern(tc["function"]["name"]))
                if "function_call" in msg:
                    return _slow_digests(messages)
            elif role == "tool":
                found = pending.pop(msg["tool_call_id"], None)
                if found is None:
                    continue
                text = msg.get("content")
                if text.__class__ is not str:
                    text = content_text(text)
                if (
                    (not text or text[0] not in prefix_first)
                    and traceback not in text
                    and msg.get("is_error") is None
                ):
                    continue  # the common case, decided without a call
                is_error, etype, message = classify_result(text, msg.get("is_error"))
                if is_error:
                    logged_type = msg.get("error_type")
                    if logged_type.__class__ is str and logged_type:
                        etype = logged_type
                    failed.append((found, etype, message))
            elif role == "function" or role.__class__ is not str:
                return _slow_digests(messages)
    except (KeyError, TypeError, AttributeError):
        return _slow_digests(messages)
    if not failed:
        return names, []
    failed.sort(key=lambda f: f[0])  # in call order, as the full parser lists them
    return names, [(names[i], etype, message) for i, etype, message in failed]


def _slow_digests(
    messages: list[Any],
) -> tuple[list[str], list[tuple[str, str | None, str | None]]]:
    calls = tool_calls_from_messages(messages, parse_args=False)
    return (
        [sys.intern(c.name) for c in calls],
        [(c.name, c.error_type, c.error_message) for c in calls if c.is_error],
    )
