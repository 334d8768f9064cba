"""Offline training on a real git repository: roll-back, early stop, batches, resume, N."""

from __future__ import annotations

import io
import json
import re
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
    assert saved["next_epoch"] == 2 and saved["phase"] == "step"  # epoch 1 done, 2 to propose
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


def test_task_split_read_in_any_case_as_the_store_reads_it(tmp_path: Path) -> None:
    """ "Test" in a task file is the test split (the trace store reads it so), not an error."""
    f = tmp_path / "t.jsonl"
    rows = [("a", "Test"), ("b", " TRAIN "), ("c", "train"), ("d", "test")]
    f.write_text("".join(json.dumps({"id": i, "input": i, "split": s}) + "\n" for i, s in rows))
    tasks = load_tasks(f)
    assert [t.split for t in tasks] == ["test", "train", "train", "test"]
    train, test = split_tasks(tasks, 0.5, seed=0)
    assert [t.id for t in train] == ["b", "c"] and [t.id for t in test] == ["a", "d"]
    for bad in ('"holdout"', "3", "true"):
        f.write_text('{"id": "a", "input": "x"}\n{"id": "b", "input": "y", "split": ' + bad + "}\n")
        with pytest.raises(UserError, match=r't.jsonl:2: `split` must be "train" or "test"'):
            load_tasks(f)


# -- the paper's loop, pinned with scripted transcripts (issue 13) ------------------------


def scripted(tmp_path: Path, picks: list[int | str]) -> Path:
    """A transcript of the sample's exchanges by line number ("bad": an answer that never validates)."""
    lines = TRANSCRIPT.read_text().splitlines()
    terminate = json.loads(lines[9])
    bad = json.loads(lines[9])
    bad["response"]["choices"][0]["message"]["content"] = "I would rather not call a tool."
    out = [lines[0]]
    for pick in picks:
        out.append(json.dumps(bad) if pick == "bad" else lines[int(pick)])
    out.append(json.dumps(terminate))
    path = tmp_path / "script.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


def scripted_train(ws: Path, script: Path, **kw) -> Trainer:
    trainer = Trainer(ws, TrainOptions(llm=f"replay:{script}", **kw), out=io.StringIO())
    trainer.train()
    return trainer


def tools_at(ws: Path, rev: str) -> str:
    """The git tree id of the tool folder at `rev` (equal trees: byte-identical tools)."""
    return git(ws, "rev-parse", f"{rev}:tools").strip()


def test_epochs_count_as_asked_and_the_summary_reports_the_selected_version(
    tmp_path: Path,
) -> None:
    ws = small_workspace(tmp_path)
    run = scripted_train(ws, scripted(tmp_path, [1, 2, 9, 9, 9]), epochs=2, patience=5).run
    assert run is not None
    assert [e.epoch for e in run.epochs] == [0, 1, 2]  # the baseline, then 2 epochs
    assert [e.decision for e in run.epochs] == ["initial", "improved", "no change"]
    from funcforge.training.report import report_data

    data = report_data(run)
    selected = data["selected"]
    assert selected["commit"] == run.best_commit[:12] == run.epochs[1].commit[:12]
    assert selected["train_score"] == round(run.epochs[1].train_score, 4)
    assert selected["test_score"] == run.test["best"]["score"]


def test_a_repeated_bad_step_is_recognised_and_never_left_at_head(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path)
    # convert_units fixed (improves), format_number broken (rolled back), the same again.
    trainer = scripted_train(ws, scripted(tmp_path, [1, 2, 3, 4, 3, 4]), epochs=3, patience=5)
    run = trainer.run
    assert run is not None
    assert [e.decision for e in run.epochs] == ["initial", "improved", "rollback", "repeat"]
    repeat = run.epochs[3]
    assert "reproduces a rolled-back toolset" in repeat.reason and repeat.applied is None
    assert repeat.train_score == 0.0 and repeat.n == 0  # not run again
    worktree = Path(run.worktree)
    # HEAD holds the best toolset, not the rejected change.
    assert tools_at(worktree, "HEAD") == tools_at(worktree, run.best_commit)
    assert run.best_commit == run.epochs[1].commit


def test_patience_2_bad_step_then_good_one_is_not_stopped_by_the_revert(tmp_path: Path) -> None:
    """The revert commit is never judged, so it cannot spend patience or clear failures."""
    ws = small_workspace(tmp_path)
    run = scripted_train(ws, scripted(tmp_path, [3, 4, 1, 2]), epochs=2, patience=2).run
    assert run is not None and run.stop_reason is None
    assert [e.decision for e in run.epochs] == ["initial", "rollback", "improved"]
    state = run.optimizer
    assert state["no_improvement"] == 0 and state["failure_experience"] == []  # cleared
    assert [r["decision"] for r in state["history"]] == ["initial", "rollback", "improved"]
    rb = run.epochs[1]
    worktree = Path(run.worktree)
    message = git(worktree, "log", "--format=%B", "-n", "1", rb.reverted[0] + "..HEAD~1")
    assert "Decided by the trainer" in message and "the paper's rule" in message


