"""OpenAI Responses API items, from runs logged with the real openai SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funcforge.traces.formats import detect, get_format
from funcforge.traces.formats.assemble import definitions_version
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"
RESPONSES = get_format("openai-responses")


def parse_line(obj: object, line: int = 1) -> Trace:
    assert RESPONSES.parse_record is not None
    traces = RESPONSES.parse_record(obj, SourceRef("runs.jsonl", line))
    assert len(traces) == 1
    return traces[0]


def fixture_lines(name: str) -> list[object]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


@pytest.mark.parametrize("name", ["openai_responses.jsonl", "openai_responses_pairs.jsonl"])
def test_calls_are_paired_with_outputs_by_call_id(name: str) -> None:
    traces = [parse_line(obj, n) for n, obj in enumerate(fixture_lines(name), 1)]
    assert [[(c.id, c.name, c.is_error, c.error_type) for c in t.tool_calls] for t in traces] == [
        [("call_001", "convert_units", False, None)],
        [("call_003", "convert_units", True, "KeyError")],
        [("call_005", "evaluate_expression", False, None)],
    ]
    assert traces[1].tool_calls[0].result == "Error: KeyError: 'mile'"
    assert traces[2].final_answer == "Result: 0.875"
    assert traces[0].task is not None and traces[0].task.input == "Convert 3 km to m"


def test_item_lists_are_named_after_their_place() -> None:
    trace = parse_line(fixture_lines("openai_responses.jsonl")[1], 2)
    assert trace.id == "runs.jsonl:2"
    assert [m["role"] for m in trace.messages] == ["user", "assistant", "tool", "assistant"]
    assert trace.toolset_version is None  # an item list does not say which tools were offered


def test_request_response_pairs_give_id_metadata_and_the_tools_hash() -> None:
    traces = [parse_line(obj) for obj in fixture_lines("openai_responses_pairs.jsonl")]
    assert [t.id for t in traces] == ["resp_002", "resp_004", "resp_006"]
    assert [t.task.id for t in traces if t.task] == ["convert-1", "convert-2", "algebra-17"]
    assert traces[0].messages[0] == {"role": "system", "content": "Use the tools to answer."}
    request_tools = fixture_lines("openai_responses_pairs.jsonl")[0]["request"]["tools"]  # type: ignore[index]
    assert {t.toolset_version for t in traces} == {definitions_version(request_tools)}
    # the same tools in Chat Completions form hash alike
    chat_form = [
        {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
        for t in request_tools
    ]
    assert definitions_version(chat_form) == traces[0].toolset_version


def test_a_response_object_alone_gives_its_output_items() -> None:
    response = fixture_lines("openai_responses_pairs.jsonl")[0]["response"]  # type: ignore[index]
    response["output"] = [
        {"type": "function_call", "call_id": "c9", "name": "convert_units", "arguments": "{}"},
        {
            "type": "function_call",
            "call_id": "c10",
            "name": "evaluate_expression",
            "arguments": "not json",
        },
    ]
    trace = parse_line(response)
    assert trace.id == "resp_002"
    assert [m["role"] for m in trace.messages] == ["assistant"]  # consecutive calls share one
    assert [(c.id, c.arguments, c.result) for c in trace.tool_calls] == [
        ("c9", {}, None),
        ("c10", None, None),
    ]


def test_custom_tool_calls_and_developer_messages() -> None:
    trace = parse_line(
        {
            "id": "run-1",
            "task": {"id": "t1", "input": "grep it", "expected": "3"},
            "toolset_version": "abc1234",
            "items": [
                {"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
                {"role": "user", "content": "grep it"},
                {"type": "custom_tool_call", "call_id": "k1", "name": "grep", "input": "a.*b"},
                {
                    "type": "custom_tool_call_output",
                    "call_id": "k1",
                    "output": "Traceback (most recent call last):\n  ...\nre.PatternError: bad pattern",
                },
                {"type": "reasoning", "summary": []},
            ],
            "outcome": {"score": 0.0, "passed": False},
        }
    )
    assert trace.messages[0] == {"role": "system", "content": "Be brief."}
    call = trace.tool_calls[0]
    assert (call.name, call.arguments_raw, call.is_error, call.error_type) == (
        "grep",
        "a.*b",
        True,
        "re.PatternError",
    )
    assert trace.task is not None and (trace.task.id, trace.task.expected) == ("t1", "3")
    assert (trace.toolset_version, trace.outcome.passed) == ("abc1234", False)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ("text", "expected an array of items or an object, got string"),
        ([], "no items (an empty run)"),
        ([1], "items[0] must be an object, got number"),
        ([{"type": "function_call", "call_id": "c"}], "items[0]: function_call without a 'name'"),
        (
            [{"type": "function_call_output", "output": "x"}],
            "items[0]: function_call_output without a 'call_id'",
        ),
        ({"request": [], "response": {}}, "'request' and 'response' must be objects"),
        ({"foo": 1}, "not Responses API items: no 'items', 'input', 'request' or 'output'"),
    ],
)
def test_malformed_records_say_why(obj: object, reason: str) -> None:
    assert RESPONSES.parse_record is not None
    with pytest.raises(MalformedTrace) as info:
        RESPONSES.parse_record(obj, SourceRef("runs.jsonl", 7))
    assert str(info.value) == reason


def test_detection_does_not_take_plain_chat_lists(tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps([{"role": "user", "content": "hi"}]) + "\n")
    fmt = detect(chat, chat.read_bytes())
    assert fmt is not None and fmt.name == "openai-chat"
    for name in ("openai_responses.jsonl", "openai_responses_pairs.jsonl"):
        path = FIXTURES / name
        assert detect(path, path.read_bytes()) is RESPONSES
        assert detect(path, path.read_bytes()[:300]) is RESPONSES  # first line cut short
