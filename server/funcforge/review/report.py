"""`funcforge review [RANGE]`: a pull request's tool changes as a Markdown (or JSON) report.

For each commit in the range that touches tool files:

- an optimizer commit: the change (diff stat, the functions and actions), the
  rationale and the model credited, the replay verdicts with the logged calls
  that prove them (re-checked now, parent against commit, in the sandbox),
  and the scores of the base version and of the new one (train split, n;
  test split shown beside, never used to decide);
- a roll-back: its target, what it reverted, the scores;
- a hand edit: what `funcforge check` finds for it (parent against commit).

The default range is the commits on this branch that are not on its upstream
(`@{upstream}..HEAD`), else not on `main` (or `master`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from git import Repo

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.history.gitops import git_ok, run_git, workspace_prefix
from funcforge.history.message import format_score
from funcforge.history.versions import (
    FuncforgeCommit,
    VersionScore,
    VersionTable,
    funcforge_commits,
    load_version_table,
)
from funcforge.review.findings import Finding, findings_of

MAX_CALLS = 8  # calls listed per verdict in Markdown (JSON has all that check lists)


@dataclass
class Score:
    """A version's score as reported: train split (decides), test split (shown only)."""

    version: str | None
    score: float | None
    n: int
    test_score: float | None = None
    test_n: int = 0

    @classmethod
    def of(cls, label: str | None, v: VersionScore | None) -> Score:
        if v is None:
            return cls(label, None, 0)
        return cls(label, v.mean_score, v.scored, v.test_score, v.test_scored)

    def text(self) -> str:
        out = f"train {format_score(self.score, self.n)}"
        if self.test_n:
            out += f"; test {format_score(self.test_score, self.test_n)} (held out)"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "split": "train",
            "score": self.score,
            "n": self.n,
            "test": {"split": "test", "score": self.test_score, "n": self.test_n},
        }


@dataclass
class ReviewedCommit:
    sha: str
    subject: str
    kind: str  # "optimizer" | "rollback" | "hand edit" | "merge" (its own tool changes)
    diffstat: str
    files: list[str]
    functions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    rationale: str = ""
    evidence: list[str] = field(default_factory=list)
    model: str | None = None
    step: int | None = None
    proposal: str | None = None
    base: Score | None = None
    base_trailer: str | None = None  # the score the commit was made on (its trailer)
    new: Score | None = None
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    ran_check: bool = False  # False with --no-execute (or for a root commit)
    unchecked: str | None = None  # why the check did not run
    rollback_to: str | None = None
    reverts: list[str] = field(default_factory=list)
    reverted_by: str | None = None

    @property
    def short(self) -> str:
        return self.sha[:7]

    @property
    def has_regression(self) -> bool:
        return any(f.level == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.sha,
            "short": self.short,
            "subject": self.subject,
            "kind": self.kind,
            "diffstat": self.diffstat,
            "files": self.files,
            "functions": self.functions,
            "actions": self.actions,
            "rationale": self.rationale,
            "evidence": self.evidence,
            "model": self.model,
            "step": self.step,
            "proposal": self.proposal,
            "base_score": self.base.to_dict() if self.base else None,
            "base_score_at_commit": self.base_trailer,
            "new_score": self.new.to_dict() if self.new else None,
            "checked": self.checked,
            "replay_checked": self.ran_check,
            "findings": [f.to_dict() for f in self.findings],
            "has_regression": self.has_regression,
            "rollback_to": self.rollback_to,
            "reverts": self.reverts,
            "reverted_by": self.reverted_by,
        }


@dataclass
class Review:
    range: str
    commits: list[ReviewedCommit]
    other: list[tuple[str, str]]  # commits in the range that do not touch tool files
    executed: bool = True  # False with --no-execute: no verdict either way

    @property
    def has_regression(self) -> bool:
        return any(c.has_regression for c in self.commits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "range": self.range,
            "commits": [c.to_dict() for c in self.commits],
            "other_commits": [{"commit": s, "subject": t} for s, t in self.other],
            "has_regression": self.has_regression,
            "replay_checked": self.executed,
        }


# ---------------------------------------------------------------- the range


