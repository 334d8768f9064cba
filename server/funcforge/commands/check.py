"""`funcforge replay-check | check | pin`: evidence for an edit, and expected results to check it by.

- `replay-check --old FILE --new FILE --calls FILE.jsonl`: the replay check as
  a plain tool over one function's two versions and a file of calls;
- `check [PATH]`: each tool function changed in the working tree against its
  committed version, on the logged calls, pins and doctests (a commit or CI gate);
- `pin [PATH] --function F --args JSON (--expected JSON | --expected-error TYPE)`.

Exit status (errors.py, docs/cli.md): 1 when a regression (or signature
mismatch, or a tool file that no longer loads) is found, 2 when the check could
not run, 0 otherwise. `check --base REF [--head REF] --format
text|json|sarif|junit` serves CI (docs/ci.md). Tool code runs only in the sandbox.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funcforge.commands import PATH_HELP
from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.fsutil import clean_text, dumps
from funcforge.sandbox_os import describe_mode, resolve_mode

if TYPE_CHECKING:
    from funcforge.optimizer.expectations import Expectation

# How entries are listed: the most important first.
_ORDER = (
    "regression",
    "signature_mismatch",
    "still_failing",
    "verified_fix",
    "unverified_change",
    "flaky",
    "unchanged",
)


def _bad_input(message: str) -> UserError:
    return UserError(message, exit_code=2)


def _config(path: str) -> Config:
    from funcforge.workspace import open_config

    return open_config(path)


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _bad_input(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _bad_input(f"{path}: the {what} is not UTF-8 text: {exc.reason}") from None


def _top_functions(source: str, file: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise _bad_input(f"{file}:{exc.lineno or 0}: does not parse: {exc.msg}") from None
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _print_report(report: Any, show_all: bool, out: Any = sys.stdout) -> None:
    out = _SafeOut(out)
    print(f"{report.function}: {report.summary}", file=out)
    entries = sorted(report.entries, key=lambda e: _ORDER.index(e.verdict))
    hidden = 0
    for e in entries:
        if e.verdict == "unchanged" and not show_all:
            hidden += 1
            continue
        print(f"  {e.verdict:<18} {e.call_text()}", file=out)
        detail = [f"old: {e.old.short(50)}" if e.old else "old: -", f"new: {e.new.short(50)}"]
        if e.expected_source:
            detail.append(f"expected: {e.expected} ({e.expected_source})")
        print(f"  {'':<18} " + " · ".join(detail), file=out)
        if e.note:
            print(f"  {'':<18} {e.note}", file=out)
        if e.refs:
            print(f"  {'':<18} at {', '.join(e.refs[:3])}", file=out)
    if hidden:
        print(f"  ({hidden} unchanged calls not shown; --all shows them)", file=out)
    totals = ", ".join(f"{k} {v}" for k, v in report.totals.items() if v)
    print(f"  totals: {totals or 'no calls'}", file=out)


class _SafeOut:
    """A text stream wrapper that escapes lone surrogates (logged arguments may hold them)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return int(self.stream.write(clean_text(text)))

    def flush(self) -> None:
        self.stream.flush()


def _warn(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"funcforge: warning: {line}", file=sys.stderr)


# ---------------------------------------------------------------- replay-check


def _replay_check(args: argparse.Namespace) -> int:
    from funcforge.optimizer.expectations import doctest_expectations
    from funcforge.optimizer.replay import check_calls, loads_calls

    old = _read(args.old, "old source")
    new = _read(args.new, "new source")
    calls, names, problems = loads_calls(_read(args.calls, "calls file"), args.calls)
    _warn(problems)
    function = args.function or _pick_function(names, old, new, args)
    if function not in _top_functions(new, args.new):
        raise _bad_input(f"{args.new}: defines no top-level function '{function}'")
    old_source: str | None = old if function in _top_functions(old, args.old) else None
    expectations: list[Expectation] = []
    for file, text in ((args.old, old), (args.new, new)):
        docs, doc_problems = doctest_expectations(text, function, file)
        _warn(str(p) for p in doc_problems)
        known = {(d.example, d.want, tuple(d.setup)) for d in expectations}
        expectations.extend(d for d in docs if (d.example, d.want, tuple(d.setup)) not in known)
    report = check_calls(
        function,
        old_source,
        new,
        calls,
        expectations,
        budget=args.budget,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        isolation=args.sandbox,
    )
    if args.json:
        print(dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, args.all)
    return 1 if report.has_regression else 0


