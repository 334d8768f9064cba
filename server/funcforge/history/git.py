"""Accepted proposals become commits; the toolset's version is HEAD's sha when clean.

`apply_proposal` recomputes the change against the files as they are now
(`toolset.rewrite.plan_actions`), refuses a stale proposal or a file with
someone else's uncommitted changes, writes the files and commits only them,
with the message and trailers of design.md ("Git conventions").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from git import Repo
from git.exc import InvalidGitRepositoryError, NoSuchPathError

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.history.gitops import (
    blob_bytes,
    changed_paths,
    commit_paths,
    head_sha,
    literal,
    repo_path,
    run_git,
    user_actor,
    work_tree,
    workspace_prefix,
    write_bytes_keep_mode,
)
from funcforge.history.message import proposal_message, wip_message
from funcforge.history.safety import ensure_can_commit
from funcforge.optimizer.proposal import Proposal

if TYPE_CHECKING:
    from funcforge.toolset.rewrite import FileChange
    from funcforge.toolset.toolset import Toolset

SHORT = 7  # length of the short sha used as a version string


def open_repo(config: Config) -> Repo:
    """The git repository holding the workspace (it may be a subfolder of the work tree).

    Close it when done (`with open_repo(config) as repo:`): GitPython keeps
    helper processes per Repo, and a Repo is not shared between threads.
    """
    try:
        repo = Repo(config.root, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise UserError(
            f"{config.root} is not a git repository: everything but commits works; run git init"
        ) from None
    try:
        work_tree(repo)
    except UserError:
        repo.close()
        raise
    return repo


def tool_changes(repo: Repo, config: Config) -> dict[str, str]:
    """Tool files (workspace-relative) with uncommitted changes, including untracked and deleted."""
    from funcforge.toolset.toolset import matches_tools

    prefix = workspace_prefix(repo, config)
    specs = [f":(glob){prefix}{pattern}" for pattern in config.tools]
    out: dict[str, str] = {}
    for path, code in changed_paths(repo, specs).items():
        if not path.startswith(prefix):
            continue
        rel = path[len(prefix) :]
        if matches_tools(config, rel):
            out[rel] = code
    return out


def current_version(config: Config, toolset: Toolset) -> str:
    """HEAD's short sha when the tool files equal HEAD's, else `dirty-<content hash>`.

    The toolset may hold unsaved editor text: a file whose text differs from
    the disk makes the version dirty too. Outside a git repository, or before
    the first commit, the version is always the content hash.
    """
    dirty = f"dirty-{toolset.content_hash()}"
    try:
        repo = open_repo(config)
    except UserError:
        return dirty
    with repo:
        head = head_sha(repo)
        if head is None or tool_changes(repo, config):
            return dirty
        for rel, data in toolset.data.items():
            try:
                if (config.root / rel).read_bytes() != data:
                    return dirty
            except OSError:
                return dirty
        paths = [repo_path(repo, config, rel) for rel in toolset.data]
        if paths:
            tracked = set(run_git(repo, "ls-files", "-z", "--", *literal(paths)).split("\0"))
            if any(p not in tracked for p in paths):  # an ignored tool file is not in HEAD
                return dirty
        return head[:SHORT]


@dataclass
class ApplyResult:
    """The commit an accepted proposal became."""

    commit: str  # full sha
    files: list[str]  # workspace-relative paths in the commit
    message: str
    wip_commit: str | None = None  # the user's own edits, committed first (--commit-dirty)

    @property
    def short(self) -> str:
        return self.commit[:SHORT]


def stale_reason(proposal: Proposal, toolset: Toolset) -> str | None:
    """Why the proposal no longer fits the toolset (a touched function changed), or None."""
    for name, digest in proposal.function_hashes.items():
        spec = toolset.functions.get(name)
        if spec is None:
            return (
                f"proposal is stale: `{name}` changed since it was proposed "
                "(it no longer exists); run the optimizer again"
            )
        if spec.code_hash() != digest:
            return f"proposal is stale: `{name}` changed since it was proposed; run the optimizer again"
    return None


def _plan(config: Config, toolset: Toolset, proposal: Proposal) -> list[FileChange]:
    from funcforge.toolset.rewrite import plan_actions

    changes = plan_actions(config, toolset, proposal.actions)
    return [c for c in changes if c.new_text != c.old_text or c.created]


def _head_toolset(config: Config, repo: Repo, dirty: dict[str, str]) -> Toolset:
    """The toolset with every changed tool file as HEAD has it (empty when new)."""
    from funcforge.toolset.source import decode_source
    from funcforge.toolset.toolset import load_toolset

    overrides: dict[str, str] = {}
    for rel in dirty:
        raw = blob_bytes(repo, "HEAD", repo_path(repo, config, rel))
        if raw is None:
            overrides[rel] = ""
            continue
        try:
            overrides[rel] = decode_source(raw, rel)[0]
        except UserError:
            overrides[rel] = raw.decode("utf-8", errors="replace")
    return load_toolset(config, overrides)


def _already_applied(
    config: Config, repo: Repo, proposal: Proposal, dirty: dict[str, str], current: Toolset
) -> list[FileChange] | None:
    """The proposal's changes when the work tree already holds exactly them (the editor wrote them)."""
    if not dirty:
        return None
    base = _head_toolset(config, repo, dirty)
    if stale_reason(proposal, base):
        return None
    try:
        changes = _plan(config, base, proposal)
    except UserError:
        return None
    if not changes:
        return None
    for c in changes:
        if c.file not in dirty or current.files.get(c.file) != c.new_text:
            return None
    return changes


