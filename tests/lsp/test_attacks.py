"""Issue 15 retested by attack, over stdio with pytest-lsp: an editor that counts columns in
UTF-16 and breaks lines only at `\\r\\n`, `\\r` and `\\n` (as LSP says), paths that need
percent-encoding, form feeds, non-ASCII lines, and protocol faults. Each test is bounded."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import SAMPLES, git, init_repo
from tests.lsp.conftest import revise_reply, write_transcript
from tests.lsp.test_apply_loop import bounded, optimize, start, wait_until
from tests.lsp.test_features import init, pull
from tests.lsp.test_protocol import Raw
from tests.lsp.test_server import actions_at, diagnostics_for

SERVER = [sys.executable, "-m", "funcforge", "serve"]
BREAKS = ("\r\n", "\r", "\n")


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` as LSP counts them, with their breaks."""
    out, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\r" and text[i + 1 : i + 2] == "\n":
            out.append(text[start : i + 2])
            i += 2
            start = i
        elif text[i] in "\r\n":
            out.append(text[start : i + 1])
            i += 1
            start = i
        else:
            i += 1
    out.append(text[start:])
    return out


def offset_of(text: str, pos: types.Position) -> int:
    """Offset of an LSP position (UTF-16 column) in `text`."""
    lines = lsp_lines(text)
    if pos.line >= len(lines):
        return len(text)
    line = lines[pos.line]
    content = line.rstrip("\r\n")
    units, col = 0, 0
    while col < len(content) and units < pos.character:
        units += 2 if ord(content[col]) > 0xFFFF else 1
        col += 1
    return sum(len(x) for x in lines[: pos.line]) + col


