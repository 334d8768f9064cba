"""`funcforge stats` end to end: a real subprocess on a temporary workspace."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

TOOLS = textwrap.dedent(
    '''\
    """Unit tools."""

    UNITS = {"km": 1000.0}


    def convert_units(value: float, unit: str) -> float:
        """Convert to meters."""
        return value * UNITS[unit]


    def format_number(x: float) -> str:
        """Two decimals."""
        return f"{x:.2f}"


    def never_called(x: int) -> int:
        """Nobody calls me."""
        return x
    '''
)


def call_line(n: int, calls: list[tuple[str, str]], passed: bool, version: str = "abc123") -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"q{n}"}]
    for k, (name, result) in enumerate(calls):
        cid = f"c{k}"
        messages.append(
            {
                "role": "assistant",
                "tool_calls": [{"id": cid, "function": {"name": name, "arguments": "{}"}}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": cid, "content": result})
    return json.dumps(
        {
            "id": f"run-{n}",
            "task": {"id": f"t{n % 3}", "input": f"q{n}"},
            "messages": messages,
            "outcome": {"score": 1.0 if passed else 0.0, "passed": passed},
            "toolset_version": version,
            "time": f"2026-11-20T10:0{n}:00Z",
        }
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "logs").mkdir()
    (ws / "tools" / "units.py").write_text(TOOLS)
    (ws / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.funcforge]\ntools = ["tools/*.py"]\n'
        'traces = ["logs/*.jsonl"]\n'
    )
    rows = [
        call_line(1, [("convert_units", "Error: KeyError: 'mile'")], passed=False),
        call_line(2, [("convert_units", "1000.0"), ("format_number", "1000.00")], passed=True),
        "{this is not json",
        call_line(3, [("convert_units", "Error: KeyError: 'mile'")], passed=False),
        call_line(4, [("ghost_tool", "ok")], passed=True, version="def456"),
    ]
    (ws / "logs" / "run.jsonl").write_text("\n".join(rows) + "\n")
    return ws


def stats(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funcforge", "stats", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_json_report(workspace: Path) -> None:
    out = stats(str(workspace), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    tools = {t["name"]: t for t in doc["tools"]}
    assert [t["name"] for t in doc["tools"]] == [
        "convert_units",
        "format_number",
        "never_called",
        "ghost_tool",
    ]
    cu = tools["convert_units"]
    assert (cu["file"], cu["line"], cu["calls"], cu["errors"]) == ("tools/units.py", 6, 3, 2)
    assert cu["error_types"] == {"KeyError": 2}
    assert cu["pass_rate"] == pytest.approx(1 / 3)
    assert cu["examples"] == {"KeyError": ["logs/run.jsonl:1", "logs/run.jsonl:4"]}
    assert tools["never_called"] == {
        "name": "never_called",
        "file": "tools/units.py",
        "line": 16,
        "definition": {
            "type": "function",
            "function": {
                "name": "never_called",
                "description": "Nobody calls me.",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                    "required": ["x"],
                },
            },
        },
        "schema_hints": [],
        "calls": 0,
        "errors": 0,
        "error_types": {},
        "pass_rate": None,
        "traces": 0,
        "tasks": 0,
        "examples": {},
    }
    ghost = tools["ghost_tool"]
    assert ghost["definition"] is None and ghost["schema_hints"] == []
    assert (ghost["file"], ghost["line"], ghost["calls"], ghost["pass_rate"]) == (
        None,
        None,
        1,
        1.0,
    )
    assert [(v["version"], v["traces"], v["mean_score"], v["passed"]) for v in doc["versions"]] == [
        ("abc123", 3, pytest.approx(1 / 3), 1),
        ("def456", 1, 1.0, 1),
    ]
    assert doc["malformed"] == [
        {
            "file": "logs/run.jsonl",
            "line": 3,
            "reason": "bad JSON: Expecting property name enclosed in double quotes (column 2)",
        }
    ]
    assert doc["config"]["source"] == str(workspace / "pyproject.toml")
    assert doc["traces"] == 4


def test_table_report(workspace: Path) -> None:
    out = stats(cwd=workspace)  # PATH defaults to the current folder
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.splitlines()[0] == f"configuration from {workspace / 'pyproject.toml'}"
    assert "traces: 4 in 1 file (logs/*.jsonl); 1 malformed line skipped" in text
    header = next(line for line in text.splitlines() if line.startswith("tool "))
    assert header.split() == [
        "tool", "where", "calls", "errors", "error", "rate", "top", "error", "pass", "rate",
    ]  # fmt: skip
    row = next(line for line in text.splitlines() if line.startswith("convert_units"))
    assert row.split() == [
        "convert_units",
        "tools/units.py:6",
        "3",
        "2",
        "67%",
        "KeyError",
        "(2)",
        "33%",
    ]
    never = next(line for line in text.splitlines() if line.startswith("never_called"))
    assert never.split() == ["never_called", "tools/units.py:16", "0", "0", "-", "-", "-"]
    assert "ghost_tool" in text and "(not in toolset)" in text
    assert "abc123" in text and "1/3" in text
    assert "  logs/run.jsonl:3: bad JSON" in text


def test_no_configuration_uses_defaults_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "t.py").write_text("def ping() -> str:\n    return 'pong'\n")
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "a.jsonl").write_text(call_line(1, [("ping", "pong")], True) + "\n")
    out = stats(str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"no funcforge configuration in {tmp_path}; using defaults"
    assert "ping" in out.stdout and "100%" in out.stdout


def test_one_trace_file_as_path(workspace: Path) -> None:
    other = workspace / "else[where].jsonl"  # glob characters in the name are literal
    other.write_text(call_line(9, [("format_number", "Error: ValueError: nan")], False) + "\n")
    out = stats(str(other), "--json", cwd=workspace)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    tools = {t["name"]: t for t in doc["tools"]}
    assert tools["format_number"]["error_types"] == {"ValueError": 1}
    assert tools["convert_units"]["calls"] == 0 and doc["traces"] == 1


def test_missing_path_is_a_one_line_error(tmp_path: Path) -> None:
    out = stats(str(tmp_path / "nope"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"funcforge: error: {tmp_path / 'nope'}: no such folder or file "
        "(PATH is the workspace root or a trace file)"
    ]


def test_configuration_warnings_and_tool_file_problems(workspace: Path) -> None:
    (workspace / "pyproject.toml").write_text(
        '[tool.funcforge]\ntools = ["tools/*.py"]\ntraces = ["logs/*.jsonl"]\nspeed = 3\n'
    )
    (workspace / "tools" / "broken.py").write_text("def oops(:\n    pass\n")
    out = stats(str(workspace))
    assert out.returncode == 0, out.stderr
    assert "unknown key 'speed' ignored" in out.stderr
    assert "tool files with problems" in out.stdout
    assert "tools/broken.py:1" in out.stdout
    assert "convert_units" in out.stdout  # the other file's tools are still there


def test_wrong_configuration_type_fails_with_file_and_line(workspace: Path) -> None:
    (workspace / "pyproject.toml").write_text("[tool.funcforge]\n\ntraces = 3\n")
    out = stats(str(workspace))
    assert out.returncode == 2
    assert f"{workspace / 'pyproject.toml'}:3: 'traces' must be list of string" in out.stderr


def test_held_out_traces_are_labelled_and_kept_out_of_the_tool_statistics() -> None:
    from tests.conftest import SAMPLES

    proc = stats(str(SAMPLES / "math-tools"), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["statistics_split"] == "train" and doc["held_out_traces"] == 25
    assert sum(t["traces"] for t in doc["tools"] if t["name"] == "convert_units") == 6
    splits = {(v["split"], v["traces"]) for v in doc["versions"]}
    assert splits == {("train", 52), ("test", 25)}
    text = stats(str(SAMPLES / "math-tools")).stdout
    assert "statistics below are of the 52 train-split traces; 25 held-out traces" in text
    assert any(line.split()[1:3] == ["test", "25"] for line in text.splitlines() if line.strip())


def test_stats_and_prompt_candidates_stream_the_index(sample_copy, monkeypatch) -> None:
    """`stats` counts held-out traces from the aggregates and the optimizer's candidates
    stream the summaries: neither materialises every summary (`summaries()`)."""
    from funcforge.commands.stats import render_text, to_json
    from funcforge.config import load_config
    from funcforge.optimizer.step import candidates
    from funcforge.toolset.toolset import load_toolset
    from funcforge.traces.store import TraceStore

    root = sample_copy("math-tools")
    config = load_config(root)
    store = TraceStore(config)
    store.refresh(final=True)
    toolset = load_toolset(config)
    every = {which: store.summaries(which=which) for which in ("learnable", "held_out")}
    versions = [v for v in store.version_stats() if v != "unversioned"]
    by_version = {v: store.summaries(version=v) for v in versions}

    def refused(*args: Any, **kwargs: Any) -> list:
        raise AssertionError("summaries() materialises every summary")

    monkeypatch.setattr(TraceStore, "summaries", refused)
    assert to_json(config, toolset, store)["held_out_traces"] == len(every["held_out"]) == 25
    assert "52 train-split traces; 25 held-out" in render_text(config, toolset, store)
    assert [c.key for c in candidates(store, None)] == every["learnable"]
    assert [c.key for c in candidates(store, "no-such-version")] == every["learnable"]
    for version, expected in by_version.items():
        assert [c.key for c in candidates(store, version)] == expected
