"""`funcforge mcp` through the official SDK's own client over stdio: list, call, hang, crash, log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from funcforge.config import load_config
from funcforge.toolserver import WALK_INTERVAL
from funcforge.traces.store import TraceStore

TOOLS = '''
def add(a: int, b: int = 1) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def hang(seconds: float) -> None:
    """Never returns."""
    while True:
        pass


def crash() -> None:
    """Ends its own process."""
    import os

    os._exit(7)


def weird() -> str:
    """A lone surrogate and a huge string."""
    return "a\\ud800" + "x" * 300_000


def secret() -> dict:
    """What the tool can see of the host."""
    import os

    return {"env": dict(os.environ), "home": os.path.exists(os.path.expanduser("~/.ssh"))}
'''

SECRET = "sk-mcp-test-secret-0123456789"


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "tools.py").write_text(TOOLS, encoding="utf-8")
    (ws / "pyproject.toml").write_text("[tool.funcforge]\ncall_timeout = 2\n", encoding="utf-8")
    return ws


def serve(ws: Path, *extra: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "funcforge", "mcp", str(ws), *extra],
        env={"OPENAI_API_KEY": SECRET, **(env or {})},
    )


async def session_run(params: StdioServerParameters, body: Any) -> Any:
    with anyio.fail_after(120):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)


def test_lists_tools_with_schemas_and_calls_them_in_the_sandbox(workspace: Path) -> None:
    async def body(session: ClientSession) -> Any:
        listed = await session.list_tools()
        by_name = {t.name: t for t in listed.tools}
        assert sorted(by_name) == ["add", "crash", "hang", "secret", "weird"]
        add = by_name["add"]
        assert add.description == "Add two integers."
        assert add.input_schema["properties"]["a"]["type"] == "integer"
        assert add.input_schema["required"] == ["a"]
        ok = await session.call_tool("add", {"a": 2, "b": 3})
        assert not ok.is_error and ok.content[0].text == "5"
        assert ok.structured_content == {"result": 5}
        bad = await session.call_tool("add", {"c": 1})
        assert bad.is_error and bad.content[0].text.startswith("Error: SignatureMismatch")
        missing = await session.call_tool("nope", {})
        assert missing.is_error and "no tool named 'nope'" in missing.content[0].text
        seen = await session.call_tool("secret", {})
        assert SECRET not in seen.content[0].text
        assert json.loads(seen.content[0].text)["home"] is False
        weird = await session.call_tool("weird", {})
        assert not weird.is_error and weird.content[0].text.startswith("a\\ud800xxx")
        return True

    assert anyio.run(session_run, serve(workspace), body)
    # Every call is a native trace line of the workspace, read by the store.
    store = TraceStore(load_config(workspace))
    store.refresh()
    assert store.malformed == []
    stats = store.tool_stats()
    assert stats["add"].calls == 2 and stats["add"].errors == 1
    lines = (workspace / "traces" / "mcp-calls.jsonl").read_text("utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["source"] == "mcp" and first["latency_ms"] > 0 and first["sandbox"] == "bwrap"
    assert first["toolset_version"]
    assert first["messages"][1]["content"] == "5"
    assert SECRET not in "\n".join(lines)


def test_a_hanging_and_a_crashing_tool_are_that_calls_errors(workspace: Path) -> None:
    async def body(session: ClientSession) -> Any:
        hung = await session.call_tool("hang", {"seconds": 100})
        assert hung.is_error and "Timeout" in hung.content[0].text
        crashed = await session.call_tool("crash", {})
        assert crashed.is_error and "status 7" in crashed.content[0].text
        after = await session.call_tool("add", {"a": 1})
        assert after.content[0].text == "2"
        return True

    assert anyio.run(session_run, serve(workspace, "--no-traces"), body)
    assert not (workspace / "traces").exists()


def test_edited_tools_are_served_without_a_restart(workspace: Path) -> None:
    async def body(session: ClientSession) -> Any:
        assert (await session.call_tool("add", {"a": 1})).content[0].text == "2"
        path = workspace / "tools" / "tools.py"
        path.write_text(path.read_text("utf-8").replace("return a + b", "return a * 10 + b"))
        os.utime(path, ns=(1, 10**18))
        assert (await session.call_tool("add", {"a": 1})).content[0].text == "11"
        # A new tool file is found by the next walk (at most WALK_INTERVAL later).
        (workspace / "tools" / "more.py").write_text(
            "def twice(x: int) -> int:\n    return 2 * x\n"
        )
        await anyio.sleep(WALK_INTERVAL + 0.5)
        assert "twice" in {t.name for t in (await session.list_tools()).tools}
        assert (await session.call_tool("twice", {"x": 4})).content[0].text == "8"
        return True

    assert anyio.run(session_run, serve(workspace, "--no-traces"), body)


def test_refuses_without_bwrap_and_says_why(workspace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "funcforge", "mcp", str(workspace)],
        env={**os.environ, "FUNCFORGE_BWRAP": str(workspace / "no-such-bwrap")},
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert "will not run tool code without an OS sandbox" in done.stderr
    assert "apt-get install bubblewrap" in done.stderr and 'sandbox = "process"' in done.stderr


@pytest.mark.parametrize("key", [SECRET, None], ids=["with-key", "local-without-key"])
def test_the_documented_agent_example_runs_against_a_fake_endpoint(
    workspace: Path, key: str | None
) -> None:
    """examples/mcp_agent.py: the OpenAI SDK's tool calls go to `funcforge mcp` and back;
    a local endpoint (docs/mcp.md's `--base-url http://127.0.0.1:...`) needs no key."""
    from tests.fakes.openai_server import FakeOpenAI

    script = [
        {"tool_calls": [{"name": "add", "arguments": {"a": 40, "b": 2}}]},
        {"content": "42"},
    ]
    example = Path(__file__).resolve().parents[2] / "examples" / "mcp_agent.py"
    with FakeOpenAI(script=script) as srv:
        done = subprocess.run(
            [
                sys.executable,
                str(example),
                str(workspace),
                "What is 40 + 2?",
                "--model",
                "fake-model",
                "--base-url",
                srv.base_url,
            ],
            env={**environ_without_key(), **({"OPENAI_API_KEY": key} if key else {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        second = srv.chat_requests[1].body
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    tools = {t["function"]["name"]: t["function"] for t in srv.chat_requests[0].body["tools"]}
    assert tools["add"]["parameters"]["properties"]["a"]["type"] == "integer"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": second["messages"][-2]["tool_calls"][0]["id"],
        "content": "42",
    }
    logged = (workspace / "traces" / "mcp-calls.jsonl").read_text("utf-8")
    assert '"name": "add"' in logged and SECRET not in logged


def environ_without_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}


def test_the_agent_example_without_a_key_says_so(workspace: Path) -> None:
    """A remote endpoint without OPENAI_API_KEY: one line naming it and the local way, no
    traceback, before the MCP server is started."""
    example = Path(__file__).resolve().parents[2] / "examples" / "mcp_agent.py"
    done = subprocess.run(
        [sys.executable, str(example), str(workspace), "What is 40 + 2?"],
        env=environ_without_key(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "OPENAI_API_KEY is not set" in done.stderr and "--base-url" in done.stderr
    assert not (workspace / "traces" / "mcp-calls.jsonl").exists()
