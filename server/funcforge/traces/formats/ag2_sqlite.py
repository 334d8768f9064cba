"""AG2 (AutoGen 0.2 line) runtime logging: the SQLite database `runtime_logging` writes.

`chat_completions` holds every model request with the conversation so far
(OpenAI chat messages and tools) and the response; rows of one chat share a
`session_id` and each request extends the previous one's messages. A run is
one such chain: its messages are the last request's plus the reply, so AG2's
tool messages (`Error: ...` when a function raised) give the tool calls.
`function_calls` rows (AG2 logs only calls that returned) that no chat
explains — a function run straight from an agent's function map — become
runs of their own. The database is opened read-only; "line" in a location is
the table's row id.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from funcforge.traces.formats import Malformed, TraceFormat
from funcforge.traces.formats.assemble import ToolRun, build_trace, iso_time
from funcforge.traces.formats.chat import tool_calls_from_messages
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

SQLITE_MAGIC = b"SQLite format 3\x00"
SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass
class _Chat:
    session: str
    source: str
    first_row: int
    start: str | None
    end: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)  # last request's messages
    reply: dict[str, Any] | None = None
    tools: list[Any] = field(default_factory=list)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _key(msg: Any) -> tuple[Any, Any]:
    return (msg.get("role"), msg.get("content")) if isinstance(msg, dict) else (None, msg)


def _extends(prev: list[dict[str, Any]], msgs: list[dict[str, Any]]) -> bool:
    """Whether a request's messages continue the conversation `prev` (loosely: role+content)."""
    return len(msgs) >= len(prev) and [_key(m) for m in msgs[: len(prev)]] == [
        _key(m) for m in prev
    ]


def _reply(response: Any) -> dict[str, Any] | None:
    """The assistant message of a logged ChatCompletion (None for an error string)."""
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except ValueError:
            return None
    if not isinstance(response, dict):
        return None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    msg = choices[0].get("message")
    if not isinstance(msg, dict):
        return None
    out = {k: v for k, v in msg.items() if v is not None or k == "content"}
    out.setdefault("role", "assistant")
    return out


def _tables(con: sqlite3.Connection) -> set[str]:
    rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def _chats(con: sqlite3.Connection, rel: str, bad: list[Malformed]) -> list[_Chat]:
    chats: list[_Chat] = []
    open_chats: dict[tuple[str, str], list[_Chat]] = {}
    rows = con.execute(
        "SELECT id, session_id, source_name, request, response, start_time, end_time"
        " FROM chat_completions ORDER BY id"
    ).fetchall()
    for row_id, session, source, request, response, start, end in rows:
        try:
            req = json.loads(request)
        except (TypeError, ValueError):
            bad.append(
                Malformed(rel, row_id, f"chat_completions row {row_id}: request is not JSON")
            )
            continue
        msgs = req.get("messages") if isinstance(req, dict) else None
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            bad.append(
                Malformed(rel, row_id, f"chat_completions row {row_id}: no 'messages' array")
            )
            continue
        key = (str(session or ""), str(source or ""))
        chat = next((c for c in open_chats.get(key, []) if _extends(c.messages, msgs)), None)
        if chat is None:
            chat = _Chat(key[0], key[1], row_id, start)
            chats.append(chat)
            open_chats.setdefault(key, []).append(chat)
        chat.messages, chat.reply, chat.end = msgs, _reply(response), end or start
        tools = req.get("tools") if isinstance(req, dict) else None
        if isinstance(tools, list) and tools:
            chat.tools = tools
    return chats


def _function_rows(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT rowid, source_name, function_name, args, returns, timestamp"
        " FROM function_calls ORDER BY rowid"
    ).fetchall()


def _explained(row: tuple[Any, ...], chats: list[_Chat], used: set[tuple[int, int]]) -> bool:
    """Whether a function_calls row is a call some chat's messages already show."""
    _, _, name, args, _, stamp = row
    when = _parse_time(stamp)
    try:
        parsed = json.loads(args) if isinstance(args, str) else args
    except ValueError:
        parsed = args
    for ci, chat in enumerate(chats):
        start, end = _parse_time(chat.start), _parse_time(chat.end)
        if when and start and end and not start <= when <= end:
            continue
        messages = chat.messages + ([chat.reply] if chat.reply else [])
        try:
            calls = tool_calls_from_messages(messages, parse_args=True)
        except MalformedTrace:
            continue
        for k, call in enumerate(calls):
            if (ci, k) not in used and call.name == name and call.arguments == parsed:
                used.add((ci, k))
                return True
    return False


def parse_file(path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """Every chat in an AG2 runtime-logging database, then the unexplained function calls."""
    bad: list[Malformed] = []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        yield Malformed(rel, 1, f"cannot open the SQLite database: {exc}")
        return
    try:
        try:
            tables = _tables(con)
            if not {"chat_completions", "function_calls"} & tables:
                yield Malformed(
                    rel, 1, "not an AG2 runtime log: no chat_completions or function_calls table"
                )
                return
            chats = _chats(con, rel, bad) if "chat_completions" in tables else []
            rows = _function_rows(con) if "function_calls" in tables else []
        except sqlite3.Error as exc:  # truncated or corrupt file
            yield Malformed(rel, 1, f"unreadable SQLite database: {exc}")
            return
    finally:
        con.close()
    per_session: dict[str, int] = {}
    for chat in chats:
        per_session[chat.session] = per_session.get(chat.session, 0) + 1
    seen: dict[str, int] = {}
    for chat in chats:
        seen[chat.session] = seen.get(chat.session, 0) + 1
        trace_id = chat.session or f"chat-{chat.first_row}"
        if per_session[chat.session] > 1:
            trace_id = f"{trace_id}#{seen[chat.session]}"
        messages = chat.messages + ([chat.reply] if chat.reply else [])
        when = _parse_time(chat.start)
        try:
            yield build_trace(
                trace_id,
                messages=messages,
                source=SourceRef(rel, chat.first_row),
                definitions=chat.tools,
                time=iso_time(when) if when else None,
                extra={
                    "ag2_session_id": chat.session,
                    "agent": chat.source,
                    "ag2_row": f"chat_completions:{chat.first_row}",
                },
            )
        except MalformedTrace as exc:
            bad.append(
                Malformed(rel, chat.first_row, f"chat_completions row {chat.first_row}: {exc}")
            )
    used: set[tuple[int, int]] = set()
    for row in rows:
        if _explained(row, chats, used):
            continue
        rowid, source, name, args, returns, stamp = row
        when = _parse_time(stamp)
        yield build_trace(
            f"function-call-{rowid}",
            runs=[
                ToolRun(
                    name=str(name),
                    arguments=args if isinstance(args, str) else json.dumps(args),
                    result=None if returns is None else str(returns),
                )
            ],
            source=SourceRef(rel, int(rowid)),
            time=iso_time(when) if when else None,
            extra={"agent": source, "ag2_row": f"function_calls:{rowid}"},
        )
    yield from bad


def sniff(path: Path, head: bytes) -> bool:
    """A SQLite database (AG2's tables are checked when it is read)."""
    return head.startswith(SQLITE_MAGIC) or (path.suffix.lower() in SUFFIXES and not head.strip())


FORMAT = TraceFormat(
    name="ag2-sqlite",
    description="AG2 runtime logging SQLite database (chat_completions, function_calls)",
    sniff=sniff,
    parse_file=parse_file,
    priority=10,
)
