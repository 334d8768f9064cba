"""The replay check's verdicts: expectations, flaky calls, signature mismatches, repr comparison."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.config import load_config
from funcforge.optimizer.expectations import (
    Expectation,
    add_pin,
    answer_in,
    doctest_expectations,
    load_pins,
    orphan_problems,
    pins_path,
    task_expectations,
)
from funcforge.optimizer.replay import LoggedCall, check_calls, format_summary, loads_calls
from funcforge.traces.model import Outcome, Task, ToolCall, Trace

HALF = "def half(x):\n    return x / 2\n"


def _verdicts(report) -> list[str]:
    return [e.verdict for e in report.entries]


def test_fix_verified_against_a_given_expected_value():
    old = "def inv(x):\n    return 1 / x\n"
    new = "def inv(x):\n    return 0.0 if x == 0 else 1 / x\n"
    calls = [{"args": {"x": 0}, "error": "ZeroDivisionError: division by zero", "expected": 0}]
    report = check_calls("inv", old, new, calls)
    (entry,) = report.entries
    assert entry.verdict == "verified_fix" and entry.expected_source == "given"
    assert entry.old is not None and entry.old.error_type == "ZeroDivisionError"
    assert report.summary == "fixes 1 failing call (verified); 0 regressions (1 call)"
    assert not report.has_regression


def test_nothing_to_compare_with_is_unverified():
    old = "def inv(x):\n    return 1 / x\n"
    new = "def inv(x):\n    return 0.0 if x == 0 else 1 / x\n"
    report = check_calls("inv", old, new, [{"args": {"x": 0}, "error": "ZeroDivisionError"}])
    assert _verdicts(report) == ["unverified_change"]
    assert report.to_dict()["fixed"] == 1


def test_judge_normalisation_matches_fractions_and_decimals():
    old = "def q(a, b):\n    raise ValueError('no')\n"
    new = "def q(a, b):\n    return a / b\n"
    report = check_calls(
        "q", old, new, [{"args": {"a": 7, "b": 8}, "error": "x", "expected": "7/8"}]
    )
    assert _verdicts(report) == ["verified_fix"]
    wrong = "def q(a, b):\n    return b / a\n"
    report = check_calls(
        "q", old, wrong, [{"args": {"a": 7, "b": 8}, "error": "x", "expected": "7/8"}]
    )
    assert _verdicts(report) == ["regression"]
    assert report.has_expected_regression
    assert "wrong value where it used to raise" in report.entries[0].note


def test_passing_runs_are_a_baseline_and_failing_runs_are_not():
    old = HALF
    new = "def half(x):\n    return x // 2\n"
    calls = [
        {"args": {"x": 5}, "result": "2.5", "passed": True},
        {"args": {"x": 7}, "result": "3.5", "passed": False},
    ]
    report = check_calls("half", old, new, calls)
    by_x = {e.args["x"]: e for e in report.entries}
    assert by_x[5].verdict == "regression" and by_x[5].expected_source == "baseline"
    assert by_x[7].verdict == "unverified_change" and by_x[7].expected_source is None
    assert report.has_expected_regression
    assert (
        report.summary == "changes 1 call (unverified: no expected result); 1 regression (2 calls)"
    )


def test_a_stale_baseline_is_not_used():
    calls = [{"args": {"x": 4}, "result": "999", "passed": True}]
    report = check_calls("half", HALF, "def half(x):\n    return x * 0.5 + 1\n", calls)
    (entry,) = report.entries
    assert entry.verdict == "unverified_change"
    assert "no baseline" in entry.note


def test_now_raising_where_it_returned_is_a_regression_even_without_expectations():
    report = check_calls(
        "half", HALF, "def half(x):\n    raise RuntimeError('x')\n", [{"args": {"x": 2}}]
    )
    assert (
        _verdicts(report) == ["regression"] and "now raises RuntimeError" in report.entries[0].note
    )
    assert report.has_regression and not report.has_expected_regression


def test_still_failing_and_unchanged():
    old = "def f(x):\n    return {'a': 1}[x]\n"
    new = "def f(x):\n    return {'a': 1, 'b': 2}[x]\n"
    calls = [{"args": {"x": "c"}, "error": "KeyError: 'c'"}, {"args": {"x": "a"}, "result": 1}]
    report = check_calls("f", old, new, calls)
    assert _verdicts(report) == ["still_failing", "unchanged"]


def test_arguments_that_no_longer_fit_are_a_signature_mismatch():
    new = "def half(value):\n    return value / 2\n"
    report = check_calls("half", HALF, new, [{"args": {"x": 4}, "result": "2.0", "passed": True}])
    (entry,) = report.entries
    assert entry.verdict == "signature_mismatch"
    assert "no longer fit" in entry.note and "x" in entry.note
    assert report.has_regression and report.has_expected_regression
    assert "incl. 1 signature mismatch" in report.summary
    # Arguments that never fitted stay a failure, not a new mismatch.
    report = check_calls("half", HALF, new, [{"args": {"y": 1}}])
    assert _verdicts(report) == ["still_failing"]


def test_a_call_that_differs_from_itself_is_flaky_and_left_out():
    old = "import random\n\ndef roll(n):\n    return random.random() * n\n"
    new = "import random\n\ndef roll(n):\n    return random.randint(1, n) * 0\n"
    report = check_calls("roll", old, new, [{"args": {"n": 6}, "result": "3", "passed": True}])
    assert _verdicts(report) == ["flaky"] and "old code gave two results" in report.entries[0].note
    assert not report.has_regression
    assert report.summary.endswith("; 1 flaky (1 call)")
    counter = "N = [0]\n\ndef tick():\n    N[0] += 1\n    return N[0]\n"
    report = check_calls("tick", "def tick():\n    return 1\n", counter, [{"args": {}}])
    assert _verdicts(report) == ["flaky"] and "new code" in report.entries[0].note


def test_results_that_are_not_json_are_compared_through_repr():
    old = "def s(n):\n    return set(range(n))\n"
    same = "def s(n):\n    return {i for i in range(n)}\n"
    other = "def s(n):\n    return set(range(n + 1))\n"
    calls = [{"args": {"n": 3}, "result": "{0, 1, 2}", "passed": True}]
    report = check_calls("s", old, same, calls)
    assert _verdicts(report) == ["unchanged"]
    assert "compared through repr" in report.entries[0].note
    assert report.entries[0].to_dict()["new"]["repr"] == "{0, 1, 2}"
    report = check_calls("s", old, other, calls)
    assert _verdicts(report) == ["regression"] and "repr" in report.entries[0].note


def test_timeouts_are_regressions_and_stop_after_three():
    loop = "def half(x):\n    while True:\n        pass\n"
    calls = [{"args": {"x": i}, "result": str(i / 2), "passed": True} for i in range(5)]
    report = check_calls("half", HALF, loop, calls, timeout=0.5)
    assert _verdicts(report) == ["regression"] * 5
    assert all(e.new.timed_out for e in report.entries)
    assert "not run: 3 earlier calls timed out" in (report.entries[4].new.error_message or "")


def test_budget_keeps_calls_with_expectations_first():
    calls = [{"args": {"x": i}, "result": str(i / 2)} for i in range(10)]
    calls.append({"args": {"x": 100}, "result": "50.0", "expected": 50})
    report = check_calls("half", HALF, HALF, calls, budget=3)
    assert len(report.entries) == 3 and report.skipped == 8
    assert report.entries[0].args == {"x": 100} and report.entries[0].expected_source == "given"
    assert report.summary.endswith("(3 of 11 calls)")


def test_duplicate_calls_are_merged_and_conflicting_expectations_cancel():
    calls = [
        {"args": {"x": 2}, "result": "1.0", "expected": 1},
        {"args": {"x": 2}, "result": "1.0", "expected": 7},
    ]
    report = check_calls("half", HALF, HALF, calls)
    (entry,) = report.entries
    assert entry.count == 2 and "conflicting given expectations ignored" in entry.note
    assert entry.verdict == "unchanged"


def test_pins_override_other_sources_and_can_add_calls():
    pins = [
        Expectation("half", "pin", args={"x": 2}, expected=5, has_value=True, where="p:1"),
        Expectation("half", "pin", args={"x": "a"}, expected_error="TypeError", where="p:2"),
        Expectation("other", "pin", args={"x": 1}, expected=1, has_value=True),
    ]
    calls = [{"args": {"x": 2}, "result": "1.0", "passed": True}]
    report = check_calls("half", HALF, HALF, calls, pins)
    by_args = {json.dumps(e.args): e for e in report.entries}
    assert by_args['{"x": 2}'].verdict == "still_failing"
    assert by_args['{"x": 2}'].expected_source == "pin"
    assert by_args['{"x": "a"}'].verdict == "unchanged"
    assert len(report.entries) == 2


def test_doctests_are_expectations_and_a_new_function_gets_them_checked():
    new = 'def dbl(x):\n    """Twice x.\n\n    >>> dbl(2)\n    4\n    >>> dbl("a")\n    \'aa\'\n    """\n    return x * 2\n'
    docs, problems = doctest_expectations(new, "dbl", "tools/m.py")
    assert not problems and [d.where for d in docs] == ["tools/m.py:4", "tools/m.py:6"]
    report = check_calls("dbl", None, new, [], docs)
    assert _verdicts(report) == ["verified_fix", "verified_fix"]
    assert "new function" in report.entries[0].note
    broken = new.replace("return x * 2", "return x + x if isinstance(x, str) else x * 3")
    report = check_calls("dbl", new, broken, [], docs)
    assert _verdicts(report) == ["regression", "unchanged"]
    assert report.entries[0].expected_source == "doctest"


