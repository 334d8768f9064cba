"""The language server end to end over stdio (pytest-lsp), on a real git repository."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Union

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import git, log_label

SERVER = [sys.executable, "-m", "funcforge", "serve"]


def fix_code_action_union(client: LanguageClient) -> None:
    """lsprotocol's client-side hook turns every CodeAction with a command into a Command."""
    conv = client.protocol._converter

    def hook(obj, _):
        if isinstance(obj.get("command"), str):
            return conv.structure(obj, types.Command)
        return conv.structure(obj, types.CodeAction)

    conv.register_structure_hook(Union[types.Command, types.CodeAction], hook)  # noqa: UP007


async def start(client: LanguageClient, root: Path, options: dict) -> None:
    client.statuses = []  # type: ignore[attr-defined]
    fix_code_action_union(client)

    @client.feature("funcforge/status")
    def on_status(params) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return types.ApplyWorkspaceEditResult(applied=True)

    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True),
                workspace=types.WorkspaceClientCapabilities(
                    workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True)
                ),
            ),
            root_uri=root.as_uri(),
            initialization_options=options,
        )
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, math_ws: Path):
    options = {
        "allowExecution": True,
        "llm": f"replay:{math_ws.parent / 'transcript.jsonl'}",
    }
    await start(lsp_client, math_ws, options)
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def open_doc(client: LanguageClient, path: Path) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=path.read_text()
            )
        )
    )
    return uri


async def diagnostics_for(client: LanguageClient, uri: str, needle: str, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        diags = client.diagnostics.get(uri, [])
        if any(needle in d.message for d in diags):
            return diags
        await asyncio.sleep(0.05)
    raise AssertionError(f"no diagnostic with {needle!r}: {client.diagnostics.get(uri)}")


async def actions_at(
    client: LanguageClient,
    uri: str,
    where: types.Position | types.Range,
    only: list[str] | None = None,
    diagnostics: list[types.Diagnostic] | None = None,
) -> list:
    """textDocument/codeAction at a position or range."""
    rng = where if isinstance(where, types.Range) else types.Range(start=where, end=where)
    return await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=diagnostics or [], only=only),
        )
    )


def convert_position(path: Path) -> types.Position:
    for i, line in enumerate(path.read_text().splitlines()):
        if line.startswith("def convert_units"):
            return types.Position(line=i, character=6)
    raise AssertionError("convert_units not found")


async def test_failing_calls_diagnostic_hover_and_lens(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    # The traces name the tools' content hash 7946404a6be6: the tools of the workspace's
    # one commit. The server names that commit, as `funcforge log` does.
    commit = git(root, "rev-parse", "--short=7", "HEAD").strip()
    assert log_label(root, "7946404a6be6") == commit
    uri = open_doc(client, units)
    diags = await diagnostics_for(client, uri, "logged calls failed")
    d = next(d for d in diags if "logged calls failed" in d.message)
    assert d.message.startswith(f"4 of 13 logged calls failed on {commit}: KeyError")
    assert d.severity == types.DiagnosticSeverity.Warning
    name_at = convert_position(units)
    assert (d.range.start.line, d.range.start.character) == (name_at.line, 4)
    assert d.range.end.character == 4 + len("convert_units")
    assert d.related_information and d.related_information[0].location.uri.endswith(".jsonl")

    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=convert_position(units)
        )
    )
    assert hover is not None and "| 13 | 4 |" in hover.contents.value
    assert "KeyError" in hover.contents.value
    assert "test split included" in hover.contents.value  # says what it counted

    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = [lens.command.title for lens in lenses if lens.command]
    assert "13 calls · 31% errors · pass 54%" in titles[0] or titles[0].startswith(
        "13 calls · 31% errors"
    )
    assert "Optimize" in titles


async def test_optimize_then_code_action_then_commit(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(client, units)
    await diagnostics_for(client, uri, "logged calls failed")

    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="funcforge.optimize", arguments=[{"function": "convert_units"}]
        )
    )
    assert len(result["proposals"]) == 1
    pid = result["proposals"][0]
    await diagnostics_for(client, uri, "proposal")

    preview = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.proposalPreview", arguments=[{"id": pid}])
    )
    assert preview["files"][0]["path"] == "tools/units.py"
    assert "mile=1609.344" in preview["files"][0]["newText"]
    assert preview["files"][0]["oldText"] == units.read_text()

    pos = convert_position(units)
    actions = await actions_at(client, uri, pos)
    titles = [a.title for a in actions]
    apply = next(
        a for a in actions if a.title.startswith("Apply funcforge proposal: revise convert_units")
    )
    assert "unverified" in apply.title and apply.kind == types.CodeActionKind.QuickFix
    assert any(t.startswith("Preview funcforge proposal") for t in titles)
    assert any(t.startswith("Reject funcforge proposal") for t in titles)
    edit = apply.edit.document_changes[0]
    assert edit.text_document.version == 1
    assert any("mile=1609.344" in e.new_text for e in edit.edits)
    # The edit's command commits the proposal.
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=apply.command.command, arguments=apply.command.arguments)
    )
    assert len(done["commit"]) == 40
    log = git(root, "log", "-1", "--format=%s%n%b")
    assert log.startswith("funcforge: revise convert_units")
    assert f"Funcforge-Proposal: {pid}" in log
    assert git(root, "status", "--porcelain", "--", "tools").strip() == ""
    assert "mile=1609.344" in units.read_text()

    history = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.history", arguments=[])
    )
    assert history["versions"][0]["optimizer"] is True
    base = history["versions"][-1]  # the sample's traces: 52 train, 25 held out
    assert (base["split"], base["n"], base["testN"]) == ("train", 52, 25)
    assert any(s.state == "optimizing" for s in client.statuses)  # type: ignore[attr-defined]


async def test_stale_document_drops_the_apply_action(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(client, units)
    await diagnostics_for(client, uri, "logged calls failed")
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.optimize", arguments=[{}])
    )
    text = units.read_text().replace("    table = _LENGTH", "    table = _LENGTH  # edited")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    await asyncio.sleep(0.6)
    pos = convert_position(units)
    actions = await actions_at(client, uri, pos)
    assert not any(a.title.startswith("Apply funcforge proposal") for a in actions)
