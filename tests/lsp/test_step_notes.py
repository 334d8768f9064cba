"""What an optimizer step worked around reaches the editor: its notes, and the flagged code.

A model's answer with a right-to-left override in its code and `arguments` in
AG2's properties-only form is accepted with notes; the editor must see them
(a warning message, the command's result) and the Apply code action must say
the code holds suspicious Unicode, not offer it as the preferred fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.conftest import CONVERT_ARGS, FIXED_CONVERT, revise_reply, write_transcript
from tests.lsp.test_server import SERVER, actions_at, convert_position, open_doc, start

TROJAN = FIXED_CONVERT.replace(
    "def convert_units", "# admin\u202e \u2066# ok\u2069\ndef convert_units"
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, math_ws: Path):
    reply = revise_reply(code=TROJAN)
    call = reply["tool_calls"][0]["function"]
    args = json.loads(call["arguments"])
    args["arguments"] = dict(CONVERT_ARGS["properties"])  # AG2's form: the properties alone
    call["arguments"] = json.dumps(args)
    transcript = write_transcript(
        math_ws.parent / "notes.jsonl", [reply, {"role": "assistant", "content": "TERMINATE"}]
    )
    await start(lsp_client, math_ws, {"allowExecution": False, "llm": f"replay:{transcript}"})
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_step_notes_and_suspicious_code_reach_the_editor(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    units = root / "tools" / "units.py"
    uri = open_doc(client, units)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="funcforge.optimize", arguments=[{"function": "convert_units"}]
        )
    )
    assert len(result["proposals"]) == 1
    notes = result["notes"]
    assert any("U+202E RIGHT-TO-LEFT OVERRIDE" in n for n in notes)
    assert any("AG2" in n for n in notes)
    # Optimize's one message, a warning, says them (written before the command's answer).
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert warnings == [result["message"]], warnings
    assert "U+202E" in warnings[0] and "AG2" in warnings[0]

    actions = await actions_at(client, uri, convert_position(units))
    apply = [a for a in actions if a.title.startswith("Apply funcforge proposal")]
    assert apply, [a.title for a in actions]
    for action in apply:
        assert "suspicious Unicode in the code: convert_units line 1" in action.title
        assert "U+202E RIGHT-TO-LEFT OVERRIDE" in action.title
        assert not action.is_preferred
