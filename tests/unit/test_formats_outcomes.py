"""Outcome sidecar join, toolset-version fallback, and format detection across the imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funcforge.traces.formats import all_formats, detect, get_format
from funcforge.traces.formats.assemble import definitions_version
from funcforge.traces.model import Outcome, Task, Trace
from funcforge.traces.outcomes import load_outcomes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


def sidecar(tmp_path: Path, *rows: object, raw: str = "") -> Path:
    path = tmp_path / "outcomes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + raw)
    return path


def trace(trace_id: str, task_id: str | None = None, **extra: object) -> Trace:
    return Trace(
        id=trace_id,
        task=Task(task_id) if task_id else None,
        outcome=Outcome(score=0.3, passed=None),
        extra=dict(extra),
    )


def test_trace_id_rows_beat_task_id_rows(tmp_path: Path) -> None:
    outcomes = load_outcomes(
        sidecar(
            tmp_path,
            {"task_id": "t1", "score": 1.0, "passed": True},
            {"trace_id": "run-2", "score": 0.25, "passed": False},
        )
    )
    a, b, c = trace("run-1", "t1"), trace("run-2", "t1"), trace("run-3", "t9")
    assert [outcomes.apply(t) for t in (a, b, c)] == [True, True, False]
    assert (a.outcome.score, a.outcome.passed) == (1.0, True)
    assert (b.outcome.score, b.outcome.passed) == (0.25, False)
    assert (c.outcome.score, c.outcome.passed) == (0.3, None)  # untouched
    assert outcomes.unused() == []


def test_aliases_recorded_by_the_import_match_trace_ids(tmp_path: Path) -> None:
    outcomes = load_outcomes(
        sidecar(
            tmp_path,
            {"trace_id": "4bf11e0cbbdeaa996bf4d0fc6a16a525", "passed": True},
            {"trace_id": "sess-9", "passed": False, "toolset_version": "abc", "split": "test"},
        )
    )
    otel = trace("conv-1", otel_trace_ids=["4bf11e0cbbdeaa996bf4d0fc6a16a525"])
    ag2 = trace("sess-9#2", ag2_session_id="sess-9")
    assert outcomes.apply(otel) and outcomes.apply(ag2)
    # a row with only `passed` scores 1.0 or 0.0
    assert (otel.outcome.score, otel.outcome.passed) == (1.0, True)
    assert (ag2.outcome.score, ag2.toolset_version, ag2.split) == (0.0, "abc", "test")


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    path = sidecar(
        tmp_path,
        {"trace_id": "a", "score": 1},
        {"score": 1.0},
        {"trace_id": "b"},
        {"trace_id": "c", "score": 1.5},
        {"trace_id": "d", "passed": "yes"},
        {"task_id": True, "passed": True},
        [1],
        {"trace_id": "a", "score": 0.5},
        raw='{"trace_id": "e", "sco',
    )
    outcomes = load_outcomes(path, "outcomes.jsonl")
    assert [(m.line, m.reason) for m in outcomes.malformed] == [
        (2, "needs 'trace_id' or 'task_id'"),
        (3, "needs 'score' or 'passed'"),
        (4, "'score' must be between 0 and 1, got 1.5"),
        (5, "'passed' must be true or false, got string"),
        (6, "'task_id' must be a non-empty string, got boolean"),
        (7, "expected an object, got array"),
        (1, "trace_id 'a' given again on line 8; that one wins"),
        (9, "unfinished last line (truncated: no newline at the end)"),
    ]
    assert outcomes.by_trace["a"].score == 0.5
    assert [str(m) for m in outcomes.unused()] == [
        "outcomes.jsonl:8: trace_id 'a' matched no trace"
    ]


def test_the_sidecar_is_recognised_and_holds_no_traces() -> None:
    path = FIXTURES / "outcomes.jsonl"
    fmt = detect(path, path.read_bytes())
    assert fmt is not None and fmt.name == "outcomes"
    assert fmt.parse_file is not None and list(fmt.parse_file(path, "outcomes.jsonl")) == []


# -- the toolset-version fallback ----------------------------------------------------

SCHEMA = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}


def test_the_same_tools_hash_alike_in_every_logged_shape() -> None:
    chat = [
        {"type": "function", "function": {"name": "f", "description": "F.", "parameters": SCHEMA}}
    ]
    flat = [{"type": "function", "name": "f", "description": "F.", "parameters": SCHEMA}]
    as_text = [json.dumps(flat[0])]
    schema_as_text = [{"name": "f", "description": "F.", "parameters": json.dumps(SCHEMA)}]
    versions = {definitions_version(d) for d in (chat, flat, as_text, schema_as_text)}
    assert len(versions) == 1
    version = versions.pop()
    assert version is not None and version.startswith("tools-") and len(version) == 18


def test_the_hash_follows_the_definitions() -> None:
    a = {"name": "f", "description": "F.", "parameters": SCHEMA}
    b = {"name": "g", "description": "G."}
    assert definitions_version([a, b]) == definitions_version([b, a])  # order does not matter
    assert definitions_version([a, b]) != definitions_version([a])
    assert definitions_version([a]) != definitions_version([{**a, "description": "F!"}])
    assert definitions_version(["f", "g"]) == definitions_version([{"name": "g"}, {"name": "f"}])
    assert definitions_version([]) is None
    assert definitions_version([{"description": "nameless"}, 7]) is None


# -- detection -------------------------------------------------------------------------

EXPECTED = {
    "ag2_runtime.db": "ag2-sqlite",
    "autogen_agentchat.jsonl": "autogen-agentchat",
    "autogen_agentchat_state.jsonl": "autogen-agentchat",
    "openai_agents.jsonl": "openai-agents",
    "openai_responses.jsonl": "openai-responses",
    "openai_responses_pairs.jsonl": "openai-responses",
    "otlp_genai.jsonl": "otlp",
    "otlp_genai_agents.jsonl": "otlp",
    "otlp_genai_events.jsonl": "otlp",
    "otlp_genai_events_logs.jsonl": "otlp",
    "otlp_genai_openllmetry.jsonl": "otlp",
    "otlp_genai_openllmetry_legacy.jsonl": "otlp",
    "otlp_genai_span_events.jsonl": "otlp",
    "otlp_openinference.jsonl": "otlp",
    "otlp_openinference_agents.jsonl": "otlp",
    "outcomes.jsonl": "outcomes",
}


def test_every_fixture_is_detected_from_its_content() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)
    for name, fmt_name in EXPECTED.items():
        path = FIXTURES / name
        fmt = detect(path, path.read_bytes()[: 64 * 1024])
        assert fmt is not None and fmt.name == fmt_name, name


def test_native_and_chat_files_keep_their_formats() -> None:
    native = Path(__file__).resolve().parents[2] / "samples" / "math-tools" / "traces"
    for path in native.glob("*.jsonl"):
        fmt = detect(path, path.read_bytes()[: 64 * 1024])
        assert fmt is not None and fmt.name == "native"


def test_a_configured_glob_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "exports" / "run.jsonl"
    path.parent.mkdir()
    path.write_bytes((FIXTURES / "otlp_genai.jsonl").read_bytes())
    overrides = {"exports/*.jsonl": "openai-agents"}
    fmt = detect(path, path.read_bytes()[:100], overrides, "exports/run.jsonl")
    assert fmt is not None and fmt.name == "openai-agents"
    fmt = detect(path, path.read_bytes()[:100], overrides, "other/run.jsonl")
    assert fmt is not None and fmt.name == "otlp"


@pytest.mark.parametrize(
    "name",
    ["otlp", "openai-agents", "openai-responses", "ag2-sqlite", "autogen-agentchat", "outcomes"],
)
def test_the_import_formats_are_registered(name: str) -> None:
    assert get_format(name).name == name
    assert name in {f.name for f in all_formats()}
