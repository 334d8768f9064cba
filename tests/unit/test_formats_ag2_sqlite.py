"""AG2 runtime logging (SQLite), from a database AG2's own logger wrote."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from funcforge.traces.formats import Malformed, detect, get_format
from funcforge.traces.formats.assemble import definitions_version
from funcforge.traces.model import Trace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "ag2_runtime.db"
AG2 = get_format("ag2-sqlite")


def parse(path: Path) -> tuple[list[Trace], list[Malformed]]:
    assert AG2.parse_file is not None
    items = list(AG2.parse_file(path, path.name))
    traces = [t for t in items if isinstance(t, Trace)]
    return traces, [m for m in items if isinstance(m, Malformed)]


def copy(tmp_path: Path) -> Path:
    dest = tmp_path / "runtime.db"
    shutil.copy(FIXTURE, dest)
    return dest


def test_each_chat_is_a_run_and_an_unexplained_function_call_is_one_too() -> None:
    traces, bad = parse(FIXTURE)
    assert bad == []
    assert [[(c.name, c.is_error, c.error_type) for c in t.tool_calls] for t in traces] == [
        [("convert_units", False, None)],
        [("convert_units", True, "Error")],
        [("evaluate_expression", False, None)],
        [("convert_units", False, None)],
    ]
    chats, direct = traces[:3], traces[3]
    assert [t.task.input for t in chats if t.task] == [
        "Convert 3 km to m",
        "Convert 2 mile to km",
        "What is 3/4 + 1/8?",
    ]
    # AG2 turns a raised exception into the tool message "Error: <message>"
    assert chats[1].tool_calls[0].result == "Error: 'mile'"
    assert chats[1].tool_calls[0].error_message == "'mile'"
    assert [m["role"] for m in chats[0].messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert chats[0].final_answer == "Result: 3000.0"
    assert all(t.id == t.extra["ag2_session_id"] for t in chats)
    assert [t.extra["ag2_row"] for t in traces] == [
        "chat_completions:1",
        "chat_completions:3",
        "chat_completions:5",
        "function_calls:3",
    ]
    # the function run from the function map, with no model, has no messages of its own
    assert direct.id == "function-call-3"
    assert direct.tool_calls[0].arguments == {"value": 5, "from_unit": "cm", "to_unit": "m"}
    assert direct.tool_calls[0].result == "0.05"
    assert direct.task is None


def test_version_falls_back_to_the_requests_tool_definitions() -> None:
    traces, _ = parse(FIXTURE)
    con = sqlite3.connect(FIXTURE)
    tools = json.loads(
        con.execute("SELECT request FROM chat_completions WHERE id = 1").fetchone()[0]
    )["tools"]
    con.close()
    assert {t.toolset_version for t in traces[:3]} == {definitions_version(tools)}
    assert traces[3].toolset_version is None


def test_two_chats_in_one_session_are_told_apart(tmp_path: Path) -> None:
    path = copy(tmp_path)
    con = sqlite3.connect(path)
    con.execute("UPDATE chat_completions SET session_id = 's1' WHERE id IN (1, 2, 3, 4)")
    con.commit()
    con.close()
    traces, bad = parse(path)
    assert bad == []
    assert [t.id for t in traces[:2]] == ["s1#1", "s1#2"]
    assert [t.task.input for t in traces[:2] if t.task] == [
        "Convert 3 km to m",
        "Convert 2 mile to km",
    ]


def test_a_bad_row_is_reported_with_its_row_id(tmp_path: Path) -> None:
    path = copy(tmp_path)
    con = sqlite3.connect(path)
    con.execute("UPDATE chat_completions SET request = '{not json' WHERE id = 4")
    con.execute('UPDATE chat_completions SET request = \'{"model": "m"}\' WHERE id = 5')
    con.commit()
    con.close()
    traces, bad = parse(path)
    assert [(m.line, m.reason) for m in bad] == [
        (4, "chat_completions row 4: request is not JSON"),
        (5, "chat_completions row 5: no 'messages' array"),
    ]
    # row 3 alone still tells the second chat up to its tool call (no result logged yet)
    second = next(t for t in traces if t.extra.get("ag2_row") == "chat_completions:3")
    assert [(c.name, c.result) for c in second.tool_calls] == [("convert_units", None)]


def test_other_databases_and_truncated_files_are_reported(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (x TEXT)")
    con.commit()
    con.close()
    assert detect(other, other.read_bytes()[:100]) is AG2
    traces, bad = parse(other)
    assert traces == []
    assert [(m.file, m.line) for m in bad] == [("other.db", 1)]
    assert "not an AG2 runtime log" in bad[0].reason

    cut = tmp_path / "cut.db"
    cut.write_bytes(FIXTURE.read_bytes()[:5000])
    traces, bad = parse(cut)
    assert traces == []
    assert len(bad) == 1 and bad[0].line == 1
    assert "SQLite database" in bad[0].reason


def test_detected_by_the_sqlite_header_not_the_name(tmp_path: Path) -> None:
    renamed = tmp_path / "logs.bin"
    shutil.copy(FIXTURE, renamed)
    assert detect(renamed, renamed.read_bytes()[:64]) is AG2
    text = tmp_path / "notes.db"
    text.write_text("hello\n")
    assert detect(text, text.read_bytes()) is None
