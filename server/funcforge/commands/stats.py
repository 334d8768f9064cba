"""`funcforge stats [PATH] [--json]`: per-tool and per-version evidence from the logged traces.

PATH is a folder of the workspace (default: the current folder; the workspace
is found upward from it, docs/cli.md), or one trace file to read with the
configuration of the workspace it is in (else the current folder's). Tools of the toolset that no
trace called are listed with 0 calls; tools seen only in traces have no file.
Malformed trace lines are listed (file:line and reason) and never fatal.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from funcforge.config import Config, load_config
from funcforge.errors import UserError
from funcforge.sandbox_os import describe_mode, resolve_mode
from funcforge.toolset.toolset import Toolset, load_toolset
from funcforge.traces.store import UNVERSIONED, ToolStats, TraceStore, VersionStats

MALFORMED_SHOWN = 10  # in the table; --json lists them all


@dataclass
class ToolRow:
    """One line of the tools table: a tool's location (if in the toolset) and its evidence."""

    name: str
    file: str | None
    line: int | None
    stats: ToolStats


def _workspace(path: str) -> Config:
    from funcforge.workspace import current_folder, find_workspace, workspace_root

    target = Path(path)
    if target.is_dir():
        return load_config(workspace_root(target))
    if target.is_file():
        # One trace file, with the configuration of the workspace it is in, else of the
        # workspace of the current folder.
        here = target.resolve().parent
        found = find_workspace(here)
        if found is None:
            found = workspace_root(current_folder())
        elif found != current_folder().resolve():
            print(f"funcforge: workspace {found} (found from {here})", file=sys.stderr)
        config = load_config(found)
        only = glob.escape(str(target.resolve()))  # a literal path, even with [ or * in it
        return replace(config, traces=[only], formats=dict(config.formats))
    raise UserError(f"{path}: no such folder or file (PATH is the workspace root or a trace file)")


def tool_rows(toolset: Toolset, stats: dict[str, ToolStats]) -> list[ToolRow]:
    """The toolset's tools in file order (0 calls when never logged), then tools only in traces."""
    rows = []
    specs = sorted(
        toolset.functions.values(),
        key=lambda f: (f.location.file, f.location.start_line) if f.location else ("", 0),
    )
    for spec in specs:
        loc = spec.location
        rows.append(
            ToolRow(
                spec.name,
                loc.file if loc else None,
                loc.start_line if loc else None,
                stats.get(spec.name) or ToolStats(spec.name),
            )
        )
    for name in sorted(set(stats) - set(toolset.functions)):
        rows.append(ToolRow(name, None, None, stats[name]))
    return rows


