"""Refusals before funcforge writes to git: detached HEAD, operations in progress, a held lock."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from git import Repo

from funcforge.errors import UserError
from funcforge.history.gitops import head_sha, work_tree

# (marker in the git directory, what is in progress, how to finish or abort it)
IN_PROGRESS: tuple[tuple[str, str, str], ...] = (
    ("MERGE_HEAD", "a merge", "git commit or git merge --abort"),
    ("rebase-merge", "a rebase", "git rebase --continue or git rebase --abort"),
    ("rebase-apply", "a rebase or git am", "git rebase --continue/--abort or git am --abort"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "git cherry-pick --continue or --abort"),
    ("REVERT_HEAD", "a revert", "git revert --continue or --abort"),
    ("BISECT_LOG", "a bisect", "git bisect reset"),
)


def operation_in_progress(repo: Repo) -> str | None:
    """A one-line description of the merge/rebase/cherry-pick/revert in progress, if any."""
    git_dir = Path(repo.git_dir)
    for marker, what, how in IN_PROGRESS:
        if (git_dir / marker).exists():
            return f"{what} is in progress in {work_tree(repo)}: finish or abort it first ({how})"
    return None


def wait_for_index_lock(repo: Repo, timeout: float = 2.0) -> None:
    """Wait up to `timeout` seconds for another git process to release `index.lock`."""
    lock = Path(repo.git_dir) / "index.lock"
    deadline = time.monotonic() + timeout
    while lock.exists():
        if time.monotonic() >= deadline:
            raise UserError(
                f"another git process is using the repository ({lock} exists): wait for it "
                "to finish, or delete that file if no git process is running"
            )
        time.sleep(0.05)


def ensure_can_commit(repo: Repo, lock_timeout: float = 2.0) -> None:
    """Refuse (UserError) unless funcforge may add commits to the current branch now.

    An operation in progress is named before a detached HEAD: a rebase detaches
    HEAD, and "a rebase is in progress" is what the user needs to hear.
    """
    work_tree(repo)  # a bare repository is refused here
    problem = operation_in_progress(repo)
    if problem:
        raise UserError(problem)
    if repo.head.is_detached:
        sha = repo.head.commit.hexsha[:7]
        raise UserError(
            f"HEAD is detached at {sha} in {work_tree(repo)}: switch to a branch first "
            "(git switch BRANCH); funcforge commits only on a branch"
        )
    if head_sha(repo) is None:
        raise UserError(
            f"the repository {work_tree(repo)} has no commits yet: commit your tool files "
            "first (git add . && git commit -m 'first commit'), then apply again; funcforge "
            "commits only the proposal's lines on top of an existing commit"
        )
    wait_for_index_lock(repo, lock_timeout)


APPLY_LOCK = "funcforge-apply.lock"


@contextmanager
def apply_lock(repo: Repo, timeout: float = 30.0) -> Iterator[None]:
    """Hold the workspace's apply lock: one apply at a time, across threads and processes.

    An advisory `flock` on a file in the git directory (shared by worktrees'
    common directory); the kernel drops it when the holder dies, so a crash
    never leaves a stale lock behind.
    """
    path = Path(repo.common_dir) / APPLY_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"another funcforge apply is still running in {work_tree(repo)} "
                        f"(it holds {path}); try again when it has finished"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