def test_doctest_setup_and_expected_exceptions():
    src = (
        "def inv(x):\n"
        '    """\n'
        "    >>> y = inv(4)\n"
        "    >>> y * 8\n"
        "    2.0\n"
        "    >>> inv(0)\n"
        "    Traceback (most recent call last):\n"
        "    ZeroDivisionError: division by zero\n"
        '    """\n'
        "    return 1 / x\n"
    )
    docs, problems = doctest_expectations(src, "inv", "t.py")
    assert not problems and docs[2].expected_error == "ZeroDivisionError"
    assert docs[1].setup == ["y = inv(4)\n"]
    quiet = src.replace("return 1 / x", "return 0 if x == 0 else 1 / x")
    report = check_calls("inv", src, quiet, [], docs)
    assert _verdicts(report) == ["unchanged", "unchanged", "regression"]


def test_doctests_that_do_not_parse_are_reported_with_file_and_line():
    src = 'def f(x):\n    """Doc.\n\n    >>>f(1)\n    1\n    """\n    return x\n'
    docs, problems = doctest_expectations(src, "f", "tools/f.py")
    assert docs == [] and len(problems) == 1
    assert str(problems[0]).startswith("tools/f.py:4: doctest of f cannot parse")
    src = 'def f(x):\n    """\n    >>> f(1\n    1\n    >>> f(2)\n    2\n    """\n    return x\n'
    docs, problems = doctest_expectations(src, "f", "tools/f.py")
    assert [d.example for d in docs] == ["f(2)\n"]
    assert str(problems[0]).startswith("tools/f.py:3: doctest example of f is not valid Python")


