"""The replay check: re-run logged calls on the old and the new code, one verdict per call.

Both versions run in the sandbox (never in this process), each call twice: a
call whose two runs disagree is *flaky* and left out of the verdicts. Each
call gets the strongest expectation that applies (pin > doctest > task >
given > baseline, see `expectations`), then a verdict:

- `verified_fix`: was wrong or raised, now meets the expected value;
- `unverified_change`: raised before and returns now, or returns a different
  value, with nothing to compare it with;
- `still_failing`: raised before and raises now, or still misses the expected value;
- `regression`: used to meet the expected (or presumed-correct) value and no
  longer does, returns a wrong value where it used to raise (a visible failure
  turned silent), or raises where it used to return;
  (a new function that misses an expected value is `still_failing`: nothing regressed);
- `signature_mismatch`: the logged arguments no longer fit the new signature;
- `unchanged`: same result, and it still meets any expected value;
- `flaky`: a version gave two different results for the same call.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from funcforge.optimizer.expectations import (
    PRIORITY,
    Expectation,
    call_key,
    doctest_expectations,
    load_pins,
    matches,
    orphan_problems,
    pins_path,
    task_expectations,
)
from funcforge.sandbox import (
    TIMEOUT,
    CallResult,
    Isolation,
    SandboxPool,
    call_request,
    describe_mode,
    eval_request,
    require_sandbox,
    resolve_mode,
)
from funcforge.toolset.rewrite import plan_actions

if TYPE_CHECKING:
    from funcforge.config import Config

Verdict = Literal[
    "verified_fix",
    "unverified_change",
    "still_failing",
    "regression",
    "signature_mismatch",
    "unchanged",
    "flaky",
]
VERDICTS: tuple[str, ...] = (
    "verified_fix",
    "unverified_change",
    "regression",
    "signature_mismatch",
    "still_failing",
    "unchanged",
    "flaky",
)
MAX_TIMEOUTS = 3  # after this many timeouts, a version's remaining calls are not run
ABSENT = "FunctionAbsent"  # the old "result" of a function that did not exist yet


@dataclass
class LoggedCall:
    """One logged call of a function: its arguments, what the log says it gave, and context.

    `passed` is the outcome of the trace it came from (None when unknown);
    `expected` (with `has_expected`) or `expected_error` is a value supplied
    with the call, whose kind `expected_source` names (`given` or `task`).
    """

    args: Any
    result: str | None = None
    is_error: bool = False
    error_type: str | None = None
    error_message: str | None = None
    passed: bool | None = None
    expected: Any = None
    has_expected: bool = False
    expected_error: str | None = None
    expected_source: Literal["given", "task"] = "given"
    ref: str | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], ref: str | None = None) -> LoggedCall:
        """A call from the replay-check JSON Lines format.

        Keys: `args`; `result` (any JSON; non-strings are rendered) or `error`
        (`"KeyError: 'mile'"` or `{"type", "message"}`); optional `expected` or
        `expected_error`; optional `passed`.
        """
        if "args" not in obj:
            raise ValueError("missing 'args'")
        error = obj.get("error")
        error_type = error_message = None
        if isinstance(error, dict):
            error_type = str(error.get("type") or "Error")
            error_message = str(error.get("message") or "")
        elif isinstance(error, str):
            head, sep, tail = error.partition(":")
            if sep and head.strip().replace(".", "").isidentifier():
                error_type, error_message = head.strip(), tail.strip()
            else:
                error_type, error_message = "Error", error
        elif error is not None:
            raise ValueError("'error' must be a string or an object with 'type' and 'message'")
        result = obj.get("result")
        if result is not None and not isinstance(result, str):
            from funcforge.sandbox import render_result

            result = render_result(result)
        passed = obj.get("passed")
        if passed is not None and not isinstance(passed, bool):
            raise ValueError("'passed' must be true or false")
        expected_error = obj.get("expected_error")
        if expected_error is not None and not isinstance(expected_error, str):
            raise ValueError("'expected_error' must be an exception type name")
        return cls(
            args=obj["args"],
            result=result,
            is_error=error is not None,
            error_type=error_type,
            error_message=error_message,
            passed=passed,
            expected=obj.get("expected"),
            has_expected="expected" in obj,
            expected_error=expected_error,
            ref=ref,
        )

    def logged_dict(self) -> dict[str, Any] | None:
        if self.is_error:
            return {"error_type": self.error_type, "error_message": self.error_message}
        if self.result is not None:
            return {"result": self.result}
        return None


@dataclass
class _Case:
    """One distinct call to check (logged calls with the same arguments are merged)."""

    args: Any
    example: str | None = None
    setup: list[str] = field(default_factory=list)
    logged: LoggedCall | None = None
    candidates: list[Expectation] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    count: int = 0
    errored: bool = False


@dataclass
class ReplayEntry:
    """The verdict for one call: arguments, old and new results, what was expected, and why."""

    function: str
    args: Any
    old: CallResult | None
    new: CallResult
    verdict: Verdict
    note: str = ""
    expected: str | None = None
    expected_source: str | None = None
    example: str | None = None
    logged: dict[str, Any] | None = None
    refs: list[str] = field(default_factory=list)
    count: int = 1  # how many logged calls had these arguments

    def call_text(self, limit: int = 90) -> str:
        """`f(a=1, b='x')`, or the doctest example's source."""
        if self.example is not None:
            text = " ".join(self.example.split())
        elif isinstance(self.args, dict):
            inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
            text = f"{self.function}({inner})"
        else:
            text = f"{self.function}(<arguments {self.args!r}>)"
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "args": self.args,
            "example": self.example,
            "verdict": self.verdict,
            "note": self.note,
            "old": _result_dict(self.old),
            "new": _result_dict(self.new),
            "expected": self.expected,
            "expected_source": self.expected_source,
            "logged": self.logged,
            "refs": self.refs,
            "count": self.count,
        }