def _pick_function(names: list[str], old: str, new: str, args: argparse.Namespace) -> str:
    named = {n for n in names if n}
    if len(named) == 1:
        return named.pop()
    if len(named) > 1:
        raise _bad_input(f"{args.calls}: calls of several functions; pass --function NAME")
    in_new = _top_functions(new, args.new)
    if len(in_new) == 1:
        return in_new[0]
    common = [n for n in in_new if n in _top_functions(old, args.old)]
    if len(common) == 1:
        return common[0]
    raise _bad_input(
        f"{args.new}: defines {len(in_new)} functions ({', '.join(in_new) or 'none'}); "
        "pass --function NAME"
    )


# ---------------------------------------------------------------- check


def _check(args: argparse.Namespace) -> int:
    from funcforge.history.git import open_repo
    from funcforge.history.gitops import workspace_prefix
    from funcforge.optimizer.handcheck import check_hand_edits
    from funcforge.review.findings import failed, findings_of
    from funcforge.toolset.toolset import load_toolset
    from funcforge.traces.store import TraceStore

    config = _config(args.path)
    fmt = "json" if args.json else args.format
    if args.base is None and args.head is None:
        args.base, args.head = _pre_commit_refs()
    base = args.base or "HEAD"
    if config.source is None:
        _refuse_nested_changes(config, base, args.head)
    if args.head:
        from funcforge.review.refs import toolset_at

        toolset = toolset_at(config, args.head)
    else:
        toolset = load_toolset(config)
    store = TraceStore(config)
    store.refresh()
    result = check_hand_edits(config, toolset, store, args.function, base=base)
    findings = findings_of(result, toolset)
    code = 1 if (result.failed or failed(findings)) else 0
    if args.head:
        against = f"between {base} and {args.head}"
    else:
        against = f"since {base}"
    if fmt == "sarif":
        from funcforge.review.sarif import sarif_log

        with open_repo(config) as repo:
            prefix = workspace_prefix(repo, config)
        _emit(dumps(sarif_log(findings, prefix, base, args.head), indent=2), args.output)
        return code
    if fmt == "junit":
        from funcforge.review.junit import junit_xml

        with open_repo(config) as repo:
            prefix = workspace_prefix(repo, config)
        _emit(
            junit_xml(findings, result.changed, prefix, f"no tool function changed {against}"),
            args.output,
        )
        return code
    if fmt == "json":
        _emit(
            dumps(
                {
                    "base": base,
                    "head": args.head,
                    "functions": {r.function: r.to_dict() for r in result.reports},
                    "sandbox": describe_mode(resolve_mode(config.sandbox)),
                    "removed": result.removed,
                    "problems": sorted(set(result.notes)),
                    "findings": [f.to_dict() for f in findings],
                    "has_regression": bool(code),
                },
                indent=2,
            ),
            args.output,
        )
        return code
    _warn(sorted(set(result.notes)))
    out = io.StringIO()
    if not result.changed and not result.removed:
        print(f"no tool function changed {against} in {config.root}", file=out)
    for name in result.removed:
        print(f"{name}: removed {against}", file=out)
    for report in result.reports:
        _print_report(report, args.all, out)
    if result.broken:
        print(
            "tool files that no longer load: " + "; ".join(str(p) for p in result.broken),
            file=out,
        )
    _emit(out.getvalue().rstrip("\n"), args.output)  # text honours --output like the others
    return code


