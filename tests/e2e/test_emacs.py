"""Headless Emacs 28 + eglot end to end: diagnostic, optimize, code action, commit."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import HERE, PAGED, Workspace, check_session, require, run_editor


@pytest.mark.parametrize("workspace", [None, PAGED], ids=["plain", "paged"], indirect=True)
def test_emacs_eglot_diagnostic_optimize_code_action_commit(workspace: Workspace) -> None:
    emacs = require("emacs")
    run = run_editor(workspace, [emacs, "--batch", "-Q", "-l", str(HERE / "eglot_driver.el")])
    found = check_session(workspace, run)
    diagnostic = found["diagnostic"]
    assert diagnostic["severity"] == 2 and diagnostic["flymake_type"] == "eglot-warning"
    assert diagnostic["message"] in diagnostic["flymake_text"]
    assert (diagnostic["col"], diagnostic["end_col"]) == (4, 4 + 13)
    assert found["proposal_diagnostic"]["flymake_type"] == "eglot-note"
    # eglot 1.9 announces no resolveSupport: the edit came with the action.
    assert found["resolved"] is False
    assert found["action"]["kind"] == "quickfix"
    assert any(t.startswith("Reject funcforge proposal") for t in found["action_titles"])
    # Emacs saved the edited buffer (with the typed line, as autosave would); the server
    # committed only the proposal's lines, without rewriting the file.
    assert found["changed_on_disk"] is False and found["buffer_modified"] is False
    assert "optimizing" in found["statuses"]
    assert len([m for m in found["messages"] if m.startswith("funcforge: committed")]) == 1
    assert len([m for m in found["messages"] if "proposed" in m]) == 1  # one per Optimize
    assert found["history"]["flymake_type"] == "eglot-note"  # history: a hint
    # eglot without markdown-mode asks for plain text: no raw table syntax in the hover.
    assert found["hover"]["kind"] == "plaintext"
    assert "| calls |" not in found["hover"]["value"] and "**" not in found["hover"]["value"]
