"""A function-calling agent whose tools come from `funcforge mcp` (OpenAI SDK + official MCP SDK).

    OPENAI_API_KEY=... python examples/mcp_agent.py WORKSPACE "What is 3/4 + 1/8?"
        [--model gpt-4o-mini] [--base-url URL]

A local endpoint (`--base-url http://127.0.0.1:8080/v1`, or OPENAI_BASE_URL)
needs no key, as in funcforge itself: local servers take any.

The agent never imports the workspace's tool code: it starts `funcforge mcp
WORKSPACE` as an MCP stdio server (the official `mcp` SDK's client), hands the
model the tools that server lists (name, description, JSON Schema from the
FunctionSpecs), and sends each tool call the model makes to the server, which
runs it in funcforge's OS sandbox and appends it to the workspace's traces as
evidence. The same server works with any MCP-capable framework (see
docs/mcp.md for the OpenAI Agents SDK's `MCPServerStdio`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from openai import OpenAI

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def api_key(base_url: str | None) -> str:
    """OPENAI_API_KEY, or a placeholder for a server on this machine (which takes any key)."""
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if key:
        return key
    if (urlsplit(base_url or "").hostname or "").lower() in LOCAL_HOSTS:
        return "local"
    raise SystemExit(
        "mcp_agent.py: OPENAI_API_KEY is not set: export it, or pass --base-url of a "
        "local OpenAI-compatible server (e.g. http://127.0.0.1:8080/v1), which needs none"
    )


async def solve(workspace: str, question: str, model: str, base_url: str | None, key: str) -> str:
    client = OpenAI(api_key=key, base_url=base_url)
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "funcforge", "mcp", workspace]
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        tools: list[Any] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description or "",
                    "parameters": t.input_schema,
                },
            }
            for t in listed.tools
        ]
        messages: list[Any] = [
            {"role": "system", "content": "Use the tools to compute; answer briefly."},
            {"role": "user", "content": question},
        ]
        for _ in range(8):
            reply = client.chat.completions.create(model=model, messages=messages, tools=tools)
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return message.content or ""
            for call in message.tool_calls:
                result = await session.call_tool(
                    call.function.name, json.loads(call.function.arguments or "{}")
                )
                text = "".join(getattr(c, "text", "") for c in result.content)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    return "(no answer within 8 turns)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace")
    parser.add_argument("question")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL") or None)
    args = parser.parse_args()
    key = api_key(args.base_url)  # before any work: a missing key is said, not a traceback
    print(anyio.run(solve, args.workspace, args.question, args.model, args.base_url, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