def _refuse_nested_changes(config: Config, base: str, head: str | None) -> None:
    """An unconfigured workspace whose changes are in configured workspaces below it: exit 2.

    The pre-commit hook runs `funcforge check` at the repository root. In a
    monorepo whose workspaces are subfolders, the root is no workspace: the
    check looked at no tool file and passed every commit, regressions too.
    Checking the wrong folder is "could not run", with the line that fixes it.
    """
    from funcforge.history.git import open_repo
    from funcforge.history.gitops import run_git, work_tree
    from funcforge.workspace import current_folder, find_workspace

    with open_repo(config) as repo:
        top = work_tree(repo)
        revs = [base, head] if head else [base]
        out = run_git(repo, "diff", "--name-only", "-z", "--no-renames", *revs, "--", check=False)
    root = Path(config.root).resolve()
    nested: set[Path] = set()
    for name in filter(None, out.split("\0")):
        folder = (top / name).parent
        if folder != root and root not in folder.parents:
            continue
        found = find_workspace(folder)
        if found is not None and found != root:
            nested.add(found)
    if not nested:
        return
    names = sorted(os.path.relpath(n, current_folder()) for n in nested)
    against = f"between {base} and {head}" if head else f"since {base}"
    raise UserError(
        f"{root} is not a funcforge workspace (no funcforge.toml or [tool.funcforge]), and the "
        f"files changed {against} are in the workspace(s) {', '.join(names)}: name one as PATH "
        f"(`funcforge check {names[0]}`; the pre-commit hook: `args: [{names[0]}]`)"
    )


def _pre_commit_refs() -> tuple[str | None, str | None]:
    """The refs pre-commit names when it checks a range: (from, to), else (None, None).

    pre-commit sets PRE_COMMIT_FROM_REF and PRE_COMMIT_TO_REF in the pre-push
    stage (and for `pre-commit run --from-ref A --to-ref B`). There the working
    tree is HEAD, so comparing it with HEAD would check nothing and let a
    regression through; the pushed range is what to check.
    """
    start = os.environ.get("PRE_COMMIT_FROM_REF", "").strip()
    end = os.environ.get("PRE_COMMIT_TO_REF", "").strip()
    if start and end:
        return start, end
    return None, None