def position_of(text: str, offset: int) -> types.Position:
    line_no, start = 0, 0
    for line in lsp_lines(text):
        if start + len(line) > offset or start + len(line) == len(text):
            break
        start += len(line)
        line_no += 1
    col = text[start:offset]
    return types.Position(line=line_no, character=len(col.encode("utf-16-le")) // 2)


def edited(text: str, edits: list[types.TextEdit]) -> str:
    spans = sorted(
        ((offset_of(text, e.range.start), offset_of(text, e.range.end), e.new_text) for e in edits),
        reverse=True,
    )
    for a, b, new in spans:
        text = text[:a] + new + text[b:]
    return text


class Utf16Editor:
    """Buffers edited the way VS Code does: incremental changes in UTF-16 positions."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.docs: dict[str, tuple[int, str]] = {}

    def open(self, path: Path, uri: str | None = None) -> str:
        uri = uri or path.as_uri()
        text = path.read_bytes().decode("utf-8")
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

    def change(self, uri: str, start: int, end: int, new: str) -> None:
        """Replace text[start:end] by `new`, sent as one incremental change."""
        version, text = self.docs[uri]
        rng = types.Range(start=position_of(text, start), end=position_of(text, end))
        self.docs[uri] = (version + 1, text[:start] + new + text[end:])
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version + 1),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=new)],
            )
        )

    def apply(self, edit: types.WorkspaceEdit) -> None:
        for doc_edit in edit.document_changes or []:
            assert isinstance(doc_edit, types.TextDocumentEdit)
            uri = doc_edit.text_document.uri
            self._set(uri, edited(self.text(uri), list(doc_edit.edits)))
        for uri, edits in (edit.changes or {}).items():
            self._set(uri, edited(self.text(uri), list(edits)))

    def _set(self, uri: str, text: str) -> None:
        version = self.docs[uri][0] + 1
        self.docs[uri] = (version, text)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )


async def begin(client: LanguageClient, root: Path) -> Utf16Editor:
    """Start a session like test_apply_loop's, with a UTF-16 editor taking the edits."""
    await start(client, root)
    editor = Utf16Editor(client)
    client.protocol.fm.features.pop(types.WORKSPACE_APPLY_EDIT, None)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        editor.apply(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    return editor


def workspace(
    tmp_path: Path, name: str, units: str | None = None, fixed: str | None = None
) -> Path:
    """samples/math-tools in a git repo at tmp_path/name; `units` replaces tools/units.py
    (committed), `fixed` is the model's fixed convert_units."""
    dest = tmp_path / name
    shutil.copytree(SAMPLES / "math-tools", dest, ignore=shutil.ignore_patterns(".funcforge"))
    if units is not None:
        (dest / "tools" / "units.py").write_bytes(units.encode("utf-8"))
    init_repo(dest)
    replies = [revise_reply(code=fixed) if fixed else revise_reply()]
    write_transcript(
        dest.parent / "transcript.jsonl", [*replies, {"role": "assistant", "content": "TERMINATE"}]
    )
    return dest


async def hover_text(client: LanguageClient, uri: str, pos: types.Position) -> str | None:
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    return None if hover is None else hover.contents.value  # type: ignore[union-attr]


def name_line(text: str, name: str = "convert_units") -> int:
    """The LSP line of `def name` (`str.splitlines` would count form feeds as breaks)."""
    return next(i for i, line in enumerate(lsp_lines(text)) if line.startswith(f"def {name}"))


def units_text() -> str:
    return (SAMPLES / "math-tools" / "tools" / "units.py").read_text()


# --- buffers and edits -----------------------------------------------------------


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def spaced(lsp_client: LanguageClient, tmp_path: Path):
    """A workspace whose path needs percent-encoding in URIs (a space, an umlaut)."""
    root = workspace(tmp_path, "my tools ü")
    lsp_client.editor = await begin(lsp_client, root)  # type: ignore[attr-defined]
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@bounded
async def test_apply_reaches_the_open_buffer_in_a_path_with_a_space(spaced: LanguageClient) -> None:
    """Apply from a menu (no code action edit) in `my tools ü/`: the open buffer gets the fix,
    as VS Code names it (`my%20tools%20%C3%BC`)."""
    client = spaced
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = ed.open(units)
    assert "%20" in uri
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
    )
    assert ed.text(uri) == git(root, "show", "HEAD:tools/units.py")
    assert done["saveable"] == ["tools/units.py"]
    assert not any("takes no edits" in m.message for m in client.log_messages)


FORM_FEED_UNITS = units_text().replace(
    "\n\n\ndef convert_units",
    "\n\n\x0c\n# Conversions.\u2028 (a line separator)\n\ndef convert_units",
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def paged(lsp_client: LanguageClient, tmp_path: Path):
    """units.py with a form feed (Emacs' page break) and U+2028 in a comment: not line breaks
    for LSP or Python, but line breaks for `str.splitlines`."""
    root = workspace(tmp_path, "paged", units=FORM_FEED_UNITS)
    lsp_client.editor = await begin(lsp_client, root)  # type: ignore[attr-defined]
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@bounded
async def test_incremental_edits_after_a_form_feed_keep_the_editors_text(
    paged: LanguageClient,
) -> None:
    client = paged
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    at = ed.text(uri).index("def convert_units")
    ed.change(uri, at, at, "# typed above\n")
    line = name_line(ed.text(uri))
    hover = await hover_text(client, uri, types.Position(line=line, character=6))
    assert hover is not None and "convert_units" in hover
    diags = await diagnostics_for(client, uri, "logged calls failed")
    await wait_until(
        lambda: any(
            d.range.start.line == line
            for d in client.diagnostics.get(uri, [])
            if "logged calls failed" in d.message
        ),
        f"the diagnostic on line {line}: {diags}",
    )


@bounded
async def test_apply_edits_a_buffer_with_a_form_feed_on_the_right_lines(
    paged: LanguageClient,
) -> None:
    client = paged
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
    )
    assert ed.text(uri) == git(root, "show", "HEAD:tools/units.py")


# --- non-ASCII lines, CRLF, tabs: edits, hovers, lenses, diagnostics -----------------

WIDE = 'note = "🙂 漢字 e\u0301 🇩🇪"; '  # an emoji, CJK, a combining accent, a flag (4 units)
OLD_LINE = "table = _LENGTH if from_unit in _LENGTH else _MASS"
NEW_LINES = (
    "lengths = dict(_LENGTH, mile=1609.344); "
    "table = lengths if from_unit in lengths else _MASS  # 🙂 miles\n"
    "{indent}if from_unit not in table or to_unit not in table:\n"
    '{indent}{indent}raise ValueError(f"cannot convert {{from_unit}} to {{to_unit}} 🙂")'
)


def wide_units(indent: str, newline: str) -> tuple[str, str]:
    """units.py whose convert_units has a wide line, and the model's fix of it."""
    base = units_text()
    start = base.index("def convert_units")
    head, func = base[:start], base[start:]
    func = func.replace("    ", indent).replace(f"{indent}{OLD_LINE}", f"{indent}{WIDE}{OLD_LINE}")
    fixed = func.replace(OLD_LINE, NEW_LINES.format(indent=indent))
    return (head + func).replace("\n", newline), fixed


WIDE_KINDS = pytest.mark.parametrize(
    "wide_ws", [("    ", "\n"), ("\t", "\r\n")], ids=["lf-spaces", "crlf-tabs"], indirect=True
)


@pytest.fixture
def wide_ws(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    indent, newline = request.param
    units, fixed = wide_units(indent, newline)
    return workspace(tmp_path, "wide", units=units, fixed=fixed)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def wide(lsp_client: LanguageClient, wide_ws: Path):
    lsp_client.editor = await begin(lsp_client, wide_ws)  # type: ignore[attr-defined]
    lsp_client.root = wide_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@WIDE_KINDS
@bounded
async def test_the_code_actions_edit_lands_right_on_a_wide_line(
    wide: LanguageClient, wide_ws: Path
) -> None:
    """The edit starts after an emoji, CJK, a combining accent and a flag on its line: its
    UTF-16 columns put the fix exactly where the commit has it (CRLF and tabs kept)."""
    client = wide
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    await optimize(client)
    line = name_line(ed.text(uri))
    actions = await actions_at(client, uri, types.Position(line=line, character=6))
    apply = next(a for a in actions if a.title.startswith("Apply funcforge proposal"))
    action = await client.code_action_resolve_async(apply)
    assert action.edit is not None
    edits = [e for dc in action.edit.document_changes or [] for e in dc.edits]  # type: ignore[union-attr]
    wide_line = next(i for i, x in enumerate(lsp_lines(ed.text(uri))) if "🙂" in x)
    assert any(e.range.start.line == wide_line and e.range.start.character > 20 for e in edits)
    ed.apply(action.edit)
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    head = (root / "tools" / "units.py").read_bytes()  # the disk: written as committed
    assert ed.text(uri).encode("utf-8") == git_bytes(root, "HEAD:tools/units.py")
    assert done["saveable"] == ["tools/units.py"]
    assert head == git_bytes(root, "HEAD:tools/units.py") or head != b""


@WIDE_KINDS
@bounded
async def test_hover_lens_and_diagnostic_positions_after_wide_edits(
    wide: LanguageClient, wide_ws: Path
) -> None:
    """Incremental edits with UTF-16 ranges on wide lines above and inside the function:
    hover, lenses and the diagnostic follow the editor's text."""
    client = wide
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    text = ed.text(uri)
    nl = "\r\n" if "\r\n" in text else "\n"
    at = text.index("🇩🇪") + len("🇩🇪")
    ed.change(uri, at, at, " 🙂漢")  # inside the wide line
    at = ed.text(uri).index("def convert_units")
    ed.change(uri, at, at, f"# 🙂 漢字 e\u0301{nl}# two{nl}")  # two lines above
    text = ed.text(uri)
    line = name_line(text)
    hover = await hover_text(client, uri, types.Position(line=line, character=6))
    assert hover is not None and "convert_units" in hover
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert {x.range.start.line for x in lenses} == {line}
    await wait_until(
        lambda: (
            [
                (d.range.start.line, d.range.start.character, d.range.end.character)
                for d in client.diagnostics.get(uri, [])
                if "logged calls failed" in d.message
            ]
            == [(line, 4, 17)]
        ),
        f"the diagnostic on convert_units at line {line}",
    )


def git_bytes(root: Path, spec: str) -> bytes:
    import subprocess

    return subprocess.run(["git", "show", spec], cwd=root, check=True, capture_output=True).stdout


# --- diagnostics follow the text right after an edit -------------------------------


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def puller(lsp_client: LanguageClient, math_ws: Path):
    """A client that pulls diagnostics (as VS Code does), without refresh support."""
    await init(
        lsp_client,
        math_ws,
        {"allowExecution": True, "llm": f"replay:{math_ws.parent / 'transcript.jsonl'}"},
        types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                diagnostic=types.DiagnosticClientCapabilities()
            )
        ),
    )
    lsp_client.editor = Utf16Editor(lsp_client)  # type: ignore[attr-defined]
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@bounded
async def test_a_pull_right_after_typing_above_puts_the_warning_on_the_name(
    puller: LanguageClient,
) -> None:
    """The issue's "warning on the blank line above def": a pull that comes before the
    server re-read its toolset placed the old parse's lines on the new text."""
    client = puller
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await wait_until(
        lambda: any(s.state == "idle" for s in client.statuses),  # type: ignore[attr-defined]
        "indexing",
    )
    for _ in range(3):
        at = ed.text(uri).index("def convert_units")
        ed.change(uri, at, at, "# typed above\n")
        line = name_line(ed.text(uri))
        items = await pull(client, uri)
        failing = [d for d in items if "logged calls failed" in d.message]
        assert [d.range.start.line for d in failing] == [line]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def executing(lsp_client: LanguageClient, math_ws: Path):
    """A minimal push client; execution allowed (the hand-edit check runs on save)."""
    await init(lsp_client, math_ws, {"allowExecution": True}, types.ClientCapabilities())
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@bounded
async def test_a_hand_edit_finding_moves_with_the_function(executing: LanguageClient) -> None:
    """A hand-edit finding made at a save stays on the function's name as lines are typed
    above it (it stayed on the old line, and its Pin action with it)."""
    client = executing
    root: Path = client.root  # type: ignore[attr-defined]
    arith = root / "tools" / "arithmetic.py"
    ed = Utf16Editor(client)
    uri = ed.open(arith)
    await diagnostics_for(client, uri, "")
    text = ed.text(uri)
    at = text.index("    if decimals is None:\n        if float(value).is_integer():")
    ed.change(uri, at, at, "    return str(round(value))\n")
    arith.write_text(ed.text(uri))
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await diagnostics_for(client, uri, "this edit changes", timeout=90)
    ed.change(uri, 0, 0, "# one\n# two\n# three\n")
    line = name_line(ed.text(uri), "format_number")

    def hand_lines() -> list[int]:
        diags = client.diagnostics.get(uri, [])
        return [d.range.start.line for d in diags if "this edit changes" in d.message]

    await wait_until(lambda: hand_lines() == [line], f"the finding on line {line}")
    actions = await actions_at(client, uri, types.Position(line=line, character=6))
    assert any(a.title.startswith("Pin this call's expected result") for a in actions)


