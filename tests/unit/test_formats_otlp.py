"""OTLP JSON Lines (GenAI semantic conventions, OpenInference): fixtures made by the real libraries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from funcforge.traces.formats import Malformed, detect, get_format
from funcforge.traces.formats.assemble import definitions_version
from funcforge.traces.model import Trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"
OTLP = get_format("otlp")


def parse(path: Path) -> tuple[list[Trace], list[Malformed]]:
    assert OTLP.parse_file is not None
    items = list(OTLP.parse_file(path, path.name))
    return [t for t in items if isinstance(t, Trace)], [
        m for m in items if isinstance(m, Malformed)
    ]


def calls(trace: Trace) -> list[tuple[str, bool, str | None]]:
    return [(c.name, c.is_error, c.error_type) for c in trace.tool_calls]


EXPECTED_CALLS = [
    [("convert_units", False, None)],
    [("convert_units", True, "KeyError")],
    [("evaluate_expression", False, None)],
]


@pytest.mark.parametrize(
    "name",
    [
        "otlp_genai.jsonl",
        "otlp_genai_agents.jsonl",
        "otlp_genai_openllmetry.jsonl",
        "otlp_genai_openllmetry_legacy.jsonl",
        "otlp_genai_events_logs.jsonl",
        "otlp_genai_span_events.jsonl",
        "otlp_openinference.jsonl",
        "otlp_openinference_agents.jsonl",
    ],
)
def test_each_fixture_gives_the_three_runs(name: str) -> None:
    traces, bad = parse(FIXTURES / name)
    assert bad == []
    assert [calls(t) for t in traces] == EXPECTED_CALLS
    assert [t.task.input for t in traces if t.task] == [
        "Convert 3 km to m",
        "Convert 2 mile to km",
        "What is 3/4 + 1/8?",
    ]
    first = traces[0].tool_calls[0]
    assert first.arguments == {"value": 3, "from_unit": "km", "to_unit": "m"}
    assert first.result == "3000.0"
    failed = traces[1].tool_calls[0]
    assert failed.error_message == "'mile'"
    assert traces[2].final_answer == "Result: 0.875"
    for trace in traces:
        assert trace.time is not None and trace.time.endswith("Z")
        assert trace.source is not None and trace.source.file == name


def test_genai_conversation_id_task_version_and_evaluation() -> None:
    traces, _ = parse(FIXTURES / "otlp_genai.jsonl")
    assert [t.id for t in traces] == ["conv-convert-1", "conv-convert-2", "conv-algebra-17"]
    assert [t.task.id for t in traces if t.task] == ["convert-1", "convert-2", "algebra-17"]
    assert {t.toolset_version for t in traces} == {"3f2a9c1"}
    assert [(t.outcome.score, t.outcome.passed) for t in traces] == [
        (1.0, True),
        (0.0, False),
        (1.0, True),
    ]
    assert len(traces[0].extra["otel_trace_ids"]) == 1
    # the execute_tool span's error.type and status message name the failure
    assert traces[1].tool_calls[0].result == "Error: KeyError: 'mile'"
    roles = [m["role"] for m in traces[1].messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]


def test_tool_call_response_with_result_key_and_text_part_gives_one_tool_message() -> None:
    # opentelemetry-instrumentation-openai-agents-v2 writes {"type": "tool_call_response",
    # "result": ...} next to a text part repeating it
    raw = (FIXTURES / "otlp_genai_agents.jsonl").read_text()
    assert '\\"result\\":' in raw
    traces, _ = parse(FIXTURES / "otlp_genai_agents.jsonl")
    for trace in traces:
        assert [m["role"] for m in trace.messages].count("tool") == 1
    assert traces[1].tool_calls[0].result == "Error: KeyError: 'mile'"
    assert traces[0].toolset_version is None  # nothing says which tools were offered


@pytest.mark.parametrize(
    "name", ["otlp_genai_openllmetry.jsonl", "otlp_genai_openllmetry_legacy.jsonl"]
)
def test_calls_come_from_messages_when_there_are_no_tool_spans(name: str) -> None:
    path = FIXTURES / name
    assert "execute_tool" not in path.read_text()
    traces, _ = parse(path)
    assert traces[1].tool_calls[0].id == "call_003"
    assert [t.task.id for t in traces if t.task] == ["convert-1", "convert-2", "algebra-17"]
    assert [m["role"] for m in traces[1].messages] == ["user", "assistant", "tool", "assistant"]


def _without_version(src: Path, dest: Path) -> Path:
    lines = []
    for line in src.read_text().splitlines():
        obj = json.loads(line)
        for rs in obj["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    sp["attributes"] = [
                        a for a in sp["attributes"] if a["key"] != "funcforge.toolset_version"
                    ]
                    for a in sp["attributes"]:
                        if a["key"] == "metadata":
                            meta = json.loads(a["value"]["stringValue"])
                            meta.pop("funcforge.toolset_version", None)
                            a["value"]["stringValue"] = json.dumps(meta)
        lines.append(json.dumps(obj))
    dest.write_text("\n".join(lines) + "\n")
    return dest


def test_version_falls_back_to_a_hash_of_the_offered_tool_definitions(tmp_path: Path) -> None:
    openllmetry, _ = parse(
        _without_version(FIXTURES / "otlp_genai_openllmetry.jsonl", tmp_path / "a.jsonl")
    )
    openinference, _ = parse(
        _without_version(FIXTURES / "otlp_openinference.jsonl", tmp_path / "b.jsonl")
    )
    legacy, _ = parse(
        _without_version(FIXTURES / "otlp_genai_openllmetry_legacy.jsonl", tmp_path / "c.jsonl")
    )
    # llm.request.functions.{i} (older OpenLLMetry) names the same tools too
    versions = {t.toolset_version for t in openllmetry + openinference + legacy}
    assert len(versions) == 1
    version = versions.pop()
    assert version is not None and version.startswith("tools-") and len(version) == 18
    # gen_ai.tool.definitions (flat) and llm.tools (Chat Completions shape) hash alike
    defs = json.loads(
        next(
            a["value"]["stringValue"]
            for line in (FIXTURES / "otlp_genai_openllmetry.jsonl").read_text().splitlines()
            for rs in json.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for sp in ss["spans"]
            for a in sp["attributes"]
            if a["key"] == "gen_ai.tool.definitions"
        )
    )
    assert definitions_version(defs) == version


def test_per_message_log_events_give_the_conversation() -> None:
    traces, _ = parse(FIXTURES / "otlp_genai_events_logs.jsonl")
    assert [m["role"] for m in traces[0].messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert traces[0].messages[3] == {
        "role": "tool",
        "content": "3000.0",
        "tool_call_id": "call_001",
    }


def test_spans_without_content_give_no_runs() -> None:
    # the chat spans of the per-message-event path carry no messages themselves
    traces, bad = parse(FIXTURES / "otlp_genai_events.jsonl")
    assert traces == [] and bad == []


def test_openinference_sessions_metadata_and_tool_spans() -> None:
    traces, _ = parse(FIXTURES / "otlp_openinference.jsonl")
    assert [t.id for t in traces] == [
        "session-convert-1",
        "session-convert-2",
        "session-algebra-17",
    ]
    assert [t.task.id for t in traces if t.task] == ["convert-1", "convert-2", "algebra-17"]
    assert {t.toolset_version for t in traces} == {"3f2a9c1"}
    # the TOOL span has no call id: it is paired with the LLM's call by name and order
    assert traces[1].tool_calls[0].id == "call_003"
    agents, _ = parse(FIXTURES / "otlp_openinference_agents.jsonl")
    # output.value recorded as a double is rendered as JSON text
    assert agents[0].tool_calls[0].result == "3000.0"


def _rewrite(src: Path, dest: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    lines = [json.dumps(edit(json.loads(line))) for line in src.read_text().splitlines()]
    dest.write_text("\n".join(lines) + "\n")
    return dest


def _spans(obj: dict) -> list[dict]:  # type: ignore[type-arg]
    return [sp for rs in obj["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]


def test_one_conversation_over_several_otlp_traces_is_one_run(tmp_path: Path) -> None:
    def edit(obj: dict) -> dict:  # type: ignore[type-arg]
        for sp in _spans(obj):
            for a in sp["attributes"]:
                if a["key"] == "session.id":
                    a["value"]["stringValue"] = "one-session"
        return obj

    path = _rewrite(FIXTURES / "otlp_openinference.jsonl", tmp_path / "t.jsonl", edit)
    traces, _ = parse(path)
    assert len(traces) == 1
    assert traces[0].id == "one-session"
    assert len(traces[0].extra["otel_trace_ids"]) == 3
    # the longest conversation gives the messages; the tool spans it does not show are
    # added to it, so no call (and no failure) is lost
    assert [m["content"] for m in traces[0].messages if m["role"] == "user"] == [
        "What is 3/4 + 1/8?"
    ]
    assert sorted(calls(traces[0])) == sorted(c for run in EXPECTED_CALLS for c in run)
    assert len([m for m in traces[0].messages if m["role"] == "tool"]) == 3


def test_an_otlp_trace_holding_two_conversations_is_split(tmp_path: Path) -> None:
    lines = (FIXTURES / "otlp_genai.jsonl").read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    first_trace = _spans(objs[0])[0]["traceId"]

    def same_trace(obj: dict) -> dict:  # type: ignore[type-arg]
        for sp in _spans(obj):
            sp["traceId"] = first_trace
        return obj

    path = _rewrite(FIXTURES / "otlp_genai.jsonl", tmp_path / "t.jsonl", same_trace)
    traces, _ = parse(path)
    assert [t.id for t in traces] == ["conv-convert-1", "conv-convert-2", "conv-algebra-17"]
    assert [calls(t) for t in traces] == EXPECTED_CALLS


def test_base64_ids_from_protobuf_json_mapping_are_accepted(tmp_path: Path) -> None:
    def to_base64(obj: dict) -> dict:  # type: ignore[type-arg]
        for sp in _spans(obj):
            for key in ("traceId", "spanId", "parentSpanId"):
                if sp.get(key):
                    sp[key] = base64.b64encode(bytes.fromhex(sp[key])).decode()
        return obj

    path = _rewrite(FIXTURES / "otlp_openinference_agents.jsonl", tmp_path / "t.jsonl", to_base64)
    traces, bad = parse(path)
    assert bad == []
    assert [calls(t) for t in traces] == EXPECTED_CALLS
    original, _ = parse(FIXTURES / "otlp_openinference_agents.jsonl")
    assert [t.id for t in traces] == [t.id for t in original]


def test_malformed_lines_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    lines = (FIXTURES / "otlp_genai.jsonl").read_text().splitlines()
    no_trace_id = json.loads(lines[1])
    del _spans(no_trace_id)[0]["traceId"]
    lines[1] = json.dumps(no_trace_id)
    lines.insert(3, "{not json")
    lines.insert(4, '{"resourceMetrics": []}')
    lines.insert(5, "[1, 2]")
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    traces, bad = parse(path)
    assert [(m.line, m.reason.split(":")[0]) for m in bad] == [
        (2, "resourceSpans[0].scopeSpans[0].spans[0]"),
        (4, "bad JSON"),
        (5, "OTLP metrics hold no traces"),
        (6, "expected an OTLP TracesData object, got array"),
    ]
    assert "missing or invalid traceId" in bad[0].reason
    assert [calls(t) for t in traces] == EXPECTED_CALLS  # the lost span was not a tool span


def test_a_truncated_last_line_is_reported(tmp_path: Path) -> None:
    data = (FIXTURES / "otlp_genai.jsonl").read_bytes()
    cut = data[: data.rindex(b"\n", 0, len(data) - 1) + 200]
    path = tmp_path / "cut.jsonl"
    path.write_bytes(cut)
    traces, bad = parse(path)
    n = cut.count(b"\n") + 1
    assert [(m.file, m.line) for m in bad] == [("cut.jsonl", n)]
    assert "unfinished last line" in bad[0].reason
    # the lost line held the last run's invoke_agent span: its chat and tool spans remain,
    # grouped by trace id, without the conversation id, task id, version and evaluation
    assert [calls(t) for t in traces] == EXPECTED_CALLS
    last = traces[2]
    assert len(last.id) == 32 and not last.id.startswith("conv-")
    assert (last.toolset_version, last.outcome.score, last.outcome.passed) == (None, None, None)
    assert traces[1].toolset_version == "3f2a9c1"


def test_detected_from_content_even_when_the_first_line_is_longer_than_the_head() -> None:
    path = FIXTURES / "otlp_openinference.jsonl"
    head = path.read_bytes()[:200]
    fmt = detect(path, head)
    assert fmt is not None and fmt.name == "otlp"
    assert detect(path.with_suffix(".txt"), head) is None


def test_resource_attributes_name_the_version_for_log_only_files(tmp_path: Path) -> None:
    # OTEL_RESOURCE_ATTRIBUTES="funcforge.toolset_version=..." puts it on every record
    def edit(obj: dict) -> dict:  # type: ignore[type-arg]
        for rl in obj["resourceLogs"]:
            rl["resource"]["attributes"].append(
                {"key": "funcforge.toolset_version", "value": {"stringValue": "a1b2c3d"}}
            )
        return obj

    path = _rewrite(FIXTURES / "otlp_genai_events_logs.jsonl", tmp_path / "logs.jsonl", edit)
    traces, _ = parse(path)
    assert [t.toolset_version for t in traces] == ["a1b2c3d"] * 3
    plain, _ = parse(FIXTURES / "otlp_genai_events_logs.jsonl")
    assert [t.toolset_version for t in plain] == [None] * 3


def test_a_pretty_printed_tracesdata_document_is_read_whole(tmp_path: Path) -> None:
    lines = (FIXTURES / "otlp_genai.jsonl").read_text().splitlines()
    merged = json.loads(lines[0])
    for line in lines[1:]:
        merged["resourceSpans"] += json.loads(line)["resourceSpans"]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(merged, indent=2))
    assert detect(path, path.read_bytes()[:300]) is OTLP
    traces, bad = parse(path)
    assert bad == []
    assert [calls(t) for t in traces] == EXPECTED_CALLS
    assert {t.source.line for t in traces if t.source} == {1}
