"""The sample workspaces: task files, committed traces, the scripted command agent, regeneration.

The samples' traces must be real executions of their scripted agent against
their own tools: regenerating them gives the same bytes, the agent follows the
command agent protocol, and fixing a tool's bug changes the outcomes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from funcforge.config import load_config
from funcforge.judge import get_judge
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore
from funcforge.training.agents import Toolbox
from funcforge.training.mcp_host import McpHost
from tests.conftest import SAMPLES

NAMES = ["math-tools", "table-tools"]
TRACE_FILE = "traces/run-2025-11-20.jsonl"

# A correct version of one buggy tool per sample, and a task that hits another bug.
FIXES = {
    "math-tools": (
        "tools/fraction_tools.py",
        "add_fractions",
        '''def add_fractions(a: str, b: str) -> str:
    """Add two fractions written as text, such as "3/4" and "1/8"."""
    from fractions import Fraction

    return str(Fraction(a.strip()) + Fraction(b.strip()))
''',
    ),
    "table-tools": (
        "tools/aggregate.py",
        "sum_column",
        '''def sum_column(
    rows: list[dict[str, str]], column: str, row_labels: list[str] | None = None
) -> float:
    """Add up the numbers in a column, over every row or only the labelled ones."""
    key = _find_column(rows, column)
    return sum(
        _to_number(row[key]) for row in rows if row_labels is None or _label(row) in row_labels
    )
''',
    ),
}
ERROR_TASKS = {
    "math-tools": ("unit-1", "convert_units", "Error: KeyError: 'mile'"),
    "table-tools": (
        "sum-4",
        "sum_column",
        "Error: ValueError: could not convert string to float: '$1.25'",
    ),
}
# A stand-in toolset whose tool returns a marker (and prints, which must not reach stdout).
FAKE_TOOLS = {
    "math-tools": (
        "lcm-1",
        "def lcm(a: int, b: int) -> int:\n    print('debug output')\n    return 4242\n",
        "4242",
    ),
    "table-tools": (
        "mean-1",
        "def parse_table(text: str) -> list:\n    return [{'Name': 'x', 'Count': '1'}]\n\n\n"
        "def column_mean(rows: list, column: str) -> str:\n"
        "    print('debug output')\n    return 'marker-' + column\n",
        "marker-Count",
    ),
}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tasks_of(name: str) -> list[dict[str, Any]]:
    return read_jsonl(SAMPLES / name / "tasks.jsonl")


def traces_of(name: str) -> list[dict[str, Any]]:
    return read_jsonl(SAMPLES / name / TRACE_FILE)


def tool_names(trace: dict[str, Any]) -> list[str]:
    return [
        call["function"]["name"]
        for message in trace["messages"]
        for call in message.get("tool_calls") or []
    ]


def run_agent(
    sample: Path, task: dict[str, Any], env_extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the sample's agent command once, per the command agent protocol.

    The tools of FUNCFORGE_TOOLSET (default: the sample) are served over MCP as
    `funcforge train` serves them.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCFORGE_")}
    env.update(env_extra, PYTHONDONTWRITEBYTECODE="1")
    root = Path(env_extra.get("FUNCFORGE_TOOLSET", sample))
    files = {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in root.glob("tools/*.py")}
    host = McpHost(load_config(root))
    env["FUNCFORGE_MCP_COMMAND"] = json.dumps(host.command(Toolbox(root, files, [], "v")))
    command = shlex.split(load_config(sample).train.agent.removeprefix("command:"))
    try:
        return subprocess.run(
            command,
            input=json.dumps(task),
            capture_output=True,
            text=True,
            cwd=sample,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        host.close()


def generate(sample: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "generate_traces.py", "--output", str(output), "--jobs", "2"],
        cwd=sample,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )


def replace_function(source: str, name: str, code: str) -> str:
    """`source` with the top-level function `name` replaced by `code`."""
    start = source.index(f"\ndef {name}(") + 1
    end = source.find("\n\n\n", start)
    end = len(source) if end == -1 else end + 1
    return source[:start] + code + source[end:]


@pytest.mark.parametrize("name", NAMES)
def test_config_points_at_tools_tasks_and_scripted_agent(name: str) -> None:
    config = load_config(SAMPLES / name)
    assert config.source == SAMPLES / name / "pyproject.toml"
    assert config.warnings == []
    assert config.tools == ["tools/**/*.py"] and config.traces == ["traces/**/*.jsonl"]
    assert config.train.tasks == "tasks.jsonl"
    assert config.train.agent == "command:python3 agent.py"
    toolset = load_toolset(config)
    assert toolset.problems == []
    assert 4 <= len(toolset.functions) <= 7
    for spec in toolset.functions.values():
        assert spec.description, f"{spec.name} has no docstring summary"
        assert spec.parameters["properties"], f"{spec.name} has no typed parameters"


@pytest.mark.parametrize("name", NAMES)
def test_tasks_file_is_valid(name: str) -> None:
    tasks = tasks_of(name)
    assert len(tasks) >= 60
    for task in tasks:
        assert set(task) == {"id", "input", "expected", "split"}, task
        assert all(isinstance(task[k], str) and task[k] for k in task), task
        assert task["split"] in ("train", "test")
    ids = [t["id"] for t in tasks]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    splits = Counter(t["split"] for t in tasks)
    assert splits["train"] >= 40 and splits["test"] >= 20


@pytest.mark.parametrize("name", NAMES)
def test_committed_traces_cover_every_task_and_are_judged(name: str) -> None:
    sample = SAMPLES / name
    assert sorted(p.name for p in (sample / "traces").iterdir()) == [Path(TRACE_FILE).name]
    traces, tasks = traces_of(name), {t["id"]: t for t in tasks_of(name)}
    assert len(traces) >= 60
    assert sorted(t["task"]["id"] for t in traces) == sorted(tasks)
    judge = get_judge(load_config(sample).train.judge)
    version = load_toolset(load_config(sample)).content_hash()
    for trace in traces:
        task = tasks[trace["task"]["id"]]
        assert trace["task"] == {k: task[k] for k in ("id", "input", "expected")}
        assert trace["split"] == task["split"]
        assert trace["toolset_version"] == version, "traces are stale: run generate_traces.py"
        final = trace["messages"][-1]
        assert final["role"] == "assistant" and isinstance(final["content"], str)
        score = judge(final["content"], task["expected"])
        assert trace["outcome"] == {"score": score, "passed": score >= 1.0}
    times = [t["time"] for t in traces]
    assert len(set(times)) == len(times) and times == sorted(times)


@pytest.mark.parametrize("name", NAMES)
def test_traces_show_a_realistic_mix_of_failures(name: str) -> None:
    """Passes and failures, tools failing loudly 20-60% of the time, and silent wrong answers."""
    traces = traces_of(name)
    pass_rate = sum(t["outcome"]["passed"] for t in traces) / len(traces)
    assert 0.4 <= pass_rate <= 0.65
    store = TraceStore(load_config(SAMPLES / name))
    store.refresh()
    assert store.malformed == []
    stats = store.tool_stats()
    noisy = [s.name for s in stats.values() if 0.2 <= s.errors / s.calls <= 0.6]
    assert len(noisy) >= 2, noisy
    assert any(s.errors == 0 and s.pass_rate == 1.0 for s in stats.values()), "no correct tool"
    silent = [
        t
        for t in traces
        if not t["outcome"]["passed"] and not any(m.get("is_error") for m in t["messages"])
    ]
    assert len(silent) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_regenerating_the_traces_gives_identical_bytes(name: str, tmp_path: Path) -> None:
    output = tmp_path / "traces.jsonl"
    done = generate(SAMPLES / name, output)
    assert "passed" in done.stdout
    assert output.read_bytes() == (SAMPLES / name / TRACE_FILE).read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_agent_speaks_the_command_protocol(name: str) -> None:
    sample = SAMPLES / name
    task_id, tool, error = ERROR_TASKS[name]
    task = next(t for t in tasks_of(name) if t["id"] == task_id)
    files = sorted(str(p) for p in (sample / "tools").glob("*.py"))
    done = run_agent(
        sample,
        {k: task[k] for k in ("id", "input")},
        {
            "FUNCFORGE_TOOLSET": str(sample),
            "FUNCFORGE_TOOL_FILES": os.pathsep.join(files),
            "FUNCFORGE_TOOLSET_VERSION": "abc123",
            "FUNCFORGE_SPLIT": "test",
        },
    )
    assert done.returncode == 0, done.stderr
    trace = json.loads(done.stdout)
    assert done.stdout.count("\n") == 1
    assert trace["task"] == {"id": task["id"], "input": task["input"]}
    assert trace["toolset_version"] == "abc123" and trace["split"] == "test"
    messages = trace["messages"]
    assert [m["role"] for m in messages[:2]] == ["system", "user"]
    assert messages[1]["content"] == task["input"]
    calls = {}
    for message in messages[2:-1]:
        if message["role"] == "assistant":
            (call,) = message["tool_calls"]
            assert call["type"] == "function"
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
            calls[call["id"]] = call["function"]["name"]
        else:
            assert message["role"] == "tool" and message["tool_call_id"] in calls
    failed = messages[-2]
    assert calls[failed["tool_call_id"]] == tool
    assert failed == {
        "role": "tool",
        "tool_call_id": failed["tool_call_id"],
        "content": error,
        "is_error": True,
    }
    assert messages[-1]["content"].startswith("I could not compute it")


@pytest.mark.parametrize("name", NAMES)
def test_agent_answers_with_what_the_tools_return(name: str, tmp_path: Path) -> None:
    """A stand-in toolset changes the answer: the agent computes nothing itself."""
    task_id, code, marker = FAKE_TOOLS[name]
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "fake.py").write_text(code, encoding="utf-8")
    task = next(t for t in tasks_of(name) if t["id"] == task_id)
    done = run_agent(SAMPLES / name, task, {"FUNCFORGE_TOOLSET": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    trace = json.loads(done.stdout)  # the tool's print stayed in the sandbox
    assert "debug output" not in done.stdout
    assert trace["messages"][-2] == {
        "role": "tool",
        "tool_call_id": trace["messages"][-3]["tool_calls"][0]["id"],
        "content": marker,
    }
    assert marker in trace["messages"][-1]["content"]
    assert "toolset_version" not in trace and "outcome" not in trace


@pytest.mark.parametrize("name", NAMES)
def test_agent_reports_a_missing_tool_and_rejects_bad_input(name: str, tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    task_id = ERROR_TASKS[name][0]
    task = next(t for t in tasks_of(name) if t["id"] == task_id)
    done = run_agent(SAMPLES / name, task, {"FUNCFORGE_TOOLSET": str(tmp_path)})
    trace = json.loads(done.stdout)
    first_call = trace["messages"][2]["tool_calls"][0]["function"]["name"]
    assert trace["messages"][3]["content"] == (
        f"Error: NameError: no tool named '{first_call}' in the toolset"
    )
    assert trace["messages"][3]["is_error"] is True
    bad = subprocess.run(
        ["python3", "agent.py"],
        input="not json",
        capture_output=True,
        text=True,
        cwd=SAMPLES / name,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert "stdin is not a task" in bad.stderr


@pytest.mark.parametrize("name", NAMES)
def test_agent_never_imports_tool_code(name: str, tmp_path: Path) -> None:
    """Without FUNCFORGE_MCP_COMMAND the agent refuses; tool files are never imported by it."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "planted.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').write('x')\n", encoding="utf-8"
    )
    task = tasks_of(name)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCFORGE_")}
    env["FUNCFORGE_TOOLSET"] = str(tmp_path)
    env["FUNCFORGE_TOOL_FILES"] = str(tmp_path / "tools" / "planted.py")
    done = subprocess.run(
        ["python3", "agent.py"],
        input=json.dumps(task),
        capture_output=True,
        text=True,
        cwd=SAMPLES / name,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "FUNCFORGE_MCP_COMMAND" in done.stderr
    assert not (tmp_path / "imported").exists()
    # Served over MCP, the planted file's module code runs only inside the sandbox.
    done = run_agent(SAMPLES / name, task, {"FUNCFORGE_TOOLSET": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize("name", NAMES)
def test_fixing_one_bug_raises_the_pass_rate(name: str, tmp_path: Path) -> None:
    """Outcomes depend on the tools: a copy with one tool fixed passes the tasks it failed."""
    copy = tmp_path / name
    shutil.copytree(SAMPLES / name, copy, ignore=shutil.ignore_patterns("__pycache__"))
    file, function, code = FIXES[name]
    path = copy / file
    path.write_text(replace_function(path.read_text("utf-8"), function, code), "utf-8")
    before = {t["task"]["id"]: t for t in traces_of(name) if function in tool_names(t)}
    assert 0 < sum(t["outcome"]["passed"] for t in before.values()) < len(before)
    # Only the tasks that use the fixed tool, to keep the test quick.
    tasks = [t for t in tasks_of(name) if t["id"] in before]
    (copy / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks), "utf-8")

    generate(copy, tmp_path / "fixed.jsonl")

    assert not list(copy.glob("**/__pycache__")), "running the agent left bytecode behind"
    after = {t["task"]["id"]: t for t in read_jsonl(tmp_path / "fixed.jsonl")}
    assert after.keys() == before.keys()
    assert all(t["outcome"]["passed"] for t in after.values()), [
        (i, t["messages"][-1]["content"]) for i, t in after.items() if not t["outcome"]["passed"]
    ]
    version = next(iter(before.values()))["toolset_version"]
    assert {t["toolset_version"] for t in after.values()} != {version}


def test_samples_share_one_generator_and_one_agent_runtime() -> None:
    """The two samples' copies of the shared code must not drift apart."""
    math, table = SAMPLES / "math-tools", SAMPLES / "table-tools"
    assert (math / "generate_traces.py").read_bytes() == (table / "generate_traces.py").read_bytes()

    def runtime(path: Path) -> str:
        text = path.read_text("utf-8")
        match = re.search(r"^# --- runtime.*?^# --- the plans", text, re.S | re.M)
        assert match, path
        return match.group(0)

    assert runtime(math / "agent.py") == runtime(table / "agent.py")
