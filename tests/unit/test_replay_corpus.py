"""The replay check on a corpus of buggy tools: correct fixes accepted, wrong fixes flagged.

Each case in tests/corpus/ has a buggy tool, logged calls, a correct fix, a
fix that turns errors into wrong values and one that breaks calls that used
to work (see tests/corpus/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funcforge.optimizer.expectations import doctest_expectations, load_pins
from funcforge.optimizer.replay import ReplayReport, check_calls, loads_calls

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def _check(case: str, version: str, *, with_expectations: bool = True) -> ReplayReport:
    folder = CORPUS / case
    meta = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    function = meta["function"]
    calls, _, problems = loads_calls((folder / "calls.jsonl").read_text(encoding="utf-8"), "calls")
    assert not problems
    old = (folder / "buggy.py").read_text(encoding="utf-8")
    new = (folder / f"{version}.py").read_text(encoding="utf-8")
    if not with_expectations:
        for call in calls:
            call.passed, call.has_expected, call.expected = None, False, None
        return check_calls(function, old, new, calls, [])
    pins, pin_problems = load_pins(folder / "pins.jsonl")
    docs, doc_problems = doctest_expectations(old, function, "buggy.py")
    assert not pin_problems and not doc_problems
    return check_calls(function, old, new, calls, [*pins, *docs])


def _expected_totals(case: str, version: str) -> dict[str, int]:
    meta = json.loads((CORPUS / case / "case.json").read_text(encoding="utf-8"))
    return meta["verdicts"][version]


def test_the_corpus_has_at_least_five_cases_with_all_versions():
    assert len(CASES) >= 5
    for case in CASES:
        names = {p.name for p in (CORPUS / case).iterdir()}
        assert {"buggy.py", "fix.py", "wrong_values.py", "wrong_breaks.py"} <= names
        assert {"calls.jsonl", "case.json"} <= names


@pytest.mark.parametrize("case", CASES)
def test_correct_fix_is_accepted(case: str):
    report = _check(case, "fix")
    assert {k: v for k, v in report.totals.items() if v} == _expected_totals(case, "fix")
    assert not report.has_regression
    assert report.totals["verified_fix"] >= 1
    for e in report.entries:
        if e.old is not None and not e.old.ok and e.expected_source is None:
            assert e.verdict == "unverified_change", e


@pytest.mark.parametrize("case", CASES)
def test_fix_that_turns_errors_into_wrong_values_is_flagged(case: str):
    report = _check(case, "wrong_values")
    assert {k: v for k, v in report.totals.items() if v} == _expected_totals(case, "wrong_values")
    assert report.has_expected_regression
    flagged = [
        e
        for e in report.entries
        if e.verdict == "regression" and e.old is not None and not e.old.ok and e.new.ok
    ]
    assert flagged and all(e.expected_source is not None for e in flagged)
    assert report.totals["verified_fix"] < _check(case, "fix").totals["verified_fix"]


@pytest.mark.parametrize("case", CASES)
def test_fix_that_breaks_working_calls_is_flagged(case: str):
    report = _check(case, "wrong_breaks")
    assert {k: v for k, v in report.totals.items() if v} == _expected_totals(case, "wrong_breaks")
    assert report.has_expected_regression
    broken = [
        e
        for e in report.entries
        if e.verdict in ("regression", "signature_mismatch") and e.old is not None and e.old.ok
    ]
    assert broken


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", ["fix", "wrong_values"])
def test_without_expected_values_changes_are_unverified(case: str, version: str):
    report = _check(case, version, with_expectations=False)
    assert report.totals["verified_fix"] == 0
    assert not report.has_expected_regression
    raised_then_returns = [e for e in report.entries if not e.old.ok and e.new.ok]  # type: ignore[union-attr]
    assert raised_then_returns
    assert all(e.verdict == "unverified_change" for e in raised_then_returns)
    assert "unverified" in report.summary