# --- protocol faults over raw stdio ----------------------------------------------


@pytest.fixture
def fresh(math_ws: Path) -> Iterator[Raw]:
    """The server started, not initialized."""
    server = Raw(math_ws)
    yield server
    server.close()


@pytest.fixture
def ready(math_ws: Path) -> Iterator[Raw]:
    """The server, initialized and done indexing."""
    server = Raw(math_ws)
    server.initialize(math_ws)
    yield server
    server.close()


def hover_params(uri: str, line: Any = 0, character: Any = 0) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def test_requests_before_initialize_and_a_second_initialize_are_refused(
    fresh: Raw, math_ws: Path
) -> None:
    uri = (math_ws / "tools" / "units.py").as_uri()
    rid = fresh.request("textDocument/hover", hover_params(uri))
    assert fresh.response(rid, 15)["error"]["code"] == -32002  # ServerNotInitialized
    fresh.notify("textDocument/didOpen", {"textDocument": {"uri": uri}})  # dropped, no answer
    fresh.initialize(math_ws)
    rid = fresh.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    error = fresh.response(rid, 15)["error"]
    assert error["code"] == -32600 and "only once" in error["message"]
    assert fresh.status()["result"]["state"] in ("idle", "converged")  # the session is intact


def test_invalid_params_say_what_and_where(ready: Raw, math_ws: Path) -> None:
    uri = (math_ws / "tools" / "units.py").as_uri()
    cases = {
        "$.params.position": hover_params(uri, line=-1),
        "$.params.position.line": hover_params(uri, line="top"),
        "position": {"textDocument": {"uri": uri}},
    }
    for where, params in cases.items():
        rid = ready.request("textDocument/hover", params)
        error = ready.response(rid, 15)["error"]
        assert error["code"] == -32602 and where in error["message"], error
    rid = ready.request("textDocument/hover", hover_params(uri, line=-1))
    assert "-1" in ready.response(rid, 15)["error"]["message"]
    # A pin for a tool that does not exist is refused, not written.
    rid = ready.request(
        "workspace/executeCommand",
        {
            "command": "funcforge.pinCall",
            "arguments": [{"function": "nope", "args": {}, "expected": 1}],
        },
    )
    error = ready.response(rid, 15)["error"]
    assert error["code"] == -32602 and "'nope'" in error["message"]
    assert not (math_ws / ".funcforge" / "expectations.jsonl").exists()


