"""Roll-back is `git revert` of funcforge's commits after a target version.

Policy (docs/history.md):

* Only funcforge's own commits after the target (proposal commits, and earlier
  roll-backs) are reverted, newest first, with `git revert --no-commit`; the
  result is ONE roll-back commit whose message cites both scores and lists
  every reverted commit (`This reverts commit <sha>.`). One commit per
  roll-back keeps the decision atomic: reverting the roll-back undoes it.
* The user's commits are never reverted. When they touch the same files, git
  merges; the result keeps the user's edits and the result lists them.
* Before starting: no staged changes anywhere and no uncommitted changes in
  the files involved (so `git revert --abort` cannot lose work). On a
  conflict: `git revert --abort`, which returns tree and index to exactly
  where they were, and an error naming the conflicting files.
* Never `reset --hard`, never force, never a rewrite of history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from git import Repo
from git.exc import GitCommandError

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.history.decline import best_version, judge_decline
from funcforge.history.git import open_repo
from funcforge.history.gitops import (
    changed_paths,
    commit_index,
    git_ok,
    head_sha,
    literal,
    run_git,
    staged_paths,
    user_actor,
)
from funcforge.history.message import format_score, rollback_message
from funcforge.history.safety import ensure_can_commit
from funcforge.history.versions import VersionScore, VersionTable, load_version_table


class RevertConflict(UserError):
    """The revert did not apply cleanly; the repository was left as it was."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


@dataclass
class RollbackResult:
    """What a roll-back did: the new commit(s), the target, what was reverted and kept."""

    commits: list[str]  # new commits (one roll-back commit; empty when nothing to do)
    target: str  # full sha of the version rolled back to
    reverted: list[str] = field(default_factory=list)  # funcforge commits reverted, newest first
    kept: list[str] = field(default_factory=list)  # user commits after the target on those files
    message: str = ""  # the commit message, or why nothing was done

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _short_score(v: VersionScore | None) -> str:
    """`0.78, n=120` for the subject's parenthesis."""
    if v is None or v.mean_score is None:
        return "no traces"
    return f"{v.mean_score:.2f}, n={v.scored}"


def _resolve_target(repo: Repo, config: Config, table: VersionTable, to: str | None) -> str:
    if to is not None:
        sha = run_git(repo, "rev-parse", "--verify", "-q", f"{to}^{{commit}}", check=False).strip()
        if not sha:
            raise UserError(f"unknown commit {to!r} in {repo.working_tree_dir}")
        return sha
    best = best_version(config, table)
    if best is None or best.commit is None:
        raise UserError(
            f"no version on this branch has {config.min_traces} scored traces yet "
            "(min_traces): nothing to pick as the best; use --to SHA"
        )
    return best.commit


def _files_of(repo: Repo, sha: str) -> set[str]:
    """Repository-relative paths a commit changed (against its first parent)."""
    out = run_git(
        repo, "diff-tree", "-r", "--no-commit-id", "--name-only", "-z", "--root", "-m",
        "--first-parent", "--no-renames", sha,
    )  # fmt: skip
    return {p for p in out.split("\0") if p}


def _abort(repo: Repo) -> None:
    """Undo a stopped `git revert` (tree and index back to HEAD for the files it touched)."""
    git_dir = Path(repo.git_dir)
    if (git_dir / "REVERT_HEAD").exists() or (git_dir / "sequencer").exists():
        run_git(repo, "revert", "--abort", check=False)
    if (git_dir / "sequencer").exists():
        run_git(repo, "revert", "--quit", check=False)