def default_range(repo: Repo) -> str:
    """`@{upstream}..HEAD`, else `main..HEAD` / `master..HEAD`; a clear error otherwise."""
    if git_ok(repo, "rev-parse", "--verify", "--quiet", "@{upstream}"):
        return "@{upstream}..HEAD"
    for name in ("main", "master", "origin/main", "origin/master"):
        if git_ok(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"):
            return f"{name}..HEAD"
    raise UserError(
        "no range given and this branch has no upstream and there is no main branch: "
        "pass one, e.g. `funcforge review origin/main..HEAD`"
    )


def _check_range(repo: Repo, rng: str) -> str:
    """`rng` as `A..B` (a lone base means `BASE..HEAD`), each end a commit of this repository.

    Both ends are checked: `git log A..nope` fails, and an unchecked failure
    read as an empty range ("no commit changes tool files", exit 0).
    """
    if rng.startswith("-"):
        raise UserError(f"{rng!r}: not a range (e.g. origin/main..HEAD)")
    sep = "..." if "..." in rng else ".."
    if sep not in rng:
        rng = f"{rng}..HEAD"
    left, right = rng.split(sep, 1)
    for end in (left or "HEAD", right or "HEAD"):
        if end.startswith("-") or not git_ok(
            repo, "rev-parse", "--verify", "--quiet", f"{end}^{{commit}}"
        ):
            raise UserError(
                f"{rng!r}: not a range of this repository: {end!r} names no commit in "
                f"{repo.working_tree_dir} (e.g. origin/main..HEAD; in CI, fetch enough "
                "history: fetch-depth: 0)"
            )
    return rng


def _commits(repo: Repo, rng: str) -> list[tuple[str, str, list[str]]]:
    """(sha, subject, parents) of the range, oldest first (merges too: see `_tool_files`)."""
    rng = _check_range(repo, rng)
    out = run_git(
        repo,
        "log",
        "--reverse",
        "--topo-order",
        "-z",
        "--format=%H%x1f%s%x1f%P",
        rng,
        "--",
    )
    items = []
    for record in out.split("\0"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) == 3 and parts[0]:
            items.append((parts[0], parts[1], parts[2].split()))
    return items


_EVIDENCE = re.compile(r"^Evidence:\s*$", re.M)


def _body(repo: Repo, sha: str) -> tuple[str, list[str]]:
    """The rationale (body before `Evidence:`) and the evidence lines of a commit message."""
    message = run_git(repo, "log", "-1", "--format=%B", sha)
    paragraphs = message.strip().split("\n\n")
    body = "\n\n".join(paragraphs[1:])
    m = _EVIDENCE.search(body)
    rationale = body[: m.start()].strip() if m else ""
    evidence: list[str] = []
    if m:
        block = body[m.end() :].split("\n\n")[0]
        evidence = [line[2:].strip() for line in block.splitlines() if line.startswith("- ")]
    return rationale, evidence


def _tool_files(
    repo: Repo, config: Config, sha: str, parent: str | None, merge: bool = False
) -> list[str]:
    """The workspace's tool files `sha` changes (workspace-relative).

    A merge's are those its result changes against every parent (`--cc`: a
    conflict resolved by new code, an "evil" merge): what its sides brought is
    reviewed with their own commits, but a regression made while merging was
    in no commit of the range, and the report said none was found.
    """
    from funcforge.toolset.toolset import matches_tools

    prefix = workspace_prefix(repo, config)
    if merge:
        args = ["diff-tree", "--cc", "--name-only", "-z", "--no-commit-id", sha]
    elif parent:
        args = ["diff", "--name-only", "--no-renames", "-z", parent, sha]
    else:
        args = ["show", "--name-only", "-z", "--format=", sha]
    # NUL-separated, as git wrote them: a path with a space was split in two, and one
    # with non-ASCII letters came quoted ("agents/caf\303\251/..."), so a workspace in
    # such a folder had no commit touching its tools and a regression passed unseen.
    names = [n.strip("\n") for n in run_git(repo, *args, "--").split("\0") if n.strip("\n")]
    return [
        n[len(prefix) :]
        for n in names
        if n.startswith(prefix) and matches_tools(config, n[len(prefix) :])
    ]


def _check(config: Config, store: Any, sha: str, parent: str) -> tuple[list[Finding], list[str]]:
    """What `funcforge check --base PARENT --head SHA` finds."""
    from funcforge.optimizer.handcheck import check_hand_edits
    from funcforge.review.refs import toolset_at

    toolset = toolset_at(config, sha)
    result = check_hand_edits(config, toolset, store, None, base=parent)
    return findings_of(result, toolset), [name for name, _ in result.changed]


def build_review(config: Config, rng: str | None = None, execute: bool = True) -> Review:
    """Review the commits of `rng` (default: see `default_range`)."""
    from funcforge.history.git import open_repo
    from funcforge.traces.store import TraceStore

    store = TraceStore(config)
    store.refresh()
    with open_repo(config) as repo:
        rng = _check_range(repo, rng or default_range(repo))  # `main` is shown as main..HEAD
        commits = _commits(repo, rng)
        table: VersionTable = load_version_table(
            config, repo, store.version_stats("learnable"), store.version_stats("held_out")
        )
        ours = {c.sha: c for c in funcforge_commits(repo, folder=workspace_prefix(repo, config))}
        reverted_by = {r: c.sha for c in ours.values() for r in c.reverts}
        reviewed: list[ReviewedCommit] = []
        other: list[tuple[str, str]] = []
        for sha, subject, parents in commits:
            parent = parents[0] if parents else None
            merge = len(parents) > 1
            files = _tool_files(repo, config, sha, parent, merge)
            ff: FuncforgeCommit | None = ours.get(sha)
            if not files and ff is None:
                if not merge:  # a merge that only joins its sides adds nothing to review
                    other.append((sha, subject))
                continue
            stat = run_git(repo, "show", "--stat=100", "--format=", sha, "--").strip()
            item = ReviewedCommit(
                sha,
                subject,
                ("merge" if merge else "hand edit")
                if ff is None
                else ("optimizer" if ff.kind == "proposal" else "rollback"),
                stat,
                files,
                reverted_by=reverted_by.get(sha),
            )
            item.new = Score.of(sha[:7], table.commits.get(sha))
            if parent:
                item.base = Score.of(parent[:7], table.commits.get(parent))
            if ff is not None:
                item.actions, item.model, item.step = ff.actions, ff.model, ff.step
                item.proposal = ff.proposal
                item.rollback_to, item.reverts = ff.rollback_to, ff.reverts
                if ff.base_score is not None:
                    item.base_trailer = format_score(ff.base_score, ff.base_n or 0)
                item.rationale, item.evidence = _body(repo, sha)
            if execute and files and parent:
                item.findings, item.checked = _check(config, store, sha, parent)
                item.ran_check = True
            elif files:
                item.unchecked = "--no-execute" if not execute else "a root commit: no parent"
            item.functions = item.checked or [a.split(" ", 1)[-1] for a in item.actions]
            reviewed.append(item)
    return Review(rng, reviewed, other, executed=execute)


# ---------------------------------------------------------------- Markdown


def _cell(text: object) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _verdict_line(c: ReviewedCommit) -> str:
    if not c.files:
        return "no tool change"
    if not c.ran_check:
        return f"not checked ({c.unchecked or '--no-execute'})"
    bad = [f for f in c.findings if f.level == "error"]
    if bad:
        return "**regression**: " + "; ".join(f.message for f in bad)
    fixes = [f for f in c.findings if f.kind == "verified_fix"]
    if fixes:
        return "ok: " + "; ".join(f.message for f in fixes)
    return "ok: no logged call changed for the worse"


def _where_regressed(review: Review) -> str:
    """Which commits regressed, and which of them a later roll-back undid.

    A training branch often holds a step that regressed and its roll-back: the
    reader should see at once that it is undone, not only "regressions found".
    """
    bad = [c for c in review.commits if c.has_regression]
    undone = [c for c in bad if c.reverted_by]
    parts = [
        f"`{c.short}`" + (f" (rolled back by `{c.reverted_by[:7]}`)" if c.reverted_by else "")
        for c in bad
    ]
    text = " in " + ", ".join(parts)
    if len(undone) == len(bad):
        text += "; all rolled back since"
    return text


def render_markdown(review: Review) -> str:
    """The report as GitHub-flavoured Markdown (for a PR description or a CI comment)."""
    lines = [f"## funcforge review: `{review.range}`", ""]
    if not review.commits:
        lines.append("No commit in this range changes tool files.")
        return "\n".join(lines) + "\n"
    status = (
        "⚠️ regressions found" + _where_regressed(review)
        if review.has_regression
        else "no regression found"
        if review.executed
        else "replay checks not run (--no-execute)"
    )
    lines.append(
        f"{len(review.commits)} commit(s) change tool files: {status}. Scores are mean task "
        "scores of the **train** split with the number of scored traces; the **test** split "
        "is shown where it ran and is never used to decide."
    )
    lines += [
        "",
        "| commit | kind | change | base | new version | replay check |",
        "|---|---|---|---|---|---|",
    ]
    for c in review.commits:
        change = (
            ", ".join(c.actions) or ", ".join(f"`{f}`" for f in c.functions) or ", ".join(c.files)
        )
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{c.short}`",
                    c.kind + (f" (step {c.step})" if c.step is not None else ""),
                    change,
                    c.base.text() if c.base else "-",
                    c.new.text() if c.new else "-",
                    _verdict_line(c),
                )
            )
            + " |"
        )
    for c in review.commits:
        lines += ["", f"### `{c.short}` {c.subject}", ""]
        if c.kind == "rollback":
            lines.append(
                f"Roll-back to `{(c.rollback_to or '?')[:7]}`, reverting "
                + ", ".join(f"`{s[:7]}`" for s in c.reverts)
                + "."
            )
        if c.functions:
            lines.append("- **Functions:** " + ", ".join(f"`{f}`" for f in c.functions))
        if c.actions:
            lines.append("- **Actions:** " + ", ".join(c.actions))
        if c.model:
            lines.append(f"- **Answered by:** {c.model}")
        if c.reverted_by:
            lines.append(f"- **Rolled back later** by `{c.reverted_by[:7]}`.")
        lines.append("")
        lines += ["```", c.diffstat or "(no diff)", "```", ""]
        if c.rationale:
            # the commit message wraps prose at 72 columns; a quote block reads better unwrapped
            paragraphs = [" ".join(p.split()) for p in c.rationale.split("\n\n") if p.strip()]
            lines += ["**Rationale:**", ""]
            lines += [*[x for p in paragraphs for x in (f"> {p}", ">")][:-1], ""]
        if c.evidence:
            lines += ["**Evidence at commit time:**", ""] + [f"- {e}" for e in c.evidence] + [""]
        base = c.base.text() if c.base else "-"
        trailer = f" (the commit says {c.base_trailer})" if c.base_trailer else ""
        lines.append(
            f"**Scores:** base `{c.base.version if c.base else '-'}` {base}{trailer} → "
            f"this version {c.new.text() if c.new else '-'}"
        )
        lines.append("")
        what = (
            "Replay check"
            if c.kind not in ("hand edit", "merge")
            else "`funcforge check` on this edit"
        )
        lines.append(f"**{what}:** {_verdict_line(c)}")
        shown = [f for f in c.findings if f.calls or f.kind in ("broken", "removed")]
        if shown:
            lines += ["", "<details><summary>The calls that prove it</summary>", ""]
            lines += ["| verdict | call: before → now | logged at |", "|---|---|---|"]
            for f in shown:
                if not f.calls:
                    lines.append(
                        f"| {_cell(f.kind)} | {_cell(f.message)} | {_cell(f.file or '')} |"
                    )
                for i, call in enumerate(f.calls[:MAX_CALLS]):
                    # each call's own trace lines (not the first of the function's)
                    refs = ", ".join(f.call_refs[i][:3]) if i < len(f.call_refs) else ""
                    lines.append(f"| {_cell(f.kind)} | {_cell(call)} | {_cell(refs)} |")
            lines += ["", "</details>"]
    if review.other:
        lines += [
            "",
            f"<sub>{len(review.other)} other commit(s) in the range do not touch tool files.</sub>",
        ]
    return "\n".join(lines) + "\n"