def version_rows(versions: dict[str, VersionStats]) -> list[VersionStats]:
    """Versions in the order they were first seen (by trace time), unversioned last."""
    return sorted(
        versions.values(),
        key=lambda v: (v.version == UNVERSIONED, v.first_time or "", v.version),
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def to_json(config: Config, toolset: Toolset, store: TraceStore) -> dict[str, Any]:
    """The `--json` document."""
    tools = []
    for row in tool_rows(toolset, store.tool_stats()):
        s = row.stats
        spec = toolset.functions.get(row.name) if row.file else None
        tools.append(
            {
                "name": row.name,
                "file": row.file,
                "line": row.line,
                # What the model is sent for this tool, and what its schema could not say.
                "definition": spec.to_openai_tool() if spec else None,
                "schema_hints": list(spec.schema_hints) if spec else [],
                "calls": s.calls,
                "errors": s.errors,
                "error_types": dict(s.error_types.most_common()),
                "pass_rate": s.pass_rate,
                "traces": s.traces,
                "tasks": s.tasks,
                "examples": {k: [str(r) for r in v] for k, v in s.examples.items()},
            }
        )
    versions = [
        {
            "version": None if v.version == UNVERSIONED else v.version,
            "split": split,
            "traces": v.n,
            "mean_score": v.mean_score,
            "scored": v.scored,
            "passed": v.passed,
            "judged": v.judged,
            "first_time": v.first_time,
            "last_time": v.last_time,
        }
        for split, which in (("train", "learnable"), ("test", "held_out"))
        for v in version_rows(store.version_stats(which))  # type: ignore[arg-type]
    ]
    return {
        "config": {
            "source": str(config.source) if config.source else None,
            "warnings": config.warnings,
        },
        "sandbox": describe_mode(resolve_mode(config.sandbox)),
        "traces": len(store),
        # Tool statistics are of the train split; held-out (test) traces appear per version.
        "held_out_traces": store.count("held_out"),
        "statistics_split": "train",
        "files": [f.file for f in store.files()],
        "tools": tools,
        "versions": versions,
        "malformed": [
            {"file": m.file, "line": m.line, "reason": m.reason} for m in store.malformed
        ],
        "problems": [
            {"file": p.file, "line": p.line, "message": p.message} for p in toolset.problems
        ],
    }


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [fmt(headers), *(fmt(r) for r in rows)]


def render_text(config: Config, toolset: Toolset, store: TraceStore) -> str:
    """The human-readable report: configuration, tools table, versions table, malformed lines."""
    out = [config.describe_source()]
    if resolve_mode(config.sandbox) == "process":
        out.append(f"sandbox: {describe_mode('process')}: tool code runs without bubblewrap")
    files = store.files()
    malformed = store.malformed
    out.append(
        f"traces: {len(store)} in {len(files)} file{'s' if len(files) != 1 else ''}"
        f" ({', '.join(config.traces)}); {len(malformed)} malformed line"
        f"{'s' if len(malformed) != 1 else ''} skipped"
    )
    held = store.count("held_out")
    if held:
        out.append(
            f"statistics below are of the {len(store) - held} train-split traces; {held} "
            'held-out traces (split "test") are never learned from, only scored per version'
        )
    out.append("")
    rows = []
    for row in tool_rows(toolset, store.tool_stats()):
        s = row.stats
        top = s.top_error
        rows.append(
            [
                row.name,
                f"{row.file}:{row.line}" if row.file else "(not in toolset)",
                str(s.calls),
                str(s.errors),
                _pct(s.error_rate) if s.calls else "-",
                f"{top[0]} ({top[1]})" if top else "-",
                _pct(s.pass_rate),
            ]
        )
    if rows:
        headers = ["tool", "where", "calls", "errors", "error rate", "top error", "pass rate"]
        out.extend(_table(headers, rows, right={2, 3, 4, 6}))
    else:
        out.append(f"no tools found (tools: {', '.join(config.tools)}) and no tool calls logged")
    versions = [(v, "train") for v in version_rows(store.version_stats())] + [
        (v, "test") for v in version_rows(store.version_stats("held_out"))
    ]
    if versions:
        out.append("")
        vrows = [
            [
                "(none)" if v.version == UNVERSIONED else v.version,
                split,
                str(v.n),
                "-" if v.mean_score is None else f"{v.mean_score:.2f}",
                f"{v.passed}/{v.judged}" if v.judged else "-",
                v.first_time or "-",
                v.last_time or "-",
            ]
            for v, split in versions
        ]
        headers = ["version", "split", "traces", "mean score", "passed", "first", "last"]
        out.extend(_table(headers, vrows, right={2, 3, 4}))
    if malformed:
        out.append("")
        shown = malformed[:MALFORMED_SHOWN]
        more = f" (first {len(shown)}; --json lists all)" if len(malformed) > len(shown) else ""
        out.append(f"malformed trace lines{more}:")
        out.extend(f"  {m}" for m in shown)
    if toolset.problems:
        out.append("")
        out.append("tool files with problems (their other tools are still listed):")
        out.extend(f"  {p}" for p in toolset.problems)
    gaps = [
        f"  {spec.location.file}:{spec.location.name_line}: {spec.name}: {hint}"
        for spec in toolset.functions.values()
        if spec.location is not None
        for hint in spec.schema_hints
    ]
    if gaps:
        out.append("")
        out.append("tool schemas with gaps (the model is not told these types):")
        out.extend(sorted(gaps))
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    config = _workspace(args.path)
    for warning in config.warnings:
        print(f"funcforge: warning: {warning}", file=sys.stderr)
    toolset = load_toolset(config)
    store = TraceStore(config)
    store.refresh(final=True)
    if args.json:
        print(json.dumps(to_json(config, toolset, store), indent=2, ensure_ascii=False))
    else:
        print(render_text(config, toolset, store))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "stats",
        help="per-tool calls, errors and pass rates, and per-version scores, from the traces",
    )
    p.add_argument(
        "path",
        nargs="?",
        default=".",
        help="a folder of the workspace (default: .; the workspace is found upward), "
        "or one trace file",
    )
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=run)
