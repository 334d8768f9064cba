"""Headless Neovim 0.7 end to end: diagnostic, optimize, code action, commit."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import HERE, PAGED, Workspace, check_session, require, run_editor


@pytest.mark.parametrize("workspace", [None, PAGED], ids=["plain", "paged"], indirect=True)
def test_neovim_diagnostic_optimize_code_action_commit(workspace: Workspace) -> None:
    nvim = require("nvim")
    driver = "luafile " + str(HERE / "nvim_driver.lua").replace(" ", "\\ ")
    lsp_log = workspace.scratch / "home" / "cache" / "nvim" / "lsp.log"
    run = run_editor(
        workspace,
        # The driver quits by itself; the last -c only runs when it could not (a Lua error).
        [nvim, "--headless", "--clean", "-n", "-c", driver, "-c", "cquit! 3"],
        lsp_log,
    )
    found = check_session(workspace, run, lsp_log)
    # Neovim 0.7 shows diagnostics with its own severities: 2 = Warning, 4 = Hint.
    assert found["diagnostic"]["severity"] == 2
    assert (found["diagnostic"]["col"], found["diagnostic"]["end_col"]) == (4, 4 + 13)
    assert found["proposal_diagnostic"]["severity"] == 4
    # Neovim 0.7 announces codeAction resolveSupport for `edit`, so the edit came resolved.
    assert found["resolved"] is True
    assert found["action"]["kind"] == "quickfix"
    assert any(t.startswith("Preview funcforge proposal") for t in found["action_titles"])
    assert any(t.startswith("Reject funcforge proposal") for t in found["action_titles"])
    # The editor saw the optimization's progress and the server's status and messages.
    kinds = [p["kind"] for p in found["progress"]]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds
    assert "optimizing" in found["statuses"]
    committed = [m for m in found["messages"] if m["message"].startswith("funcforge: committed")]
    assert len(committed) == 1  # one message per Apply
    proposed = [m["message"] for m in found["messages"] if "proposed" in m["message"]]
    assert proposed == [found["optimize"]["message"]]  # one per Optimize: the result's text
    # Autosave off: the buffer holds the change unsaved, the disk was not written under
    # it, so checktime finds nothing to reconcile (no W12 prompt).
    after = found["after"]
    assert after["modified"] is True and after["modified_after_checktime"] is True
    assert "mile=1609.344" not in after["disk_text"]
    assert found["history"]["severity"] == 4  # a hint, not a warning


def test_a_missing_editor_fails_the_run_instead_of_skipping() -> None:
    with pytest.raises(
        pytest.fail.Exception, match=r"is not installed: run `scripts/setup\.sh --editors`"
    ):
        require("nvim-that-is-not-installed")
