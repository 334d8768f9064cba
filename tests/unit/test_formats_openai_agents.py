"""OpenAI Agents SDK trace exports, from a fixture the SDK itself exported."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.traces.formats import Malformed, detect, get_format
from funcforge.traces.model import Trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"
FIXTURE = FIXTURES / "openai_agents.jsonl"
AGENTS = get_format("openai-agents")


def parse(path: Path) -> tuple[list[Trace], list[Malformed]]:
    assert AGENTS.parse_file is not None
    items = list(AGENTS.parse_file(path, path.name))
    traces = [t for t in items if isinstance(t, Trace)]
    return traces, [m for m in items if isinstance(m, Malformed)]


def test_runs_with_metadata_tool_calls_and_errors() -> None:
    traces, bad = parse(FIXTURE)
    assert bad == []
    assert [t.task.id for t in traces if t.task] == [
        "convert-1",
        "convert-2",
        "algebra-17",
        "convert-2",
    ]
    assert all(t.id.startswith("trace_") for t in traces)
    assert {t.toolset_version for t in traces} == {"3f2a9c1"}
    assert [t.extra["group_id"] for t in traces] == [t.task.id for t in traces if t.task]
    assert [[(c.name, c.is_error, c.error_type) for c in t.tool_calls] for t in traces] == [
        [("convert_units", False, None)],
        [("convert_units", True, "KeyError")],
        [("evaluate_expression", False, None)],
        [("convert_units", True, "Error")],
    ]
    assert traces[1].tool_calls[0].error_message == "'mile'"
    assert traces[0].time is not None and traces[0].time.endswith("Z")


def test_generation_spans_give_the_messages() -> None:
    traces, _ = parse(FIXTURE)
    chat = traces[1]
    assert [m["role"] for m in chat.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert chat.task is not None and chat.task.input == "Convert 2 mile to km"
    assert chat.final_answer == "Result: Error: KeyError: 'mile'"
    assert chat.tool_calls[0].id == "call_003"
    assert "refusal" not in chat.messages[-1]  # the SDK's null fields are dropped


def test_responses_model_runs_without_messages_get_synthesised_ones() -> None:
    traces, _ = parse(FIXTURE)
    run = traces[0]
    assert [m["role"] for m in run.messages] == ["assistant", "tool"]
    assert run.tool_calls[0].arguments == {"value": 3, "from_unit": "km", "to_unit": "m"}
    assert run.tool_calls[0].result == "3000.0"


def test_the_sdk_default_error_handler_still_counts_as_a_failure() -> None:
    # the default failure_error_function hides the exception and the span error is redacted
    traces, _ = parse(FIXTURE)
    redacted = traces[3].tool_calls[0]
    assert redacted.result == "An error occurred while running the tool. Please try again."
    assert redacted.is_error
    assert redacted.error_message == "Tool execution failed. Error details are redacted."
    tool_msg = next(m for m in traces[3].messages if m["role"] == "tool")
    assert tool_msg["is_error"] is True  # so the native format keeps the failure


def test_upload_batches_give_the_same_runs(tmp_path: Path) -> None:
    objs = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    path = tmp_path / "batches.jsonl"
    path.write_text(
        "\n".join(json.dumps({"data": objs[i : i + 5]}) for i in range(0, len(objs), 5)) + "\n"
    )
    assert detect(path, path.read_bytes()[:65536]) is AGENTS
    traces, bad = parse(path)
    original, _ = parse(FIXTURE)
    assert bad == []
    assert [(t.id, [c.name for c in t.tool_calls]) for t in traces] == [
        (t.id, [c.name for c in t.tool_calls]) for t in original
    ]


def test_malformed_and_truncated_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    lines = FIXTURE.read_text().splitlines()
    lines.insert(2, "{oops")
    lines.insert(3, json.dumps({"object": "trace.span", "id": "span_x", "span_data": {}}))
    lines.insert(4, json.dumps({"object": "response"}))
    text = "\n".join(lines)
    path = tmp_path / "bad.jsonl"
    path.write_text(text[: len(text) - 40])  # the last span is cut short
    traces, bad = parse(path)
    assert [(m.line, m.reason) for m in bad] == [
        (3, "bad JSON: Expecting property name enclosed in double quotes"),
        (4, "span 'span_x' without a 'trace_id'"),
        (5, "not an Agents SDK export: 'object' is 'response'"),
        (len(lines), "unfinished last line (truncated: no newline at the end)"),
    ]
    assert len(traces) == 4  # the cut line was the last run's outer task span


def test_spans_whose_trace_object_is_missing_still_form_a_run(tmp_path: Path) -> None:
    lines = [ln for ln in FIXTURE.read_text().splitlines() if '"object": "trace"' not in ln]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert detect(path, path.read_bytes()[:2000]) is AGENTS
    traces, bad = parse(path)
    assert bad == [] and len(traces) == 4
    # without the trace's metadata, the tool names the agent spans list are hashed
    versions = {t.toolset_version for t in traces}
    assert len(versions) == 1
    assert str(versions.pop()).startswith("tools-")
    assert {t.task.id for t in traces if t.task} <= {t.id for t in traces}