def test_task_expectation_goes_to_the_call_the_answer_came_from():
    calls = [
        ToolCall("c1", "evaluate", '{"e": "1/2"}', {"e": "1/2"}, result="0.5"),
        ToolCall("c2", "evaluate", '{"e": "3/4 + 1/8"}', {"e": "3/4 + 1/8"}, result="0.75"),
        ToolCall("c3", "lookup", "{}", {}, is_error=True, error_type="KeyError"),
    ]
    trace = Trace(
        id="t",
        task=Task("k", "What is 3/4 + 1/8?", expected="7/8"),
        messages=[{"role": "assistant", "content": "The answer is 0.75"}],
        tool_calls=calls,
        outcome=Outcome(score=0.0, passed=False),
    )
    assert task_expectations(trace) == {1: "7/8"}
    trace.messages = [{"role": "assistant", "content": "I could not do it"}]
    assert task_expectations(trace) == {}
    trace.task = Task("k", "q", expected=None)
    assert task_expectations(trace) == {}


def test_answer_containment_respects_token_boundaries():
    assert answer_in("The distance is 1.6093 km", "1.6093")
    assert answer_in("0.875", "7/8")
    assert not answer_in("12.5", "2")
    assert not answer_in("2.5", "2")
    assert answer_in("x = 2, y = 3", "2")


def test_pins_file_add_replace_load_and_orphans(git_repo: Path):
    config = load_config(git_repo)
    add_pin(config, "half", {"x": 2}, expected=1.0)
    add_pin(config, "half", {"x": 2}, expected=1)  # replaces
    add_pin(config, "gone", {"x": 1}, expected=None, expected_error="KeyError")
    path = pins_path(config)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("not json\n")
        fh.write('{"function": "half", "args": {"x": 1}}\n')
    pins, problems = load_pins(path, ".funcforge/expectations.jsonl")
    assert [(p.function, p.expected, p.expected_error) for p in pins] == [
        ("half", 1, None),
        ("gone", None, "KeyError"),
    ]
    assert str(problems[0]).startswith(".funcforge/expectations.jsonl:3: bad pin")
    assert "exactly one of 'expected' and 'expected_error'" in str(problems[1])
    orphans = orphan_problems(pins, ["half"])
    assert [str(o) for o in orphans] == [
        ".funcforge/expectations.jsonl:2: expectation for 'gone', which no longer exists"
    ]


