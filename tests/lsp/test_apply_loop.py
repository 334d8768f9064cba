"""The editor's apply loop over stdio, with a client that behaves like an editor: it applies
code-action and workspace/applyEdit edits to its buffers and reports them with didChange."""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import git, log_label
from tests.lsp.test_server import actions_at, diagnostics_for, fix_code_action_union

SERVER = [sys.executable, "-m", "funcforge", "serve"]
LIMIT = 120.0  # seconds: every test is bounded


def bounded(test):
    """Fail a test that runs longer than LIMIT instead of hanging CI."""

    @functools.wraps(test)
    async def run(*args, **kwargs):
        return await asyncio.wait_for(test(*args, **kwargs), LIMIT)

    return run


class Editor:
    """The client's buffers: uri -> (version, text), edited the way an editor does."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.docs: dict[str, tuple[int, str]] = {}

    def open(self, path: Path) -> str:
        uri = path.as_uri()
        text = path.read_text()
        self.docs[uri] = (1, text)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )
        return uri

    def text(self, uri: str) -> str:
        return self.docs[uri][1]

    def set(self, uri: str, text: str) -> None:
        version = self.docs[uri][0] + 1
        self.docs[uri] = (version, text)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def apply(self, edit: types.WorkspaceEdit) -> None:
        for change in edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            self.set(
                change.text_document.uri, _edited(self.text(change.text_document.uri), change.edits)
            )
        for uri, edits in (edit.changes or {}).items():
            self.set(uri, _edited(self.text(uri), edits))


def _offset(text: str, pos: types.Position) -> int:
    lines = text.splitlines(keepends=True)
    if pos.line >= len(lines):
        return len(text)
    return sum(len(line) for line in lines[: pos.line]) + pos.character  # ASCII test files


def _edited(text: str, edits) -> str:
    for e in sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    ):
        text = (
            text[: _offset(text, e.range.start)] + e.new_text + text[_offset(text, e.range.end) :]
        )
    return text


def caps(plaintext: bool = False) -> types.ClientCapabilities:
    formats = [types.MarkupKind.PlainText] if plaintext else [types.MarkupKind.Markdown]
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True),
            code_lens=types.CodeLensWorkspaceClientCapabilities(refresh_support=True),
        ),
        text_document=types.TextDocumentClientCapabilities(
            hover=types.HoverClientCapabilities(content_format=formats),
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            ),
        ),
    )


async def start(client: LanguageClient, root: Path, plaintext: bool = False) -> Editor:
    fix_code_action_union(client)
    editor = Editor(client)
    client.lens_refreshes = 0  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        editor.apply(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(params: None) -> None:
        client.lens_refreshes += 1  # type: ignore[attr-defined]

    options = {"allowExecution": False, "llm": f"replay:{root.parent / 'transcript.jsonl'}"}
    await client.initialize_session(
        types.InitializeParams(
            capabilities=caps(plaintext), root_uri=root.as_uri(), initialization_options=options
        )
    )
    return editor


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, math_ws: Path):
    lsp_client.editor = await start(lsp_client, math_ws)  # type: ignore[attr-defined]
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def plain_client(lsp_client: LanguageClient, math_ws: Path):
    lsp_client.editor = await start(lsp_client, math_ws, plaintext=True)  # type: ignore[attr-defined]
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def optimize(client: LanguageClient) -> str:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="funcforge.optimize", arguments=[{"function": "convert_units"}]
        )
    )
    return str(result["proposals"][0])


def name_line(text: str, name: str = "convert_units") -> int:
    return next(i for i, line in enumerate(text.splitlines()) if line.startswith(f"def {name}"))


async def resolved_apply(client: LanguageClient, uri: str, line: int) -> types.CodeAction:
    actions = await actions_at(client, uri, types.Position(line=line, character=6))
    apply = next(a for a in actions if a.title.startswith("Apply funcforge proposal"))
    return await client.code_action_resolve_async(apply)


async def wait_until(predicate, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@bounded
async def test_autosave_with_another_edit_commits_only_the_proposal(client: LanguageClient) -> None:
    """Apply puts the fix in the buffer, autosave writes it with the user's other edit."""
    ed: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = ed.open(units)
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    head = git(root, "rev-parse", "--short=7", "HEAD").strip()
    from funcforge.optimizer.proposal import load_proposal

    # Evidence binds to the committed version, whatever the buffers hold.
    assert load_proposal(root / ".funcforge" / "proposals", pid).base_version == head

    action = await resolved_apply(client, uri, name_line(ed.text(uri)))
    assert action.edit is not None
    ed.apply(action.edit)
    mine = ed.text(uri).replace("def convert_units", "# typed above\ndef convert_units", 1)
    ed.set(uri, mine)
    units.write_text(mine)  # autosave
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    assert "error" not in done, done
    committed = git(root, "show", "HEAD:tools/units.py")
    assert "mile=1609.344" in committed and "# typed above" not in committed
    assert (
        git(root, "log", "-1", "--format=%(trailers:key=Funcforge-Base,valueonly)").strip() == head
    )
    assert units.read_text() == mine  # the disk under the buffer is the user's
    assert git(root, "diff", "--cached") == ""
    assert done["saveable"] == []  # the buffer holds the user's line too: not saved for them
    # Positions follow the editor's text after Apply: the diagnostic is on `def`'s name.
    line = name_line(mine)
    diags = await diagnostics_for(client, uri, "logged calls failed")
    failing = next(d for d in diags if "logged calls failed" in d.message)
    assert failing.range.start.line == line
    # The failures were logged before the fix: history, not a current warning.
    assert failing.severity == types.DiagnosticSeverity.Hint
    # They name the commit whose tools had the traces' content hash (the base), as `log` does.
    assert f"errors on {head} (before your change)" in failing.message
    assert log_label(root, "7946404a6be6") == head
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=6),
        )
    )
    assert hover is not None
    assert f"Failures logged on {head}, before your change" in hover.contents.value
    await wait_until(lambda: client.lens_refreshes > 0, "workspace/codeLens/refresh")  # type: ignore[attr-defined]
    messages = [m.message for m in client.messages if "committed" in m.message]
    assert len(messages) == 1  # one message per Apply