def _result_dict(result: CallResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    if result.ok:
        out: dict[str, Any] = {"ok": True, "rendered": result.rendered, "is_json": result.is_json}
        if result.is_json:
            out["value"] = result.value_json
        else:
            out["repr"] = result.value_repr
        return out
    return {
        "ok": False,
        "error_type": result.error_type,
        "error_message": result.error_message,
        "timed_out": result.timed_out,
        "crashed": result.crashed,
    }


def _sandbox_note(isolation: str) -> str:
    """The suffix a summary carries when the calls ran in the weaker process sandbox."""
    if isolation.startswith("process"):
        return f" [sandbox: {isolation}]"
    return ""


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith(("s", "sh", "ch")) else f"{n} {word}s"


def format_summary(totals: Mapping[str, int], calls: int, available: int) -> str:
    """The one-line summary, leading with verified numbers; `available` > `calls` shows the budget."""
    t = {v: int(totals.get(v, 0)) for v in VERDICTS}
    regressions = t["regression"] + t["signature_mismatch"]
    # Unverified changes are changes, not "nothing": say what they are (issue 15).
    effects = []
    if t["verified_fix"]:
        effects.append(f"fixes {_plural(t['verified_fix'], 'failing call')} (verified)")
    if t["unverified_change"]:
        effects.append(
            f"changes {_plural(t['unverified_change'], 'call')} (unverified: no expected result)"
        )
    text = (
        f"{', '.join(effects) or 'fixes no logged failure'}; {_plural(regressions, 'regression')}"
    )
    if t["signature_mismatch"]:
        text += f" incl. {_plural(t['signature_mismatch'], 'signature mismatch')}"
    extra = []
    if t["still_failing"]:
        extra.append(f"{t['still_failing']} still failing")
    if t["flaky"]:
        extra.append(f"{t['flaky']} flaky")
    if extra:
        text += "; " + ", ".join(extra)
    counted = _plural(calls, "call") if available <= calls else f"{calls} of {available} calls"
    return f"{text} ({counted})"


@dataclass
class ReplayReport:
    """Per-call verdicts for one function, with totals and a one-line summary."""

    function: str
    entries: list[ReplayEntry] = field(default_factory=list)
    available: int = 0  # distinct calls before the budget
    skipped: int = 0  # distinct calls left out by the budget
    problems: list[str] = field(default_factory=list)
    isolation: str = ""

    @property
    def totals(self) -> dict[str, int]:
        counts: Counter[str] = Counter(e.verdict for e in self.entries)
        return {v: counts.get(v, 0) for v in VERDICTS}

    @property
    def regressions(self) -> int:
        t = self.totals
        return t["regression"] + t["signature_mismatch"]

    @property
    def has_regression(self) -> bool:
        return self.regressions > 0

    @property
    def has_expected_regression(self) -> bool:
        """A regression measured against an expected or presumed-correct value."""
        return any(
            e.verdict in ("regression", "signature_mismatch") and e.expected_source is not None
            for e in self.entries
        )

    @property
    def summary(self) -> str:
        """`fixes 4 failing calls (verified), changes 1 call (unverified: no expected result);
        0 regressions (12 calls)`, plus what else happened.

        In the weaker process sandbox the summary says so.
        """
        text = format_summary(self.totals, len(self.entries), self.available)
        return text + _sandbox_note(self.isolation)

    def to_dict(self) -> dict[str, Any]:
        t = self.totals
        fixed = t["verified_fix"] + sum(
            1
            for e in self.entries
            if e.verdict == "unverified_change" and e.old is not None and not e.old.ok
        )
        return {
            "function": self.function,
            "summary": self.summary,
            "totals": t,
            "fixed": fixed,
            "regressed": self.regressions,
            "unchanged": t["unchanged"],
            "has_regression": self.has_regression,
            "has_expected_regression": self.has_expected_regression,
            "calls": len(self.entries),
            "available": self.available,
            "skipped": self.skipped,
            "problems": self.problems,
            "isolation": self.isolation,
            "entries": [e.to_dict() for e in self.entries],
        }


# ---------------------------------------------------------------- building cases


def _logged_expectation(function: str, call: LoggedCall) -> list[Expectation]:
    out: list[Expectation] = []
    if call.has_expected or call.expected_error:
        out.append(
            Expectation(
                function=function,
                source=call.expected_source,
                args=call.args,
                expected=call.expected,
                has_value=call.has_expected,
                expected_error=call.expected_error,
                where=call.ref,
            )
        )
    if call.passed is True and not call.is_error and call.result is not None:
        out.append(
            Expectation(
                function=function,
                source="baseline",
                args=call.args,
                expected=call.result,
                has_value=True,
                where=call.ref,
            )
        )
    return out


def _build_cases(
    function: str,
    calls: Iterable[LoggedCall | Mapping[str, Any]],
    expectations: Iterable[Expectation],
) -> list[_Case]:
    cases: dict[str, _Case] = {}
    for raw in calls:
        call = raw if isinstance(raw, LoggedCall) else LoggedCall.from_dict(raw)
        key = call_key(call.args)
        case = cases.get(key)
        if case is None:
            case = cases[key] = _Case(args=call.args, logged=call)
        case.count += 1
        case.errored = case.errored or call.is_error
        if call.ref and len(case.refs) < 5:
            case.refs.append(call.ref)
        case.candidates.extend(_logged_expectation(function, call))
    doctests: list[_Case] = []
    for exp in expectations:
        if exp.function != function:
            continue
        if exp.example is not None:
            doctests.append(
                _Case(args=None, example=exp.example, setup=list(exp.setup), candidates=[exp])
            )
            if exp.where:
                doctests[-1].refs.append(exp.where)
            continue
        key = call_key(exp.args)
        case = cases.get(key)
        if case is None:
            case = cases[key] = _Case(args=exp.args)
        case.candidates.append(exp)
        if exp.where:
            case.refs.append(exp.where)
    return [*doctests, *cases.values()]


def _same_expectation(a: Expectation, b: Expectation) -> bool:
    return (
        a.expected_error == b.expected_error
        and a.want == b.want
        and call_key(a.expected) == call_key(b.expected)
    )


def _choose(case: _Case) -> tuple[Expectation | None, str]:
    """The strongest expectation; ties that disagree cancel each other (with a note)."""
    if not case.candidates:
        return None, ""
    best = max(PRIORITY[c.source] for c in case.candidates)
    top = [c for c in case.candidates if PRIORITY[c.source] == best]
    if all(_same_expectation(top[0], c) for c in top[1:]):
        return top[0], ""
    rest = [c for c in case.candidates if PRIORITY[c.source] < best]
    note = f"conflicting {top[0].source} expectations ignored"
    if not rest:
        return None, note
    case.candidates = rest
    chosen, more = _choose(case)
    return chosen, "; ".join(n for n in (note, more) if n)


def _rank(case: _Case) -> int:
    strongest = max((PRIORITY[c.source] for c in case.candidates), default=0)
    if strongest > PRIORITY["baseline"]:
        return 0
    if case.errored:
        return 1
    if strongest:
        return 2
    return 3


# ---------------------------------------------------------------- running


def _same(a: CallResult, b: CallResult) -> bool:
    if a.ok != b.ok:
        return False
    if a.ok:
        return a.digest == b.digest
    return a.error_type == b.error_type


def _run_side(
    sources: Mapping[str, str] | None,
    function: str,
    cases: Sequence[_Case],
    *,
    timeout: float,
    memory_mb: int,
    isolation: Isolation,
    repeat: bool,
) -> list[tuple[CallResult, CallResult | None]]:
    """Each case's result, and a second run's (None when not repeated)."""
    if sources is None:
        missing = CallResult.failure(ABSENT, f"{function} did not exist in the old version")
        return [(missing, missing) for _ in cases]
    # Each case once, or twice in a row (`repeat`), all sent in batches: one
    # message to the worker for many calls, each with its own limits.
    plan = [case for case in cases for _ in range(2 if repeat else 1)]
    results: list[CallResult] = []
    timeouts = 0
    with SandboxPool(sources, timeout, memory_mb, isolation=isolation) as pool:
        while len(results) < len(plan):
            if timeouts >= MAX_TIMEOUTS:
                results.append(
                    CallResult.failure(
                        TIMEOUT, f"not run: {MAX_TIMEOUTS} earlier calls timed out", timed_out=True
                    )
                )
                continue
            done = pool.batch([_request(function, case) for case in plan[len(results) :]])
            results.extend(done)
            last, first_run = done[-1], not repeat or len(results) % 2 == 1
            if first_run and last.timed_out:
                timeouts += 1  # (a second run that times out makes the call flaky instead)
            if repeat and first_run and (last.timed_out or last.crashed):
                results.append(last)  # a first run that timed out or crashed is not repeated
    if not repeat:
        return [(result, None) for result in results]
    out: list[tuple[CallResult, CallResult | None]] = []
    for first, second in zip(results[::2], results[1::2], strict=True):
        # A first run that timed out or crashed has no second (it would only say the same).
        out.append((first, None if (first.timed_out or first.crashed) else second))
    return out


def _request(function: str, case: _Case) -> dict[str, Any]:
    if case.example is not None:
        return eval_request(function, case.example, case.setup)
    return call_request(function, case.args)


def _as_sources(source: str | Mapping[str, str] | None, name: str) -> dict[str, str] | None:
    if source is None:
        return None
    if isinstance(source, str):
        return {name: source}
    return dict(source)


# ---------------------------------------------------------------- verdicts


def _desc(result: CallResult, base: bool = False) -> str:
    """`returns 2` / `raises KeyError: 'x'` (or `return 2` ... with `base`) for notes."""
    if result.ok:
        return f"{'return' if base else 'returns'} {result.short(60)}"
    if result.timed_out:
        return "time out" if base else "times out"
    return f"{'raise' if base else 'raises'} {result.short(60)}"


def _verdict(
    old: CallResult,
    new: CallResult,
    exp: Expectation | None,
) -> tuple[Verdict, str, Expectation | None]:
    notes: list[str] = []
    if exp is not None and exp.source == "baseline" and not matches(exp, old):
        notes.append("the logged result of a passing run differs from the old code's; no baseline")
        exp = None
    absent = not old.ok and old.error_type == ABSENT
    if absent:
        notes.append("new function")
    if new.signature_mismatch and not old.signature_mismatch:
        notes.append(f"the arguments no longer fit: {new.error_message}")
        return "signature_mismatch", "; ".join(notes), exp
    if (new.ok and not new.is_json) or (old.ok and not old.is_json):
        notes.append("compared through repr (not JSON)")
    if exp is not None:
        old_good, new_good = matches(exp, old), matches(exp, new)
        want = f"expected {exp.describe()} ({exp.source})"
        if old_good and new_good:
            verdict: Verdict = "unchanged"
            if not _same(old, new):
                notes.append(f"changed ({_desc(old)} -> {_desc(new)}), still as {want}")
        elif new_good:
            verdict = "verified_fix"
            notes.append(f"used to {_desc(old, base=True)}; now as {want}")
        elif old_good:
            verdict = "regression"
            notes.append(f"now {_desc(new)}; {want}")
        elif new.ok and not old.ok and not absent:
            verdict = "regression"
            notes.append(
                f"a wrong value where it used to raise {old.error_type}: {_desc(new)}; {want}"
            )
        else:
            verdict = "still_failing"
            was = "still " if _same(old, new) else f"{_desc(old)} -> "
            notes.append(f"{was}{_desc(new)}; {want}")
        return verdict, "; ".join(notes), exp
    if not old.ok:
        if new.ok:
            notes.append(f"used to raise {old.error_type}; nothing to compare the new value with")
            return "unverified_change", "; ".join(notes), None
        if new.error_type != old.error_type:
            notes.append(f"raised {old.error_type}, now raises {new.error_type}")
        return "still_failing", "; ".join(notes), None
    if not new.ok:
        notes.append(f"now raises {new.error_type}" if not new.timed_out else "now times out")
        return "regression", "; ".join(notes), None
    if _same(old, new):
        return "unchanged", "; ".join(notes), None
    notes.append(f"result changed ({_desc(old)} -> {_desc(new)}); no expected value")
    return "unverified_change", "; ".join(notes), None


def check_calls(
    function: str,
    old_source: str | Mapping[str, str] | None,
    new_source: str | Mapping[str, str],
    calls: Iterable[LoggedCall | Mapping[str, Any]],
    expectations: Iterable[Expectation] = (),
    config: Config | None = None,
    *,
    budget: int | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    isolation: Isolation = "auto",
    repeat: bool = True,
) -> ReplayReport:
    """Re-run `function`'s calls on the old and new code and give each a verdict.

    `old_source` / `new_source`: a module's text, or path -> text of every
    tool file (`None` old: the function is new). `calls`: `LoggedCall`s or
    dicts in the replay-check format. `expectations`: pins and doctests (others
    are ignored). Budget, timeout and memory default to the config's
    `replay_budget`, `call_timeout` and `memory_mb`.
    """
    budget = budget if budget is not None else (config.replay_budget if config else 200)
    timeout = timeout if timeout is not None else (config.call_timeout if config else 5.0)
    memory_mb = memory_mb if memory_mb is not None else (config.memory_mb if config else 512)
    requested = config.sandbox if (isolation == "auto" and config is not None) else isolation
    mode = resolve_mode(requested)
    require_sandbox(mode)  # refuses (SandboxUnavailable) before anything runs
    cases = _build_cases(function, calls, expectations)
    ordered = sorted(enumerate(cases), key=lambda ic: (_rank(ic[1]), ic[0]))
    chosen = [c for _, c in ordered[: max(0, budget)]]
    report = ReplayReport(
        function=function,
        available=len(cases),
        skipped=max(0, len(cases) - len(chosen)),
        isolation=describe_mode(mode),
    )
    sides: dict[str, list[tuple[CallResult, CallResult | None]]] = {}
    errors: list[BaseException] = []

    def side(name: str, source: str | Mapping[str, str] | None) -> Callable[[], None]:
        def work() -> None:
            try:
                sides[name] = _run_side(
                    _as_sources(source, "tool.py"),
                    function,
                    chosen,
                    timeout=timeout,
                    memory_mb=memory_mb,
                    isolation=mode,
                    repeat=repeat,
                )
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        return work

    threads = [
        threading.Thread(target=side("old", old_source), daemon=True),
        threading.Thread(target=side("new", new_source), daemon=True),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for case, (old1, old2), (new1, new2) in zip(chosen, sides["old"], sides["new"], strict=True):
        exp, choice_note = _choose(case)
        base = ReplayEntry(
            function=function,
            args=case.args,
            old=old1,
            new=new1,
            verdict="unchanged",
            example=case.example,
            logged=case.logged.logged_dict() if case.logged else None,
            refs=case.refs,
            count=max(1, case.count),
        )
        if old2 is not None and not _same(old1, old2):
            base.verdict = "flaky"
            base.note = f"the old code gave two results: {_desc(old1)} / {_desc(old2)}"
        elif new2 is not None and not _same(new1, new2):
            flaky = f"the new code gave two results: {_desc(new1)} / {_desc(new2)}"
            # A run that regresses is a regression, flaky or not: code that fails
            # differently each time (a flood, a deliberate coin toss) must not pass.
            worst = next(
                (
                    (run, *judged)
                    for run in (new1, new2)
                    for judged in [_verdict(old1, run, exp)]
                    if judged[0] in ("regression", "signature_mismatch")
                ),
                None,
            )
            if worst is None:
                base.verdict = "flaky"
                base.note = flaky
            else:
                run, verdict, note, used = worst
                base.new, base.verdict = run, verdict
                base.note = "; ".join(n for n in (choice_note, note, flaky) if n)
                if used is not None:
                    base.expected = used.describe()
                    base.expected_source = used.source
        else:
            verdict, note, used = _verdict(old1, new1, exp)
            base.verdict = verdict
            base.note = "; ".join(n for n in (choice_note, note) if n)
            if used is not None:
                base.expected = used.describe()
                base.expected_source = used.source
        report.entries.append(base)
    return report


# ---------------------------------------------------------------- store and toolset


def logged_calls(store: Any, function: str, limit: int | None = None) -> list[LoggedCall]:
    """The logged calls of `function` from a `TraceStore`, with outcome and task expectations.

    A trace is re-read for its task expectation only when its task has an expected answer.
    """
    out: list[LoggedCall] = []
    task_cache: dict[tuple[str, int, int], tuple[Any, dict[int, str]]] = {}
    for summary, call in store.calls(function):
        if limit is not None and len(out) >= limit:
            break
        expected = None
        if summary.has_expected:
            key = (summary.file, summary.line, summary.ordinal)
            if key not in task_cache:
                try:
                    trace = store.load(summary)
                    task_cache[key] = (trace, task_expectations(trace))
                except Exception:  # a trace that changed on disk gives no task expectation
                    task_cache[key] = (None, {})
            trace, found = task_cache[key]
            for index, answer in found.items():
                if _same_call(trace.tool_calls[index], call):
                    expected = answer
        out.append(
            LoggedCall(
                args=call.arguments,
                result=call.result,
                is_error=call.is_error,
                error_type=call.error_type,
                error_message=call.error_message,
                passed=summary.passed,
                expected=expected,
                has_expected=expected is not None,
                expected_source="task",
                ref=str(summary.ref),
            )
        )
    return out


def _same_call(a: Any, b: Any) -> bool:
    return bool(a.id == b.id and a.name == b.name and a.arguments_raw == b.arguments_raw)


def function_expectations(
    config: Config, function: str, sources: Iterable[tuple[str, str]]
) -> tuple[list[Expectation], list[str]]:
    """Pins of `function` and the doctests in the given (file, text) versions of it."""
    pins, problems = load_pins(pins_path(config), f"{config.state_dir}/expectations.jsonl")
    out = [p for p in pins if p.function == function]
    notes = [str(p) for p in problems]
    seen: set[tuple[str, str | None]] = set()
    for file, text in sources:
        tests, doc_problems = doctest_expectations(text, function, file)
        notes.extend(str(p) for p in doc_problems)
        for t in tests:
            key = ("\n".join([*t.setup, t.example or ""]), t.want)
            if key not in seen:
                seen.add(key)
                out.append(t)
    return out, notes


def planned_files(config: Config, toolset: Any, actions: Sequence[Any]) -> dict[str, str]:
    """The tool files exactly as applying `actions` would leave them.

    The same plan as apply (`toolset.rewrite.plan_actions`): an added function
    lands in the same file, a removal removes, and an action apply would
    refuse raises the same `RewriteError` here, so the check never runs code
    that would not be committed.
    """
    files = dict(toolset.files)
    for change in plan_actions(config, toolset, actions):
        files[change.file] = change.new_text
    return files


def replay_for_actions(
    config: Config, store: Any, toolset: Any, actions: Sequence[Any]
) -> dict[str, Any]:
    """The replay check of an optimizer step's actions, as a proposal's `replay` dict.

    For each revised or added function: up to `replay_budget` logged calls
    from the store, pins and the old version's doctests, run on the toolset's
    files before and after all the actions, planned as apply plans them
    (raises `RewriteError` for a plan apply would refuse).
    """
    new_files = planned_files(config, toolset, actions)
    functions: dict[str, Any] = {}
    problems: list[str] = []
    for action in actions:
        name = action.name
        spec = toolset.functions.get(name)
        calls = logged_calls(store, name, limit=config.replay_budget * 5)
        if action.kind == "remove_function":
            functions[name] = {"function": name, "removed": True, "logged_calls": len(calls)}
            remaining = set(toolset.functions) - {name}
            problems.extend(p for p in orphan_pin_problems(config, remaining) if f"'{name}'" in p)
            continue
        doc_sources = []
        if spec is not None and spec.location is not None:
            file = spec.location.file
            doc_sources.append((file, toolset.files.get(file, "")))
        expectations, notes = function_expectations(config, name, doc_sources)
        problems.extend(notes)
        report = check_calls(
            name,
            dict(toolset.files) if spec is not None else None,
            new_files,
            calls,
            expectations,
            config,
        )
        functions[name] = report.to_dict()
    reports = [f for f in functions.values() if "summary" in f]
    totals: Counter[str] = Counter()
    for f in reports:
        totals.update(f["totals"])
    if reports:
        summary = format_summary(
            totals, sum(f["calls"] for f in reports), sum(f["available"] for f in reports)
        )
        summary += _sandbox_note(describe_mode(resolve_mode(config.sandbox)))
    else:
        summary = "no revised or added function to check"
    return {
        "summary": summary,
        "sandbox": describe_mode(resolve_mode(config.sandbox)),
        "has_regression": any(f["has_regression"] for f in reports),
        "has_expected_regression": any(f["has_expected_regression"] for f in reports),
        "totals": dict(totals),
        "problems": sorted(set(problems)),
        "functions": functions,
    }


def orphan_pin_problems(config: Config, functions: Iterable[str]) -> list[str]:
    """Pins in `.funcforge/expectations.jsonl` whose function no longer exists."""
    pins, _ = load_pins(pins_path(config), f"{config.state_dir}/expectations.jsonl")
    return [str(p) for p in orphan_problems(pins, functions)]


def loads_calls(text: str, file: str) -> tuple[list[LoggedCall], list[str], list[str]]:
    """Parse a replay-check calls file: calls, the `function` named on lines, problems (file:line)."""
    calls: list[LoggedCall] = []
    names: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("a call must be a JSON object")
            calls.append(LoggedCall.from_dict(obj, ref=f"{file}:{number}"))
            name = obj.get("function") or obj.get("name")
            names.append(name if isinstance(name, str) else "")
        except (json.JSONDecodeError, ValueError) as exc:
            problems.append(f"{file}:{number}: skipped: {exc}")
    return calls, names, problems
