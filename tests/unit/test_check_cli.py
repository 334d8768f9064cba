"""`funcforge replay-check`, `funcforge check` and `funcforge pin`, run as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import git, init_repo

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

TOOLS = '''"""Tools of a small agent."""

_TO_METERS = {"m": 1.0, "km": 1000.0, "ft": 0.3048}


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between units.

    >>> convert_units(2, "km", "m")
    2000.0
    """
    return round(value * _TO_METERS[from_unit] / _TO_METERS[to_unit], 4)


def word_count(text: str) -> int:
    """Number of words in a text."""
    return len(text.split(" "))


def untouched(x: int) -> int:
    """Not edited in the tests."""
    return x
'''


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funcforge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _trace(
    trace_id: str,
    tool: str,
    args: dict[str, Any],
    content: str,
    answer: str,
    expected: str,
    passed: bool,
    is_error: bool = False,
) -> dict[str, Any]:
    tool_msg: dict[str, Any] = {"role": "tool", "tool_call_id": "c1", "content": content}
    if is_error:
        tool_msg["is_error"] = True
    return {
        "id": trace_id,
        "task": {"id": f"task-{trace_id}", "input": "q", "expected": expected},
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": tool, "arguments": json.dumps(args)},
                    }
                ],
            },
            tool_msg,
            {"role": "assistant", "content": answer},
        ],
        "outcome": {"score": 1.0 if passed else 0.0, "passed": passed},
    }


def make_workspace(root: Path) -> Path:
    (root / "tools").mkdir(parents=True)
    (root / "traces").mkdir()
    (root / "tools" / "agent_tools.py").write_text(TOOLS, encoding="utf-8")
    traces = [
        _trace(
            "r1",
            "convert_units",
            {"value": 10, "from_unit": "km", "to_unit": "m"},
            "10000.0",
            "10000 m",
            "10000",
            True,
        ),
        _trace(
            "r2",
            "convert_units",
            {"value": 3, "from_unit": "ft", "to_unit": "m"},
            "0.9144",
            "0.9144",
            "0.9144",
            True,
        ),
        _trace(
            "r3",
            "convert_units",
            {"value": 1, "from_unit": "mile", "to_unit": "km"},
            "Error: KeyError: 'mile'",
            "I could not convert it",
            "1.6093",
            False,
            True,
        ),
        _trace("r4", "word_count", {"text": "one  two"}, "3", "3", "2", False),
        _trace("r5", "word_count", {"text": "hello world"}, "2", "2", "2", True),
    ]
    (root / "traces" / "runs.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in traces), encoding="utf-8"
    )
    return init_repo(root)


def edit(root: Path, old: str, new: str) -> None:
    path = root / "tools" / "agent_tools.py"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# ---------------------------------------------------------------- replay-check


def test_replay_check_accepts_a_correct_fix():
    folder = CORPUS / "convert_units"
    out = run(
        "replay-check",
        "--old",
        str(folder / "buggy.py"),
        "--new",
        str(folder / "fix.py"),
        "--calls",
        str(folder / "calls.jsonl"),
    )
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first == (
        "convert_units: fixes 1 failing call (verified), "
        "changes 1 call (unverified: no expected result); 0 regressions (6 calls)"
    )
    assert "verified_fix" in out.stdout and "unverified_change" in out.stdout
    assert "totals: verified_fix 1, unverified_change 1, unchanged 4" in out.stdout


def test_replay_check_flags_a_regression_with_exit_status_1_and_json():
    folder = CORPUS / "lookup_capital"
    out = run(
        "replay-check",
        "--old",
        str(folder / "buggy.py"),
        "--new",
        str(folder / "wrong_breaks.py"),
        "--calls",
        str(folder / "calls.jsonl"),
        "--json",
    )
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["has_regression"] and report["has_expected_regression"]
    assert report["totals"]["regression"] == 2
    verdicts = {e["args"]["country"]: e["verdict"] for e in report["entries"]}
    assert verdicts["France"] == "regression" and verdicts["france"] == "still_failing"


def test_replay_check_reports_bad_lines_and_bad_input(tmp_path: Path):
    old = tmp_path / "old.py"
    new = tmp_path / "new.py"
    old.write_text("def f(x):\n    return x\n\ndef g():\n    pass\n", encoding="utf-8")
    new.write_text("def f(x):\n    return x + 1\n\ndef g():\n    pass\n", encoding="utf-8")
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        '{"args": {"x": 1}, "result": 1, "function": "f"}\nnot json\n', encoding="utf-8"
    )
    out = run("replay-check", "--old", str(old), "--new", str(new), "--calls", str(calls))
    assert out.returncode == 0, out.stderr  # a changed value with nothing to compare with
    assert f"{calls}:2: skipped" in out.stderr
    assert "changes 1 call (unverified: no expected result); 0 regressions (1 call)" in out.stdout
    calls.write_text('{"args": {"x": 1}, "result": 1}\n', encoding="utf-8")
    out = run("replay-check", "--old", str(old), "--new", str(new), "--calls", str(calls))
    assert out.returncode == 2 and "pass --function NAME" in out.stderr
    out = run(
        "replay-check",
        "--old",
        str(old),
        "--new",
        str(tmp_path / "missing.py"),
        "--calls",
        str(calls),
        "--function",
        "f",
    )
    assert out.returncode == 2 and "missing.py: cannot read the new source" in out.stderr
    new.write_text("def f(x:\n", encoding="utf-8")
    out = run(
        "replay-check",
        "--old",
        str(old),
        "--new",
        str(new),
        "--calls",
        str(calls),
        "--function",
        "f",
    )
    assert out.returncode == 2 and f"{new}:1: does not parse" in out.stderr


# ---------------------------------------------------------------- check


def test_check_with_no_edits_says_so(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    out = run("check", str(root))
    assert out.returncode == 0, out.stderr
    assert "no tool function changed since HEAD" in out.stdout


def test_check_verifies_a_hand_fix_against_the_committed_version(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    edit(root, '"ft": 0.3048}', '"ft": 0.3048, "mile": 1609.344}')
    edit(root, 'len(text.split(" "))', "len(text.split())")
    out = run("check", str(root), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert set(data["functions"]) == {"convert_units", "word_count"}
    units = data["functions"]["convert_units"]
    # The failed call has no expected value (the answer did not come from it).
    assert (
        units["summary"]
        == "changes 1 call (unverified: no expected result); 0 regressions (4 calls)"
    )
    words = data["functions"]["word_count"]
    fixed = [e for e in words["entries"] if e["verdict"] == "verified_fix"]
    assert len(fixed) == 1 and fixed[0]["expected_source"] == "task"
    assert fixed[0]["refs"] == ["traces/runs.jsonl:4"]
    assert not data["has_regression"]


def test_check_fails_on_a_regression_and_names_the_trace(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    edit(root, '"ft": 0.3048}', '"feet": 0.3048, "mile": 1609.344}')
    out = run("check", str(root))
    assert out.returncode == 1, out.stdout + out.stderr
    assert (
        "convert_units: changes 1 call (unverified: no expected result); 1 regression (4 calls)"
    ) in out.stdout
    assert "regression" in out.stdout and "traces/runs.jsonl:2" in out.stdout
    assert "word_count" not in out.stdout  # unchanged functions are not checked


def test_check_uses_pins_and_reports_orphans_and_broken_files(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    out = run(
        "pin",
        str(root),
        "--function",
        "convert_units",
        "--args",
        '{"value": 1, "from_unit": "mile", "to_unit": "km"}',
        "--expected",
        "1.6093",
    )
    assert out.returncode == 0, out.stderr
    assert "pinned convert_units" in out.stdout and ".funcforge/expectations.jsonl:1" in out.stdout
    pins = root / ".funcforge" / "expectations.jsonl"
    pins.write_text(
        pins.read_text() + '{"function": "vanished", "args": {}, "expected": 1}\n', encoding="utf-8"
    )
    edit(root, '"ft": 0.3048}', '"ft": 0.3048, "mile": 1609.0}')  # close, but wrong
    out = run("check", str(root), "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 1
    entry = next(
        e for e in data["functions"]["convert_units"]["entries"] if e["expected_source"] == "pin"
    )
    assert entry["verdict"] == "regression" and "wrong value" in entry["note"]
    assert any("'vanished', which no longer exists" in p for p in data["problems"])
    edit(root, '"mile": 1609.0}', '"mile": 1609.344}')
    out = run("check", str(root), "--function", "convert_units")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "fixes 1 failing call (verified); 0 regressions (4 calls)" in out.stdout
    (root / "tools" / "agent_tools.py").write_text(TOOLS + "\ndef broken(:\n", encoding="utf-8")
    out = run("check", str(root))
    assert out.returncode == 1 and "tool files that no longer load" in out.stdout


def test_check_of_a_new_function_runs_its_doctests(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    edit(
        root,
        "def untouched(",
        'def double(x: int) -> int:\n    """Twice x.\n\n    >>> double(4)\n    8\n    """\n'
        "    return x * 3\n\n\ndef untouched(",
    )
    out = run("check", str(root), "--json")
    data = json.loads(out.stdout)
    entries = data["functions"]["double"]["entries"]
    assert [e["verdict"] for e in entries] == ["still_failing"]
    assert entries[0]["expected_source"] == "doctest"


def test_check_outside_git_and_bad_path(tmp_path: Path):
    out = run("check", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "no such folder" in out.stderr
    plain = tmp_path / "plain"
    (plain / "tools").mkdir(parents=True)
    (plain / "tools" / "t.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    out = run("check", str(plain))
    assert out.returncode == 2 and "not a git repository" in out.stderr


# ---------------------------------------------------------------- pin


def test_pin_writes_replaces_and_validates(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    assert (
        run(
            "pin",
            str(root),
            "--function",
            "word_count",
            "--args",
            '{"text": ""}',
            "--expected",
            "0",
        ).returncode
        == 0
    )
    out = run(
        "pin",
        str(root),
        "--function",
        "word_count",
        "--args",
        '{"text": ""}',
        "--expected-error",
        "ValueError",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["expected_error"] == "ValueError"
    lines = (root / ".funcforge" / "expectations.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["expected_error"] == "ValueError"
    out = run("pin", str(root), "--function", "nope", "--args", "{}", "--expected", "1")
    assert out.returncode == 2 and "no tool function 'nope'" in out.stderr
    out = run("pin", str(root), "--function", "word_count", "--args", "[1]", "--expected", "1")
    assert out.returncode == 2 and "--args: must be a JSON object" in out.stderr
    out = run("pin", str(root), "--function", "word_count", "--args", "{}", "--expected", "{oops")
    assert out.returncode == 2 and "--expected: not valid JSON" in out.stderr
    out = run("pin", str(root), "--function", "word_count", "--args", "{}")
    assert out.returncode == 2  # argparse: one of --expected / --expected-error is required
    git(root, "status", "--porcelain")  # the repository is still usable


def test_module_level_changes_affect_only_the_functions_that_use_them():
    from funcforge.optimizer.handcheck import affected_names as _affected

    old = "import math\nK = 2\n\ndef _h(x):\n    return x * K\n\ndef a(x):\n    return _h(x)\n\ndef b(x):\n    return math.sqrt(x)\n"
    assert _affected(old, old) == set()
    assert _affected(old, old.replace("K = 2", "K = 3")) == {"K", "_h", "a"}
    assert _affected(old, old.replace("import math", "import cmath as math")) == {"math", "b"}
    assert _affected(old, old + "\nprint('side effect')\n") is None
    assert _affected(old, "def a(:\n") is None
