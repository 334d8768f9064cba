"""More of the language server over stdio: watching, pull diagnostics, resolve, trust,
configuration, cancel, bad input, decline and roll-back."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import git
from tests.lsp.test_server import (
    actions_at,
    convert_position,
    diagnostics_for,
    fix_code_action_union,
    open_doc,
)

SERVER = [sys.executable, "-m", "funcforge", "serve"]


async def init(
    client: LanguageClient, root: Path, options: dict, caps: types.ClientCapabilities
) -> None:
    client.statuses = []  # type: ignore[attr-defined]
    client.registrations = []  # type: ignore[attr-defined]
    fix_code_action_union(client)

    @client.feature("funcforge/status")
    def on_status(params) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def on_register(params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    await client.initialize_session(
        types.InitializeParams(
            capabilities=caps, root_uri=root.as_uri(), initialization_options=options
        )
    )


def messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def full_caps() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(
            configuration=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True),
            did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                dynamic_registration=True
            ),
        ),
        text_document=types.TextDocumentClientCapabilities(
            diagnostic=types.DiagnosticClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            ),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def rich(lsp_client: LanguageClient, math_ws: Path):
    """A client with pull diagnostics, resolve, watched files and configuration."""
    await init(
        lsp_client,
        math_ws,
        {"allowExecution": False, "llm": f"replay:{math_ws.parent / 'transcript.jsonl'}"},
        full_caps(),
    )
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def plain(lsp_client: LanguageClient, math_ws: Path):
    """A minimal client: push diagnostics, no watching (the server polls), execution allowed."""
    await init(
        lsp_client,
        math_ws,
        {"allowExecution": True, "llm": f"replay:{math_ws.parent / 'transcript.jsonl'}"},
        types.ClientCapabilities(window=types.WindowClientCapabilities(work_done_progress=True)),
    )
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def pull(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    report = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    return list(report.items)


async def test_pull_diagnostics_watchers_and_resolve(rich: LanguageClient) -> None:
    root: Path = rich.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(rich, units)
    await wait_for(lambda: any(s.state == "idle" for s in rich.statuses), what="indexing")  # type: ignore[attr-defined]
    items = await pull(rich, uri)
    assert any(d.message.startswith("4 of 13 logged calls failed") for d in items)
    assert uri not in rich.diagnostics  # a pull client gets no pushed diagnostics
    methods = [r.method for r in rich.registrations]  # type: ignore[attr-defined]
    assert types.WORKSPACE_DID_CHANGE_WATCHED_FILES in methods

    # Untrusted: the optimizer runs but says the replay check was not run.
    result = await rich.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.optimize", arguments=[{}])
    )
    assert result["proposals"]
    assert any("not replay-checked" in m and "allowExecution is off" in m for m in messages(rich))
    pos = convert_position(units)
    actions = await actions_at(rich, uri, pos, only=[types.CodeActionKind.RefactorRewrite])
    assert [a.kind for a in actions] == [types.CodeActionKind.RefactorRewrite]
    assert actions[0].edit is None and actions[0].data is not None
    assert "not replay-checked" in actions[0].title
    resolved = await rich.code_action_resolve_async(actions[0])
    edits = resolved.edit.document_changes[0].edits
    assert any("mile=1609.344" in e.new_text for e in edits)


async def test_trace_append_refreshes_diagnostics_and_proposals_from_the_cli_show_up(
    plain: LanguageClient,
) -> None:
    root: Path = plain.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(plain, units)
    await diagnostics_for(plain, uri, "4 of 13 logged calls failed")
    trace = {
        "id": "appended-1",
        "task": {"id": "extra-1", "input": "5 mile in km?", "expected": "8.05"},
        "messages": [
            {"role": "user", "content": "5 mile in km?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {
                            "name": "convert_units",
                            "arguments": json.dumps(
                                {"value": 5, "from_unit": "mile", "to_unit": "km"}
                            ),
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": "Error: KeyError: 'mile'",
                "is_error": True,
            },
            {"role": "assistant", "content": "I could not compute it"},
        ],
        "outcome": {"score": 0.0, "passed": False},
    }
    with open(root / "traces" / "run-2025-11-20.jsonl", "a") as fh:
        fh.write(json.dumps(trace) + "\n")
    await diagnostics_for(plain, uri, "5 of 14 logged calls failed")

    # A proposal made from the CLI appears in the editor.
    env_llm = f"replay:{root.parent / 'transcript.jsonl'}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "funcforge",
            "optimize",
            str(root),
            "--llm",
            env_llm,
            "--no-execute",
        ],
        check=True,
        capture_output=True,
    )
    await diagnostics_for(plain, uri, "proposal")


async def test_cancel_optimization_from_the_progress_bar(
    plain: LanguageClient, math_ws: Path
) -> None:
    from tests.fakes.openai_server import FakeOpenAI

    (math_ws / "funcforge.toml").write_text("")  # stays valid; base_url comes from settings
    with FakeOpenAI(script=[{"delay": 3.0, "content": "TERMINATE"}]) as srv:
        plain.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={
                    "funcforge": {
                        "allowExecution": True,
                        "baseUrl": srv.base_url,
                        "model": "fake-model",
                    }
                }
            )
        )
        await asyncio.sleep(1.0)
        task = asyncio.ensure_future(
            plain.workspace_execute_command_async(
                types.ExecuteCommandParams(command="funcforge.optimize", arguments=[{}])
            )
        )
        await wait_for(lambda: bool(plain.progress_reports), what="progress token")
        await asyncio.sleep(0.5)
        token = next(iter(plain.progress_reports))
        plain.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        result = await asyncio.wait_for(task, 30)
    assert result.get("cancelled") is True
    # One message (written before the answer), and the progress ended, saying so.
    assert [m for m in messages(plain) if "cancelled" in m] == [result["message"]]
    reports = plain.progress_reports[token]
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "cancelled"
    # One at a time, and the server still answers.
    tools = await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.tools", arguments=[])
    )
    assert {t["name"] for t in tools["tools"]} >= {"convert_units", "add_fractions"}


async def test_unreachable_endpoint_is_reported_and_the_server_keeps_running(
    plain: LanguageClient,
) -> None:
    plain.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"funcforge": {"allowExecution": True, "baseUrl": "http://127.0.0.1:9/v1"}}
        )
    )
    await asyncio.sleep(1.0)
    with pytest.raises(JsonRpcException) as failed:  # an error response, no traceback
        await plain.workspace_execute_command_async(
            types.ExecuteCommandParams(command="funcforge.optimize", arguments=[{}])
        )
    assert "127.0.0.1:9" in failed.value.message and "Traceback" not in failed.value.message
    status = await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.status", arguments=[])
    )
    assert status["state"] in ("idle", "converged")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def nogit(lsp_client: LanguageClient, tmp_path: Path):
    ws = tmp_path / "plain"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "t.py").write_text("def ok(x: int) -> int:\n    return x\n")
    (ws / "tools" / "broken.py").write_text("def broken(:\n    pass\n")
    (ws / "traces").mkdir()
    (ws / "traces" / "a.jsonl").write_text('{"id": 1\nnot json\n')
    (ws / "pyproject.toml").write_text("[tool.funcforge]\ntools = 3\n")
    await init(lsp_client, ws, {}, types.ClientCapabilities())
    lsp_client.root = ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_broken_config_tools_and_traces_outside_git(nogit: LanguageClient) -> None:
    root: Path = nogit.root  # type: ignore[attr-defined]
    await wait_for(lambda: any(s.state == "idle" for s in nogit.statuses), what="indexing")  # type: ignore[attr-defined]
    shown = "\n".join(messages(nogit))
    assert "pyproject.toml:2" in shown and "'tools' must be list of string" in shown
    assert "not a git repository" in shown
    # Defaults are used instead: the syntax error is a diagnostic, other files still work.
    uri = open_doc(nogit, root / "tools" / "broken.py")
    diags = await diagnostics_for(nogit, uri, "syntax error")
    assert any(d.severity == types.DiagnosticSeverity.Error for d in diags)
    tools = await nogit.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.tools", arguments=[])
    )
    assert [t["name"] for t in tools["tools"]] == ["ok"]


def test_server_exits_when_the_client_goes_away(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=90) == 0  # slow only when the machine is loaded (imports)


async def test_decline_offers_roll_back(plain: LanguageClient) -> None:
    root: Path = plain.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(plain, units)
    await diagnostics_for(plain, uri, "logged calls failed")
    # Apply the proposal, then log 30 bad runs with the new version.
    result = await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="funcforge.optimize", arguments=[{"function": "convert_units"}]
        )
    )
    pid = result["proposals"][0]
    done = await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.applyProposal", arguments=[{"id": pid}])
    )
    base = git(root, "rev-parse", "HEAD~1").strip()
    new = done["commit"]
    lines = []
    for i in range(30):
        for version, score in ((base, 1.0), (new, 0.0)):
            lines.append(
                json.dumps(
                    {
                        "id": f"r-{version[:7]}-{i}",
                        "task": {"id": f"t{i}", "input": "q"},
                        "messages": [
                            {"role": "user", "content": "q"},
                            {"role": "assistant", "content": "a"},
                        ],
                        "outcome": {"score": score, "passed": score == 1.0},
                        "toolset_version": version[:7],
                    }
                )
            )
    (root / "traces" / "later.jsonl").write_text("\n".join(lines) + "\n")
    # The base version's score counts these 30 runs and the sample's own 52 traces, which
    # name the same tools by their content hash (one toolset, one version: issue 17).
    await diagnostics_for(plain, uri, f"score fell from 0.73 (n=82, {base[:7]})")
    pos = convert_position(units)
    actions = await actions_at(plain, uri, pos)
    roll = next(a for a in actions if a.title.startswith("Roll back to"))
    assert roll.title == f"Roll back to {base[:7]} (0.73, n=82)"
    out = await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(command=roll.command.command, arguments=roll.command.arguments)
    )
    assert out["commits"]
    assert "mile=1609.344" not in units.read_text()


async def test_plain_edits_for_clients_without_document_changes(plain: LanguageClient) -> None:
    root: Path = plain.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(plain, units)
    await diagnostics_for(plain, uri, "logged calls failed")
    await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(command="funcforge.optimize", arguments=[{}])
    )
    pos = convert_position(units)
    actions = await actions_at(plain, uri, pos)
    applies = [a for a in actions if a.title.startswith("Apply funcforge proposal")]
    assert len(applies) == 1  # no refactor duplicate unless asked for
    assert applies[0].edit.document_changes is None
    assert any("mile=1609.344" in e.new_text for e in applies[0].edit.changes[uri])


async def test_saving_a_hand_edit_that_breaks_logged_results_warns_and_offers_pins(
    plain: LanguageClient,
) -> None:
    root: Path = plain.root  # type: ignore[attr-defined]
    arith = root / "tools" / "arithmetic.py"
    uri = open_doc(plain, arith)
    await diagnostics_for(plain, uri, "")
    # A careless edit: format_number now always rounds to whole numbers.
    text = arith.read_text().replace(
        "    if decimals is None:\n        if float(value).is_integer():",
        "    return str(round(value))\n    if decimals is None:\n        if float(value).is_integer():",
    )
    arith.write_text(text)
    plain.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    plain.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    diags = await diagnostics_for(plain, uri, "this edit changes", timeout=90)
    hand = next(d for d in diags if "this edit changes" in d.message)
    assert hand.related_information and hand.related_information[0].location.uri.endswith(".jsonl")
    assert "regression" in hand.message
    actions = await actions_at(plain, uri, hand.range, diagnostics=[hand])
    pin = next(a for a in actions if a.title.startswith("Pin this call's expected result"))
    out = await plain.workspace_execute_command_async(
        types.ExecuteCommandParams(command=pin.command.command, arguments=pin.command.arguments)
    )
    assert out["pinned"] is True and "pinned format_number(" in out["message"]
    pins = (root / ".funcforge" / "expectations.jsonl").read_text().splitlines()
    assert json.loads(pins[0])["function"] == "format_number"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def untrusted(lsp_client: LanguageClient, math_ws: Path):
    (math_ws / "funcforge.toml").write_text(
        'base_url = "http://127.0.0.1:9/v1"\napi_key_env = "AWS_SECRET"\n'
    )
    await init(lsp_client, math_ws, {"allowExecution": False}, types.ClientCapabilities())
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_untrusted_workspace_may_not_choose_the_endpoint(untrusted: LanguageClient) -> None:
    await wait_for(lambda: any(s.state == "idle" for s in untrusted.statuses), what="indexing")  # type: ignore[attr-defined]
    shown = "\n".join(messages(untrusted))
    assert "base_url, api_key_env from" in shown and "not trusted" in shown