def test_early_stop_is_checked_before_proposing(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path)
    trainer = scripted_train(ws, scripted(tmp_path, [3, 4]), epochs=5, patience=1)
    run = trainer.run
    assert run is not None and run.stop_reason and run.stop_reason.startswith("early stop")
    assert [e.decision for e in run.epochs] == ["initial", "rollback"]
    assert trainer.run.usage["calls"] == 2  # no request was made after patience ran out


def test_an_action_that_never_validates_is_skipped_and_training_goes_on(tmp_path: Path) -> None:
    ws = small_workspace(tmp_path)
    script = scripted(tmp_path, ["bad", "bad", "bad", 9, 1, 2])
    run = scripted_train(ws, script, epochs=2, patience=5).run
    assert run is not None and run.status == "finished"
    assert [e.decision for e in run.epochs] == ["initial", "skipped", "improved"]
    assert "no valid answer in 3 trials" in run.epochs[1].reason


def test_batch_mode_compares_on_the_same_batch(tmp_path: Path) -> None:
    from funcforge.config import load_config
    from funcforge.toolset.toolset import load_toolset

    ws = small_workspace(tmp_path, train=10, test=4)
    # A revision that only changes the text (same behaviour): a tie on the same batch,
    # whatever tasks the batch holds, where the best's score on another batch could differ.
    spec = load_toolset(load_config(ws)).functions["format_number"]
    lines = TRANSCRIPT.read_text().splitlines()
    exchange = json.loads(lines[3])
    call = exchange["response"]["choices"][0]["message"]["tool_calls"][0]["function"]
    arguments = json.loads(call["arguments"])
    arguments["code"] = spec.code.rstrip("\n") + "\n    # the same behaviour, new text\n"
    call["arguments"] = json.dumps(arguments)
    script = tmp_path / "tie.jsonl"
    script.write_text("\n".join([lines[0], json.dumps(exchange), lines[4], lines[9]]) + "\n")
    run = scripted_train(ws, script, epochs=1, batch_size=4, patience=5).run
    assert run is not None
    last = run.epochs[-1]
    assert last.applied is not None  # the text changed, so it was committed and run
    assert last.decision == "tie" and last.best_score == last.train_score
    assert "on the same tasks" in last.reason
    traces = Path(run.workspace) / "traces" / "funcforge-train"
    assert (traces / f"{run.run_id}-epoch-01-best.jsonl").is_file()


def test_no_test_split_task_reaches_the_prompt_or_the_statistics(tmp_path: Path) -> None:
    from funcforge.config import load_config
    from funcforge.traces.store import TraceStore

    ws = small_workspace(tmp_path)
    record = tmp_path / "recorded.jsonl"
    trainer = scripted_train(
        ws, scripted(tmp_path, [1, 2, 3, 4]), epochs=2, patience=5, record=record
    )
    run = trainer.run
    assert run is not None and run.test["initial"]["n"] == 4
    tasks = [json.loads(x) for x in (ws / "tasks.jsonl").read_text().splitlines() if x]
    test_tasks = [t for t in tasks if t["split"] == "test"]
    train_text = " ".join(
        t["input"] + " " + str(t.get("expected")) for t in tasks if t not in test_tasks
    )
    requests = [
        "\n".join(str(m.get("content") or "") for m in json.loads(x)["request"]["messages"])
        for x in record.read_text().splitlines()
        if x and json.loads(x).get("type") == "exchange"
    ]
    assert requests
    store = TraceStore(load_config(Path(run.workspace)))
    store.refresh()
    held = store.summaries(which="held_out")
    assert {s.task_id for s in held} >= {t["id"] for t in test_tasks}  # written, labelled
    learnable_ids = {s.id for s in store.summaries()}
    assert not learnable_ids & {s.id for s in held}
    checked = 0
    for t in test_tasks:
        assert not re.search(rf"\b{re.escape(t['id'])}(?!\d)", "\n".join(requests))
        if t["input"] not in train_text:
            assert t["input"] not in " ".join(requests)
            checked += 1
        expected = str(t.get("expected"))
        if expected not in train_text and len(expected) > 3:
            assert expected not in " ".join(requests)
    assert checked >= 2


def test_a_repository_without_commits_is_a_clear_error_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    """`git init` done, nothing committed yet: one sentence saying so and what to do
    (it was `git rev-parse HEAD failed: fatal: ambiguous argument 'HEAD'...`)."""
    ws = tmp_path / "ws"
    shutil.copytree(
        SAMPLES / "math-tools", ws, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    git(ws, "init", "-q")
    with pytest.raises(UserError) as caught:
        train(ws, epochs=1)
    message = str(caught.value)
    assert "has no commits yet" in message and "git commit" in message
    assert "rev-parse" not in message
    assert not (ws / ".funcforge" / "train").exists() or not any(
        (ws / ".funcforge" / "train").iterdir()
    )
    assert git(ws, "branch", "--list").strip() == ""
