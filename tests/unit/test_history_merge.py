"""carry_lines: a proposal's hunks carried onto text holding the user's other edits."""

from __future__ import annotations

from funcforge.history.merge import Conflict, carry_lines

BASE = "a\nb\nc\nd\ne\n"
FIX = "a\nB\nc\nd\ne\n"  # the proposal changes line 2


def test_the_change_lands_beside_edits_elsewhere() -> None:
    assert carry_lines("a\nb\nc\nd\nE\n", BASE, FIX) == "a\nB\nc\nd\nE\n"
    assert carry_lines("top\na\nb\nc\nd\ne\n", BASE, FIX) == "top\na\nB\nc\nd\ne\n"
    assert carry_lines("a\nb\nc\n", BASE, FIX) == "a\nB\nc\n"  # the user deleted d, e


def test_a_change_already_there_is_taken_once() -> None:
    assert carry_lines(FIX, BASE, FIX) == FIX
    assert carry_lines("a\nB\nc\nd\nE\n", BASE, FIX) == "a\nB\nc\nd\nE\n"


def test_the_same_lines_changed_differently_conflict() -> None:
    assert carry_lines("a\nX\nc\nd\ne\n", BASE, FIX) == Conflict(2, 2)
    assert isinstance(carry_lines("a\nb\nnew\nc\nd\ne\n", BASE, "a\nb\nother\nc\nd\ne\n"), Conflict)
    # an insertion inside the lines the proposal replaces
    assert isinstance(carry_lines("a\nb\nc\nnew\nd\ne\n", BASE, "a\nX\n\ne\n"), Conflict)


def test_trivial_cases() -> None:
    assert carry_lines(BASE, BASE, FIX) == FIX
    assert carry_lines("mine\n", BASE, BASE) == "mine\n"
    assert carry_lines("", "", "new\n") == "new\n"
