"""The language server and the sandbox: a refusal the user sees, and the weaker opt-in named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.test_features import SERVER, init, messages, open_doc, wait_for

NO_BWRAP = {**os.environ, "FUNCFORGE_BWRAP": "/nonexistent/bwrap"}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=NO_BWRAP))
async def nobwrap(lsp_client: LanguageClient, math_ws: Path):
    await init(lsp_client, math_ws, {"allowExecution": True}, types.ClientCapabilities())
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_a_hand_edit_without_bubblewrap_is_refused_visibly(nobwrap: LanguageClient) -> None:
    root: Path = nobwrap.root  # type: ignore[attr-defined]
    marker = root / "ran"
    arith = root / "tools" / "arithmetic.py"
    uri = open_doc(nobwrap, arith)
    text = arith.read_text().replace(
        '    tree = ast.parse(expression.strip(), mode="eval")',
        f"    open({str(marker)!r}, 'w')\n    tree = ast.parse(expression.strip(), mode=\"eval\")",
    )
    arith.write_text(text)
    nobwrap.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    nobwrap.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await wait_for(
        lambda: any("without an OS sandbox" in m for m in messages(nobwrap)),
        timeout=60,
        what="the refusal",
    )
    shown = next(m for m in nobwrap.messages if "without an OS sandbox" in m.message)
    assert shown.type == types.MessageType.Warning
    assert "apt-get install bubblewrap" in shown.message
    assert not marker.exists()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def weak(lsp_client: LanguageClient, math_ws: Path):
    await init(
        lsp_client,
        math_ws,
        {"allowExecution": True, "sandbox": "process"},
        types.ClientCapabilities(),
    )
    yield
    await lsp_client.shutdown_session()


async def test_the_process_setting_is_named_in_the_status(weak: LanguageClient) -> None:
    await wait_for(
        lambda: any(s.state == "idle" for s in weak.statuses),  # type: ignore[attr-defined]
        what="indexing",
    )
    idle = next(s for s in weak.statuses if s.state == "idle")  # type: ignore[attr-defined]
    assert idle.sandbox == "process (weaker: no OS sandbox)"
