"""Small git operations shared by apply, roll-back and versions (GitPython, no os.environ).

Every command runs through `repo.git.execute` with an explicit argument list;
identities reach git as arguments and as the child process's environment only,
so a threaded language server can commit safely.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from git import Actor, Repo
from git.exc import GitCommandError

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.fsutil import write_atomic


class GitError(UserError):
    """A git command failed; the message carries git's own first error line."""


def run_git(
    repo: Repo,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run `git ARGS` in the work tree and return stdout (trailing newline kept).

    `--no-optional-locks`: a read such as `git status` must not take the index
    lock behind the user's back (the server runs while they use git).
    """
    try:
        out = repo.git.execute(
            ["git", "--no-optional-locks", *args],
            env=env,
            strip_newline_in_stdout=False,
            with_exceptions=True,
        )
    except GitCommandError as exc:
        if not check:
            return ""
        raise GitError(
            f"git {args[0]} failed in {repo.working_tree_dir}: {_first_line(exc)}"
        ) from exc
    return str(out)


def git_ok(repo: Repo, *args: str) -> bool:
    """True when `git ARGS` exits with status 0 (for predicates such as --is-ancestor)."""
    try:
        repo.git.execute(["git", "--no-optional-locks", *args], with_exceptions=True)
    except GitCommandError:
        return False
    return True


def _first_line(exc: GitCommandError) -> str:
    text = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    for line in text.replace("stderr:", "").splitlines():
        line = line.strip().strip("'").strip()
        if line and not line.startswith("hint:"):
            return line
    return f"exit status {exc.status}"


def work_tree(repo: Repo) -> Path:
    """The resolved work-tree root (a bare repository has none: that is an error)."""
    if repo.bare or repo.working_tree_dir is None:
        raise UserError(f"{repo.git_dir} is a bare git repository: funcforge needs a work tree")
    return Path(repo.working_tree_dir).resolve()


def repo_path(repo: Repo, config: Config, rel: str) -> str:
    """A workspace-relative path as a repository-relative POSIX path (the workspace may be a subfolder)."""
    absolute = (config.root / rel).resolve()
    try:
        return absolute.relative_to(work_tree(repo)).as_posix()
    except ValueError as exc:
        raise UserError(f"{absolute} is outside the git repository {work_tree(repo)}") from exc


def workspace_prefix(repo: Repo, config: Config) -> str:
    """The workspace root relative to the work tree: '' or 'sub/dir/'."""
    rel = Path(config.root).resolve().relative_to(work_tree(repo)).as_posix()
    return "" if rel == "." else rel + "/"


def user_actor(repo: Repo) -> Actor:
    """The user's git identity (user.name and user.email as git resolves them)."""
    name = run_git(repo, "config", "--get", "user.name", check=False).strip()
    email = run_git(repo, "config", "--get", "user.email", check=False).strip()
    # git itself also takes the identity from these variables (read, never set).
    name = name or os.environ.get("GIT_AUTHOR_NAME", "").strip()
    email = email or os.environ.get("GIT_AUTHOR_EMAIL", "").strip()
    if not name or not email:
        missing = " and ".join(k for k, v in (("user.name", name), ("user.email", email)) if not v)
        raise UserError(
            f"no git identity for commits in {work_tree(repo)} ({missing} not set): run "
            '`git config user.name "Your Name"` and `git config user.email you@example.com`'
        )
    return Actor(name, email)


def head_sha(repo: Repo) -> str | None:
    """HEAD's full sha, or None on a branch without commits yet."""
    try:
        return repo.head.commit.hexsha
    except ValueError:
        return None


def blob_bytes(repo: Repo, rev: str, path: str) -> bytes | None:
    """The bytes of `path` (repository-relative) at `rev`, or None when it is absent there."""
    try:
        blob = repo.commit(rev).tree / path
    except (KeyError, ValueError):
        return None
    data: bytes = blob.data_stream.read()
    return data


def changed_paths(repo: Repo, pathspecs: Sequence[str]) -> dict[str, str]:
    """Paths (repository-relative) with uncommitted changes, staged or not, or untracked.

    Returns path -> the two-letter porcelain status. `pathspecs` may use git's
    pathspec magic (`:(glob)`, `:(literal)`); an empty list means no paths.
    """
    if not pathspecs:
        return {}
    out = run_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *pathspecs)
    result: dict[str, str] = {}
    fields = out.split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        result[path] = code
        if code[0] in "RC":  # a rename or copy is followed by its source path
            if i < len(fields) and fields[i]:
                result[fields[i]] = code
            i += 1
    return result


def staged_paths(repo: Repo) -> list[str]:
    """Paths whose index entry differs from HEAD (changes the user has staged)."""
    out = run_git(repo, "diff", "--cached", "--name-only", "-z", "--no-renames", "HEAD")
    return [p for p in out.split("\0") if p]


def literal(paths: Iterable[str]) -> list[str]:
    """Pathspecs that match exactly these paths (no glob characters honoured)."""
    return [f":(literal){p}" for p in paths]


def commit_paths(
    repo: Repo,
    paths: Sequence[str],
    message: str,
    author: Actor,
    committer: Actor | None = None,
) -> str:
    """Commit exactly `paths` (repository-relative) as they are in the work tree; return the sha.

    `git commit --only -- PATHS` leaves anything else the user has staged
    untouched and out of the commit. Hooks are skipped (`--no-verify`), as
    Aider does: a hook that rewrites the file would commit bytes nobody reviewed.
    """
    committer = committer or author
    specs = literal(paths)
    run_git(repo, "add", "--", *specs)
    fd, msg_path = tempfile.mkstemp(prefix="funcforge-msg-", suffix=".txt")
    committed = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(message)
        env = {
            "GIT_COMMITTER_NAME": committer.name or "",
            "GIT_COMMITTER_EMAIL": committer.email or "",
        }
        run_git(
            repo,
            "commit",
            "--only",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            msg_path,
            f"--author={author.name} <{author.email}>",
            "--",
            *specs,
            env=env,
        )
        committed = True
    finally:
        Path(msg_path).unlink(missing_ok=True)
        if not committed:  # leave the index as it was: these paths were not staged before
            run_git(repo, "restore", "--staged", "--", *specs, check=False)
    sha = head_sha(repo)
    assert sha is not None
    return sha


def commit_index(repo: Repo, message: str, author: Actor, committer: Actor | None = None) -> str:
    """Commit what the index holds (used after `git revert --no-commit`); return the sha."""
    committer = committer or author
    fd, msg_path = tempfile.mkstemp(prefix="funcforge-msg-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(message)
        env = {
            "GIT_COMMITTER_NAME": committer.name or "",
            "GIT_COMMITTER_EMAIL": committer.email or "",
        }
        run_git(
            repo,
            "commit",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            msg_path,
            f"--author={author.name} <{author.email}>",
            env=env,
        )
    finally:
        Path(msg_path).unlink(missing_ok=True)
    sha = head_sha(repo)
    assert sha is not None
    return sha


def write_bytes_keep_mode(path: Path, data: bytes) -> None:
    """Write `data` atomically, keeping the file's permission bits (new files get 0644)."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    write_atomic(path, data)
    os.chmod(path, mode)