@bounded
async def test_apply_without_the_edit_sends_it_to_the_open_buffer(client: LanguageClient) -> None:
    """Apply from a menu (no code action edit), autosave off: the buffer gets the edit, the
    disk is left to the editor, and the file is reported saveable (nothing else unsaved)."""
    ed: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    before = units.read_text()
    uri = ed.open(units)
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
    )
    assert "mile=1609.344" in ed.text(uri)
    assert units.read_text() == before
    assert ed.text(uri) == git(root, "show", "HEAD:tools/units.py")
    assert done["saveable"] == ["tools/units.py"]
    # A second click: already applied, no second commit, no error.
    again = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
    )
    assert again.get("already") is True and again["commit"] == done["commit"]
    assert git(root, "rev-list", "--count", "HEAD").strip() == "2"


@bounded
async def test_stale_apply_is_not_offered_and_resolving_it_is_a_clean_error(
    client: LanguageClient,
) -> None:
    ed: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    await optimize(client)
    line = name_line(ed.text(uri))
    actions = await actions_at(client, uri, types.Position(line=line, character=6))
    apply = next(a for a in actions if a.title.startswith("Apply funcforge proposal"))
    # The user edits the function itself.
    ed.set(uri, ed.text(uri).replace("    table = _LENGTH", "    table = _LENGTH  # edited"))
    with pytest.raises(JsonRpcException) as info:
        await client.code_action_resolve_async(apply)
    assert info.value.code == -32801 and "changed since" in info.value.message
    assert "Traceback" not in str(info.value.data or "")
    await asyncio.sleep(0.4)
    actions = await actions_at(client, uri, types.Position(line=line, character=6))
    titles = [a.title for a in actions]
    assert not any(t.startswith("Apply funcforge proposal") for t in titles)
    again = next(a for a in actions if a.title.startswith("Propose again for convert_units"))
    assert again.command.command == "funcforge.optimize"


@bounded
async def test_plaintext_hover_for_clients_that_ask_for_it(plain_client: LanguageClient) -> None:
    client = plain_client
    plain_hover: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = plain_hover.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=name_line(plain_hover.text(uri)), character=6),
        )
    )
    assert hover is not None and hover.contents.kind == types.MarkupKind.PlainText
    value = hover.contents.value
    assert "13 calls, 4 errors (31%)" in value and "|" not in value and "**" not in value
    assert "test split included" in value


@bounded
async def test_hover_and_lenses_follow_the_text_at_once(client: LanguageClient) -> None:
    """Right after a keystroke (before the server re-reads its toolset) positions are the text's."""
    ed: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    ed.set(uri, "# one\n# two\n" + ed.text(uri))
    line = name_line(ed.text(uri))
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=6),
        )
    )
    assert hover is not None and "convert_units" in hover.contents.value
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    optimize = [x for x in lenses if x.command and x.command.title == "Optimize"]
    by_name = {x.command.arguments[0]["function"]: x.range.start.line for x in optimize}
    assert by_name["convert_units"] == line
