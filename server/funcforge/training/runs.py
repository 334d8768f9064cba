"""Training runs after the fact: adopt the best toolset, clean up worktrees, check the key early.

A run (training/trainer.py) lives in `.funcforge/train/<run>/` (its `run.json`
and report) with a git worktree on the branch `funcforge/train/<run>`. This
module reads those folders; it never changes a running run:

- `adopt_run`: bring the run's *best* commit (not the branch tip, which may
  end with a rolled-back or rejected step) into the current branch, by a
  fast-forward when possible, else a merge commit; never a reset or a force;
- `clean_runs`: remove finished runs' worktrees (their trace files are kept in
  the run folder first); branches stay unless asked;
- `preflight_endpoint`: fail before any work when the agent or the optimizer
  needs a live endpoint and has no key.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funcforge.config import Config
from funcforge.errors import UserError

if TYPE_CHECKING:
    from git import Repo

TRAIN_DIR = "train"
TRACES_DIR = "traces"  # where clean_runs keeps a run's trace files
TRAIN_TRACES = "traces/funcforge-train"  # a run's trace files, in its workspace and in yours


@dataclass
class RunInfo:
    """What `run.json` says about one run, as far as adopting and cleaning need it."""

    run_id: str
    folder: Path
    status: str
    branch: str
    worktree: Path
    workspace: Path
    base_commit: str | None
    best_commit: str | None
    test: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def has_worktree(self) -> bool:
        return self.worktree.exists()


def runs_folder(config: Config) -> Path:
    return config.state_path / TRAIN_DIR


def list_runs(config: Config) -> list[RunInfo]:
    """Every run with a readable `run.json`, oldest first."""
    out: list[RunInfo] = []
    folder = runs_folder(config)
    if not folder.is_dir():
        return out
    for run_json in sorted(folder.glob("*/run.json")):
        info = _read_run(run_json)
        if info is not None:
            out.append(info)
    return out


def _read_run(run_json: Path) -> RunInfo | None:
    try:
        data = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
        return None
    return RunInfo(
        run_id=data["run_id"],
        folder=run_json.parent,
        status=str(data.get("status") or "running"),
        branch=str(data.get("branch") or ""),
        worktree=Path(str(data.get("worktree") or run_json.parent / "worktree")),
        workspace=Path(str(data.get("workspace") or data.get("worktree") or "")),
        base_commit=data.get("base_commit"),
        best_commit=data.get("best_commit"),
        test=dict(data.get("test") or {}),
    )


def find_run(config: Config, run_id: str) -> RunInfo:
    """The run named `run_id` (a unique prefix is enough; `latest` is the newest run)."""
    runs = list_runs(config)
    if not runs:
        raise UserError(f"no training runs in {runs_folder(config)}: run `funcforge train` first")
    if run_id == "latest":
        return runs[-1]
    exact = [r for r in runs if r.run_id == run_id]
    hits = exact or [r for r in runs if r.run_id.startswith(run_id)]
    if len(hits) != 1:
        known = ", ".join(r.run_id for r in runs[-5:])
        what = "is ambiguous" if hits else "matches no run"
        raise UserError(f"training run '{run_id}' {what} in {runs_folder(config)} (runs: {known})")
    return hits[0]


# ---------------------------------------------------------------- adopt


@dataclass
class AdoptResult:
    run_id: str
    best: str
    how: str  # "fast-forward" | "merge" | "already"
    commit: str  # HEAD afterwards
    traces: list[str] = field(default_factory=list)  # the run's trace files copied in
    # The run's trace files in the workspace (copied now or by an earlier adopt) that git
    # does not track: to commit with `git add` (funcforge commits only tool files), or
    # that a .gitignore keeps out. Workspace-relative.
    untracked: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def commit_command(self, root: Path, cwd: Path | None = None) -> str | None:
        """The shell line that commits the untracked trace files and nothing else
        (`git add`, then `git commit -- PATHS`), paths as seen from `cwd` (default: here)."""
        if not self.untracked:
            return None
        here = (cwd or Path.cwd()).resolve()
        names = [os.path.relpath(root / rel, here) for rel in self.untracked]
        message = f"traces of training run {self.run_id}"
        add = shlex.join(["git", "add", "--", *names])
        return f"{add} && {shlex.join(['git', 'commit', '-m', message, '--', *names])}"


def adoption_hint(
    run_id: str, branch: str, best: str | None, base: str | None, path: str = "."
) -> list[str]:
    """The lines a run's summary prints about adopting its result and cleaning up.

    `path` is the workspace as the user gave it: the commands printed name it,
    so they work pasted where `train` ran (`funcforge train samples/x ...`).
    """
    train = "funcforge train" if path in ("", ".") else f"funcforge train {shlex.quote(path)}"
    lines: list[str] = []
    if best and base and best == base:
        lines.append("no step improved on the starting toolset: nothing to adopt")
    elif best:
        lines.append(
            f"adopt the best toolset ({best[:7]}): {train} --adopt {run_id}"
            f"  (or: git merge {best[:7]}; `git merge {branch}` would also take the"
            " steps after it)"
        )
    lines.append(
        f"remove the run's worktree: {train} --clean {run_id}"
        " (add --delete-branch to delete its branch too)"
    )
    return lines


def adopt_run(config: Config, run_id: str) -> AdoptResult:
    """Bring the run's best commit into the current branch: fast-forward, else a merge commit.

    Refuses an unfinished run, a detached HEAD, an operation in progress, and
    uncommitted changes to tool files; a conflicting merge is aborted (the
    work tree, index and HEAD as before) and the conflicting files named.
    """
    from funcforge.history.git import open_repo

    run = find_run(config, run_id)
    if not run.finished or not run.best_commit:
        raise UserError(
            f"training run {run.run_id} is {run.status}, not finished: resume it with "
            "`funcforge train` (same task file), then adopt it"
        )
    best = run.best_commit
    with open_repo(config) as repo:
        how, commit = _merge_best(repo, config, run, best)
        result = AdoptResult(run.run_id, best, how, commit, _bring_traces(config, run))
        result.untracked, result.ignored = _untracked_traces(repo, config, run)
    return result


def _merge_best(repo: Repo, config: Config, run: RunInfo, best: str) -> tuple[str, str]:
    """Bring `best` into the current branch: (how, HEAD afterwards)."""
    from funcforge.history.git import tool_changes
    from funcforge.history.gitops import git_ok, head_sha, run_git, user_actor
    from funcforge.history.safety import ensure_can_commit

    ensure_can_commit(repo)
    user_actor(repo)  # a merge commit needs the user's identity: say so clearly first
    if not git_ok(repo, "cat-file", "-e", f"{best}^{{commit}}"):
        raise UserError(
            f"the best commit {best[:7]} of run {run.run_id} is not in this repository "
            f"any more (was branch {run.branch} deleted?)"
        )
    head = head_sha(repo)
    if head is None:
        raise UserError("the repository has no commits yet: nothing to merge into")
    if git_ok(repo, "merge-base", "--is-ancestor", best, head):
        return "already", head
    dirty = tool_changes(repo, config)
    if dirty:
        raise UserError(
            f"{', '.join(sorted(dirty))} has uncommitted changes: commit or stash them "
            f"before adopting run {run.run_id}"
        )
    if git_ok(repo, "merge-base", "--is-ancestor", head, best):
        run_git(repo, "merge", "--ff-only", "--quiet", best)
        return "fast-forward", head_sha(repo) or best
    message = (
        f"funcforge: adopt the best toolset of training run {run.run_id}\n\n"
        f"Merges {best[:7]}, the best version of branch {run.branch}" + _test_note(run) + ".\n"
    )
    try:
        run_git(repo, "merge", "--no-ff", "--no-verify", "--quiet", "-m", message, best)
    except UserError:
        conflicts = run_git(repo, "diff", "--name-only", "--diff-filter=U", check=False)
        run_git(repo, "merge", "--abort", check=False)
        files = ", ".join(conflicts.split()) or "see git status"
        raise UserError(
            f"merging {best[:7]} from run {run.run_id} conflicts with this branch "
            f"({files}); the merge was aborted and nothing changed: merge it by hand "
            f"with `git merge {best[:7]}`"
        ) from None
    return "merge", head_sha(repo) or ""


def _untracked_traces(repo: Repo, config: Config, run: RunInfo) -> tuple[list[str], list[str]]:
    """The run's trace files in the workspace that git does not track: (to add, ignored).

    funcforge does not commit them (its commits hold only tool changes, and a
    fast-forward adopt makes no commit at all); whether traces, which hold the
    tasks' inputs and answers, belong in the repository is the user's choice.
    """
    from funcforge.history.gitops import run_git, work_tree

    folder = config.root / TRAIN_TRACES
    present = sorted(folder.glob(f"{glob.escape(run.run_id)}-*.jsonl")) if folder.is_dir() else []
    if not present:
        return [], []
    top = work_tree(repo)
    specs = [str(p.resolve()) for p in present]

    def listed(*flags: str) -> list[str]:
        out = run_git(repo, "ls-files", "--others", *flags, "-z", "--", *specs, check=False)
        rels = [
            (top / p).relative_to(config.root.resolve()).as_posix() for p in out.split("\0") if p
        ]
        return sorted(rels)

    return listed("--exclude-standard"), listed("--ignored", "--exclude-standard")


def _bring_traces(config: Config, run: RunInfo) -> list[str]:
    """Copy the run's trace files into the workspace, where the `traces` globs read them.

    They are the only scores of the run's versions: without them, after an
    adopt `log` said "no traces" for every trained version and `rollback
    --best` reverted the adopted toolset to the last version scored here. New
    files only (never overwritten); nothing when the globs would not read them.
    Returns the workspace-relative paths copied.
    """
    from funcforge import paths

    source = run.workspace / "traces" / "funcforge-train"
    if not source.is_dir():
        source = run.folder / TRACES_DIR  # kept there by `--clean`
    copied: list[str] = []
    for f in sorted(source.glob("*.jsonl")) if source.is_dir() else []:
        rel = f"{TRAIN_TRACES}/{f.name}"
        dest = config.root / rel
        if dest.exists() or not paths.matches(config.traces, rel):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
        copied.append(rel)
    return copied


def _test_note(run: RunInfo) -> str:
    item = run.test.get("best") if isinstance(run.test, dict) else None
    if isinstance(item, dict) and item.get("score") is not None:
        return f" (test score {float(item['score']):.3f}, n={item.get('n')})"
    return ""


# ---------------------------------------------------------------- clean


@dataclass
class CleanResult:
    removed: list[str] = field(default_factory=list)  # run ids whose worktree went
    kept: list[tuple[str, str]] = field(default_factory=list)  # (run id, why)
    deleted_branches: list[tuple[str, str]] = field(default_factory=list)  # (branch, tip)
    freed_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "kept": [{"run": r, "reason": why} for r, why in self.kept],
            "deleted_branches": [{"branch": b, "was": t} for b, t in self.deleted_branches],
            "freed_bytes": self.freed_bytes,
        }


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def _keep_traces(run: RunInfo) -> None:
    """Copy the run's trace files out of its worktree into the run folder (they are evidence)."""
    source = run.workspace / "traces" / "funcforge-train"
    if not source.is_dir():
        return
    target = run.folder / TRACES_DIR
    target.mkdir(parents=True, exist_ok=True)
    for f in source.glob("*.jsonl"):
        shutil.copy2(f, target / f.name)


