"""Expected values for a tool's calls, from every source a user already has.

- `task`: when a trace's task has an expected answer and the agent's final
  answer came from a tool call's result (equal, or contained after the judge's
  normalisation), that call should have returned the task's answer;
- `baseline`: a successful call in a passing trace is presumed correct (calls
  in failing traces are suspect and give no baseline);
- `doctest`: examples in the function's docstring (Python's own convention);
- `pin`: `.funcforge/expectations.jsonl`, one `{function, args, expected}` or
  `{function, args, expected_error}` per line, written by hand or `add_pin`;
- `given`: an `expected` supplied with a call (the `replay-check` calls file).

`matches(expectation, result)` says whether a sandboxed result meets one.
"""

from __future__ import annotations

import ast
import doctest
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from funcforge.errors import UserError
from funcforge.fsutil import write_atomic
from funcforge.judge import as_number, normalize, normalized
from funcforge.sandbox import CallResult, render_result

if TYPE_CHECKING:
    from funcforge.config import Config
    from funcforge.traces.model import Trace

ExpectationSource = Literal["pin", "doctest", "task", "given", "baseline"]
# Stronger sources win when several apply to the same call.
PRIORITY: dict[str, int] = {"pin": 5, "doctest": 4, "task": 3, "given": 2, "baseline": 1}
PINS_FILE = "expectations.jsonl"


@dataclass(frozen=True)
class ExpectationProblem:
    """An expectation that cannot be used: where (file:line) and why."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else (f"{self.file}: {self.message}")
        )


@dataclass
class Expectation:
    """What one call (or doctest example) of `function` should give, and where that came from.

    Exactly one of `expected` (with `has_value`) and `expected_error` is set,
    except for doctests, which compare their output with `want`.
    """

    function: str
    source: ExpectationSource
    args: Any = None
    expected: Any = None
    has_value: bool = False
    expected_error: str | None = None
    example: str | None = None  # a doctest example's source
    setup: list[str] = field(default_factory=list)  # the examples before it
    want: str | None = None  # a doctest example's expected output
    options: int = 0  # doctest option flags
    where: str | None = None  # file:line

    def describe(self) -> str:
        """The expected outcome in a few words."""
        if self.expected_error:
            return f"raises {self.expected_error}"
        if self.source == "doctest":
            return " ".join((self.want or "").split()) or "(no output)"
        if self.source in ("task", "baseline") and isinstance(self.expected, str):
            return self.expected
        return render_result(self.expected)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function, "source": self.source}
        if self.example is not None:
            out["example"] = self.example
        else:
            out["args"] = self.args
        if self.expected_error:
            out["expected_error"] = self.expected_error
        elif self.source == "doctest":
            out["want"] = self.want
        else:
            out["expected"] = self.expected
        if self.where:
            out["where"] = self.where
        return out


def call_key(args: Any) -> str:
    """A canonical text for a call's arguments, to match pins with logged calls."""
    try:
        return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(args)


# ---------------------------------------------------------------- comparison


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def value_matches(expected: Any, result: CallResult) -> bool:
    """Does a successful result equal an expected JSON value?

    Structures compare exactly (numbers within 1e-9); scalars also compare
    with the judge's normalisation, so "7/8" matches 0.875. A result that is
    not JSON compares through its repr.
    """
    if not result.ok:
        return False
    if result.is_json:
        if _json_equal(expected, result.value_json):
            return True
        if _scalar(expected) and _scalar(result.value_json):
            return bool(normalized(render_result(result.value_json), render_result(expected)))
        return False
    text = result.value_repr or result.rendered
    if isinstance(expected, str):
        return text == expected or bool(normalized(text, expected))
    return False


def logged_text_matches(logged: str, result: CallResult) -> bool:
    """Does a result reproduce a logged tool message (however the agent rendered it)?"""
    if not result.ok:
        return False
    if logged in (result.rendered, result.value_repr):
        return True
    try:
        parsed = json.loads(logged)
    except (json.JSONDecodeError, ValueError):
        parsed = None
    if parsed is not None and result.is_json and _json_equal(parsed, result.value_json):
        return True
    return bool(normalized(result.rendered, logged))


_NUMBER_TOKEN = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:/\d+)?")


