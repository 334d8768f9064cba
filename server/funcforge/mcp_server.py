"""`funcforge mcp`: a `ToolServer` spoken as MCP with the official `mcp` SDK.

`build_server(tools)` makes the SDK's low-level `Server` whose `tools/list`
answers the FunctionSpecs' definitions and whose `tools/call` runs the call in
the sandbox (in a thread, so a slow tool never blocks other requests) and
answers the tool message text, the JSON value as `structuredContent`
(`{"result": value}`) and `isError`. `serve_stdio` runs it over this
process's stdin/stdout; `serve_streams` over any pair of text files (the
trainer's per-run socket, see `training/mcp_host.py`).
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from funcforge import __version__
from funcforge.toolserver import ToolServer, parse_arguments, result_payload, tool_definition


def build_server(tools: ToolServer) -> Server[Any]:
    """The SDK server for `tools`."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        specs = await anyio.to_thread.run_sync(tools.specs)
        return types.ListToolsResult(
            tools=[types.Tool.model_validate(tool_definition(s)) for s in specs]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            args = parse_arguments(params.arguments)
        except ValueError as exc:
            return types.CallToolResult.model_validate(
                {
                    "content": [{"type": "text", "text": f"Error: ValueError: {exc}"}],
                    "isError": True,
                }
            )
        # Abandoned on cancel: a client that goes away mid-call ends the session now,
        # not when a hanging tool's timeout fires (the worker is killed at exit or close).
        outcome = await anyio.to_thread.run_sync(
            tools.call, params.name, args, abandon_on_cancel=True
        )
        return types.CallToolResult.model_validate(result_payload(outcome.result))

    return Server(
        "funcforge",
        version=__version__,
        instructions=(
            "The tools of a funcforge workspace; every call runs in an OS sandbox "
            f"({tools.sandbox}) and is logged as evidence."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_streams(tools: ToolServer, stdin: Any = None, stdout: Any = None) -> None:
    """Serve one MCP session over `stdin`/`stdout` (anyio text files; default: this process's)."""
    server = build_server(tools)
    async with stdio_server(stdin, stdout) as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve_stdio(tools: ToolServer) -> None:
    """Serve MCP over stdio until the client closes it."""
    anyio.run(serve_streams, tools)
