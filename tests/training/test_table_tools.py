"""samples/table-tools trains offline: its hand-written optimizer transcript, no key, no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, SAMPLES, git, init_repo

# A slice of the sample's tasks that meets every step of the transcript (fewer agent runs).
TRAIN = ["look-7", "look-15", "look-18", "sum-4", "sum-5", "sum-12", "mean-2", "mean-3"]
TRAIN += ["mean-5", "count-1", "count-4", "diff-4"]
TEST = ["look-2", "sum-3", "mean-4", "count-5"]


def test_table_tools_trains_its_epochs_without_a_key(tmp_path: Path) -> None:
    ws = tmp_path / "table-tools"
    shutil.copytree(
        SAMPLES / "table-tools", ws, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    lines = (ws / "tasks.jsonl").read_text().splitlines()
    tasks = {json.loads(line)["id"]: json.loads(line) for line in lines if line.strip()}
    chosen = [{**tasks[t], "split": "train"} for t in TRAIN]
    chosen += [{**tasks[t], "split": "test"} for t in TEST]
    (ws / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in chosen))
    init_repo(ws)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["PYTHONPATH"] = str(REPO_ROOT / "server")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "funcforge",
            "train",
            ".",
            "--llm",
            "replay:optimizer-transcript.jsonl",
            "--epochs",
            "3",
            "--concurrency",
            "2",
        ],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert ": finished" in out and "roll-backs: 1" in out
    assert "epochs: 3" in out  # the baseline, then 3 epochs; one of their steps is rolled back
    initial = float(out.split("test score (initial toolset")[1].split("):")[1].split()[0])
    best = float(out.split("test score (best toolset")[1].split("):")[1].split()[0])
    assert best > initial
    assert "funcforge train --adopt" in out and "funcforge train --clean" in out
    branch = out.split(" on branch ")[1].split(":")[0]
    log = git(ws, "log", "--format=%B", branch)
    assert "funcforge: revise lookup_value" in log and "funcforge: revise sum_column" in log
    # what answered is credited: the transcript, not the configured gpt-4o
    assert "Co-authored-by: funcforge (replay of optimizer-transcript.jsonl)" in log
    assert "(gpt-4o)" not in log
