"""`funcforge mcp [PATH]`: serve the workspace's tools over MCP (stdio) for any agent.

Each tool is listed with its description and JSON Schema from its
FunctionSpec; each call runs in the sandbox and is appended to the
workspace's traces (`--traces FILE`, default `traces/mcp-calls.jsonl`;
`--no-traces` to keep no record). See docs/mcp.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from funcforge.commands import PATH_HELP


def _mcp(args: argparse.Namespace) -> int:
    from funcforge.paths import matches
    from funcforge.toolserver import DEFAULT_TRACE_FILE, ToolServer
    from funcforge.workspace import open_config

    config = open_config(args.path)
    trace_file: Path | None = None
    if not args.no_traces:
        trace_file = Path(args.traces) if args.traces else config.root / DEFAULT_TRACE_FILE
        if not trace_file.is_absolute():
            trace_file = config.root / trace_file
        try:
            rel = trace_file.resolve().relative_to(config.root).as_posix()
        except ValueError:
            rel = None
        if rel is None or not matches(config.traces, rel):
            print(
                f"funcforge mcp: warning: {trace_file} is not matched by the workspace's "
                f"traces globs ({', '.join(config.traces)}): its calls will not show as evidence",
                file=sys.stderr,
            )
    tools = ToolServer(config, trace_file=trace_file)
    print(
        f"funcforge mcp: serving {len(tools.specs())} tools of {config.root} "
        f"(sandbox: {tools.sandbox}; traces: {trace_file or 'not logged'})",
        file=sys.stderr,
    )
    from funcforge.mcp_server import serve_stdio

    try:
        serve_stdio(tools)
    finally:
        tools.close()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mcp", help="serve the workspace's tools over MCP (stdio); calls run in the sandbox"
    )
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument(
        "--traces",
        metavar="FILE",
        help="append each call to this trace file, relative to the workspace root like "
        "the default (traces/mcp-calls.jsonl)",
    )
    p.add_argument("--no-traces", action="store_true", help="do not log the calls")
    p.set_defaults(func=_mcp)
