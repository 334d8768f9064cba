"""The format registry, the native and OpenAI chat formats, and the chat helper."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from funcforge.traces.formats import (
    Malformed,
    TraceFormat,
    UnknownFormatError,
    all_formats,
    detect,
    get_format,
    glob_match,
    native,
    openai_chat,
    summarize,
)
from funcforge.traces.formats.chat import (
    call_digests,
    classify_result,
    split_exception,
    tool_calls_from_messages,
)
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

REF = SourceRef("traces/t.jsonl", 3, 120)


def call(cid: str, name: str, args: Any = '{"x": 1}') -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def assistant(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": list(calls)}


def tool(cid: Any, content: Any, **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "tool", "content": content, **extra}
    if cid is not None:
        msg["tool_call_id"] = cid
    return msg


def native_record(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "run-0007",
        "task": {"id": "algebra-17", "input": "What is 3/4 + 1/8?", "expected": "7/8"},
        "messages": [
            {"role": "user", "content": "What is 3/4 + 1/8?"},
            assistant(call("c1", "evaluate_expression", '{"expression": "3/4 + 1/8"}')),
            tool("c1", "0.875"),
            {"role": "assistant", "content": "7/8"},
        ],
        "outcome": {"score": 1.0, "passed": True},
        "toolset_version": "3f2a9c1",
        "split": "train",
        "time": "2026-11-20T10:00:00Z",
    }
    rec.update(over)
    return rec


# -- registry ------------------------------------------------------------------


def test_registry_discovers_format_modules() -> None:
    names = {f.name for f in all_formats()}
    assert {"native", "openai-chat", "openai-chat-json"} <= names
    assert get_format("native").line_based
    assert not get_format("openai-chat-json").line_based
    order = [f.priority for f in all_formats()]
    assert order == sorted(order)


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError, match=r"unknown trace format 'nope' \(known: .*native"):
        get_format("nope")


def test_a_format_needs_exactly_one_parser() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TraceFormat(name="x", description="", sniff=lambda p, h: False)
    with pytest.raises(ValueError, match="exactly one"):
        TraceFormat(
            name="x",
            description="",
            sniff=lambda p, h: False,
            parse_record=native.parse_record,
            parse_file=openai_chat.parse_file,
        )


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("traces/**/*.jsonl", "traces/a.jsonl", True),
        ("traces/**/*.jsonl", "traces/x/y/a.jsonl", True),
        ("traces/*.jsonl", "traces/x/a.jsonl", False),
        ("traces/*.json", "traces/a.jsonl", False),
        ("**/chat-?.jsonl", "logs/chat-1.jsonl", True),
        ("**/chat-?.jsonl", "chat-12.jsonl", False),
    ],
)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


def test_detect_by_content() -> None:
    native_head = json.dumps(native_record()).encode() + b"\n"
    chat_head = json.dumps([{"role": "user", "content": "hi"}]).encode() + b"\n"
    chat_obj = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    assert detect(Path("a.jsonl"), native_head).name == "native"  # type: ignore[union-attr]
    assert detect(Path("a.jsonl"), chat_head).name == "openai-chat"  # type: ignore[union-attr]
    assert detect(Path("a.jsonl"), chat_obj + b"\n").name == "openai-chat"  # type: ignore[union-attr]
    assert detect(Path("a.json"), b"  [\n {").name == "openai-chat-json"  # type: ignore[union-attr]
    # the first line is cut off by the head: JSON Lines falls back to native
    assert detect(Path("a.jsonl"), b'{"id": "x", "messages": [').name == "native"  # type: ignore[union-attr]
    assert detect(Path("notes.txt"), b"hello") is None


def test_detect_config_override_wins() -> None:
    head = json.dumps(native_record()).encode() + b"\n"
    fmt = detect(Path("/w/logs/a.jsonl"), head, {"logs/*.jsonl": "openai-chat"}, "logs/a.jsonl")
    assert fmt is not None and fmt.name == "openai-chat"
    fmt = detect(Path("/w/other/a.jsonl"), head, {"logs/*.jsonl": "openai-chat"}, "other/a.jsonl")
    assert fmt is not None and fmt.name == "native"
    with pytest.raises(UnknownFormatError):
        detect(Path("/w/logs/a.jsonl"), head, {"logs/*.jsonl": "nope"}, "logs/a.jsonl")


# -- native --------------------------------------------------------------------


def test_native_parses_design_example_and_keeps_unknown_keys() -> None:
    [trace] = native.parse_record(native_record(agent="react", cost={"usd": 0.01}), REF)
    assert trace.id == "run-0007"
    assert trace.task is not None and trace.task.id == "algebra-17"
    assert trace.task.expected == "7/8"
    assert trace.outcome.score == 1.0 and trace.outcome.passed is True
    assert (trace.toolset_version, trace.split, trace.time) == (
        "3f2a9c1",
        "train",
        "2026-11-20T10:00:00Z",
    )
    assert trace.source == REF
    assert trace.extra == {"agent": "react", "cost": {"usd": 0.01}}
    assert trace.final_answer == "7/8"
    [c] = trace.tool_calls
    assert (c.name, c.arguments, c.result, c.is_error) == (
        "evaluate_expression",
        {"expression": "3/4 + 1/8"},
        "0.875",
        False,
    )
    assert trace.to_native()["agent"] == "react"


def test_native_optional_fields_and_numbers() -> None:
    rec = {"id": 7, "messages": [], "task": {"id": "t", "expected": 0.875}, "outcome": {"score": 1}}
    [trace] = native.parse_record(rec, REF)
    assert trace.id == "7"
    assert trace.task is not None and trace.task.expected == "0.875" and trace.task.input == ""
    assert trace.outcome.score == 1.0 and trace.outcome.passed is None
    assert trace.toolset_version is None and trace.tool_calls == []


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "expected a JSON object, got array"),
        ({"messages": []}, "missing field 'id'"),
        ({"id": "x"}, "missing field 'messages'"),
        ({"id": ["x"], "messages": []}, "'id' must be a string, got array"),
        ({"id": "x", "messages": "hi"}, "'messages' must be an array, got string"),
        ({"id": "x", "messages": [], "task": "t1"}, "'task' must be an object, got string"),
        ({"id": "x", "messages": [], "task": {"input": "q"}}, "missing field 'task.id'"),
        ({"id": "x", "messages": [], "task": {"id": "t", "input": 3}}, "'task.input' must be"),
        ({"id": "x", "messages": [], "outcome": {"score": "high"}}, "'outcome.score' must be a"),
        ({"id": "x", "messages": [], "outcome": {"score": 1.5}}, "between 0 and 1, got 1.5"),
        ({"id": "x", "messages": [], "outcome": {"passed": "yes"}}, "'outcome.passed' must be"),
        ({"id": "x", "messages": [], "outcome": 1}, "'outcome' must be an object"),
        ({"id": "x", "messages": [], "split": 3}, "'split' must be a string, got number"),
        ({"id": "x", "messages": [], "time": True}, "'time' must be a string, got boolean"),
        (  # two faults: the same one is reported on both paths (the task's split first)
            {"id": "x", "messages": [], "time": 1, "task": {"id": "t", "split": 5}},
            "'task.split' must be a string, got number",
        ),
        ({"id": "x", "messages": ["hi"]}, "messages[0] must be an object, got string"),
        ({"id": "x", "messages": [{"content": "hi"}]}, "messages[0].role must be a string"),
        (
            {"id": "x", "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]},
            "messages[0].tool_calls[0].function must be an object, got null",
        ),
        (
            {"id": "x", "messages": [assistant({"id": "c", "function": {"name": 3}})]},
            "messages[0].tool_calls[0].function.name must be a string, got number",
        ),
        (
            {"id": "x", "messages": [{"role": "assistant", "tool_calls": {"id": "c"}}]},
            "messages[0].tool_calls must be an array",
        ),
    ],
)
def test_native_wrong_shapes_are_malformed_with_a_reason(record: Any, reason: str) -> None:
    with pytest.raises(MalformedTrace) as full:
        native.parse_record(record, REF)
    assert reason in str(full.value)
    with pytest.raises(MalformedTrace) as fast:  # the indexing fast path says the same
        native.index_record(record, REF.file, REF.line, REF.offset)
    assert str(fast.value) == str(full.value)


MESSAGE_CASES: list[list[Any]] = [
    native_record()["messages"],
    [assistant(call("a", "f"), call("b", "g")), tool("b", "Error: bad input"), tool("a", "1")],
    [assistant(call("a", "f")), tool("a", "Traceback (most recent call last):\nKeyError: 'k'")],
    [assistant(call("a", "f")), tool("a", "Error: oops", is_error=False)],
    [assistant(call("a", "f")), tool("a", "no", is_error=True)],
    [assistant(call("a", "f")), tool("a", "no", is_error="yes")],
    [assistant(call("a", "f")), tool(None, "Error: KeyError: 'mile'")],
    [assistant(call("a", "f")), tool("zzz", "Error: x")],
    [assistant(call("a", "f", {"x": 1}), call("b", "f", 5), call("c", "f", None))],
    [
        assistant({"type": "function", "function": {"name": "f", "arguments": "{}"}}),
        tool(None, "x"),
    ],
    [
        {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "Error: ValueError: v"},
    ],
    [assistant(call("a", "f")), tool("a", [{"type": "text", "text": "Error: "}, "IndexError: i"])],
    [assistant(call("a", "f")), tool("a", {"error": "x"})],
    [assistant(call("a", "f")), tool("a", None)],
    [assistant(call("a", "f")), tool(["a"], "x")],
    [{"role": 5}],
    [assistant({"id": 3, "function": {"name": "f"}}), tool(3, "Error: x")],
    [assistant(call("", "f")), tool("", "Error: x")],
]


@pytest.mark.parametrize("messages", MESSAGE_CASES)
def test_index_fast_path_matches_full_parse(messages: list[Any]) -> None:
    """`index_record` (no Trace objects) gives what summarizing `parse_record` gives."""
    record = native_record(messages=messages)
    try:
        [trace] = native.parse_record(record, REF)
    except MalformedTrace as exc:
        with pytest.raises(MalformedTrace, match="^" + _escape(str(exc)) + "$"):
            native.index_record(record, REF.file, REF.line, REF.offset)
        return
    assert native.index_record(record, REF.file, REF.line, REF.offset) == [summarize(trace, REF, 0)]
    calls = tool_calls_from_messages(messages, parse_args=False)
    names, errors = call_digests(messages)
    assert names == [c.name for c in calls]
    assert errors == [(c.name, c.error_type, c.error_message) for c in calls if c.is_error]


def _escape(text: str) -> str:
    return re.escape(text)


# -- the chat helper -------------------------------------------------------------


def test_pairs_calls_with_results_by_id_and_parses_arguments() -> None:
    msgs = [
        {"role": "user", "content": "q"},
        assistant(call("a", "f", '{"x": 1}'), call("b", "g", "[1, 2]"), call("c", "h", "{bad")),
        tool("b", "Error: KeyError: 'mile'"),
        tool("a", "1"),
    ]
    f, g, h = tool_calls_from_messages(msgs)
    assert (f.id, f.name, f.arguments_raw, f.arguments, f.result, f.is_error) == (
        "a",
        "f",
        '{"x": 1}',
        {"x": 1},
        "1",
        False,
    )
    assert g.arguments is None and g.arguments_raw == "[1, 2]"  # not an object
    assert (g.is_error, g.error_type, g.error_message) == (True, "KeyError", "'mile'")
    assert h.arguments is None and h.result is None  # no result: recorded, result None
    assert not h.is_error


def test_arguments_logged_as_an_object_are_kept() -> None:
    [c] = tool_calls_from_messages([assistant(call("a", "f", {"x": "é"}))])
    assert c.arguments == {"x": "é"} and json.loads(c.arguments_raw) == {"x": "é"}


def test_result_without_id_answers_the_oldest_pending_call() -> None:
    msgs = [assistant(call("a", "f"), call("b", "g")), tool(None, "1"), tool(None, "2")]
    a, b = tool_calls_from_messages(msgs)
    assert (a.result, b.result) == ("1", "2")


def test_legacy_function_call() -> None:
    msgs = [
        {"role": "assistant", "function_call": {"name": "f", "arguments": '{"y": 2}'}},
        {"role": "function", "name": "f", "content": "Error: ValueError: v"},
    ]
    [c] = tool_calls_from_messages(msgs)
    assert (c.name, c.arguments, c.error_type, c.error_message) == (
        "f",
        {"y": 2},
        "ValueError",
        "v",
    )


@pytest.mark.parametrize(
    ("content", "flag", "expected"),
    [
        ("0.875", None, (False, None, None)),
        ("Error: KeyError: 'mile'", None, (True, "KeyError", "'mile'")),
        ("Error: bad input", None, (True, "Error", "bad input")),
        ("error: Disk: full", None, (True, "Error", "Disk: full")),
        ("Error: ReadTimeout: slow", None, (True, "ReadTimeout", "slow")),
        (
            "  ERROR: ZeroDivisionError: division by zero",
            None,
            (True, "ZeroDivisionError", "division by zero"),
        ),
        (
            "Error: json.decoder.JSONDecodeError: x",
            None,
            (True, "json.decoder.JSONDecodeError", "x"),
        ),
        ("Error: StopIteration", None, (True, "StopIteration", "")),
        (
            'Traceback (most recent call last):\n  File "t.py", line 3, in f\n'
            "    d[k]\nKeyError: 'mile'\n",
            None,
            (True, "KeyError", "'mile'"),
        ),
        (
            "Traceback (most recent call last):\n  ...\nsomething odd",
            None,
            (True, "Error", "something odd"),
        ),
        ("could not parse", True, (True, "Error", "could not parse")),
        ("ValueError: v\nmore", True, (True, "ValueError", "v")),
        ("Error: it failed", False, (False, None, None)),
        ("The Error: is quoted", None, (False, None, None)),
    ],
)
def test_classify_result(content: str, flag: Any, expected: tuple[Any, ...]) -> None:
    assert classify_result(content, flag) == expected


def test_classify_long_results_without_the_cache() -> None:
    text = "Error: ValueError: " + "x" * 5000
    assert classify_result(text) == (True, "ValueError", "x" * 5000)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("KeyError: 'mile'", ("KeyError", "'mile'")),
        ("pkg.mod.CustomError: boom", ("pkg.mod.CustomError", "boom")),
        ("bad input", None),
        ("Note: hello", None),
        ("a..b: x", None),
    ],
)
def test_split_exception(line: str, expected: Any) -> None:
    assert split_exception(line) == expected


# -- OpenAI chat -------------------------------------------------------------------


def test_openai_chat_lines_array_and_object() -> None:
    msgs = [{"role": "user", "content": "q"}, assistant(call("a", "f")), tool("a", "Error: x")]
    [t1] = openai_chat.parse_record(msgs, REF)
    assert t1.id == "traces/t.jsonl:3" and t1.task is None and len(t1.messages) == 3
    assert t1.tool_calls[0].is_error
    [t2] = openai_chat.parse_record({"messages": msgs, "metadata": {"user": "u"}}, REF)
    assert t2.extra == {"metadata": {"user": "u"}}
    [t3] = openai_chat.parse_record({"id": "conv-1", "messages": msgs}, REF)
    assert t3.id == "conv-1"
    fast = openai_chat.index_record(msgs, REF.file, REF.line, REF.offset)
    assert fast == [summarize(t1, REF, 0)]
    for bad, reason in (
        ([], "empty conversation"),
        ({"x": 1}, "missing field 'messages'"),
        (3, "got number"),
    ):
        with pytest.raises(MalformedTrace, match=reason):
            openai_chat.parse_record(bad, REF)


def _items(path: Path) -> list[Trace | Malformed]:
    return list(openai_chat.parse_file(path, path.name))


def test_openai_chat_json_one_conversation(tmp_path: Path) -> None:
    msgs = [{"role": "user", "content": "q"}, assistant(call("a", "f")), tool("a", "2")]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(msgs, indent=2))
    [trace] = _items(path)
    assert isinstance(trace, Trace) and trace.id == "one.json"
    assert trace.source == SourceRef("one.json", 1) and trace.tool_calls[0].result == "2"
    path.write_text(json.dumps({"messages": msgs}))
    [trace] = _items(path)
    assert isinstance(trace, Trace) and len(trace.messages) == 3


def test_openai_chat_json_many_conversations_with_lines(tmp_path: Path) -> None:
    a = [{"role": "user", "content": "a"}]
    b = {"id": "b", "messages": [{"role": "user", "content": "b"}], "outcome": {"passed": True}}
    path = tmp_path / "many.json"
    path.write_text("[\n" + json.dumps(a) + ",\n\n" + json.dumps(b) + ",\n" + '"oops"' + "\n]\n")
    first, second, bad = _items(path)
    assert isinstance(first, Trace) and first.id == "many.json#1" and first.source.line == 2  # type: ignore[union-attr]
    assert isinstance(second, Trace) and second.id == "b" and second.source.line == 4  # type: ignore[union-attr]
    assert second.outcome.passed is True
    assert bad == Malformed(
        "many.json", 5, "expected an array of messages or an object with 'messages', got string"
    )


def test_openai_chat_json_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n{"messages": []},\n{"messages": [}\n]')
    items = _items(path)
    assert isinstance(items[-1], Malformed) and items[-1].line == 3
    assert items[-1].reason.startswith("bad JSON")
    path.write_bytes(b'[{"role": "user", "content": "\xff"}]')
    assert _items(path) == [Malformed("bad.json", 1, "invalid UTF-8")]
    path.write_text("")
    assert _items(path) == []
    path.write_text('{"messages": [{"role": "user", "content": "q"}]} {"x": 1}')
    items = _items(path)
    assert isinstance(items[0], Trace) and items[1] == Malformed(
        "bad.json", 1, "extra data after the JSON value"
    )