def test_unknown_methods_unopened_documents_and_folder_changes(ready: Raw, math_ws: Path) -> None:
    units = math_ws / "tools" / "units.py"
    uri = units.as_uri()
    rid = ready.request("funcforge/nope", {})
    assert ready.response(rid, 15)["error"]["code"] == -32601
    ready.notify("funcforge/nope", {})  # an unknown notification: ignored
    # A change to a document never opened: ignored (the file's text stays the server's).
    ready.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "x = 1\n"}]},
    )
    ready.notify(
        "workspace/didChangeWorkspaceFolders",
        {
            "event": {
                "added": [{"uri": math_ws.parent.as_uri(), "name": "parent"}],
                "removed": [{"uri": math_ws.as_uri(), "name": "math-tools"}],
            }
        },
    )
    rid = ready.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
    lenses = ready.response(rid, 15)["result"]
    assert any(x["command"]["title"] == "Optimize" for x in lenses)
    assert ready.status()["result"]["state"] in ("idle", "converged")
    assert b"Traceback" not in ready.stderr


def test_after_shutdown_requests_are_refused_and_exit_ends_with_0(ready: Raw) -> None:
    rid = ready.request("shutdown", None)
    assert ready.response(rid, 15)["result"] is None
    rid = ready.request(
        "workspace/executeCommand", {"command": "funcforge.status", "arguments": []}
    )
    assert ready.response(rid, 15)["error"]["code"] == -32600
    ready.notify("exit")
    assert ready.exited(10) == 0


