"""`funcforge import FILE... --out FILE.jsonl`: traces from other tools, as native JSON Lines.

Each input's format is detected from its content (OTLP JSON Lines with GenAI
or OpenInference spans, OpenAI Responses items or Agents SDK exports, AG2's
runtime-logging SQLite database, autogen-agentchat dumps, OpenAI chat
messages, native), unless `--format` names one or `[tool.funcforge] formats`
maps the file's path to one. `--outcomes` joins an outcome sidecar. Records
that cannot be read are reported as `file:line: reason` and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from funcforge.config import load_config
from funcforge.errors import UserError
from funcforge.fsutil import write_output
from funcforge.traces.formats import (
    Malformed,
    TraceFormat,
    all_formats,
    detect,
    get_format,
)
from funcforge.traces.model import MalformedTrace, SourceRef, Trace
from funcforge.traces.outcomes import load_outcomes

HEAD_BYTES = 64 * 1024


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import",
        help="convert traces logged by other tools to funcforge's native JSON Lines",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="trace files to import")
    parser.add_argument(
        "--out", required=True, metavar="FILE.jsonl", help="where to write ('-' for stdout)"
    )
    parser.add_argument(
        "--format",
        metavar="NAME",
        help="read every FILE in this format instead of detecting it "
        f"({', '.join(f.name for f in all_formats())})",
    )
    parser.add_argument(
        "--outcomes", metavar="FILE", help="outcome sidecar (trace_id/task_id, score, passed)"
    )
    parser.add_argument(
        "--root",
        default=".",
        metavar="PATH",
        help="the workspace or a folder in it, for [tool.funcforge] formats and relative "
        "paths (default: .; the workspace is found upward as for every command's PATH)",
    )
    parser.set_defaults(func=run)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def read_lines(fmt: TraceFormat, path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """A line-based format's traces, record by record; bad lines become `Malformed`."""
    assert fmt.parse_record is not None
    data = path.read_bytes()
    lines = data.split(b"\n")
    offset = 0
    for n, raw in enumerate(lines, 1):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            yield Malformed(rel, n, "invalid UTF-8")
            continue
        except ValueError as exc:
            if n == len(lines):
                yield Malformed(rel, n, "unfinished last line (truncated: no newline at the end)")
            else:
                yield Malformed(rel, n, f"bad JSON: {getattr(exc, 'msg', exc)}")
            continue
        except RecursionError:
            yield Malformed(rel, n, "bad JSON: nested too deeply")
            continue
        try:
            yield from fmt.parse_record(obj, SourceRef(rel, n, start))
        except MalformedTrace as exc:
            yield Malformed(rel, n, str(exc))
        except Exception as exc:  # a format's bug must not stop the import
            yield Malformed(rel, n, f"{type(exc).__name__}: {exc}")


def read_file(fmt: TraceFormat, path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """Every trace of a file in `fmt`, and what was skipped."""
    if fmt.line_based:
        yield from read_lines(fmt, path, rel)
        return
    assert fmt.parse_file is not None
    try:
        yield from fmt.parse_file(path, rel)
    except Exception as exc:  # a format's bug must not stop the import
        yield Malformed(rel, 1, f"{type(exc).__name__}: {exc}")


def _format_of(
    path: Path, rel: str, forced: TraceFormat | None, overrides: dict[str, str]
) -> TraceFormat:
    if forced is not None:
        return forced
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    if not head.strip():
        raise UserError(f"{path}: empty file, nothing to import")
    fmt = detect(path, head, overrides, rel)
    if fmt is None:
        known = ", ".join(f.name for f in all_formats())
        raise UserError(
            f"{path}: unknown trace format; name it with --format ({known}) "
            "or in [tool.funcforge] formats"
        )
    return fmt


def native_line(trace: Trace, fmt: TraceFormat) -> str:
    """The native JSON Lines record of an imported trace, saying where it came from."""
    obj = trace.to_native()
    if trace.source is not None:
        obj.setdefault("source", str(trace.source))
    obj.setdefault("source_format", fmt.name)
    return json.dumps(obj, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    from funcforge.workspace import workspace_root

    if not Path(args.root).is_dir():
        raise UserError(f"{args.root}: no such folder (--root is the workspace root)")
    root = workspace_root(args.root)  # found upward, as for every command's PATH
    config = load_config(root)
    forced = get_format(args.format) if args.format else None
    paths = [Path(f) for f in args.files]
    out_path = None if args.out == "-" else Path(args.out)
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if out_path is not None and out_path.exists() and path.resolve() == out_path.resolve():
            raise UserError(f"{path}: --out would overwrite an input file")
    outcomes = None
    if args.outcomes:
        sidecar = Path(args.outcomes)
        if not sidecar.is_file():
            raise UserError(f"{sidecar}: no such file (--outcomes)")
        outcomes = load_outcomes(sidecar, str(sidecar))
    formats = [(p, _rel(p, root)) for p in paths]
    chosen = [_format_of(p, rel, forced, config.formats) for p, rel in formats]
    lines: list[str] = []
    skipped: list[Malformed] = list(outcomes.malformed) if outcomes else []
    calls = failed = joined = 0
    for (path, rel), fmt in zip(formats, chosen, strict=True):
        count = 0
        for item in read_file(fmt, path, rel):
            if isinstance(item, Malformed):
                skipped.append(item)
                continue
            if outcomes is not None and outcomes.apply(item):
                joined += 1
            lines.append(native_line(item, fmt))
            calls += len(item.tool_calls)
            failed += sum(1 for c in item.tool_calls if c.is_error)
            count += 1
        print(f"{rel}: {fmt.name}, {count} trace(s)", file=sys.stderr)
    for bad in skipped:
        print(f"funcforge: skipped {bad}", file=sys.stderr)
    if outcomes is not None:
        for row in outcomes.unused():
            print(f"funcforge: warning: {row}", file=sys.stderr)
    if not lines:
        raise UserError("no traces found in the given files; nothing written")
    text = "\n".join(lines) + "\n"
    if out_path is None:
        sys.stdout.write(text)
    else:
        write_output(out_path, text)
    where = "stdout" if out_path is None else str(out_path)
    summary = f"imported {len(lines)} trace(s), {calls} tool call(s) ({failed} failed) -> {where}"
    if outcomes is not None:
        summary += f"; outcomes joined for {joined}"
    if skipped:
        summary += f"; {len(skipped)} record(s) skipped"
    print(summary, file=sys.stderr)
    return 0