def clean_runs(
    config: Config, run_id: str | None = None, delete_branches: bool = False
) -> CleanResult:
    """Remove the worktrees of finished runs (all, or the one named); keep their traces.

    A run that is not finished (running, or stopped and resumable) is kept; naming
    one explicitly is refused. Branches are deleted only with `delete_branches`.
    """
    from funcforge.history.git import open_repo
    from funcforge.history.gitops import run_git

    runs = [find_run(config, run_id)] if run_id else list_runs(config)
    result = CleanResult()
    with open_repo(config) as repo:
        for run in runs:
            if not run.finished:
                why = f"{run.status}: resume it with `funcforge train`, or it may be running"
                if run_id:
                    raise UserError(f"training run {run.run_id} is {why}; not removed")
                result.kept.append((run.run_id, why))
                continue
            if run.has_worktree:
                _keep_traces(run)
                size = _size(run.worktree)
                run_git(repo, "worktree", "remove", "--force", str(run.worktree))
                result.freed_bytes += size
                result.removed.append(run.run_id)
            if delete_branches and run.branch:
                tip = run_git(repo, "rev-parse", "--verify", "--quiet", run.branch, check=False)
                if tip.strip():
                    run_git(repo, "branch", "-D", run.branch)
                    result.deleted_branches.append((run.branch, tip.strip()))
        run_git(repo, "worktree", "prune", check=False)
    return result


# ---------------------------------------------------------------- preflight


def preflight_endpoint(config: Config, agent: str, llm: str | None) -> None:
    """Fail now when a live model endpoint is needed and its key is missing.

    The function-calling and ReAct agents call the model for every task; the
    optimizer does unless answers are replayed (`--llm replay:FILE`). Without
    this, a missing key showed only after the initial evaluation and an epoch.
    """
    agent_needs = not agent.startswith("command:")
    optimizer_needs = not llm
    if not (agent_needs or optimizer_needs):
        return
    from funcforge.optimizer.llm import LLMClient, LLMError

    try:
        client = LLMClient.from_config(config)
    except LLMError as exc:
        who = (
            f"the {agent} agent"
            if agent_needs
            else "the optimizer (pass --llm replay:FILE to answer from a transcript)"
        )
        raise UserError(f"{who} needs the model endpoint, but {exc}") from None
    client.close()