def test_exit_without_shutdown_ends_with_1(ready: Raw) -> None:
    ready.notify("exit")
    assert ready.exited(10) == 1


def test_a_python_file_that_is_not_a_tool_gets_no_lenses_hovers_or_diagnostics(
    ready: Raw, math_ws: Path
) -> None:
    """agent.py is open in the editor, outside the `tools` globs: its functions are not
    tools (it had an "Optimize" lens on every function, and schema hints)."""
    agent = math_ws / "agent.py"
    uri = agent.as_uri()
    text = agent.read_text()
    ready.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )
    rid = ready.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
    assert ready.response(rid, 15)["result"] == []
    line = next(i for i, t in enumerate(text.splitlines()) if t.startswith("def run("))
    rid = ready.request("textDocument/hover", hover_params(uri, line, 5))
    assert ready.response(rid, 15)["result"] is None
    # A change to it is not a tool change either: nothing is published for it.
    ready.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": "# typed\n" + text}],
        },
    )
    assert ready.status()["result"]
    time.sleep(1.0)  # the edit's refresh (0.25 s debounce) has run
    published = [
        m
        for m in [*ready.seen, *_drain(ready)]
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
    ]
    assert all(m["params"]["diagnostics"] == [] for m in published), published


def _drain(server: Raw) -> list[dict[str, Any]]:
    out = []
    while not server.messages.empty():
        out.append(server.messages.get_nowait())
    return out


