"""`funcforge log`: funcforge's commits with their evidence and measured scores, as text or JSON.

Also the per-version series behind `--plot` and the editor's history view
(docs/lsp.md `VersionEntry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from git import Repo

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.history.decline import (
    Decline,
    EarlyStop,
    best_version,
    detect_decline,
    early_stop,
)
from funcforge.history.git import open_repo
from funcforge.history.gitops import run_git
from funcforge.history.message import format_score
from funcforge.history.versions import (
    ANCESTOR_SCAN,
    FuncforgeCommit,
    VersionScore,
    VersionTable,
    load_version_table,
)
from funcforge.optimizer.optimizer import OptimizerState


@dataclass
class LogEntry:
    """One funcforge commit, its measured score, and the roll-back that reverted it (if any)."""

    commit: FuncforgeCommit
    measured: VersionScore | None = None
    reverted_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        m = self.measured
        return {
            **self.commit.to_dict(),
            "split": "train",
            "score": m.mean_score if m else None,
            "n": m.scored if m else 0,
            "test_score": m.test_score if m else None,
            "test_n": m.test_scored if m else 0,
            "content": m.content if m else None,
            "reverted_by": self.reverted_by,
        }


@dataclass
class VersionPoint:
    """A commit on HEAD's history with traces or made by funcforge, oldest first in a series."""

    commit: str
    subject: str
    score: float | None
    n: int
    step: int | None = None
    optimizer: bool = False
    rollback: bool = False
    rolled_back: bool = False
    is_best: bool = False
    is_head: bool = False
    score_sum: float = 0.0
    test_score: float | None = None  # held out: shown, never used for a decision
    test_n: int = 0
    content: str | None = None
    rollback_to: str | None = None

    @property
    def short(self) -> str:
        return self.commit[:7]

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "short": self.short,
            "subject": self.subject,
            "step": self.step,
            "optimizer": self.optimizer,
            "rollback": self.rollback,
            "rolled_back": self.rolled_back,
            "split": "train",
            "score": self.score,
            "n": self.n,
            "test_score": self.test_score,
            "test_n": self.test_n,
            "content": self.content,
            "is_best": self.is_best,
            "is_head": self.is_head,
        }


@dataclass
class HistoryLog:
    """Everything `funcforge log` shows."""

    entries: list[LogEntry]  # funcforge commits, newest first
    versions: list[VersionPoint]  # HEAD's history, oldest first
    best: VersionScore | None
    head: str | None
    decline: Decline | None
    early_stop: EarlyStop
    other: list[VersionScore] = field(default_factory=list)  # dirty, unresolved, off-branch

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "best": self.best.to_dict() if self.best else None,
            "decline": self.decline.to_dict() if self.decline else None,
            "early_stop": self.early_stop.to_dict(),
            "commits": [e.to_dict() for e in self.entries],
            "versions": [v.to_dict() for v in self.versions],
            "other_versions": [v.to_dict() for v in self.other],
        }


def _subjects(repo: Repo, head: str) -> list[tuple[str, str]]:
    """(sha, subject) of HEAD's history, newest first, at most ANCESTOR_SCAN commits."""
    out = run_git(
        repo, "log", "-z", "--topo-order", f"--max-count={ANCESTOR_SCAN}", "--format=%H%x1f%s", head
    )
    pairs: list[tuple[str, str]] = []
    for record in out.split("\0"):
        if "\x1f" in record:
            sha, subject = record.split("\x1f", 1)
            pairs.append((sha.strip(), subject))
    return pairs