def _emit(text: str, output: str | None) -> None:
    """Print, or write to `--output FILE` (CI uploads it; the exit code still says the verdict)."""
    if not output:
        print(text)
        return
    from funcforge.fsutil import write_output

    try:
        write_output(Path(output), text + "\n")
    except OSError as exc:
        raise UserError(f"{output}: cannot write the report: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- pin


def _json_arg(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad_input(
            f"{flag}: not valid JSON ({exc.msg} at column {exc.colno}): {text}"
        ) from None


def _pin(args: argparse.Namespace) -> int:
    from funcforge.optimizer.expectations import add_pin
    from funcforge.toolset.toolset import load_toolset

    config = _config(args.path)
    call_args = _json_arg(args.args, "--args")
    if not isinstance(call_args, dict):
        raise _bad_input("--args: must be a JSON object such as '{\"x\": 1}'")
    functions = load_toolset(config).functions
    if args.function not in functions:
        known = ", ".join(sorted(functions)) or "none"
        raise _bad_input(f"no tool function '{args.function}' in {config.root} (tools: {known})")
    expected = _json_arg(args.expected, "--expected") if args.expected is not None else None
    problem = _does_not_bind(functions[args.function].code, call_args)
    if problem:
        raise _bad_input(f"--args do not fit {args.function}: {problem}")
    if args.expected is not None:
        pin = add_pin(config, args.function, call_args, expected=expected)
    else:
        pin = add_pin(config, args.function, call_args, expected_error=args.expected_error)
    if args.json:
        print(json.dumps(pin.to_dict(), ensure_ascii=False))
    else:
        print(f"pinned {args.function}({json.dumps(call_args)}) -> {pin.describe()} at {pin.where}")
    return 0


def _does_not_bind(code: str, call_args: dict[str, Any]) -> str | None:
    """Why `f(**call_args)` would not bind to the function in `code`, read from its AST.

    A pin whose arguments cannot bind fails with TypeError under every version,
    so it pins nothing; say so when it is made. Nothing is executed. A
    decorated function may change its signature: not judged (None).
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    fn = next(
        (n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None
    )
    if fn is None or fn.decorator_list:
        return None
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaulted = {p.arg for p in positional[len(positional) - len(a.defaults) :]}
    defaulted |= {p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d}
    posonly = {p.arg for p in a.posonlyargs}
    by_keyword = [p.arg for p in [*a.args, *a.kwonlyargs]]
    missing = [p.arg for p in a.posonlyargs if p.arg not in defaulted]
    if missing:
        return f"{', '.join(missing)} is positional-only, and pinned calls pass keywords"
    if a.kwarg is None:
        unknown = [k for k in call_args if k not in by_keyword or k in posonly]
        if unknown:
            known = ", ".join(by_keyword) or "none"
            return f"no parameter {', '.join(repr(k) for k in unknown)} (parameters: {known})"
    missing = [n for n in by_keyword if n not in defaulted and n not in call_args]
    if missing:
        return "missing " + ", ".join(repr(n) for n in missing)
    return None


# ---------------------------------------------------------------- registration


def register(sub: Any) -> None:
    r = sub.add_parser(
        "replay-check",
        help="re-run one function's calls on its old and new source; a verdict per call",
    )
    r.add_argument("--old", required=True, metavar="FILE", help="the old version's source")
    r.add_argument("--new", required=True, metavar="FILE", help="the new version's source")
    r.add_argument(
        "--calls",
        required=True,
        metavar="FILE.jsonl",
        help='one call per line: {"args": {...}, "result" or "error", "expected"?, "passed"?}',
    )
    r.add_argument("--function", metavar="NAME", help="the function (when not obvious)")
    r.add_argument("--budget", type=int, default=200, help="most calls to run (default 200)")
    r.add_argument("--timeout", type=float, default=5.0, help="seconds per call (default 5)")
    r.add_argument("--memory-mb", type=int, default=512, help="memory limit (default 512)")
    r.add_argument(
        "--sandbox",
        choices=("bwrap", "process"),
        default="bwrap",
        help='where tool code runs: bwrap (default, the OS sandbox) or "process" (weaker; '
        "see docs/sandbox.md)",
    )
    r.add_argument("--all", action="store_true", help="also list unchanged calls")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(func=_replay_check)

    c = sub.add_parser(
        "check",
        help="replay-check changed tool functions on logged calls (a CI gate: exit 1 on a "
        "regression, 2 when it could not run)",
    )
    c.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    c.add_argument("--function", metavar="NAME", help="check only this function (even unchanged)")
    c.add_argument(
        "--base",
        metavar="REF",
        help="the version to compare with: any commit, branch or tag (default HEAD; in a pull "
        "request, e.g. origin/main)",
    )
    c.add_argument(
        "--head",
        metavar="REF",
        help="compare this commit instead of the working tree (read from git, nothing checked out)",
    )
    c.add_argument(
        "--format",
        choices=("text", "json", "sarif", "junit"),
        default="text",
        help="text (default), json, sarif (SARIF 2.1.0 for code scanning) or junit (XML)",
    )
    c.add_argument(
        "--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout"
    )
    c.add_argument("--all", action="store_true", help="also list unchanged calls")
    c.add_argument("--json", action="store_true", help="the same as --format json")
    c.set_defaults(func=_check)

    p = sub.add_parser("pin", help="pin a call's expected result in .funcforge/expectations.jsonl")
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument("--function", required=True, metavar="NAME", help="the tool function")
    p.add_argument("--args", required=True, metavar="JSON", help="the call's arguments (object)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--expected", metavar="JSON", help="the expected result, as JSON")
    what.add_argument("--expected-error", metavar="TYPE", help="the expected exception type")
    p.add_argument("--json", action="store_true", help="print the pin as JSON")
    p.set_defaults(func=_pin)
