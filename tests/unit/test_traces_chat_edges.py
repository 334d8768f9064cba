"""Chat Completions edge cases: custom tools, arguments that are not JSON, logged error types."""

from __future__ import annotations

import json

from funcforge.traces.formats.chat import call_digests, tool_calls_from_messages


def messages(tool_msg: dict) -> list[dict]:
    return [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1"}},
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{not json"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        tool_msg,
    ]


def test_custom_tool_calls_and_non_json_arguments() -> None:
    calls = tool_calls_from_messages(
        messages({"role": "tool", "tool_call_id": "c2", "content": "ok"})
    )
    assert [(c.name, c.arguments_raw, c.arguments) for c in calls] == [
        ("run_sql", "SELECT 1", None),
        ("f", "{not json", None),
    ]
    assert calls[0].result == "1" and not calls[0].is_error


def test_a_logged_error_type_wins_over_the_guess_in_both_parsers() -> None:
    msgs = messages(
        {
            "role": "tool",
            "tool_call_id": "c2",
            "content": "'mile'",
            "is_error": True,
            "error_type": "KeyError",
        }
    )
    calls = tool_calls_from_messages(msgs)
    assert (calls[1].is_error, calls[1].error_type) == (True, "KeyError")
    names, failed = call_digests(json.loads(json.dumps(msgs)))
    assert names == ["run_sql", "f"] and failed[0][:2] == ("f", "KeyError")
