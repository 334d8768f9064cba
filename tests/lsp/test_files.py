"""Files coming and going under a running server (the server polls: a client without watching)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.test_features import init, wait_for

SERVER = [sys.executable, "-m", "funcforge", "serve"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def poll(lsp_client: LanguageClient, math_ws: Path):
    """A client without file watching: the server polls tools and traces itself."""
    await init(lsp_client, math_ws, {}, types.ClientCapabilities())
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def diags(client: LanguageClient, path: Path) -> list[types.Diagnostic]:
    return list(client.diagnostics.get(path.as_uri(), []))


def failing(client: LanguageClient, path: Path) -> bool:
    return any("logged calls failed" in d.message for d in diags(client, path))


async def tool_names(client: LanguageClient) -> set[str]:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.tools", arguments=[])
    )
    return {t["name"] for t in result["tools"]}


async def test_a_tool_file_created_right_after_start_is_seen(poll: LanguageClient) -> None:
    root: Path = poll.root  # type: ignore[attr-defined]
    (root / "tools" / "late.py").write_text("def late_tool(x: int) -> int:\n    return x\n")
    names: set[str] = set()

    async def seen() -> bool:
        nonlocal names
        names = await tool_names(poll)
        return "late_tool" in names

    end = asyncio.get_running_loop().time() + 30
    while not await seen():
        assert asyncio.get_running_loop().time() < end, f"late_tool never seen: {names}"
        await asyncio.sleep(0.1)


async def test_deleted_and_renamed_tool_files_lose_their_diagnostics(poll: LanguageClient) -> None:
    root: Path = poll.root  # type: ignore[attr-defined]
    units, algebra = root / "tools" / "units.py", root / "tools" / "algebra.py"
    await wait_for(lambda: failing(poll, units), 30, "units.py's failing-calls diagnostic")
    moved = root / "tools" / "units_moved.py"
    os.rename(units, moved)
    await wait_for(lambda: not diags(poll, units), 30, "units.py's diagnostics cleared")
    await wait_for(lambda: failing(poll, moved), 30, "the diagnostic on the renamed file")
    moved.unlink()
    await wait_for(lambda: not diags(poll, moved), 30, "the renamed file's diagnostics cleared")
    assert algebra.exists()


async def test_truncated_and_rotated_trace_files_lose_their_diagnostics(
    poll: LanguageClient,
) -> None:
    root: Path = poll.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    trace = root / "traces" / "run-2025-11-20.jsonl"
    saved = trace.read_bytes()
    await wait_for(lambda: failing(poll, units), 30, "units.py's failing-calls diagnostic")
    trace.write_bytes(b"")  # truncated
    await wait_for(lambda: not failing(poll, units), 30, "diagnostic gone after truncation")
    trace.write_bytes(saved)
    await wait_for(lambda: failing(poll, units), 30, "diagnostic back with the traces")
    os.rename(trace, trace.with_name("run-2025-11-20.jsonl.1"))  # rotated away
    trace.write_bytes(b"")
    await wait_for(lambda: not failing(poll, units), 30, "diagnostic gone after rotation")


async def test_undecodable_tool_file_gets_a_diagnostic(poll: LanguageClient) -> None:
    root: Path = poll.root  # type: ignore[attr-defined]
    bad = root / "tools" / "latin.py"
    bad.write_bytes(b"def caf\xe9(x):\n    return x\n")
    await wait_for(lambda: bool(diags(poll, bad)), 30, "a diagnostic on the undecodable file")
    d = diags(poll, bad)[0]
    assert d.severity == types.DiagnosticSeverity.Error and d.code == "tool-file"


async def test_editor_lock_backup_and_swap_files_are_not_tools(poll: LanguageClient) -> None:
    root: Path = poll.root  # type: ignore[attr-defined]
    tools = root / "tools"
    await wait_for(lambda: failing(poll, tools / "units.py"), 30, "the first diagnostics")
    before = await tool_names(poll)
    os.symlink("ada@host.1234:1700000000", tools / ".#arithmetic.py")  # Emacs' lock (dangling)
    for name in ["#units.py#", "units.py~", ".units.py.swp", ".#units.py"]:
        shutil.copy(tools / "units.py", tools / name)
    (tools / "extra.py").write_text("def extra_tool() -> int:\n    return 1\n")  # a real one
    end = asyncio.get_running_loop().time() + 30
    while "extra_tool" not in (names := await tool_names(poll)):
        assert asyncio.get_running_loop().time() < end, "extra.py never seen"
        await asyncio.sleep(0.1)
    assert names == before | {"extra_tool"}
    for uri, items in poll.diagnostics.items():
        assert not any("also defined" in d.message for d in items), (uri, items)
        assert "#" not in uri.rsplit("/", 1)[-1] and not uri.endswith(("~", ".swp"))