def build_log(
    config: Config, repo: Repo, table: VersionTable, current: str | None = None
) -> HistoryLog:
    """Assemble the log from a version table; `current` is the toolset's version (default HEAD)."""
    head = table.head
    reverted_by: dict[str, str] = {}
    for c in table.funcforge.values():
        for sha in c.reverts:
            reverted_by.setdefault(sha, c.sha)
    entries = [
        LogEntry(c, table.commits.get(c.sha), reverted_by.get(c.sha))
        for c in table.funcforge.values()
    ]
    best = best_version(config, table)
    versions: list[VersionPoint] = []
    if head is not None:
        previous: str | None = None
        for sha, subject in reversed(_subjects(repo, head)):
            v = table.commits.get(sha)
            ff = table.funcforge.get(sha)
            content = table.contents.get(sha)
            changed = content is None or content != previous
            previous = content
            # A commit is a point when funcforge made it, it is HEAD, traces name it, or it
            # introduced a measured toolset content (not every later commit that kept it).
            if ff is None and sha != head and (v is None or (sha not in v.named and not changed)):
                continue
            versions.append(
                VersionPoint(
                    commit=sha,
                    subject=subject,
                    score=v.mean_score if v else None,
                    n=v.scored if v else 0,
                    step=ff.step if ff else None,
                    optimizer=bool(ff and ff.kind == "proposal"),
                    rollback=bool(ff and ff.kind == "rollback"),
                    rolled_back=sha in reverted_by,
                    is_best=best is not None and (best.version == sha or sha in best.shas),
                    is_head=sha == head,
                    score_sum=v.score_sum if v else 0.0,
                    test_score=v.test_score if v else None,
                    test_n=v.test_scored if v else 0,
                    content=content,
                    rollback_to=ff.rollback_to if ff else None,
                )
            )
    shown = {p.commit for p in versions}
    other = [v for v in table.all() if v.version not in shown and not (set(v.shas) & shown)]
    decline = None
    if current is not None or head is not None:
        decline = detect_decline(config, table, current or (head or "")[:7])
    return HistoryLog(
        entries,
        versions,
        best,
        head,
        decline,
        early_stop(config, table, _policy_state(config)),
        other,
    )


def _policy_state(config: Config) -> OptimizerState | None:
    """The policy state `optimize` or the trainer saved for this workspace (None if unreadable)."""
    try:
        return OptimizerState.load(config.state_path)
    except UserError:
        return None


def history_log(
    config: Config, stats: Any = None, current: str | None = None, held_out: Any = None
) -> HistoryLog:
    """The log of the workspace's repository.

    `stats` / `held_out`: a TraceStore's learnable and held-out version
    statistics (a fresh store's when `stats` is None).
    """
    with open_repo(config) as repo:
        table = load_version_table(config, repo, stats, held_out)
        return build_log(config, repo, table, current)


def render_log(log: HistoryLog) -> str:
    """Plain text for the terminal: summary lines, then one line per funcforge commit."""
    lines: list[str] = [
        "scores are of the train split; test (held out) scores are shown, never used to decide"
    ]
    if log.best:
        test = log.best.describe_test()
        lines.append(
            f"best version: {log.best.label} train {log.best.describe()}"
            + (f", {test}" if test else "")
        )
    else:
        lines.append("best version: none yet (no version has min_traces scored train traces)")
    head_point = next((p for p in log.versions if p.is_head), None)
    if head_point:
        test = f", test {format_score(head_point.test_score, head_point.test_n)}"
        lines.append(
            f"HEAD: {head_point.short} train {format_score(head_point.score, head_point.n)}"
            + (test if head_point.test_n else "")
        )
    if log.decline and log.decline.declined:
        lines.append(
            f"decline: {log.decline.message()} ({log.decline.reason}); "
            "roll back with `funcforge rollback --best`"
        )
    elif log.decline:
        lines.append(f"no decline: {log.decline.reason}")
    es = log.early_stop
    lines.append(("early stop: " if es.stop else "patience: ") + es.reason)
    lines.append("")
    if not log.entries:
        lines.append("no funcforge commits on this branch yet")
    for e in log.entries:
        c = e.commit
        if c.kind == "rollback":
            reverted = ", ".join(s[:7] for s in c.reverts)
            lines.append(
                f"{c.short}  roll back to {(c.rollback_to or '?')[:7]}, reverting {reverted}"
            )
            continue
        step = f"step {c.step}" if c.step is not None else "step ?"
        base = format_score(c.base_score, c.base_n or 0)
        measured = e.measured.describe() if e.measured else "no traces"
        line = f"{c.short}  {step}  {', '.join(c.actions)}  base {base}  measured {measured}"
        test = e.measured.describe_test() if e.measured else ""
        if test:
            line += f" ({test})"
        if e.reverted_by:
            line += f"  [rolled back by {e.reverted_by[:7]}]"
        lines.append(line)
    if log.other:
        lines.append("")
        lines.append("versions not on this branch's history:")
        for v in log.other:
            test = v.describe_test()
            lines.append(f"  {v.label} ({v.kind}) {v.describe()}" + (f", {test}" if test else ""))
    return "\n".join(lines) + "\n"