def test_calls_file_parsing_reports_bad_lines(tmp_path: Path):
    text = "\n".join(
        [
            '{"args": {"x": 1}, "result": 0.5, "function": "half"}',
            "{broken",
            '{"result": 1}',
            '{"args": {"x": 2}, "error": {"type": "KeyError", "message": "x"}, "passed": false}',
        ]
    )
    calls, names, problems = loads_calls(text, "calls.jsonl")
    assert [c.args for c in calls] == [{"x": 1}, {"x": 2}]
    assert calls[0].result == "0.5" and calls[1].error_type == "KeyError"
    assert names == ["half", ""]
    assert [p.split(":")[1] for p in problems] == ["2", "3"]
    assert isinstance(calls[1], LoggedCall) and calls[1].passed is False


def test_format_summary_wording():
    assert format_summary({"verified_fix": 4, "unverified_change": 1}, 12, 12) == (
        "fixes 4 failing calls (verified), changes 1 call (unverified: no expected result); "
        "0 regressions (12 calls)"
    )
    # unverified changes are changes: never "fixes 0 ..." (issue 15)
    assert format_summary({"unverified_change": 4}, 4, 4) == (
        "changes 4 calls (unverified: no expected result); 0 regressions (4 calls)"
    )
    assert format_summary({"regression": 1, "signature_mismatch": 2}, 3, 5) == (
        "fixes no logged failure; 3 regressions incl. 2 signature mismatches (3 of 5 calls)"
    )


def test_replay_for_actions_uses_the_store_toolset_and_pins(tmp_path: Path):
    from funcforge.optimizer.replay import replay_for_actions
    from funcforge.toolset.action import Action
    from funcforge.toolset.toolset import load_toolset
    from funcforge.traces.store import TraceStore
    from tests.unit.test_check_cli import make_workspace

    root = make_workspace(tmp_path / "ws")
    config = load_config(root)
    toolset = load_toolset(config)
    store = TraceStore(config)
    store.refresh()
    add_pin(
        config, "convert_units", {"value": 1, "from_unit": "mile", "to_unit": "km"}, expected=1.6093
    )
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    words = 'def word_count(text: str) -> int:\n    """Words."""\n    return len(text.split())\n'
    units = (
        "def convert_units(value: float, from_unit: str, to_unit: str) -> float:\n"
        '    """Convert."""\n'
        "    table = dict(_TO_METERS, mile=1609.344)\n"
        "    return round(value * table[from_unit] / table[to_unit], 4)\n"
    )
    actions = [
        Action("revise_function", "word_count", "Words", schema, [], words),
        Action("revise_function", "convert_units", "Convert", {"type": "object"}, [], units),
        Action("remove_function", "untouched"),
    ]
    add_pin(config, "untouched", {"x": 1}, expected=1)
    replay = replay_for_actions(config, store, toolset, actions)
    assert replay["summary"] == "fixes 2 failing calls (verified); 0 regressions (6 calls)"
    assert replay["problems"] == [
        ".funcforge/expectations.jsonl:2: expectation for 'untouched', which no longer exists"
    ]
    assert not replay["has_expected_regression"] and not replay["has_regression"]
    by_name = replay["functions"]
    assert by_name["word_count"]["totals"]["verified_fix"] == 1
    assert by_name["untouched"] == {"function": "untouched", "removed": True, "logged_calls": 0}
    sources = {e["expected_source"] for e in by_name["convert_units"]["entries"]}
    assert sources == {"pin", "task", "doctest"}  # passing runs with an answer give "task"

    wrong = units.replace(
        "table = dict(_TO_METERS, mile=1609.344)", 'table = {"mile": 1609.344, "km": 1000.0}'
    )
    replay = replay_for_actions(
        config, store, toolset, [Action("revise_function", "convert_units", "C", {}, [], wrong)]
    )
    assert replay["has_expected_regression"]
    assert replay["summary"] == "fixes 1 failing call (verified); 3 regressions (4 calls)"
