"""One epoch of `train` with the function-calling agent against the real local model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git
from tests.realmodel.conftest import LocalModel
from tests.realmodel.test_local_model import SLOW_MACHINE, configure, funcforge, workspace


def test_train_one_epoch_with_the_function_calling_agent(
    local_model: LocalModel, tmp_path: Path
) -> None:
    root = workspace(tmp_path, "math-tools")
    # A smaller prompt for the training step keeps the run short (the optimize
    # test above is the one with the default budget).
    configure(root, token_budget=5000, max_trials=1, **SLOW_MACHINE)
    tasks = [
        {"id": "t1", "input": "What is 12 + 30?", "expected": "42", "split": "train"},
        {"id": "t2", "input": "What is 100 - 58?", "expected": "42", "split": "test"},
    ]
    (root / "small-tasks.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8"
    )
    with (root / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write("turn_limit = 1\n")  # the [tool.funcforge.train] table ends the file
    # Training runs on a worktree of the committed tree: uncommitted settings would not
    # apply there (the run then had the default 120 s request timeout and failed under load).
    git(root, "commit", "-q", "-am", "settings for a slow machine")
    transcript = tmp_path / "train.transcript.jsonl"
    run = funcforge(
        "train",
        str(root),
        "--tasks",
        "small-tasks.jsonl",
        "--epochs",
        "1",
        "--agent",
        "function-calling",
        "--record",
        str(transcript),
        base_url=local_model.base_url,
    )
    assert run.code == 0, f"{run.stderr[-3000:]}\nserver:\n{local_model.log_tail()}"
    reports = list((root / ".funcforge").rglob("report.json"))
    assert reports, run.stdout
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    assert report.get("epochs"), report
    traces = list((root / ".funcforge").rglob("*.jsonl"))
    agent_runs = [
        json.loads(line)
        for path in traces
        if "traces" in path.parts or path.parent.name.startswith("epoch")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith('{"id"')
    ]
    assert agent_runs, f"no agent traces under {root / '.funcforge'}"