def rollback(
    config: Config,
    to: str | None = None,
    best: bool = False,
    *,
    stats: Any = None,
    lock_timeout: float = 2.0,
    reason: str | None = None,
) -> RollbackResult:
    """Revert funcforge's commits after `to` (a sha or any revision) or after the best version.

    `stats` are `TraceStore.version_stats()` (a fresh store's when None), used
    for the best version and the scores in the message. `reason` is the
    decision's own wording (the trainer's rule); without it the message cites
    the sequential decline rule on the traces. Raises UserError when
    refused, `RevertConflict` (a UserError) after a clean abort on a conflict.
    """
    if (to is None) == (not best):
        raise UserError("roll back to what? give exactly one of --to SHA or --best")
    with open_repo(config) as repo:
        ensure_can_commit(repo, lock_timeout)
        head = head_sha(repo)
        if head is None:
            raise UserError(f"{repo.working_tree_dir} has no commits: nothing to roll back")
        table = load_version_table(config, repo, stats)
        target = _resolve_target(repo, config, table, to)
        t7 = target[:7]
        if target == head:
            return RollbackResult([], target, message=f"HEAD is {t7} already: nothing to roll back")
        if not git_ok(repo, "merge-base", "--is-ancestor", target, head):
            raise UserError(
                f"{t7} is not an ancestor of HEAD: a roll-back only goes back along this branch"
            )
        range_commits = run_git(repo, "rev-list", "--topo-order", f"{target}..{head}").split()
        ours = [c for c in range_commits if c in table.funcforge]
        if not ours:
            return RollbackResult(
                [], target, message=f"no funcforge commits after {t7}: nothing to roll back"
            )
        files: set[str] = set()
        for sha in ours:
            files |= _files_of(repo, sha)
        if git_ok(repo, "diff", "--quiet", target, head, "--", *literal(sorted(files))):
            return RollbackResult(
                [],
                target,
                message=f"the files funcforge changed are as in {t7}: nothing to roll back",
            )
        kept = [c for c in range_commits if c not in table.funcforge and _files_of(repo, c) & files]
        staged = staged_paths(repo)
        if staged:
            raise UserError(
                f"staged changes in {', '.join(staged[:5])}: commit or unstage them first "
                "(a roll-back commits only its own changes)"
            )
        dirty = sorted(changed_paths(repo, literal(sorted(files))))
        if dirty:
            raise UserError(
                f"{', '.join(dirty)} has uncommitted changes: commit or discard them first "
                "(the roll-back changes these files)"
            )
        if (Path(repo.git_dir) / "sequencer").exists():
            raise UserError(
                "a cherry-pick or revert sequence was left in progress: finish it, or run "
                "`git revert --quit` (or `git cherry-pick --quit`) first"
            )
        author = user_actor(repo)
        target_v = table.commits.get(target)
        head_v = table.commits.get(head)
        note = reason or ""
        if not note and target_v and head_v and target_v.scored and head_v.scored:
            note = judge_decline(config, head_v, target_v, head[:7]).reason + "."
        if kept:
            note += (
                " User commits after the target on the same files are kept: "
                + ", ".join(c[:7] for c in kept)
                + "."
            )
        reverted = [(sha, table.funcforge[sha].subject) for sha in ours]
        message = rollback_message(
            target,
            _short_score(target_v),
            format_score(head_v.mean_score if head_v else None, head_v.scored if head_v else 0),
            reverted,
            note.strip(),
        )
        _revert_or_abort(repo, ours, t7)
        try:
            sha = commit_index(repo, message, author)
        except UserError:
            _abort(repo)
            raise
        return RollbackResult([sha], target, ours, kept, message)


def _revert_or_abort(repo: Repo, shas: list[str], t7: str) -> None:
    """`git revert --no-commit SHAS`; on failure abort and raise with the conflicting files."""
    try:
        repo.git.execute(["git", "revert", "--no-commit", *shas], with_exceptions=True)
        return
    except GitCommandError as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    conflicted = [
        p
        for p in run_git(repo, "diff", "--name-only", "--diff-filter=U", "-z", check=False).split(
            "\0"
        )
        if p
    ]
    _abort(repo)
    m = re.search(r"could not revert ([0-9a-f]+)", stderr)
    which = f"reverting {m.group(1)[:7]}" if m else "the revert"
    if conflicted:
        raise RevertConflict(
            f"roll-back to {t7} stopped: {which} conflicts in {', '.join(conflicted)}; "
            "nothing was changed (the revert was aborted). Resolve it by hand with "
            f"`git revert {' '.join(s[:7] for s in shas)}`",
            conflicted,
        )
    detail = next(
        (ln.strip() for ln in stderr.splitlines() if ln.strip().startswith(("error", "fatal"))), ""
    )
    raise UserError(
        f"roll-back to {t7} failed: {detail or 'git revert failed'}; nothing was changed"
    )
