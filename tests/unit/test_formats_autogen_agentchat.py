"""autogen-agentchat dumps (TaskResult, save_state), from runs of the real library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funcforge.traces.formats import detect, get_format
from funcforge.traces.formats.native import parse_record as native_record
from funcforge.traces.model import MalformedTrace, SourceRef, Trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"
AGENTCHAT = get_format("autogen-agentchat")


def parse(obj: object, line: int = 1) -> list[Trace]:
    assert AGENTCHAT.parse_record is not None
    return AGENTCHAT.parse_record(obj, SourceRef("runs.jsonl", line))


def lines(name: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


@pytest.mark.parametrize("name", ["autogen_agentchat.jsonl", "autogen_agentchat_state.jsonl"])
def test_function_calls_and_execution_results(name: str) -> None:
    traces = [t for n, obj in enumerate(lines(name), 1) for t in parse(obj, n)]
    assert [[(c.id, c.name, c.is_error) for c in t.tool_calls] for t in traces] == [
        [("call_001", "convert_units", False)],
        [("call_003", "convert_units", True)],
        [("call_005", "evaluate_expression", False)],
    ]
    assert [t.id for t in traces] == ["runs.jsonl:1", "runs.jsonl:2", "runs.jsonl:3"]
    assert traces[1].tool_calls[0].result == "'mile'"
    assert traces[0].task is not None and traces[0].task.input == "Convert 3 km to m"
    assert traces[2].final_answer == "Result: 0.875"


def test_is_error_survives_the_native_round_trip() -> None:
    # the failing result's text is just "'mile'": only is_error says it failed
    trace = parse(lines("autogen_agentchat.jsonl")[1])[0]
    again = native_record(trace.to_native(), SourceRef("native.jsonl", 1))[0]
    assert [(c.name, c.is_error, c.result) for c in again.tool_calls] == [
        ("convert_units", True, "'mile'")
    ]


def test_task_result_time_and_a_bare_message_array() -> None:
    result = lines("autogen_agentchat.jsonl")[0]
    trace = parse(result)[0]
    assert trace.time == result["messages"][0]["created_at"][:23] + "Z"
    same = parse(result["messages"])[0]
    assert same.messages == trace.messages


def test_a_team_state_gives_one_run_per_agent() -> None:
    states = lines("autogen_agentchat_state.jsonl")
    team = {
        "type": "TeamState",
        "version": "1.0.0",
        "agent_states": {
            "calculator": {"type": "ChatAgentContainerState", "agent_state": states[0]},
            "checker": {"type": "ChatAgentContainerState", "agent_state": states[1]},
        },
    }
    traces = parse(team, 4)
    assert [t.id for t in traces] == ["runs.jsonl:4#1", "runs.jsonl:4#2"]
    assert [t.extra["agent_state"] for t in traces] == [
        "agent_states.calculator.agent_state",
        "agent_states.checker.agent_state",
    ]
    assert [t.tool_calls[0].is_error for t in traces] == [False, True]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (3, "expected a TaskResult, a message array or a state, got number"),
        (
            {"type": "AssistantAgentState"},
            "no agentchat messages: no 'messages' or 'llm_context.messages'",
        ),
        ({"messages": [{"content": "hi"}]}, "messages[0] has no 'type' (not an agentchat message)"),
        (
            {"messages": [{"type": "ToolCallRequestEvent", "content": "x"}]},
            "messages[0].content must be an array of FunctionCall, got string",
        ),
        (
            {"messages": [{"type": "ToolCallExecutionEvent", "content": [{"name": "f"}]}]},
            "messages[0].content[0] is not a FunctionExecutionResult",
        ),
    ],
)
def test_malformed_records_say_why(obj: object, reason: str) -> None:
    with pytest.raises(MalformedTrace) as info:
        parse(obj)
    assert str(info.value) == reason


def test_detected_before_the_plain_chat_format() -> None:
    for name in ("autogen_agentchat.jsonl", "autogen_agentchat_state.jsonl"):
        path = FIXTURES / name
        assert detect(path, path.read_bytes()) is AGENTCHAT
        assert detect(path, path.read_bytes()[:150]) is AGENTCHAT
