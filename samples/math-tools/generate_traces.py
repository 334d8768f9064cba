#!/usr/bin/env python3
"""Regenerate this sample's traces by running its scripted agent over every task.

The agent runs exactly as `funcforge train --agent command:...` runs it: once per
task, in the workspace root, the task as JSON on stdin, FUNCFORGE_MCP_COMMAND
(the MCP server of the tools, which run in funcforge's sandbox),
FUNCFORGE_TOOLSET, FUNCFORGE_TOOL_FILES, FUNCFORGE_TOOLSET_VERSION and
FUNCFORGE_SPLIT in the environment, one native trace on stdout. Each trace is judged with the
configured judge and given a fixed time, so the same tools give the same bytes.

    python3 generate_traces.py [--toolset DIR] [--output FILE] [--jobs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:
    import funcforge  # noqa: F401
except ImportError:  # run from a checkout without funcforge installed
    sys.path.insert(0, str(HERE.parent.parent / "server"))

from funcforge.config import load_config  # noqa: E402
from funcforge.judge import get_judge  # noqa: E402
from funcforge.training.agents import Toolbox  # noqa: E402
from funcforge.training.mcp_host import McpHost  # noqa: E402

RUN_DATE = "2025-11-20"
RUN_START = datetime(2025, 11, 20, 9, 0, tzinfo=timezone.utc)
AGENT_TIMEOUT = 60.0


def tool_paths(root: Path, globs: list[str]) -> list[Path]:
    """The tool files the configured globs match under `root`, sorted by relative path."""
    found = {p for pattern in globs for p in root.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def toolset_hash(root: Path, files: list[Path]) -> str:
    """The toolset's version label: 12 hex of sha256 over the files' paths and bytes.

    The same recipe as funcforge's `Toolset.content_hash()` (each relative POSIX
    path, then the file's bytes, both length-prefixed, in path order), so the
    label names this exact content of the tools.
    """
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(root).as_posix().encode("utf-8")
        data = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()[:12]


def read_tasks(path: Path) -> list[dict[str, Any]]:
    """The tasks file: one JSON object per line with id, input, expected and split."""
    tasks = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                tasks.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not a JSON object: {exc}") from exc
    return tasks


def run_agent(
    command: list[str], cwd: Path, task: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    """Run the agent on one task per the command agent protocol; return its trace."""
    stdin = json.dumps({k: task[k] for k in ("id", "input", "expected") if k in task})
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=AGENT_TIMEOUT,
        check=False,
    )
    try:
        trace = json.loads(done.stdout)
    except json.JSONDecodeError:
        trace = None
    if done.returncode != 0 or not isinstance(trace, dict):
        raise SystemExit(
            f"agent failed on task {task['id']} (exit {done.returncode}): "
            f"{done.stderr.strip() or done.stdout.strip()[:200]}"
        )
    return trace


def final_answer(messages: list[dict[str, Any]]) -> str | None:
    """The content of the last assistant message without tool calls."""
    for message in reversed(messages):
        if message.get("role") == "assistant" and not message.get("tool_calls"):
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def generate(toolset: Path, output: Path, jobs: int = 1) -> list[dict[str, Any]]:
    """Run every task of the workspace at `toolset`, judge it, write the traces to `output`.

    `jobs` agents run at once; the output does not depend on it.
    """
    config = load_config(toolset)
    if not config.train.tasks or not config.train.agent.startswith("command:"):
        raise SystemExit(f"{config.source}: needs train.tasks and a command: agent")
    command = shlex.split(config.train.agent.removeprefix("command:"))
    judge = get_judge(config.train.judge, config.train.tolerance)
    files = tool_paths(toolset, config.tools)
    version = toolset_hash(toolset, files)
    # The tools are served over MCP (in funcforge's sandbox), as `funcforge train` serves them.
    host = McpHost(config)
    box = Toolbox(
        toolset,
        {p.relative_to(toolset).as_posix(): p.read_text(encoding="utf-8") for p in files},
        [],
        version,
    )
    env = dict(os.environ)
    env.update(
        FUNCFORGE_TOOLSET=str(toolset),
        FUNCFORGE_TOOL_FILES=os.pathsep.join(str(p) for p in files),
        FUNCFORGE_TOOLSET_VERSION=version,
        FUNCFORGE_MCP_COMMAND=json.dumps(host.command(box)),
        PYTHONDONTWRITEBYTECODE="1",
    )
    tasks = read_tasks(toolset / config.train.tasks)

    def run_one(task: dict[str, Any]) -> dict[str, Any]:
        return run_agent(command, toolset, task, {**env, "FUNCFORGE_SPLIT": task["split"]})

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(run_one, tasks))
    finally:
        host.close()
    traces = []
    for index, (task, trace) in enumerate(zip(tasks, results, strict=True)):
        score = float(judge(final_answer(trace.get("messages", [])), task["expected"]))
        stamp = RUN_START + timedelta(minutes=index)
        traces.append(
            {
                "id": f"run-{RUN_DATE}-{index + 1:04d}",
                "task": trace.get("task", {"id": task["id"], "input": task["input"]}),
                "messages": trace.get("messages", []),
                "outcome": {"score": score, "passed": score >= 1.0},
                "toolset_version": version,
                "split": task["split"],
                "time": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8", newline="\n") as out:
        for trace in traces:
            out.write(json.dumps(trace, ensure_ascii=False) + "\n")
    return traces


def summary(traces: list[dict[str, Any]]) -> str:
    """Pass rate per split and calls and errors per tool, for the README and a quick look."""
    lines = []
    for split in ("train", "test", None):
        chosen = [t for t in traces if split is None or t["split"] == split]
        passed = sum(t["outcome"]["passed"] for t in chosen)
        lines.append(
            f"{split or 'all':>5}: {passed}/{len(chosen)} passed "
            f"({100 * passed / max(len(chosen), 1):.0f}%)"
        )
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for trace in traces:
        names = {}
        for message in trace["messages"]:
            for call in message.get("tool_calls") or []:
                names[call["id"]] = call["function"]["name"]
            if message.get("role") == "tool":
                name = names.get(message["tool_call_id"], "?")
                calls[name] += 1
                errors[name] += bool(message.get("is_error"))
    for name in sorted(calls):
        lines.append(
            f"  {name}: {calls[name]} calls, {errors[name]} errors "
            f"({100 * errors[name] / calls[name]:.0f}%)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--toolset", type=Path, default=HERE, help="workspace whose tools to run (default: here)"
    )
    parser.add_argument(
        "--output", type=Path, help=f"trace file (default: traces/run-{RUN_DATE}.jsonl)"
    )
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="agents run at once"
    )
    args = parser.parse_args(argv)
    toolset = args.toolset.resolve()
    output = args.output or toolset / "traces" / f"run-{RUN_DATE}.jsonl"
    traces = generate(toolset, output, args.jobs)
    print(f"wrote {len(traces)} traces to {output}")
    print(summary(traces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
