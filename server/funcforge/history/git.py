"""Accepted proposals become commits; the toolset's version is HEAD's sha when clean.

`apply_proposal` plans the change on the text the proposal still fits
(`toolset.rewrite.plan_actions`) and commits exactly its lines on top of HEAD
through a temporary index, with the message and trailers of design.md ("Git
conventions"); the user's other edits, staged or not, saved or not, stay
uncommitted where they are. It refuses a stale proposal, and lines the
proposal changes that the user changed too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from git import Actor, Repo
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
from funcforge.history.index_commit import (
    Entry,
    blob_text,
    commit_entries,
    hash_blob,
    index_entry,
    stage_entries,
)
from funcforge.history.merge import Conflict, carry_lines
from funcforge.history.message import proposal_message, wip_message
from funcforge.history.safety import apply_lock, ensure_can_commit
from funcforge.optimizer.proposal import Proposal
from funcforge.toolset.source import encode_source

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


def current_version(config: Config, toolset: Toolset | None = None) -> str:
    """HEAD's short sha when the tool files on disk equal HEAD's, else `dirty-<content hash>`.

    Evidence binds to what the agent ran, which is never an editor's unsaved
    text: the version is computed from the files on disk, whatever unsaved
    buffers `toolset` holds (it is used only when it equals the disk). Outside
    a git repository, or before the first commit, it is the content hash.
    """
    disk = _disk_toolset(config, toolset)
    dirty = f"dirty-{disk.content_hash()}"
    try:
        repo = open_repo(config)
    except UserError:
        return dirty
    with repo:
        head = head_sha(repo)
        if head is None or tool_changes(repo, config):
            return dirty
        paths = [repo_path(repo, config, rel) for rel in disk.data]
        if paths:
            tracked = set(run_git(repo, "ls-files", "-z", "--", *literal(paths)).split("\0"))
            if any(p not in tracked for p in paths):  # an ignored tool file is not in HEAD
                return dirty
        return head[:SHORT]


def committed_version(config: Config, toolset: Toolset | None = None) -> str:
    """The committed version evidence is bound to: HEAD's short sha, whatever the editor
    or the work tree hold (saved but uncommitted edits, autosave's included); the
    content hash outside git or before the first commit.

    An optimizer step started from the editor scores its proposal against this
    version: the traces it reads were logged with committed code.
    """
    try:
        repo = open_repo(config)
    except UserError:
        return current_version(config, toolset)
    with repo:
        head = head_sha(repo)
    return head[:SHORT] if head is not None else current_version(config, toolset)


def _disk_toolset(config: Config, toolset: Toolset | None) -> Toolset:
    """`toolset` when it holds exactly the files on disk, else the toolset read from disk."""
    from funcforge.toolset.toolset import load_toolset, tool_files

    if toolset is not None and sorted(toolset.data) == sorted(tool_files(config)):
        try:
            if all((config.root / rel).read_bytes() == data for rel, data in toolset.data.items()):
                return toolset
        except OSError:
            pass
    return load_toolset(config)


@dataclass
class ApplyResult:
    """The commit an accepted proposal became."""

    commit: str  # full sha
    files: list[str]  # workspace-relative paths in the commit
    message: str
    wip_commit: str | None = None  # the user's own edits, committed first (--commit-dirty)
    # Open editor buffers (workspace-relative) that lack the change: their new text.
    # The disk under an open buffer is never written; the editor takes the edit.
    buffer_texts: dict[str, str] = field(default_factory=dict)
    # The committed text of each file (workspace-relative), for editors to compare with.
    committed: dict[str, str] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.commit[:SHORT]


class ApplyConflict(UserError):
    """The proposal's own lines meet the user's edits: nothing was committed.

    `functions` are the proposal's functions, so a client can offer to propose
    again on the current text.
    """

    def __init__(self, message: str, proposal: str, functions: list[str]) -> None:
        super().__init__(message)
        self.proposal = proposal
        self.functions = functions


class AlreadyApplied(UserError):
    """The proposal is already committed (by this or another process)."""

    def __init__(self, proposal: Proposal) -> None:
        where = f" as {proposal.commit[:SHORT]}" if proposal.commit else ""
        super().__init__(f"proposal {proposal.id} is already applied{where}")
        self.commit = proposal.commit


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


def holds_proposal(proposal: Proposal, planned: Toolset, toolset: Toolset) -> bool:
    """Does `toolset` already define the touched functions as `planned` (the proposal's result) does?"""
    for action in proposal.actions:
        want = planned.functions.get(action.name)
        have = toolset.functions.get(action.name)
        if (want is None) != (have is None):
            return False
        if want is not None and have is not None and want.code_hash() != have.code_hash():
            return False
    return True


def _plan(config: Config, toolset: Toolset, proposal: Proposal) -> list[FileChange]:
    from funcforge.toolset.rewrite import plan_actions

    changes = plan_actions(config, toolset, proposal.actions)
    return [c for c in changes if c.new_text != c.old_text or c.created]


def _decode(raw: bytes, rel: str) -> str:
    from funcforge.toolset.source import decode_source

    try:
        return decode_source(raw, rel)[0]
    except UserError:
        return raw.decode("utf-8", errors="replace")


def _head_toolset(config: Config, repo: Repo, dirty: dict[str, str]) -> Toolset:
    """The toolset with every changed tool file as HEAD has it (empty when new)."""
    from funcforge.toolset.toolset import load_toolset

    overrides: dict[str, str] = {}
    for rel in dirty:
        raw = blob_bytes(repo, "HEAD", repo_path(repo, config, rel))
        overrides[rel] = "" if raw is None else _decode(raw, rel)
    return load_toolset(config, overrides)


@dataclass
class _Target:
    """One file the proposal changes, and what each copy of it becomes."""

    change: FileChange
    path: str  # repository-relative, symlinks followed
    head: Entry | None
    commit_text: str
    index_text: str | None = None  # the user's staged text with the change (None: as HEAD)
    disk_text: str | None = None  # None: leave the disk alone
    buffer_text: str | None = None  # an open buffer's new text (None: it holds the change)


def _base(proposal: Proposal, views: list[tuple[str, Toolset]]) -> tuple[Toolset, str | None]:
    """The first view the proposal fits (its functions unchanged), else the stale reason."""
    reason = None
    for _, toolset in views:
        why = stale_reason(proposal, toolset)
        if why is None:
            return toolset, None
        reason = reason or why
    return views[0][1], reason


def _conflict(proposal: Proposal, rel: str, where: str, at: Conflict) -> ApplyConflict:
    names = [a.name for a in proposal.actions]
    return ApplyConflict(
        f"{rel}:{at.first_line}: proposal {proposal.id}'s lines conflict with {where} "
        f"(lines {at.first_line}-{at.last_line}); nothing was committed. Propose again on "
        f'the current text (the editor\'s "Propose again" action, or `funcforge optimize '
        f"--function {names[0]}`), or undo your edits to those lines",
        proposal.id,
        names,
    )


def _carry(ours: str, change: FileChange) -> str | Conflict:
    return carry_lines(ours, change.old_text, change.new_text)


def apply_proposal(
    config: Config,
    proposal: Proposal,
    commit_dirty: bool = False,
    *,
    lock_timeout: float = 2.0,
    buffers: Mapping[str, str] | None = None,
) -> ApplyResult:
    """Commit exactly the proposal's lines on top of HEAD, through the index; mark it applied.

    The proposal's hunks (planned on the editor's text, the disk's or HEAD's,
    whichever it still fits) are carried onto HEAD's version of each file and
    committed; the user's staged and unstaged edits, in those files too, stay
    where they are, and the index and the disk get the proposal's lines as
    well. `buffers` are the editor's open documents (workspace-relative path ->
    text): the disk under them is not written, and `buffer_texts` in the result
    says which of them still need the edit. Applies are serialised per
    repository, across processes.

    Refuses (UserError) a proposal that is applied, rejected or stale; lines
    the proposal changes that the user changed too (`ApplyConflict`, unless
    `commit_dirty` commits the user's saved edits of those files first); a
    detached HEAD, an operation in progress, a repository without commits, a
    held index.lock (after waiting up to `lock_timeout` seconds).
    """
    from funcforge.optimizer.proposal import ProposalError, load_proposal

    if proposal.status == "rejected":
        raise UserError(f"proposal {proposal.id} was rejected; run the optimizer for a new one")
    if not proposal.actions:
        raise UserError(f"proposal {proposal.id} has no actions: nothing to apply")
    buffers = dict(buffers or {})
    with open_repo(config) as repo, apply_lock(repo, timeout=max(lock_timeout, 30.0)):
        with suppress(ProposalError):  # another apply may have committed it meanwhile
            proposal = load_proposal(config.proposals_path, proposal.id)
        if proposal.status == "applied":
            raise AlreadyApplied(proposal)
        if proposal.status == "rejected":
            raise UserError(f"proposal {proposal.id} was rejected; run the optimizer for a new one")
        ensure_can_commit(repo, lock_timeout)
        author = user_actor(repo)
        wip: str | None = None
        if commit_dirty:
            wip = _commit_dirty(config, repo, proposal, buffers, author)
        head = head_sha(repo)
        assert head is not None  # ensure_can_commit refuses an unborn branch
        targets = _targets(config, repo, proposal, buffers)
        if not targets:
            raise UserError(f"proposal {proposal.id} changes nothing in the current files")
        message = proposal_message(proposal)
        entries: dict[str, Entry] = {}
        staged: dict[str, Entry] = {}
        for t in targets:
            data = encode_source(t.commit_text, t.change.encoding)
            mode = t.head.mode if t.head else _mode_of(config.root / t.change.file)
            entries[t.path] = Entry(mode, hash_blob(repo, t.path, data))
            if t.index_text is None:
                staged[t.path] = entries[t.path]
            else:
                raw = encode_source(t.index_text, t.change.encoding)
                staged[t.path] = Entry(mode, hash_blob(repo, t.path, raw))
        sha = commit_entries(repo, head, entries, message, author)
        stage_entries(repo, staged)
        proposal.status = "applied"
        proposal.commit = sha
        proposal.save(config.proposals_path)
        failed = _write_disk(config, targets)
    files = [t.change.file for t in targets]
    result = ApplyResult(
        sha,
        files,
        message,
        wip,
        {t.change.file: t.buffer_text for t in targets if t.buffer_text is not None},
        {t.change.file: t.commit_text for t in targets},
    )
    if failed:
        raise UserError(
            f"committed {result.short}, but writing {failed} failed: the file on disk lacks "
            "the proposal's lines (git diff shows them as removed); fix the file's permissions "
            "and run `git checkout -p` on it"
        )
    return result


def _targets(
    config: Config, repo: Repo, proposal: Proposal, buffers: dict[str, str]
) -> list[_Target]:
    """Plan the proposal and carry it onto HEAD, the index, the disk and the open buffers."""
    from funcforge.toolset.toolset import load_toolset

    disk = load_toolset(config)
    dirty = tool_changes(repo, config)
    views: list[tuple[str, Toolset]] = []
    editor = load_toolset(config, buffers) if buffers else None
    if editor is not None:
        views.append(("editor", editor))
    views += [("disk", disk), ("HEAD", _head_toolset(config, repo, dirty))]
    base, reason = _base(proposal, views)
    if reason:
        raise UserError(reason)
    changes = _plan(config, base, proposal)
    planned = load_toolset(config, _texts(base) | {c.file: c.new_text for c in changes})
    disk_has_it = holds_proposal(proposal, planned, disk)
    editor_has_it = editor is not None and holds_proposal(proposal, planned, editor)
    out: list[_Target] = []
    for c in changes:
        path = repo_path(repo, config, c.file)
        head = index_entry(repo, path, "HEAD")
        head_text = _decode(blob_text(repo, head.sha), c.file) if head else ""
        commit = _carry(head_text, c)
        if isinstance(commit, Conflict):
            raise _conflict(proposal, c.file, "changes committed since it was proposed", commit)
        t = _Target(c, path, head, commit)
        staged = index_entry(repo, path)
        if staged is not None and (head is None or staged.sha != head.sha):
            index = _carry(_decode(blob_text(repo, staged.sha), c.file), c)
            if isinstance(index, Conflict):
                raise _conflict(proposal, c.file, "your staged changes", index)
            t.index_text = index
        if c.file in buffers:
            if not editor_has_it:
                text = _carry(buffers[c.file], c)
                if isinstance(text, Conflict):
                    raise _conflict(proposal, c.file, "your unsaved edits in the editor", text)
                t.buffer_text = text
        elif not disk_has_it:
            on_disk = disk.files.get(c.file, "") if (config.root / c.file).exists() else ""
            text = _carry(on_disk, c)
            if isinstance(text, Conflict):
                raise _conflict(proposal, c.file, "your uncommitted edits", text)
            t.disk_text = text
        out.append(t)
    return out


def _texts(toolset: Toolset) -> dict[str, str]:
    return dict(toolset.files)


def _mode_of(path: Path) -> str:
    try:
        return "100755" if os.stat(path).st_mode & stat.S_IXUSR else "100644"
    except OSError:
        return "100644"


def _write_disk(config: Config, targets: list[_Target]) -> str | None:
    """Write the files that need the change (through symlinks); the first that failed, if any."""
    for t in targets:
        if t.disk_text is None:
            continue
        path = (config.root / t.change.file).resolve()  # keep a symlink, change its target
        try:
            write_bytes_keep_mode(path, encode_source(t.disk_text, t.change.encoding))
        except OSError:
            return t.change.file
    return None


def _commit_dirty(
    config: Config, repo: Repo, proposal: Proposal, buffers: dict[str, str], author: Actor
) -> str | None:
    """Commit the saved edits of the proposal's files first, as the user's own commit."""
    from funcforge.toolset.toolset import load_toolset

    disk = load_toolset(config)
    reason = stale_reason(proposal, disk)
    if reason:  # committing the user's version of the function would make the proposal stale
        raise UserError(
            f"{reason.split(';')[0]} on disk: --commit-dirty would commit your version of it "
            f"and leave proposal {proposal.id} nothing to apply to; propose again on the current "
            "text instead"
        )
    files = {c.file for c in _plan(config, disk, proposal)}
    touched = {repo_path(repo, config, f): f for f in files}
    pending = sorted(touched[p] for p in changed_paths(repo, literal(touched)) if p in touched)
    if not pending:
        return None
    return commit_paths(
        repo,
        [repo_path(repo, config, f) for f in pending],
        wip_message(pending, proposal.id),
        author,
    )
