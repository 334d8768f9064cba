"""One message per user action, the same for every client.

Each action (Optimize, Reject, Apply, Roll back, Pin) tells the user once: a
plain LSP client (Neovim, eglot) gets exactly one `window/showMessage`, and a
client that declares it shows results itself (the VS Code extension:
`experimental.funcforge.showsResults`) gets none, with the same text in the
command's result instead. A failure is the error response alone. Optimize's
`$/progress` ends on success and on failure.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import git
from tests.lsp.conftest import FIXED_CONVERT, revise_reply, write_transcript
from tests.lsp.test_server import SERVER, fix_code_action_union

LIMIT = 150.0  # seconds: the whole sequence of actions is bounded


def bounded(test):
    @functools.wraps(test)
    async def run(*args, **kwargs):
        return await asyncio.wait_for(test(*args, **kwargs), LIMIT)

    return run


async def init(client: LanguageClient, root: Path, shows_results: bool) -> None:
    client.statuses = []  # type: ignore[attr-defined]
    fix_code_action_union(client)

    @client.feature("funcforge/status")
    def on_status(params) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    experimental = {"funcforge": {"showsResults": True}} if shows_results else None
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True),
                experimental=experimental,
            ),
            root_uri=root.as_uri(),
            initialization_options={
                "allowExecution": False,
                "llm": f"replay:{root.parent / 'transcript.jsonl'}",
            },
        )
    )
    for _ in range(400):  # indexing done: its own messages (if any) come before the actions
        if any(s.state in ("idle", "converged") for s in client.statuses):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def plain(lsp_client: LanguageClient, math_ws: Path):
    await init(lsp_client, math_ws, shows_results=False)
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def vscode(lsp_client: LanguageClient, math_ws: Path):
    await init(lsp_client, math_ws, shows_results=True)
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def act(
    client: LanguageClient, command: str, arg: dict[str, Any]
) -> tuple[Any, list[types.ShowMessageParams]]:
    """Run one command; its result (or error) and the messages it caused: the server
    writes an action's message before its answer, so they are all in by then."""
    before = len(client.messages)
    try:
        result: Any = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=[arg])
        )
    except JsonRpcException as exc:
        result = exc
    return result, client.messages[before:]


def told(result: Any, shown: list[types.ShowMessageParams], shows_results: bool) -> str:
    """The action's one message: shown once to a plain client, carried by the result to a
    client that shows results itself (and then never shown by the server)."""
    assert isinstance(result, dict), result
    text = result["message"]
    assert text.startswith("funcforge: ") and "\n" not in text and "Traceback" not in text
    if shows_results:
        assert shown == [], [m.message for m in shown]
    else:
        assert [m.message for m in shown] == [text]
        assert shown[0].type == result["messageType"]
    return text


def ended(client: LanguageClient) -> list[Any]:
    """The reports of the last progress token: begun, and ended last."""
    token = list(client.progress_reports)[-1]
    reports = client.progress_reports[token]
    assert isinstance(reports[0], types.WorkDoneProgressBegin), reports
    assert isinstance(reports[-1], types.WorkDoneProgressEnd), reports
    assert sum(isinstance(r, types.WorkDoneProgressEnd) for r in reports) == 1
    return reports


async def each_action_once(client: LanguageClient, shows_results: bool) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    base = git(root, "rev-parse", "HEAD").strip()

    # Optimize: the proposal, its evidence, and why it was not replay-checked.
    result, shown = await act(client, "funcforge.optimize", {"function": "convert_units"})
    text = told(result, shown, shows_results)
    first = result["proposals"][0]
    assert f"proposed revise convert_units (proposal {first};" in text
    assert "not replay-checked" in text and "allowExecution is off" in text
    assert ended(client)[-1].message == "proposed revise convert_units"

    # Reject.
    result, shown = await act(client, "funcforge.rejectProposal", {"id": first})
    assert f"rejected proposal {first} (revise convert_units)" in told(result, shown, shows_results)

    # Optimize again, with another fix (the rejected one is failure experience).
    other = FIXED_CONVERT.replace("    lengths = dict", "    # miles too\n    lengths = dict")
    write_transcript(
        root.parent / "transcript.jsonl",
        [revise_reply(code=other), {"role": "assistant", "content": "TERMINATE"}],
    )
    result, shown = await act(client, "funcforge.optimize", {"function": "convert_units"})
    told(result, shown, shows_results)
    second = result["proposals"][0]

    # Apply.
    result, shown = await act(client, "funcforge.applyProposal", {"id": second})
    text = told(result, shown, shows_results)
    assert text == f"funcforge: committed {result['commit'][:7]} (revise convert_units)"

    # Roll back.
    result, shown = await act(client, "funcforge.rollback", {"to": base})
    text = told(result, shown, shows_results)
    head = git(root, "rev-parse", "--short=7", "HEAD").strip()
    assert text == (
        f"funcforge: rolled back to {base[:7]}: committed {head}, reverting 1 funcforge commit"
    )

    # Pin.
    args = {"value": 1, "from_unit": "mile", "to_unit": "km"}
    result, shown = await act(
        client, "funcforge.pinCall", {"function": "convert_units", "args": args, "expected": 1.609}
    )
    text = told(result, shown, shows_results)
    assert "pinned convert_units(" in text and "= 1.609" in text
    assert ".funcforge/expectations.jsonl" in text

    # Failures: the error response alone, without a traceback; the progress still ends.
    result, shown = await act(client, "funcforge.applyProposal", {"id": "nosuchproposal"})
    assert isinstance(result, JsonRpcException) and shown == []
    assert "Traceback" not in result.message
    write_transcript(root.parent / "transcript.jsonl", [])  # the model has nothing to say
    result, shown = await act(client, "funcforge.optimize", {"function": "convert_units"})
    assert isinstance(result, JsonRpcException) and shown == [], result
    assert "Traceback" not in result.message and "\n" not in result.message
    assert ended(client)[-1].message.startswith("failed: ")


@bounded
async def test_a_plain_client_gets_one_message_per_action(plain: LanguageClient) -> None:
    await each_action_once(plain, shows_results=False)


@bounded
async def test_a_client_that_shows_results_gets_them_in_the_result_only(
    vscode: LanguageClient,
) -> None:
    await each_action_once(vscode, shows_results=True)


@pytest.mark.parametrize("experimental", [None, {}, {"funcforge": True}, {"funcforge": {}}])
def test_only_a_declared_true_shows_results(experimental: Any) -> None:
    from funcforge.lsp.model import ClientCaps

    caps = types.ClientCapabilities(experimental=experimental)
    assert ClientCaps.from_params(caps).shows_results is False
    caps = types.ClientCapabilities(experimental={"funcforge": {"showsResults": True}})
    assert ClientCaps.from_params(caps).shows_results is True
