"""Commit given file contents on top of HEAD without touching the work tree or the user's index.

The commit's tree is built in a temporary index (HEAD's tree with the new
blobs), written with `commit-tree` and moved onto the branch with
`update-ref NEW OLD`, which fails rather than overwrite a HEAD that moved
meanwhile. The user's index then gets the same blobs for those paths only, so
their staged and unstaged edits stay exactly as they were.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from git import Actor, Repo

from funcforge.history.gitops import run_git


@dataclass(frozen=True)
class Entry:
    """One index entry: file mode (octal string) and blob sha."""

    mode: str
    sha: str


def index_entry(repo: Repo, path: str, rev: str | None = None) -> Entry | None:
    """The entry of `path` in `rev`'s tree, or in the index when `rev` is None (None: absent)."""
    if rev is None:
        out = run_git(repo, "ls-files", "-s", "-z", "--", f":(literal){path}")
    else:
        out = run_git(repo, "ls-tree", "-z", rev, "--", f":(literal){path}")
    for record in out.split("\0"):
        if not record:
            continue
        meta, _, name = record.partition("\t")
        if name != path:
            continue
        fields = meta.split()
        if rev is None:  # "<mode> <sha> <stage>"
            return Entry(fields[0], fields[1])
        if fields[1] == "blob":  # "<mode> blob <sha>"
            return Entry(fields[0], fields[2])
    return None


def blob_text(repo: Repo, sha: str) -> bytes:
    data: bytes = repo.odb.stream(bytes.fromhex(sha)).read()
    return data


def hash_blob(repo: Repo, path: str, data: bytes) -> str:
    """Write `data` as a blob (with `path`'s clean filters, as `git add` would); return its sha."""
    fd, tmp = tempfile.mkstemp(prefix="funcforge-blob-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return run_git(repo, "hash-object", "-w", f"--path={path}", "--", tmp).strip()
    finally:
        Path(tmp).unlink(missing_ok=True)


def _signing_args(repo: Repo) -> list[str]:
    """`-S[key]` when the user signs commits (commit-tree does not read commit.gpgSign itself)."""
    sign = run_git(repo, "config", "--type=bool", "--get", "commit.gpgsign", check=False).strip()
    if sign != "true":
        return []
    key = run_git(repo, "config", "--get", "user.signingkey", check=False).strip()
    return [f"-S{key}" if key else "-S"]


def clean_message(message: str) -> str:
    """What `git commit --cleanup=whitespace` makes of a message (commit-tree takes it as is)."""
    lines = [line.rstrip() for line in message.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def commit_entries(
    repo: Repo,
    parent: str,
    entries: Mapping[str, Entry],
    message: str,
    author: Actor,
    committer: Actor | None = None,
) -> str:
    """Commit `parent`'s tree with `entries` (path -> mode and blob) replaced; return the sha.

    The branch moves from `parent` to the new commit only if it still points
    at `parent`. Hooks do not run (as with `git commit --no-verify`).
    """
    committer = committer or author
    fd, index_path = tempfile.mkstemp(prefix="funcforge-index-")
    os.close(fd)
    Path(index_path).unlink()
    fd, msg_path = tempfile.mkstemp(prefix="funcforge-msg-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(clean_message(message))
    env = {
        "GIT_INDEX_FILE": index_path,
        "GIT_AUTHOR_NAME": author.name or "",
        "GIT_AUTHOR_EMAIL": author.email or "",
        "GIT_COMMITTER_NAME": committer.name or "",
        "GIT_COMMITTER_EMAIL": committer.email or "",
    }
    try:
        run_git(repo, "read-tree", parent, env=env)
        for path, entry in entries.items():
            run_git(
                repo,
                "update-index",
                "--add",
                "--cacheinfo",
                f"{entry.mode},{entry.sha},{path}",
                env=env,
            )
        tree = run_git(repo, "write-tree", env=env).strip()
        sha = run_git(
            repo, "commit-tree", tree, "-p", parent, *_signing_args(repo), "-F", msg_path, env=env
        ).strip()
        subject = message.splitlines()[0] if message else "funcforge commit"
        run_git(repo, "update-ref", "-m", f"commit: {subject}", "HEAD", sha, parent)
    finally:
        Path(index_path).unlink(missing_ok=True)
        Path(msg_path).unlink(missing_ok=True)
    return sha


def stage_entries(repo: Repo, entries: Mapping[str, Entry]) -> None:
    """Set the user's index entries of these paths (nothing else in the index changes)."""
    for path, entry in entries.items():
        run_git(repo, "update-index", "--add", "--cacheinfo", f"{entry.mode},{entry.sha},{path}")