def answer_in(text: str | None, answer: str) -> bool:
    """Does `text` equal or contain `answer` after normalisation (numbers as numbers)?

    Containment respects token boundaries, so the answer "2" is not found in "12.5".
    """
    if text is None or not answer.strip():
        return False
    if normalized(text, answer):
        return True
    t, a = normalize(text), normalize(answer)
    if a and re.search(rf"(?<![\w.]){re.escape(a)}(?![\w]|\.\d)", t):
        return True
    number = as_number(a)
    if number is not None:
        for token in _NUMBER_TOKEN.findall(t):
            if as_number(token) == number:
                return True
    return False


def _error_name(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip()


def matches(exp: Expectation, result: CallResult) -> bool:
    """Does a sandboxed result meet the expectation?"""
    if exp.expected_error:
        wanted = _error_name(exp.expected_error)
        return not result.ok and wanted in {
            _error_name(n) for n in (result.error_type or "", *result.error_bases)
        }
    if not result.ok:
        return False
    if exp.source == "doctest":
        want, got = exp.want or "", result.stdout
        if doctest.OutputChecker().check_output(want, got, exp.options):
            return True
        return bool(want.strip()) and bool(normalized(got, want))
    if exp.source == "task":
        return answer_in(result.rendered, str(exp.expected))
    if exp.source == "baseline":
        return logged_text_matches(str(exp.expected), result)
    return value_matches(exp.expected, result)


# ---------------------------------------------------------------- task and outcome


def task_expectations(trace: Trace) -> dict[int, str]:
    """Index of the tool call the agent's final answer came from -> the task's expected answer.

    The last call whose result equals the final answer wins; failing that, the
    last one whose result contains the answer, then the last one whose result
    the answer quotes ("The answer is 0.75"). Errors and empty answers give nothing.
    """
    if trace.task is None or not trace.task.expected:
        return {}
    answer = trace.final_answer
    if not answer or not answer.strip():
        return {}
    candidates = [
        (i, call)
        for i, call in enumerate(trace.tool_calls)
        if not call.is_error and call.result is not None
    ]
    for i, call in reversed(candidates):
        if normalized(call.result, answer):
            return {i: trace.task.expected}
    for i, call in reversed(candidates):
        if answer_in(call.result, answer):
            return {i: trace.task.expected}
    for i, call in reversed(candidates):
        result = normalize(call.result or "")
        # "The answer is 0.75" came from the result "0.75"; short non-numbers
        # ("ok", "no") are too common to say where an answer came from.
        if (as_number(result) is not None or len(result) >= 4) and answer_in(answer, result):
            return {i: trace.task.expected}
    return {}


# ---------------------------------------------------------------- doctests


def _find_function(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


def _flags(options: dict[int, bool]) -> int:
    flags = 0
    for flag, on in options.items():
        flags = flags | flag if on else flags & ~flag
    return flags


def doctest_expectations(
    source: str, function: str, file: str
) -> tuple[list[Expectation], list[ExpectationProblem]]:
    """The doctest examples in `function`'s docstring, each an expectation (with file:line).

    A docstring doctest cannot parse, or an example that is not valid Python,
    is reported with its file:line and left out.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [], [ExpectationProblem(file, exc.lineno or 0, f"cannot parse: {exc.msg}")]
    node = _find_function(tree, function)
    if node is None or not node.body:
        return [], []
    first = node.body[0]
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return [], []
    doc = first.value.value
    base_line = first.value.lineno  # the docstring's line 0
    try:
        examples = doctest.DocTestParser().get_examples(doc, function)
    except ValueError as exc:
        m = re.search(r"line (\d+) of the (?:docstring|doctest)", str(exc))
        line = base_line + int(m.group(1)) - 1 if m else base_line
        return [], [ExpectationProblem(file, line, f"doctest of {function} cannot parse: {exc}")]
    out: list[Expectation] = []
    problems: list[ExpectationProblem] = []
    setup: list[str] = []
    for example in examples:
        line = base_line + example.lineno
        try:
            compile(example.source, f"{file}:{line}", "single")
        except SyntaxError as exc:
            problems.append(
                ExpectationProblem(
                    file, line, f"doctest example of {function} is not valid Python: {exc.msg}"
                )
            )
            continue
        error = None
        if example.exc_msg is not None:
            error = _error_name(example.exc_msg.split(":", 1)[0])
        out.append(
            Expectation(
                function=function,
                source="doctest",
                example=example.source,
                setup=list(setup),
                want=example.want,
                expected_error=error,
                options=_flags(example.options),
                where=f"{file}:{line}",
            )
        )
        setup.append(example.source)
    return out, problems


# ---------------------------------------------------------------- pins


def pins_path(config: Config) -> Path:
    """`.funcforge/expectations.jsonl` of the workspace."""
    return config.state_path / PINS_FILE


def _pin_from_obj(obj: Any, where: str) -> Expectation:
    if not isinstance(obj, dict):
        raise ValueError("a pin must be a JSON object")
    function = obj.get("function")
    if not isinstance(function, str) or not function:
        raise ValueError("'function' must be a non-empty string")
    if not isinstance(obj.get("args"), dict):
        raise ValueError("'args' must be a JSON object")
    has_value = "expected" in obj
    error = obj.get("expected_error")
    if has_value == (error is not None):
        raise ValueError("give exactly one of 'expected' and 'expected_error'")
    if error is not None and (not isinstance(error, str) or not error.strip()):
        raise ValueError("'expected_error' must be an exception type name such as \"KeyError\"")
    return Expectation(
        function=function,
        source="pin",
        args=obj["args"],
        expected=obj.get("expected"),
        has_value=has_value,
        expected_error=error.strip() if isinstance(error, str) else None,
        where=where,
    )


def load_pins(
    path: Path, label: str | None = None
) -> tuple[list[Expectation], list[ExpectationProblem]]:
    """Pinned calls from an expectations file; malformed lines are reported and skipped."""
    name = label or str(path)
    if not path.is_file():
        return [], []
    pins: list[Expectation] = []
    problems: list[ExpectationProblem] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                pins.append(_pin_from_obj(json.loads(line), f"{name}:{number}"))
            except (json.JSONDecodeError, ValueError) as exc:
                problems.append(ExpectationProblem(name, number, f"bad pin: {exc}"))
    return pins, problems


def orphan_problems(
    pins: Iterable[Expectation], functions: Iterable[str]
) -> list[ExpectationProblem]:
    """Pins (or other expectations) of functions that no longer exist."""
    known = set(functions)
    out: list[ExpectationProblem] = []
    for pin in pins:
        if pin.function not in known:
            file, _, line = (pin.where or "?:0").rpartition(":")
            out.append(
                ExpectationProblem(
                    file or "?",
                    int(line) if line.isdigit() else 0,
                    f"expectation for '{pin.function}', which no longer exists",
                )
            )
    return out


_MISSING: Any = object()


def add_pin(
    config: Config,
    function: str,
    args: dict[str, Any],
    *,
    expected: Any = _MISSING,
    expected_error: str | None = None,
) -> Expectation:
    """Pin a call's expected result (or exception type) in `.funcforge/expectations.jsonl`.

    Give `expected` or `expected_error` (an `expected=None` next to an
    `expected_error` counts as not given). A pin for the same function and arguments is replaced; other lines,
    malformed ones included, are kept as they are.
    """
    obj: dict[str, Any] = {"function": function, "args": args}
    if expected is not _MISSING and not (expected is None and expected_error is not None):
        obj["expected"] = expected  # (callers may pass expected=None with an expected_error)
    if expected_error is not None:
        obj["expected_error"] = expected_error
    try:
        json.dumps(obj)
        pin = _pin_from_obj(obj, "")
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot pin {function}: {exc}") from exc
    obj["created"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = pins_path(config)
    kept: list[str] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                old = json.loads(line)
                same = (
                    isinstance(old, dict)
                    and old.get("function") == function
                    and call_key(old.get("args")) == call_key(args)
                )
            except json.JSONDecodeError:
                same = False
            if line.strip() and not same:
                kept.append(line)
    kept.append(json.dumps(obj, ensure_ascii=False))
    write_atomic(path, "\n".join(kept) + "\n")
    pin.where = f"{config.state_dir}/{PINS_FILE}:{len(kept)}"
    return pin
