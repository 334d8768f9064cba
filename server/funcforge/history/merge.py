"""Carry one change (base -> theirs) onto another text (ours), line by line.

Apply commits only a proposal's own lines: it carries the proposal's hunks
(the text it was planned on -> the proposed text) onto HEAD's version of the
file, onto the staged version, onto the file on disk and onto the editor's
buffer, each of which may hold the user's other edits. A hunk whose lines the
user changed too is a conflict (None), never a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass(frozen=True)
class Hunk:
    """Base lines [start, end) replaced by `lines` (start == end: an insertion)."""

    start: int
    end: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Conflict:
    """Where the change met the user's edits: 1-based base lines."""

    first_line: int
    last_line: int


def hunks(base: list[str], other: list[str]) -> list[Hunk]:
    """The changes that turn `base` into `other` (difflib opcodes without the equal runs)."""
    matcher = SequenceMatcher(None, base, other, autojunk=False)
    return [
        Hunk(i1, i2, tuple(other[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def _clash(a: Hunk, b: Hunk) -> bool:
    """Do two hunks on the same base touch the same lines (identical hunks do not clash)?"""
    if a == b:
        return False
    if a.start == a.end and b.start == b.end:
        return a.start == b.start  # two different insertions at one place: order unknown
    if a.start == a.end:
        return b.start < a.start < b.end
    if b.start == b.end:
        return a.start < b.start < a.end
    return max(a.start, b.start) < min(a.end, b.end)


def carry_lines(ours: str, base: str, theirs: str) -> str | Conflict:
    """`ours` with the change base -> theirs applied, or the first conflict.

    A hunk ours already holds (the same lines at the same place) is taken once.
    """
    if ours == base:
        return theirs
    if base == theirs:
        return ours
    b = base.splitlines(keepends=True)
    mine = hunks(b, ours.splitlines(keepends=True))
    change = hunks(b, theirs.splitlines(keepends=True))
    for h in change:
        for m in mine:
            if _clash(h, m):
                lo = min(h.start, m.start)
                return Conflict(lo + 1, max(h.end, m.end, lo + 1))
    merged = sorted(set(mine) | set(change), key=lambda h: (h.start, h.end))
    out: list[str] = []
    pos = 0
    for h in merged:
        out.extend(b[pos : h.start])
        out.extend(h.lines)
        pos = h.end
    out.extend(b[pos:])
    return "".join(out)
