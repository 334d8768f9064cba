"""Offline training on a real git repository: roll-back, early stop, batches, resume, N."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from funcforge.errors import UserError
from funcforge.training.tasks import batch_for_epoch, load_tasks, split_tasks
from funcforge.training.trainer import Trainer, TrainOptions
from tests.conftest import SAMPLES, git, init_repo

TRANSCRIPT = SAMPLES / "math-tools" / "optimizer-transcript.jsonl"


def small_workspace(tmp_path: Path, train: int = 10, test: int = 4) -> Path:
    """samples/math-tools with a few tasks that exercise convert_units and format_number."""
    ws = tmp_path / "ws"
    shutil.copytree(
        SAMPLES / "math-tools", ws, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    tasks = [json.loads(line) for line in (ws / "tasks.jsonl").read_text().splitlines() if line]
    units = [t for t in tasks if "mile" in t["input"] or "convert" in t["input"].lower()]
    rest = [t for t in tasks if t not in units]
    chosen = (units + rest)[: train + test]
    for i, t in enumerate(chosen):
        t["split"] = "train" if i < train else "test"
    (ws / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in chosen))
    init_repo(ws)
    git(ws, "config", "user.name", "Ada Lovelace")
    git(ws, "config", "user.email", "ada@example.com")
    return ws


def train(ws: Path, **kw) -> Trainer:
    opts = TrainOptions(llm=f"replay:{TRANSCRIPT}", **kw)
    trainer = Trainer(ws, opts, out=io.StringIO())
    trainer.train()
    return trainer


def test_demo_run_improves_rolls_back_and_commits_on_a_branch(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path)
    head_before = git(ws, "rev-parse", "HEAD").strip()
    trainer = train(ws, epochs=3, concurrency=2)
    run = trainer.run
    assert run is not None and run.status == "finished"
    decisions = [e.decision for e in run.epochs]
    assert decisions[:3] == ["initial", "improved", "rollback"]
    assert run.epochs[1].train_score > run.epochs[0].train_score
    assert run.epochs[2].reverted  # the worse step was withdrawn
    # The user's checkout is untouched; commits are on the training branch.
    assert git(ws, "rev-parse", "HEAD").strip() == head_before
    assert git(ws, "status", "--porcelain", "--", "tools").strip() == ""
    subjects = git(ws, "log", "--format=%s", run.branch).splitlines()
    assert "funcforge: revise convert_units" in subjects
    assert "funcforge: revise format_number" in subjects
    assert any(s.startswith("funcforge: roll back") or s.startswith("Revert") for s in subjects)
    # Traces of each epoch carry the commit they ran with.
    traces = Path(run.workspace) / "traces" / "funcforge-train"
    epoch0 = [
        json.loads(x) for x in (traces / f"{run.run_id}-epoch-00.jsonl").read_text().splitlines()
    ]
    assert {t["toolset_version"] for t in epoch0} == {run.base_commit}
    # Report: JSON, Markdown and a plot.
    report = json.loads((trainer.run_dir / "report.json").read_text())
    assert report["rollbacks"] == 1 and report["test"]["initial"]["n"] == 4
    assert "| epoch |" in (trainer.run_dir / "report.md").read_text()
    assert (trainer.run_dir / "scores.png").stat().st_size > 1000


def test_early_stop_after_patience(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path)
    trainer = train(ws, epochs=8, patience=1)
    run = trainer.run
    assert run is not None and run.stop_reason and "early stop" in run.stop_reason
    assert len(run.epochs) == 3  # initial, improved, then one step without improvement


def test_results_do_not_depend_on_concurrency(tmp_path: Path) -> None:
    a = train(small_workspace(tmp_path / "a"), epochs=1, concurrency=1).run
    b = train(small_workspace(tmp_path / "b"), epochs=1, concurrency=8).run
    assert a is not None and b is not None
    assert [(e.train_score, e.decision) for e in a.epochs] == [
        (e.train_score, e.decision) for e in b.epochs
    ]


def test_resume_after_interruption(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path)
    first = Trainer(ws, TrainOptions(llm=f"replay:{TRANSCRIPT}", epochs=2), out=io.StringIO())
    calls = {"n": 0}
    original = first._step_epoch

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    first._step_epoch = crash_on_second  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.train()
    saved = json.loads((first.run_dir / "run.json").read_text())
    assert saved["next_epoch"] == 1 and saved["phase"] == "step"
    # The transcript's first exchange was used by the first run; resume with the rest.
    rest = tmp_path / "rest.jsonl"
    lines = TRANSCRIPT.read_text().splitlines()
    rest.write_text("\n".join([lines[0], *lines[3:]]) + "\n")
    second = Trainer(ws, TrainOptions(llm=f"replay:{rest}", epochs=2), out=io.StringIO())
    run = second.train()
    assert second.run_dir == first.run_dir
    assert [e.epoch for e in run.epochs] == [0, 1, 2] and run.status == "finished"


def test_agent_that_crashes_hangs_or_prints_garbage_fails_its_task_only(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path, train=3, test=0)
    (ws / "bad_agent.py").write_text(
        "import json, sys, time\n"
        "task = json.load(sys.stdin)\n"
        "n = int(task['id'].split('-')[-1]) if task['id'].split('-')[-1].isdigit() else 0\n"
        "mode = sorted([task['id']])[0]\n"
        "if task['id'].endswith(('0', '3', '6', '9')): raise SystemExit(3)\n"
        "if task['id'].endswith(('1', '4', '7')): print('not json')\n"
        "else: time.sleep(30)\n"
    )
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "bad agent")
    trainer = Trainer(
        ws, TrainOptions(agent="command:python3 bad_agent.py", epochs=0), out=io.StringIO()
    )
    trainer.config.train.agent_timeout = 2.0
    trainer.settings["agent_timeout"] = 2.0
    run = trainer.train()
    traces = Path(run.workspace) / "traces" / "funcforge-train"
    errors = [
        json.loads(x)["agent_error"]
        for x in (traces / f"{run.run_id}-epoch-00.jsonl").read_text().splitlines()
    ]
    assert len(errors) == 3 and run.epochs[0].train_score == 0.0
    assert all(e for e in errors)


def test_task_file_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"id": "a", "input": "x"}\n{"id": "a", "input": "y"}\n')
    with pytest.raises(
        UserError, match=r"tasks.jsonl:2: duplicate task id `a` \(first at line 1\)"
    ):
        load_tasks(bad)
    bad.write_text('{"id": "a"}\n')
    with pytest.raises(UserError, match=r"tasks.jsonl:1: task has no `input`"):
        load_tasks(bad)
    bad.write_text("{oops\n")
    with pytest.raises(UserError, match=r"tasks.jsonl:1: not valid JSON"):
        load_tasks(bad)


def test_seeded_split_and_batches(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps({"id": f"t{i}", "input": str(i)}) + "\n" for i in range(20)))
    tasks = load_tasks(f)
    train_a, test_a = split_tasks(tasks, 0.25, seed=1)
    _, test_b = split_tasks(tasks, 0.25, seed=1)
    assert [t.id for t in test_a] == [t.id for t in test_b] and len(test_a) == 5
    assert {t.id for t in train_a}.isdisjoint(t.id for t in test_a)
    b0 = batch_for_epoch(train_a, 4, seed=0, epoch=0)
    b1 = batch_for_epoch(train_a, 4, seed=0, epoch=1)
    assert len(b0) == 4 and b0 == batch_for_epoch(train_a, 4, seed=0, epoch=0) and b0 != b1
