"""`funcforge train --adopt RUN` and `--clean [RUN]` on training runs in a real repository.

A run is made here as the trainer makes it: a worktree on `funcforge/train/<run>`
under `.funcforge/train/<run>/`, commits on that branch, trace files in the
worktree, and a `run.json` naming the best commit.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from funcforge.cli import main as cli_main
from funcforge.config import Config
from funcforge.errors import EXIT_ERROR, UserError
from funcforge.training.runs import adopt_run, adoption_hint, clean_runs, find_run
from tests.conftest import git
from tests.unit.test_history_support import (
    NEW_ADD,
    NEW_CONVERT,
    OLD_CONVERT,
    UNITS,
    make_workspace,
    sha,
    user_commit,
)


def make_run(
    config: Config, run_id: str = "20260101-000000", status: str = "finished", best_step: int = 1
) -> dict[str, str]:
    """A run with two steps on its branch; the best is step `best_step` (0: the base)."""
    root = config.root
    folder = config.state_path / "train" / run_id
    folder.mkdir(parents=True)
    worktree = folder / "worktree"
    branch = f"funcforge/train/{run_id}"
    base = sha(root)
    git(root, "worktree", "add", "-q", "-b", branch, str(worktree), base)
    s1 = user_commit(worktree, "tools/units.py", UNITS.replace(OLD_CONVERT, NEW_CONVERT), "step 1")
    s2 = user_commit(worktree, "tools/other.py", NEW_ADD, "step 2 (worse)")
    traces = worktree / "traces" / "funcforge-train"
    traces.mkdir(parents=True)
    (traces / f"{run_id}-epoch-00.jsonl").write_text('{"id": "t"}\n', encoding="utf-8")
    best = {0: base, 1: s1, 2: s2}[best_step]
    data = {
        "run_id": run_id,
        "branch": branch,
        "worktree": str(worktree),
        "workspace": str(worktree),
        "tasks": "tasks.jsonl",
        "base_commit": base,
        "settings": {},
        "status": status,
        "best_commit": best if status == "finished" else None,
        "test": {"best": {"commit": best, "score": 0.7, "n": 10}},
    }
    (folder / "run.json").write_text(json.dumps(data), encoding="utf-8")
    return {"base": base, "s1": s1, "s2": s2, "branch": branch, "worktree": str(worktree)}


def test_adopt_fast_forwards_to_the_best_commit_only(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    run = make_run(config)
    result = adopt_run(config, "latest")
    assert result.how == "fast-forward" and sha(config.root) == run["s1"]  # not the tip s2
    assert (config.root / "tools" / "units.py").read_text() == UNITS.replace(
        OLD_CONVERT, NEW_CONVERT
    )
    assert adopt_run(config, "2026").how == "already"


def test_adopt_merges_when_the_branch_moved_on(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    run = make_run(config)
    mine = user_commit(config.root, "README.md", "my own work\n", "docs")
    result = adopt_run(config, "20260101-000000")
    assert result.how == "merge"
    parents = git(config.root, "log", "-1", "--format=%P").split()
    assert parents == [mine, run["s1"]]
    message = git(config.root, "log", "-1", "--format=%B")
    assert "training run 20260101-000000" in message and "test score 0.700, n=10" in message
    assert "return int(a) + int(b)" not in (config.root / "tools" / "other.py").read_text()


def test_adopt_refuses_unfinished_runs_dirty_tools_and_aborts_conflicts(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    make_run(config, "20260101-000000", status="stopped")
    with pytest.raises(UserError, match="is stopped, not finished"):
        adopt_run(config, "20260101-000000")
    make_run(config, "20260102-000000")
    with pytest.raises(UserError, match="ambiguous"):
        adopt_run(config, "2026")
    # uncommitted tool edits: refused, nothing touched
    (config.root / "tools" / "units.py").write_text(UNITS + "# mine\n", encoding="utf-8")
    with pytest.raises(UserError, match="uncommitted changes"):
        adopt_run(config, "20260102")
    # a conflicting commit of the user's: the merge is aborted, HEAD and files as before
    mine = user_commit(
        config.root, "tools/units.py", UNITS.replace("1000.0", "1000.5"), "my factor"
    )
    with pytest.raises(UserError, match=r"conflicts with this branch .*tools/units.py"):
        adopt_run(config, "20260102")
    assert sha(config.root) == mine
    assert git(config.root, "status", "--porcelain", "--untracked-files=no") == ""


def test_clean_removes_finished_worktrees_keeps_traces_and_branches(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    done = make_run(config, "20260101-000000")
    going = make_run(config, "20260102-000000", status="running")
    result = clean_runs(config)
    assert result.removed == ["20260101-000000"] and result.freed_bytes > 0
    assert [r for r, _ in result.kept] == ["20260102-000000"]
    assert not Path(done["worktree"]).exists() and Path(going["worktree"]).exists()
    kept = config.state_path / "train" / "20260101-000000" / "traces"
    assert [p.name for p in kept.iterdir()] == ["20260101-000000-epoch-00.jsonl"]
    assert done["branch"] in git(config.root, "branch", "--list", done["branch"])
    assert "20260101-000000" not in git(config.root, "worktree", "list")
    # naming a run that is not finished is refused; --delete-branch deletes, saying the tip
    with pytest.raises(UserError, match="is running"):
        clean_runs(config, "20260102")
    result = clean_runs(config, "20260101", delete_branches=True)
    assert result.deleted_branches == [(done["branch"], done["s2"])]
    assert git(config.root, "branch", "--list", done["branch"]) == ""


def test_cli_adopt_and_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_workspace(tmp_path / "ws")
    run = make_run(config)
    assert cli_main(["train", str(config.root), "--adopt", "latest"]) == 0
    out = capsys.readouterr().out
    assert f"adopted its best toolset {run['s1'][:7]} by fast-forward" in out
    assert cli_main(["train", str(config.root), "--clean", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == ["20260101-000000"]
    assert cli_main(["train", str(config.root), "--clean"]) == 0
    assert "nothing to clean" in capsys.readouterr().out
    assert cli_main(["train", str(config.root), "--adopt", "nope"]) == EXIT_ERROR
    assert "matches no run" in capsys.readouterr().err
    assert find_run(config, "latest").run_id == "20260101-000000"


def test_the_summary_says_how_to_adopt() -> None:
    lines = adoption_hint("r1", "funcforge/train/r1", "a" * 40, "b" * 40)
    assert "funcforge train --adopt r1" in lines[0] and "git merge aaaaaaa" in lines[0]
    assert "funcforge train --clean r1" in lines[1]
    same = adoption_hint("r1", "funcforge/train/r1", "b" * 40, "b" * 40)
    assert "nothing to adopt" in same[0]


# ---------------------------------------------------------------- adopt: the copied traces


def test_adopt_names_the_untracked_trace_files_and_the_command_that_commits_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copied traces were left untracked with no word on what to do about them."""
    config = make_workspace(tmp_path / "repo", sub="agent")
    (config.root / "funcforge.toml").write_text("", encoding="utf-8")  # marks the workspace
    git(config.root, "add", "funcforge.toml")
    git(config.root, "commit", "-qm", "configure")
    make_run(config)
    here = config.root / "tools"  # run from a subfolder of the workspace
    monkeypatch.chdir(here)
    assert cli_main(["train", "--adopt", "latest"]) == 0
    out = capsys.readouterr().out
    name = "traces/funcforge-train/20260101-000000-epoch-00.jsonl"
    assert "1 trace file(s) of the run are not committed" in out
    line = next(x.strip() for x in out.splitlines() if x.strip().startswith("git add"))
    assert line == (
        f"git add -- ../{name} && git commit -m 'traces of training run 20260101-000000' "
        f"-- ../{name}"
    )
    # pasted where it was printed, it commits those files and nothing else
    (tmp_path / "repo" / "README.md").write_text("an edit of the user's\n", encoding="utf-8")
    subprocess.run(line, shell=True, cwd=here, check=True, capture_output=True)
    assert git(config.root, "show", "--name-only", "--format=%s", "HEAD").split() == [
        "traces",
        "of",
        "training",
        "run",
        "20260101-000000",
        f"agent/{name}",
    ]
    assert git(tmp_path / "repo", "status", "--porcelain") == " M README.md\n"
    # adopted again: tracked now, nothing to say
    assert cli_main(["train", "--adopt", "latest", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["how"] == "already" and data["untracked"] == [] and data["commit_traces"] is None


def test_adopt_says_when_a_gitignore_keeps_the_traces_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    (config.root / ".gitignore").write_text(".funcforge/\ntraces/\n", encoding="utf-8")
    git(config.root, "commit", "-qam", "ignore traces")
    make_run(config)
    assert cli_main(["train", str(config.root), "--adopt", "latest", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ignored"] == ["traces/funcforge-train/20260101-000000-epoch-00.jsonl"]
    assert data["untracked"] == [] and data["commit_traces"] is None
    git(config.root, "reset", "-q", "--hard", "HEAD~1")  # adopt again, in text
    assert cli_main(["train", str(config.root), "--adopt", "latest"]) == 0
    out = capsys.readouterr().out
    assert "ignored by your .gitignore and stay in this checkout only" in out
    assert "git add" not in out