def _restore(config: Config, originals: dict[str, bytes | None]) -> None:
    """Put back the files apply wrote when the commit failed (None: the file was new)."""
    for rel, data in originals.items():
        path = config.root / rel
        if data is None:
            path.unlink(missing_ok=True)
        else:
            write_bytes_keep_mode(path, data)


def apply_proposal(
    config: Config, proposal: Proposal, commit_dirty: bool = False, *, lock_timeout: float = 2.0
) -> ApplyResult:
    """Write the proposal's change and commit only the touched files; mark it applied.

    Refuses (UserError) a proposal that is applied, rejected, or stale; a
    touched file with uncommitted changes that are not the proposal's own
    (unless `commit_dirty`, which commits them first as the user's own
    commit); a detached HEAD; a merge/rebase/cherry-pick/revert in progress; a
    held index.lock (after waiting up to `lock_timeout` seconds).
    """
    from funcforge.toolset.toolset import load_toolset

    if proposal.status == "applied":
        where = f" as {proposal.commit[:SHORT]}" if proposal.commit else ""
        raise UserError(f"proposal {proposal.id} is already applied{where}")
    if proposal.status == "rejected":
        raise UserError(f"proposal {proposal.id} was rejected; run the optimizer for a new one")
    if not proposal.actions:
        raise UserError(f"proposal {proposal.id} has no actions: nothing to apply")
    with open_repo(config) as repo:
        ensure_can_commit(repo, lock_timeout)
        author = user_actor(repo)
        current = load_toolset(config)
        dirty = tool_changes(repo, config)
        wip: str | None = None
        changes = _already_applied(config, repo, proposal, dirty, current)
        already = changes is not None
        if changes is None:
            reason = stale_reason(proposal, current)
            if reason:
                raise UserError(reason)
            changes = _plan(config, current, proposal)
            if not changes:
                raise UserError(f"proposal {proposal.id} changes nothing in the current files")
            touched = {repo_path(repo, config, c.file): c.file for c in changes}
            pending = [touched[p] for p in changed_paths(repo, literal(touched)) if p in touched]
            if pending:
                if not commit_dirty:
                    raise UserError(
                        f"{', '.join(sorted(pending))} has uncommitted changes that are not "
                        f"proposal {proposal.id}'s own: commit or discard them, or run "
                        f"`funcforge apply {proposal.id} --commit-dirty` to commit them first "
                        "as your own commit"
                    )
                wip = commit_paths(
                    repo,
                    [repo_path(repo, config, f) for f in sorted(pending)],
                    wip_message(sorted(pending), proposal.id),
                    author,
                )
        files = [c.file for c in changes]
        message = proposal_message(proposal)
        originals: dict[str, bytes | None] = {}
        try:
            if not already:
                for c in changes:
                    path = config.root / c.file
                    originals[c.file] = path.read_bytes() if path.exists() else None
                    write_bytes_keep_mode(path, c.new_bytes())
            sha = commit_paths(repo, [repo_path(repo, config, f) for f in files], message, author)
        except BaseException:
            _restore(config, originals)
            raise
    proposal.status = "applied"
    proposal.commit = sha
    proposal.save(config.proposals_path)
    return ApplyResult(sha, files, message, wip)
