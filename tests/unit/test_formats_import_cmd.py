"""`funcforge import` on the real-library fixtures: as a subprocess, and in-process for details.

Each subprocess pays for importing every CLI command (seconds on a busy
machine), so only the end-to-end cases run as one; the rest call `cli.main`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from funcforge.cli import main
from funcforge.traces.formats.native import parse_record
from funcforge.traces.model import SourceRef, Trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


def funcforge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funcforge", "import", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_in(cwd: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`funcforge import ARGS` in this process, from `cwd`; (exit code, stdout, stderr)."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code = main(["import", *args])
    finally:
        os.chdir(old)
    out = capsys.readouterr()
    return code, out.out, out.err


def native(path: Path) -> list[Trace]:
    return [
        parse_record(json.loads(line), SourceRef(path.name, n))[0]
        for n, line in enumerate(path.read_text().splitlines(), 1)
    ]


def workspace(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def test_imports_every_format_to_native_lines_the_store_can_read(tmp_path: Path) -> None:
    names = [
        "otlp_genai.jsonl",
        "otlp_openinference.jsonl",
        "openai_agents.jsonl",
        "openai_responses_pairs.jsonl",
        "autogen_agentchat.jsonl",
        "ag2_runtime.db",
    ]
    ws = workspace(tmp_path, *names)
    proc = funcforge(*names, "--out", "imported/all.jsonl", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    traces = native(ws / "imported" / "all.jsonl")
    assert len(traces) == 3 + 3 + 4 + 3 + 3 + 4
    formats = [t.extra["source_format"] for t in traces]
    assert (
        formats
        == ["otlp"] * 6
        + ["openai-agents"] * 4
        + ["openai-responses"] * 3
        + ["autogen-agentchat"] * 3
        + ["ag2-sqlite"] * 4
    )
    # the messages alone reproduce every call and every failure
    failing = [(t.extra["source"], c.name) for t in traces for c in t.tool_calls if c.is_error]
    assert len(failing) == 7
    assert all(name == "convert_units" for _, name in failing)
    assert traces[0].extra["source"] == "otlp_genai.jsonl:1"
    assert traces[0].toolset_version == "3f2a9c1"
    lines = proc.stderr.splitlines()
    assert "otlp_genai.jsonl: otlp, 3 trace(s)" in lines
    assert "ag2_runtime.db: ag2-sqlite, 4 trace(s)" in lines
    assert lines[-1] == "imported 20 trace(s), 20 tool call(s) (7 failed) -> imported/all.jsonl"


def test_outcomes_sidecar_is_joined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, "otlp_openinference.jsonl", "outcomes.jsonl")
    code, out, err = run_in(
        ws, capsys, "otlp_openinference.jsonl", "--outcomes", "outcomes.jsonl", "--out", "-"
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["task"]["id"], r["outcome"]) for r in rows] == [
        ("convert-1", {"score": 1.0, "passed": True}),
        ("convert-2", {"score": 0.0, "passed": False}),
        ("algebra-17", {"score": 1.0, "passed": True}),
    ]
    assert "outcomes joined for 3" in err
    # the trace-id row names a run that was not imported: said, not fatal
    assert "outcomes.jsonl:4: trace_id 'conv-algebra-17' matched no trace" in err


def test_malformed_records_are_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (FIXTURES / "openai_responses.jsonl").read_text().splitlines()
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join([good[0], "[1]", "{broken", good[1], good[2][:50]]))
    code, _, err = run_in(tmp_path, capsys, "runs.jsonl", "--out", "out.jsonl")
    assert code == 0, err
    assert "funcforge: skipped runs.jsonl:2: items[0] must be an object, got number" in err
    assert "funcforge: skipped runs.jsonl:3: bad JSON:" in err
    assert (
        "funcforge: skipped runs.jsonl:5: unfinished last line (truncated: no newline at the end)"
        in err
    )
    assert [t.id for t in native(tmp_path / "out.jsonl")] == ["runs.jsonl:1", "runs.jsonl:4"]
    assert err.splitlines()[-1].endswith("; 3 record(s) skipped")


def test_format_option_and_configured_globs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace(tmp_path, "openai_responses.jsonl")
    (ws / "exports").mkdir()
    shutil.copy(FIXTURES / "otlp_genai.jsonl", ws / "exports" / "x.jsonl")
    (ws / "funcforge.toml").write_text('[formats]\n"exports/*.jsonl" = "openai-agents"\n')
    # the configured format is used: this OTLP file read as Agents SDK exports is skipped
    code, _, err = run_in(ws, capsys, "exports/x.jsonl", "--out", "o.jsonl")
    assert code == 2
    assert "exports/x.jsonl:1: not an Agents SDK export: 'object' is None" in err
    assert "funcforge: error: no traces found in the given files; nothing written" in err
    assert not (ws / "o.jsonl").exists()
    # a name that says nothing: detection gives up, --format decides
    shutil.copy(FIXTURES / "openai_responses.jsonl", ws / "runs.log")
    code, _, err = run_in(ws, capsys, "runs.log", "--out", "o.jsonl")
    assert code == 2 and "runs.log: unknown trace format; name it with --format" in err
    code, _, err = run_in(
        ws, capsys, "runs.log", "--format", "openai-responses", "--out", "o.jsonl"
    )
    assert code == 0, err
    assert "runs.log: openai-responses, 3 trace(s)" in err
    assert len(native(ws / "o.jsonl")) == 3
    code, _, err = run_in(ws, capsys, "runs.log", "--format", "nope", "--out", "o.jsonl")
    assert code == 2
    assert "unknown trace format 'nope'" in err


def test_unreadable_inputs_are_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    proc = funcforge("notes.txt", "--out", "o.jsonl", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("funcforge: error: notes.txt: unknown trace format; name it with")
    assert len(proc.stderr.splitlines()) == 1
    code, _, err = run_in(tmp_path, capsys, "missing.jsonl", "--out", "o.jsonl")
    assert (code, err) == (2, "funcforge: error: missing.jsonl: no such file\n")
    ws = workspace(tmp_path, "openai_agents.jsonl")
    code, _, err = run_in(ws, capsys, "openai_agents.jsonl", "--out", "openai_agents.jsonl")
    assert code == 2
    assert "--out would overwrite an input file" in err
