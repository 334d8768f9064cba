"""`funcforge check`'s result as findings: one per function and verdict, with its location.

The same list feeds the text, JSON, SARIF and JUnit outputs and the review
report, so they cannot disagree. A finding's `level` follows SARIF:
`error` (a regression: the command exits 1), `warning`, `note`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from funcforge.optimizer.handcheck import HandCheck
from funcforge.toolset.toolset import Toolset

# verdict -> (rule id, level, what it means)
RULES: dict[str, tuple[str, str, str]] = {
    "regression": (
        "funcforge/regression",
        "error",
        "a logged call, pin or doctest that passed with the base version fails or "
        "answers differently now",
    ),
    "signature_mismatch": (
        "funcforge/signature-mismatch",
        "error",
        "logged calls no longer fit the function's parameters",
    ),
    "broken": (
        "funcforge/tool-file-broken",
        "error",
        "a tool file no longer decodes or parses, so its tools cannot load",
    ),
    "still_failing": (
        "funcforge/still-failing",
        "warning",
        "logged calls that failed with the base version still fail",
    ),
    "removed": (
        "funcforge/removed",
        "warning",
        "a tool function that the base version had is gone",
    ),
    "verified_fix": (
        "funcforge/verified-fix",
        "note",
        "failing logged calls now give the expected result",
    ),
}
SHOWN = ("regression", "signature_mismatch", "still_failing", "verified_fix")


@dataclass
class Finding:
    """One function's calls with one verdict (or a broken file, or a removed function)."""

    kind: str  # a key of RULES
    function: str | None
    file: str | None  # workspace-relative
    line: int  # 1-based; 1 when unknown
    message: str
    calls: list[str] = field(default_factory=list)  # `f(x=1) -> old | new` texts
    refs: list[str] = field(default_factory=list)  # trace file:line where the calls were logged
    call_refs: list[list[str]] = field(default_factory=list)  # per call in `calls`: its refs

    @property
    def rule(self) -> str:
        return RULES[self.kind][0]

    @property
    def level(self) -> str:
        return RULES[self.kind][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "level": self.level,
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "calls": self.calls,
            "refs": self.refs,
            "call_refs": self.call_refs,
        }


def _call_line(entry: Any) -> str:
    old = entry.old.short(60) if entry.old else "-"
    text = f"{entry.call_text()}: before {old}, now {entry.new.short(60)}"
    if entry.expected_source:
        text += f" (expected {entry.expected}, from {entry.expected_source})"
    return text


def findings_of(check: HandCheck, toolset: Toolset) -> list[Finding]:
    """Findings from a hand-edit check, in the order: broken files, functions, removals."""
    out: list[Finding] = []
    for problem in check.broken:
        out.append(
            Finding("broken", None, problem.file, max(1, problem.line), f"{problem}", [], [])
        )
    for report in check.reports:
        spec = toolset.functions.get(report.function)
        loc = spec.location if spec else None
        line = (loc.name_line or loc.start_line) if loc else 1
        by_verdict: dict[str, list[Any]] = {}
        for e in report.entries:
            by_verdict.setdefault(e.verdict, []).append(e)
        for verdict in SHOWN:
            entries = by_verdict.get(verdict, [])
            if not entries:
                continue
            k, count = len(entries), sum(e.count for e in entries)
            times = f" (logged {count} times)" if count != k else ""
            message = {
                "regression": f"`{report.function}`: {k} call(s) that passed before fail or "
                "answer differently now",
                "signature_mismatch": f"`{report.function}`: {k} call(s) no longer fit its "
                "parameters",
                "still_failing": f"`{report.function}`: {k} call(s) still fail",
                "verified_fix": f"`{report.function}`: fixes {k} failing call(s)",
            }[verdict] + times
            refs = [r for e in entries for r in e.refs][:10]
            out.append(
                Finding(
                    verdict,
                    report.function,
                    loc.file if loc else None,
                    line,
                    message + f" ({report.summary})",
                    [_call_line(e) for e in entries[:10]],
                    refs,
                    [list(e.refs) for e in entries[:10]],
                )
            )
    for name in check.removed:
        out.append(
            Finding(
                "removed",
                name,
                check.removed_from.get(name),
                1,
                f"`{name}` was removed; agents that call it will fail",
            )
        )
    return out


def failed(findings: Sequence[Finding]) -> bool:
    return any(f.level == "error" for f in findings)