def test_a_renamed_tool_file_keeps_its_failures_current(ready: Raw, math_ws: Path) -> None:
    """algebra.py renamed to algebra2.py (its code unchanged): the failures logged on the
    version before are still the function's (they read "before your change")."""
    old = math_ws / "tools" / "algebra.py"
    new = math_ws / "tools" / "algebra2.py"
    old.rename(new)
    uri = new.as_uri()
    published = ready.wait(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics"
            and m["params"]["uri"] == uri
            and any("logged calls failed" in d["message"] for d in m["params"]["diagnostics"])
        ),
        30,
        "the failures on the renamed file",
    )
    failing = [d for d in published["params"]["diagnostics"] if "logged" in d["message"]]
    assert failing[0]["severity"] == 2 and "before your change" not in failing[0]["message"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def linked(lsp_client: LanguageClient, tmp_path: Path):
    """tools/units.py is a symlink to lib/real_units.py (both in the repository)."""
    root = workspace(tmp_path, "linked")
    (root / "lib").mkdir()
    (root / "tools" / "units.py").rename(root / "lib" / "real_units.py")
    (root / "tools" / "units.py").symlink_to("../lib/real_units.py")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "units.py is a link")
    lsp_client.editor = await begin(lsp_client, root)  # type: ignore[attr-defined]
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@bounded
async def test_a_symlinked_tool_file_open_in_the_editor(linked: LanguageClient) -> None:
    """The editor opens tools/units.py (a link): lenses and diagnostics follow its buffer
    (the server filed the buffer under the link's target, not a tool file), and Apply puts
    the fix in that buffer and commits the target, leaving the link a link."""
    client = linked
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    link = root / "tools" / "units.py"
    uri = ed.open(link)
    await diagnostics_for(client, uri, "logged calls failed")
    ed.change(uri, 0, 0, "# one\n# two\n")
    line = name_line(ed.text(uri))
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert {x.range.start.line for x in lenses} == {line}
    await wait_until(
        lambda: (
            [
                d.range.start.line
                for d in client.diagnostics.get(uri, [])
                if "logged calls failed" in d.message
            ]
            == [line]
        ),
        f"the diagnostic on line {line}",
    )
    before = (root / "lib" / "real_units.py").read_text()
    pid = await optimize(client)
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
    )
    committed = git(root, "show", "HEAD:lib/real_units.py")
    assert "mile=1609.344" in committed and "# one" not in committed
    assert ed.text(uri) == "# one\n# two\n" + committed  # the fix is in the buffer
    assert link.is_symlink() and (root / "lib" / "real_units.py").read_text() == before
    assert done["saveable"] == []  # the buffer holds the user's lines too


def test_a_save_of_a_document_never_opened_is_not_an_open_buffer(math_ws: Path) -> None:
    """didSave without didOpen filed the disk's text as an open buffer for good: Apply then
    left the disk to an editor that has no such buffer (HEAD had the fix, the file not)."""
    server = Raw(math_ws)
    try:
        replay = f"replay:{math_ws.parent / 'transcript.jsonl'}"
        rid = server.request(
            "initialize",
            {
                "processId": None,
                "rootUri": math_ws.as_uri(),
                "capabilities": {"workspace": {"applyEdit": True}},  # it takes edits
                "initializationOptions": {"llm": replay},
            },
        )
        assert "result" in server.response(rid, 60)
        server.notify("initialized", {})
        units = math_ws / "tools" / "units.py"
        server.notify("textDocument/didSave", {"textDocument": {"uri": units.as_uri()}})
        rid = server.request(
            "workspace/executeCommand",
            {"command": "funcforge.optimize", "arguments": [{"function": "convert_units"}]},
        )
        pid = server.response(rid, 60)["result"]["proposals"][0]
        rid = server.request(
            "workspace/executeCommand",
            {"command": "funcforge.applyProposal", "arguments": [{"id": pid}]},
        )
        assert "result" in server.response(rid, 60)
        assert units.read_text() == git(math_ws, "show", "HEAD:tools/units.py")
    finally:
        server.close()


def test_each_optimize_says_once_that_the_replay_check_did_not_run(math_ws: Path) -> None:
    """Where workspace code may not run, each Optimize added a warning toast to its own
    (the issue's "three toasts"): the one message of each Optimize says it instead."""
    server = Raw(math_ws)
    try:
        server.initialize(math_ws, {"llm": f"replay:{math_ws.parent / 'transcript.jsonl'}"})
        for _ in range(2):
            rid = server.request(
                "workspace/executeCommand", {"command": "funcforge.optimize", "arguments": [{}]}
            )
            assert "result" in server.response(rid, 60)
        shown = [
            m["params"]["message"]
            for m in [*server.seen, *_drain(server)]
            if m.get("method") == "window/showMessage"
        ]
    finally:
        server.close()
    assert len(shown) == 2, shown
    assert "not replay-checked" in shown[0] and "allowExecution is off" in shown[0], shown


@bounded
async def test_typing_asks_the_client_to_refresh_its_lenses(spaced: LanguageClient) -> None:
    """Lenses carry line numbers: an edit is followed by workspace/codeLens/refresh."""
    client = spaced
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    before = client.lens_refreshes  # type: ignore[attr-defined]
    ed.change(uri, 0, 0, "# typed\n")
    await wait_until(
        lambda: client.lens_refreshes > before,  # type: ignore[attr-defined]
        "a codeLens refresh after typing",
    )


