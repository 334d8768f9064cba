"""Plain OpenAI chat message lists, as many agents log them.

Two layouts:
- `openai-chat` (JSON Lines): each line is an array of messages, or an object
  `{"messages": [...], ...}`;
- `openai-chat-json` (one `.json` file): one conversation (an array of
  messages or an object with `messages`), or an array of conversations.

A conversation without an `id` is named after where it is (`file:line`, or
`file#n` inside a `.json` file). Keys the native format knows (`task`,
`outcome`, `toolset_version`, ...) are honoured when present.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from funcforge.traces.formats import (
    INCOMPLETE,
    JSONL_SUFFIXES,
    Malformed,
    TraceFormat,
    TraceSummary,
    first_record,
    kind_of,
    native,
)
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

_WS = " \t\r\n"


def _record(obj: Any, default_id: str) -> dict[str, Any]:
    """The native record of one conversation (an array of messages, or an object)."""
    if type(obj) is list:
        if not obj:
            raise MalformedTrace("empty conversation (no messages)")
        return {"id": default_id, "messages": obj}
    if type(obj) is dict:
        if "messages" not in obj:
            raise MalformedTrace("missing field 'messages'")
        return obj if obj.get("id") is not None else {**obj, "id": default_id}
    raise MalformedTrace(
        f"expected an array of messages or an object with 'messages', got {kind_of(obj)}"
    )


def conversation(obj: Any, ref: SourceRef, default_id: str) -> Trace:
    """One conversation (array of messages, or object with `messages`) -> a trace."""
    return native.parse_record(_record(obj, default_id), ref)[0]


def parse_record(obj: Any, ref: SourceRef) -> list[Trace]:
    """One JSON line -> one conversation."""
    return [conversation(obj, ref, f"{ref.file}:{ref.line}")]


def index_record(obj: Any, file: str, line: int, offset: int) -> list[TraceSummary]:
    """The indexing fast path (see `native.index_record`)."""
    return native.index_record(_record(obj, f"{file}:{line}"), file, line, offset)


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and "role" in value and "messages" not in value


def parse_file(path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """A whole `.json` file: one conversation, or an array of conversations."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield Malformed(rel, data.count(b"\n", 0, exc.start) + 1, "invalid UTF-8")
        return
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if pos >= len(text):
        return
    lines = _LineCounter(text)
    if text[pos] != "[":
        try:
            obj, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            yield Malformed(rel, lines.at(getattr(exc, "pos", pos)), f"bad JSON: {_msg(exc)}")
            return
        line = lines.at(pos)
        yield from _one(obj, SourceRef(rel, line), rel)
        if _skip(text, end) < len(text):
            yield Malformed(rel, lines.at(_skip(text, end)), "extra data after the JSON value")
        return
    # An array: of messages (one conversation) or of conversations.
    elements: list[tuple[Any, int]] = []
    pos = _skip(text, pos + 1)
    while pos < len(text) and text[pos] != "]":
        try:
            obj, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            yield Malformed(rel, lines.at(getattr(exc, "pos", pos)), f"bad JSON: {_msg(exc)}")
            return
        elements.append((obj, pos))
        pos = _skip(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            yield Malformed(rel, lines.at(pos), "bad JSON: expected ',' or ']'")
            return
    if pos >= len(text):
        yield Malformed(rel, lines.at(len(text)), "bad JSON: unterminated array")
        return
    if elements and _is_message(elements[0][0]):
        yield from _one([obj for obj, _ in elements], SourceRef(rel, 1), rel)
        return
    for n, (obj, start) in enumerate(elements, 1):
        line = lines.at(start)
        yield from _one(obj, SourceRef(rel, line), f"{rel}#{n}")


def _one(obj: Any, ref: SourceRef, default_id: str) -> Iterator[Trace | Malformed]:
    try:
        yield conversation(obj, ref, default_id)
    except MalformedTrace as exc:
        yield Malformed(ref.file, ref.line, str(exc))


def _skip(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _WS:
        pos += 1
    return pos


def _msg(exc: ValueError) -> str:
    return getattr(exc, "msg", str(exc))


class _LineCounter:
    """1-based line of a character position, counting forward (positions mostly increase)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def at(self, pos: int) -> int:
        if pos < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def sniff_lines(path: Path, head: bytes) -> bool:
    """JSON Lines whose first line is an array, or an object with `messages` but no `id`."""
    if not path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    first = first_record(head)
    if first is INCOMPLETE or first is None:
        return False
    return isinstance(first, list) or (
        isinstance(first, dict) and "messages" in first and "id" not in first
    )


def sniff_file(path: Path, head: bytes) -> bool:
    """A `.json` file holding an array or an object."""
    return path.suffix.lower() == ".json" and head.lstrip(b"\xef\xbb\xbf" + _WS.encode())[:1] in (
        b"[",
        b"{",
    )


FORMATS = [
    TraceFormat(
        name="openai-chat",
        description="OpenAI chat messages, one conversation per JSON line",
        sniff=sniff_lines,
        parse_record=parse_record,
        index_record=index_record,
        priority=40,
    ),
    TraceFormat(
        name="openai-chat-json",
        description="OpenAI chat messages in one .json file (a conversation or a list of them)",
        sniff=sniff_file,
        parse_file=parse_file,
        priority=60,
    ),
]
