"""Scores per toolset version: trace versions resolved to commits, funcforge commits parsed.

A trace's `toolset_version` is a full or short commit sha (resolved with one
`git cat-file --batch-check`), the tools' content hash (`Toolset.content_hash()`,
12 hex, also as `dirty-<hash>`), or anything else (unresolved: counted, never
a roll-back target).

A version *is* a toolset content: every commit whose tool files had the same
bytes shares one `VersionScore` (history/contents.py computes each commit's
content hash from its tree), so traces naming `3f2a9c1`, a later roll-back
commit that restored the same files, or the content hash itself all count for
one version. A content hash that matches no commit stays on its own (`dirty`
when it carries the prefix, else `unresolved`).

Scores are of the learnable traces (split other than "test"); the held-out
("test") traces of each version are carried beside them, labelled, and never
used for a decision (the team's split semantics, traces/splits.py).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from git import Repo

from funcforge.config import Config
from funcforge.history import message as msg
from funcforge.history.gitops import git_ok, head_sha, run_git, work_tree, workspace_prefix

VersionKind = Literal["commit", "dirty", "unresolved"]
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
_CONTENT = re.compile(r"^[0-9a-f]{12}$")
DIRTY_PREFIX = "dirty-"
ANCESTOR_SCAN = 5000  # commits listed at once before falling back to one check per version


class VersionStatsLike(Protocol):
    """What `traces.store.VersionStats` provides (`scored`, `score_sum` used when present)."""

    version: str
    n: int
    passed: int

    @property
    def mean_score(self) -> float | None: ...


@dataclass
class FuncforgeCommit:
    """A commit funcforge made: an accepted proposal or a roll-back, parsed from its trailers."""

    sha: str
    subject: str
    parents: list[str]
    time: int  # committer time, seconds since the epoch
    kind: Literal["proposal", "rollback"]
    proposal: str | None = None
    step: int | None = None
    base: str | None = None
    base_score: float | None = None
    base_n: int | None = None
    actions: list[str] = field(default_factory=list)
    model: str | None = None
    rollback_to: str | None = None
    reverts: list[str] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.sha[:7]

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.sha,
            "short": self.short,
            "subject": self.subject,
            "kind": self.kind,
            "time": self.time,
            "proposal": self.proposal,
            "step": self.step,
            "base": self.base,
            "base_score": self.base_score,
            "base_n": self.base_n,
            "actions": self.actions,
            "model": self.model,
            "rollback_to": self.rollback_to,
            "reverts": self.reverts,
        }


@dataclass
class VersionScore:
    """The traces of one version: n, sum of scores, passes; merged over aliases of one commit.

    `n`, `scored`, `score_sum`, `passed` count the learnable ("train") traces,
    the ones decisions use; `test_*` the held-out ones, reported only.
    """

    version: str  # full sha for commits (the newest on HEAD with this content); else the string
    kind: VersionKind
    n: int = 0
    score_sum: float = 0.0
    scored: int = 0  # traces that carried a score (the mean is over these)
    passed: int = 0
    aliases: list[str] = field(default_factory=list)
    funcforge: FuncforgeCommit | None = None
    content: str | None = None  # the toolset content hash, when known
    shas: list[str] = field(default_factory=list)  # every commit with this content, oldest first
    named: set[str] = field(default_factory=set)  # commits that traces named by their sha
    test_n: int = 0
    test_scored: int = 0
    test_score_sum: float = 0.0
    test_passed: int = 0

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None

    @property
    def test_score(self) -> float | None:
        """The held-out ("test") mean: shown, labelled, never used for a decision."""
        return self.test_score_sum / self.test_scored if self.test_scored else None

    def describe_test(self) -> str:
        """`test 0.70 (n=25)` or '' when no held-out trace ran this version."""
        if not self.test_scored:
            return ""
        return "test " + msg.format_score(self.test_score, self.test_scored)

    @property
    def commit(self) -> str | None:
        return self.version if self.kind == "commit" else None

    @property
    def label(self) -> str:
        """The short sha for commits, the version string otherwise."""
        return self.version[:7] if self.kind == "commit" else self.version

    @property
    def is_optimizer(self) -> bool:
        return self.funcforge is not None and self.funcforge.kind == "proposal"

    def describe(self) -> str:
        """`0.78 (n=120)`: the mean score and the number of scored traces."""
        return msg.format_score(self.mean_score, self.scored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "label": self.label,
            "kind": self.kind,
            "split": "train",
            "n": self.n,
            "scored": self.scored,
            "score": self.mean_score,
            "passed": self.passed,
            "test": {
                "split": "test",
                "n": self.test_n,
                "scored": self.test_scored,
                "score": self.test_score,
                "passed": self.test_passed,
                "used_for_decisions": False,
            },
            "content": self.content,
            "commits": self.shas or ([self.version] if self.kind == "commit" else []),
            "aliases": self.aliases,
            "optimizer": self.is_optimizer,
            "funcforge": self.funcforge.to_dict() if self.funcforge else None,
        }


@dataclass
class VersionTable:
    """Every version seen in the traces, split by kind; `lookup` accepts any alias."""

    commits: dict[str, VersionScore] = field(default_factory=dict)
    dirty: dict[str, VersionScore] = field(default_factory=dict)
    unresolved: dict[str, VersionScore] = field(default_factory=dict)
    funcforge: dict[str, FuncforgeCommit] = field(default_factory=dict)
    head: str | None = None
    # Commits (full sha) that are HEAD or its ancestors: possible roll-back targets.
    reachable: set[str] = field(default_factory=set)
    # Toolset content hash of each commit looked at (history/contents.py).
    contents: dict[str, str] = field(default_factory=dict)
    # HEAD and its ancestors, newest first (topological order; the decline rule walks it).
    ancestry: list[str] = field(default_factory=list)

    def lookup(self, version: str) -> VersionScore | None:
        """The entry for a sha, an alias seen in traces, a content hash, or a dirty string."""
        if version in self.commits:
            return self.commits[version]
        for table in (self.commits, self.dirty, self.unresolved):
            for entry in table.values():
                if version in entry.aliases:
                    return entry
        content = version[len(DIRTY_PREFIX) :] if version.startswith(DIRTY_PREFIX) else version
        for entry in self.commits.values():
            if entry.content == content:
                return entry
        if _HEX.match(version):
            hits = {id(v): v for sha, v in self.commits.items() if sha.startswith(version.lower())}
            if len(hits) == 1:
                return next(iter(hits.values()))
        return None

    def all(self) -> list[VersionScore]:
        """Every distinct version (commits sharing a content appear once)."""
        unique = {id(v): v for v in self.commits.values()}
        return [*unique.values(), *self.dirty.values(), *self.unresolved.values()]


def resolve_versions(repo: Repo, versions: Iterable[str]) -> dict[str, str | None]:
    """Map each hex version string to a full commit sha (None: unknown or ambiguous)."""
    wanted = sorted({v for v in versions if _HEX.match(v)})
    out: dict[str, str | None] = {}
    if not wanted:
        return out
    proc = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=work_tree(repo),
        input="".join(f"{v}^{{commit}}\n" for v in wanted),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.splitlines()
    for v, line in zip(wanted, lines, strict=False):
        parts = line.split()
        ok = len(parts) == 2 and parts[1] == "commit" and len(parts[0]) >= 40
        out[v] = parts[0] if ok else None
    for v in wanted[len(lines) :]:
        out[v] = None
    return out


def reachable_from_head(repo: Repo, shas: Iterable[str]) -> set[str]:
    """The subset of `shas` that are HEAD or its ancestors."""
    head = head_sha(repo)
    shas = set(shas)
    if head is None or not shas:
        return set()
    recent = set(run_git(repo, "rev-list", f"--max-count={ANCESTOR_SCAN}", head).split())
    found = shas & recent
    for sha in shas - found:
        if git_ok(repo, "merge-base", "--is-ancestor", sha, head):
            found.add(sha)
    return found


def _parse_commit(record: str) -> FuncforgeCommit | None:
    fields = record.split("\x1f", 3)
    if len(fields) != 4:
        return None
    sha, parents, ctime, body = fields
    trailers = msg.parse_trailers(body)
    subject = body.strip().splitlines()[0] if body.strip() else ""
    proposal = msg.trailer_values(trailers, msg.PROPOSAL)
    rollback = msg.trailer_values(trailers, msg.ROLLBACK_TO)
    if not proposal and not rollback:
        return None
    c = FuncforgeCommit(
        sha=sha.strip(),
        subject=subject,
        parents=parents.split(),
        time=int(ctime) if ctime.isdigit() else 0,
        kind="proposal" if proposal else "rollback",
    )
    if proposal:
        c.proposal = proposal[0]
        step = msg.trailer_values(trailers, msg.STEP)
        c.step = int(step[0]) if step and step[0].isdigit() else None
        base = msg.trailer_values(trailers, msg.BASE)
        c.base = base[0] if base else None
        score = msg.trailer_values(trailers, msg.SCORE)
        parsed = msg.parse_score(score[0]) if score else None
        if parsed:
            c.base_score, c.base_n = parsed
        if subject.startswith("funcforge: "):
            c.actions = [a.strip() for a in subject[len("funcforge: ") :].split(",") if a.strip()]
        for value in msg.trailer_values(trailers, "Co-authored-by"):
            m = re.match(r"funcforge \((.*)\) <", value)
            if m:
                c.model = m.group(1)
    else:
        c.rollback_to = rollback[0]
        c.reverts = msg.trailer_values(trailers, msg.REVERTS)
    return c


def funcforge_commits(
    repo: Repo, rev: str = "HEAD", max_count: int | None = None, folder: str = ""
) -> list[FuncforgeCommit]:
    """funcforge's commits reachable from `rev`, newest first (proposal and roll-back commits).

    `folder` (repository-relative, e.g. `samples/table-tools/`) keeps only the
    commits that touch it: the workspace's own. Without it, a repository with
    two workspaces listed each one's steps in the other's log, counted them
    against its patience, and `rollback` there reverted the other's commits.
    """
    if head_sha(repo) is None:
        return []
    args = [
        "log",
        "-z",
        "--topo-order",
        "--format=%H%x1f%P%x1f%ct%x1f%B",
        "-E",
        f"--grep=^({msg.PROPOSAL}|{msg.ROLLBACK_TO}): ",
    ]
    if max_count is not None:
        args.append(f"--max-count={max_count}")
    if folder:
        args.append("--full-history")  # no merge simplification: every such commit is listed
    out = run_git(repo, *args, rev, "--", *([f":(top){folder}"] if folder else []))
    commits = [_parse_commit(r) for r in out.split("\0") if r.strip()]
    return [c for c in commits if c is not None]


def _add_stats(entry: VersionScore, s: VersionStatsLike, held_out: bool) -> None:
    n = int(s.n)
    scored = int(getattr(s, "scored", n) or 0) if s.mean_score is not None else 0
    score_sum = getattr(s, "score_sum", None)
    if score_sum is None:
        score_sum = (s.mean_score or 0.0) * scored
    if held_out:
        entry.test_n += n
        entry.test_scored += scored
        entry.test_score_sum += float(score_sum)
        entry.test_passed += int(s.passed or 0)
    else:
        entry.n += n
        entry.scored += scored
        entry.score_sum += float(score_sum)
        entry.passed += int(s.passed or 0)


def version_table(
    repo: Repo,
    stats: Mapping[str, VersionStatsLike] | Iterable[VersionStatsLike],
    held_out: Mapping[str, VersionStatsLike] | Iterable[VersionStatsLike] | None = None,
    config: Config | None = None,
) -> VersionTable:
    """Resolve the trace versions in `stats` (learnable) and `held_out` ("test") per toolset.

    With `config`, commits are grouped by toolset content and content-hash
    versions resolve to the commits that had that content; without it, each
    commit is its own version and content hashes stay unresolved.
    """

    def listed(x: Any) -> list[VersionStatsLike]:
        if x is None:
            return []
        return list(x.values()) if isinstance(x, Mapping) else list(x)

    learn, held = listed(stats), listed(held_out)
    resolved = resolve_versions(repo, (s.version for s in [*learn, *held] if s.version))
    table = VersionTable(head=head_sha(repo))
    folder = workspace_prefix(repo, config) if config is not None else ""
    table.funcforge = {c.sha: c for c in funcforge_commits(repo, folder=folder)}
    if config is not None and table.head is not None:
        from funcforge.history.contents import commit_contents

        table.contents = commit_contents(repo, config)
    by_content: dict[str, list[str]] = {}
    for sha, content in table.contents.items():
        by_content.setdefault(content, []).append(sha)
    groups: dict[str, VersionScore] = {}

    def group(content: str) -> VersionScore:
        entry = groups.get(content)
        if entry is None:
            shas = by_content[content]
            entry = VersionScore(shas[-1], "commit", content=content, shas=list(shas))
            groups[content] = entry
            for sha in shas:
                table.commits[sha] = entry
        return entry

    for s, is_held in [*((s, False) for s in learn), *((s, True) for s in held)]:
        version = s.version or ""
        commit = resolved.get(version)
        content = version[len(DIRTY_PREFIX) :] if version.startswith(DIRTY_PREFIX) else version
        if commit and commit in table.contents:
            entry = group(table.contents[commit])
            entry.named.add(commit)
        elif commit:
            entry = table.commits.setdefault(commit, VersionScore(commit, "commit", shas=[commit]))
            entry.named.add(commit)
        elif _CONTENT.match(content) and content in by_content:
            entry = group(content)
        elif version.startswith(DIRTY_PREFIX):
            entry = table.dirty.setdefault(version, VersionScore(version, "dirty"))
        else:
            entry = table.unresolved.setdefault(version, VersionScore(version, "unresolved"))
        _add_stats(entry, s, is_held)
        if version not in entry.aliases:
            entry.aliases.append(version)
    table.reachable = reachable_from_head(repo, table.commits)
    for entry in {id(v): v for v in table.commits.values()}.values():
        on_head = [sha for sha in entry.shas if sha in table.reachable]
        if on_head:
            entry.version = on_head[-1]  # the newest commit on HEAD with this content
    for sha, entry in table.commits.items():
        ff = table.funcforge.get(sha)
        if ff is not None and (entry.funcforge is None or sha == entry.version):
            entry.funcforge = ff
    if table.head is not None:
        table.ancestry = run_git(
            repo, "rev-list", "--topo-order", f"--max-count={ANCESTOR_SCAN}", table.head
        ).split()
    return table


def load_version_table(
    config: Config, repo: Repo, stats: Any = None, held_out: Any = None
) -> VersionTable:
    """The table for a workspace: `stats` (learnable) and `held_out` ("test") version
    statistics from a TraceStore, or a fresh store's when `stats` is None."""
    if stats is None:
        from funcforge.traces.store import TraceStore

        store = TraceStore(config)
        store.refresh()
        stats = store.version_stats("learnable")
        held_out = store.version_stats("held_out")
    return version_table(repo, stats, held_out, config)