@bounded
async def test_running_a_stale_apply_command_is_a_clean_refusal(spaced: LanguageClient) -> None:
    """A client that cached the action (eglot) runs its command after the user changed the
    function: the answer says what to do, nothing is committed, no traceback."""
    client = spaced
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    at = ed.text(uri).index("else _MASS") + len("else ")
    ed.change(uri, at, at + len("_MASS"), "None  # mine")  # the line the proposal changes
    head = git(root, "rev-parse", "HEAD")
    with pytest.raises(JsonRpcException) as info:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
        )
    assert info.value.code == -32803, info.value
    assert "Traceback" not in str(info.value) and "again" in str(info.value)
    assert git(root, "rev-parse", "HEAD") == head
    assert "# mine" in ed.text(uri)


def hold_commits(root: Path) -> None:
    """A reference-transaction hook that holds every commit of `root` 2 s once made."""
    hook = root / ".git" / "hooks" / "reference-transaction"
    hook.write_text('#!/bin/sh\ncat >/dev/null\n[ "$1" = committed ] && sleep 2\nexit 0\n')
    hook.chmod(0o755)


@bounded
async def test_typing_while_apply_commits_keeps_the_buffer_whole(spaced: LanguageClient) -> None:
    """The user types a line while Apply makes its commit (a reference-transaction hook
    holds the commit 2 s): the fix reaches the buffer on the lines it belongs to (its edit
    was computed on the text before the keystroke and bound to the version after it)."""
    client = spaced
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    hold_commits(root)
    apply = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
        )
    )
    await asyncio.sleep(1.0)  # the commit is being made
    assert not apply.done()
    ed.change(uri, 0, 0, "# typed meanwhile\n")
    done = await apply
    committed = git(root, "show", "HEAD:tools/units.py")
    assert "mile=1609.344" in committed
    assert ed.text(uri) == "# typed meanwhile\n" + committed
    assert done["saveable"] == []  # the buffer holds the typed line: not saved for the user


@bounded
async def test_a_clash_while_apply_commits_is_said_in_apply_s_one_message(
    spaced: LanguageClient,
) -> None:
    """The user edits the proposal's own line while Apply makes its commit: the commit
    stands, the buffer keeps the user's line, and Apply's one message (a warning) says
    the buffer lacks the fix (it was a second message of its own)."""
    client = spaced
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await diagnostics_for(client, uri, "logged calls failed")
    pid = await optimize(client)
    hold_commits(root)
    before = len(client.messages)
    apply = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
        )
    )
    await asyncio.sleep(1.0)  # the commit is being made
    assert not apply.done()
    at = ed.text(uri).index("else _MASS") + len("else ")
    ed.change(uri, at, at + len("_MASS"), "None  # mine")  # the line the proposal changes
    done = await apply  # its message was written before the answer
    assert "mile=1609.344" in git(root, "show", "HEAD:tools/units.py")
    assert "# mine" in ed.text(uri) and "mile=1609.344" not in ed.text(uri)
    shown = client.messages[before:]
    assert [m.message for m in shown] == [done["message"]]
    assert shown[0].type == types.MessageType.Warning
    assert done["message"].startswith(f"funcforge: committed {done['commit'][:7]} (")
    assert "tools/units.py was edited meanwhile on the proposal's lines" in done["message"]


@bounded
async def test_a_syntax_error_mid_typing_keeps_lenses_hover_and_warning_in_place(
    puller: LanguageClient,
) -> None:
    """An unfinished line above the function (`x = (`) makes the file unparsable for a
    while: the function's lens, hover and warning stay, on its `def` line (they vanished
    once the server re-read the buffer)."""
    client = puller
    ed: Utf16Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = ed.open(root / "tools" / "units.py")
    await wait_until(
        lambda: any(s.state == "idle" for s in client.statuses),  # type: ignore[attr-defined]
        "indexing",
    )
    assert any("logged calls failed" in d.message for d in await pull(client, uri))
    at = ed.text(uri).index("def convert_units")
    ed.change(uri, at, at, "x = (\n\n")
    line = name_line(ed.text(uri))
    await asyncio.sleep(1.0)  # the server re-read the buffer (0.25 s debounce)
    items = await pull(client, uri)
    assert any("never closed" in d.message for d in items), items  # the syntax error, too
    failing = [d for d in items if "logged calls failed" in d.message]
    assert [d.range.start.line for d in failing] == [line]
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert {x.range.start.line for x in lenses} == {line}
    hover = await hover_text(client, uri, types.Position(line=line, character=6))
    assert hover is not None and "convert_units" in hover
