"""Per-tool evidence as text: diagnostic messages, code-lens titles, hover Markdown.

Pure functions over the trace store's statistics, so the wording is tested
without a client.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from funcforge.lsp.provenance import Provenance
from funcforge.optimizer.proposal import Proposal


def _top_message(stats: Any, error_type: str) -> str | None:
    """The most common message logged for `error_type`, short."""
    msgs = Counter(
        (m or "").strip() for _, t, m in getattr(stats, "recent_errors", []) if t == error_type
    )
    msgs.pop("", None)
    if not msgs:
        return None
    text = msgs.most_common(1)[0][0]
    return text if len(text) <= 40 else text[:37] + "..."


def failure_summary(stats: Any) -> str:
    """'12 of 40 logged calls failed: KeyError 'mile' (9), ValueError (3)'."""
    parts = []
    for etype, count in stats.error_types.most_common(4):
        msg = _top_message(stats, etype)
        parts.append(f"{etype} {msg} ({count})" if msg else f"{etype} ({count})")
    more = len(stats.error_types) - 4
    tail = f", and {more} more" if more > 0 else ""
    return f"{stats.errors} of {stats.calls} logged calls failed: {', '.join(parts)}{tail}"


def failure_message(stats: Any, origin: Provenance | None) -> str:
    """The failing-calls diagnostic: where the failures were logged, and whether that is history.

    '31% errors on a1b2c3 (before your change): 12 of 40 logged calls failed: ...'
    or '12 of 40 logged calls failed on a1b2c3: KeyError ...'.
    """
    summary = failure_summary(stats)
    if origin is None:
        return summary
    where = origin.shown
    if origin.versions > 1:
        more = origin.versions - 1
        where += f" and {more} earlier version{'s' if more > 1 else ''}"
    if origin.before_change:
        if origin.calls and origin.calls != stats.calls:
            # The rate is of that version's calls, the summary of every version's: say both
            # ('31% errors on X: 4 of 51 logged calls failed' read as a wrong sum).
            head, _, rest = summary.partition(": ")
            there = f"{origin.errors} of {origin.calls} on {origin.shown}"
            summary = f"{head} ({there}): {rest}" if rest else f"{head} ({there})"
        return f"{origin.rate:.0%} errors on {where} (before your change): {summary}"
    head, _, rest = summary.partition(": ")
    return f"{head} on {where}: {rest}" if rest else f"{head} on {where}"


def error_rate(stats: Any) -> float:
    return stats.errors / stats.calls if stats.calls else 0.0


def lens_title(stats: Any | None) -> str:
    """'40 calls · 30% errors · pass 62%' (or 'no logged calls')."""
    if stats is None or not stats.calls:
        return "no logged calls"
    parts = [f"{stats.calls} calls", f"{error_rate(stats):.0%} errors"]
    if stats.pass_rate is not None:
        parts.append(f"pass {stats.pass_rate:.0%}")
    return " · ".join(parts)


def replay_title(proposal: Proposal) -> str:
    """The evidence part of an action title, leading with verified numbers."""
    replay = proposal.replay or {}
    summary = replay.get("summary")
    ran = isinstance(replay.get("functions"), dict)  # a check that ran reports per function
    if summary and ran:
        return str(summary)
    ev = [e for e in proposal.evidence.values() if isinstance(e, dict)]
    errors = sum(int(e.get("errors", 0)) for e in ev)
    if errors:
        return f"addresses {errors} failing logged calls; not replay-checked"
    return "not replay-checked"


def proposal_is_safe(proposal: Proposal) -> bool:
    """False when the replay check found a regression against an expected value."""
    replay = proposal.replay or {}
    return not replay.get("has_expected_regression", False)


def _origin_line(origin: Provenance | None) -> str | None:
    if origin is None:
        return None
    more = f" (and {origin.versions - 1} earlier)" if origin.versions > 1 else ""
    if origin.before_change:
        return (
            f"Failures logged on {origin.shown}{more}, before your change: "
            "history, not the current code."
        )
    return f"Failures logged on {origin.shown}{more}."


def _excerpt(msg: str | None) -> str:
    excerpt = (msg or "").strip().replace("`", "'")
    return excerpt if len(excerpt) <= 120 else excerpt[:117] + "..."


def _tasks(stats: Any) -> int:
    return stats.tasks if isinstance(stats.tasks, int) else len(stats.tasks)


SPLIT_NOTE = (
    "Counted on every trace, test split included (reported only: "
    "optimizing reads the other splits)."
)


def hover_markdown(
    name: str, stats: Any | None, proposals: list[Proposal], origin: Provenance | None = None
) -> str:
    """Statistics and the latest error excerpts of one tool, in Markdown."""
    lines = [f"**funcforge** · `{name}`", ""]
    if stats is None or not stats.calls:
        lines.append("No logged calls of this function yet.")
    else:
        lines += [
            "| calls | errors | error rate | traces | tasks | pass rate |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {stats.calls} | {stats.errors} | {error_rate(stats):.0%} | {stats.traces} | "
            f"{_tasks(stats)} | "
            f"{'-' if stats.pass_rate is None else f'{stats.pass_rate:.0%}'} |",
            "",
            f"*{SPLIT_NOTE}*",
        ]
        if (line := _origin_line(origin)) and stats.errors:
            lines += ["", f"*{line}*"]
        if stats.error_types:
            lines += [
                "",
                "**Errors:** "
                + ", ".join(f"{t} ({n})" for t, n in stats.error_types.most_common(5)),
            ]
        recent = list(getattr(stats, "recent_errors", []))[-3:]
        if recent:
            lines += ["", "**Latest errors:**", ""]
            for ref, etype, msg in reversed(recent):
                lines.append(f"- `{etype}: {_excerpt(msg)}` — {ref}")
    for p in proposals:
        lines += ["", f"**Proposal {p.id}:** {p.title} — {replay_title(p)}"]
    return "\n".join(lines)


def hover_plaintext(
    name: str, stats: Any | None, proposals: list[Proposal], origin: Provenance | None = None
) -> str:
    """The same as `hover_markdown`, for clients that render only plain text (no table syntax)."""
    lines = [f"funcforge: {name}", ""]
    if stats is None or not stats.calls:
        lines.append("No logged calls of this function yet.")
    else:
        pass_rate = "-" if stats.pass_rate is None else f"{stats.pass_rate:.0%}"
        lines.append(
            f"{stats.calls} calls, {stats.errors} errors ({error_rate(stats):.0%}), "
            f"{stats.traces} traces, {_tasks(stats)} tasks, pass rate {pass_rate}"
        )
        lines.append(SPLIT_NOTE)
        if (line := _origin_line(origin)) and stats.errors:
            lines.append(line)
        if stats.error_types:
            lines.append(
                "Errors: " + ", ".join(f"{t} ({n})" for t, n in stats.error_types.most_common(5))
            )
        recent = list(getattr(stats, "recent_errors", []))[-3:]
        if recent:
            lines += ["", "Latest errors:"]
            for ref, etype, msg in reversed(recent):
                lines.append(f"  {etype}: {_excerpt(msg)} ({ref})")
    for p in proposals:
        lines += ["", f"Proposal {p.id}: {p.title} ({replay_title(p)})"]
    return "\n".join(lines)
