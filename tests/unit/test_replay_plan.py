"""The replay check runs exactly the code apply would commit (one applier: the rewrite plan)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from funcforge.config import load_config
from funcforge.history.git import apply_proposal
from funcforge.optimizer import replay as replay_mod
from funcforge.optimizer.proposal import Proposal
from funcforge.toolset.action import Action
from funcforge.toolset.rewrite import RewriteError, plan_actions
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore
from tests.conftest import git
from tests.unit.test_check_cli import make_workspace

SHOUT = 'def shout(text: str) -> str:\n    """Upper case."""\n    return text.upper()\n'
WORDS = 'def word_count(text: str) -> int:\n    """Words."""\n    return len(text.split())\n'


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Record the new sources the check runs (and still run them for real)."""
    seen: list[dict[str, str]] = []
    real = replay_mod.check_calls

    def spy(function: str, old: Any, new: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(dict(new))
        return real(function, old, new, *args, **kwargs)

    monkeypatch.setattr(replay_mod, "check_calls", spy)
    return seen


def test_checked_code_is_the_committed_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = make_workspace(tmp_path / "ws")
    (root / "tools" / "b_first.py").write_text('"""Sorted first."""\n', encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "second tool file")
    config = load_config(root, {"add_file": "tools/added/extra.py"})
    toolset = load_toolset(config)
    store = TraceStore(config)
    store.refresh()
    actions = [
        Action("add_function", "shout", "Upper", {"type": "object"}, [], SHOUT),
        Action("revise_function", "word_count", "Words", {"type": "object"}, [], WORDS),
        Action("remove_function", "untouched"),
    ]
    seen = _spy(monkeypatch)
    replay = replay_mod.replay_for_actions(config, store, toolset, actions)
    assert replay["functions"]["word_count"]["totals"]["verified_fix"] == 1
    checked = seen[0]
    assert seen[1] == checked  # every function is checked against the same files
    # The added function is where apply puts it (add_file, a new file), and
    # the removal is in the checked code too.
    assert "def shout(" in checked["tools/added/extra.py"]
    assert "def untouched(" not in checked["tools/agent_tools.py"]

    proposal = Proposal(
        id="abc123",
        actions=actions,
        function_hashes={
            a.name: toolset.functions[a.name].code_hash()
            for a in actions
            if a.name in toolset.functions
        },
    )
    proposal.save(config.proposals_path)
    apply_proposal(config, proposal)
    for rel in ("tools/added/extra.py", "tools/agent_tools.py", "tools/b_first.py"):
        committed = git(root, "show", f"HEAD:{rel}")
        assert committed == checked[rel], rel


def test_a_plan_apply_refuses_is_refused_by_the_check(tmp_path: Path):
    root = make_workspace(tmp_path / "ws")
    store_config = load_config(root)
    store = TraceStore(store_config)
    store.refresh()
    toolset = load_toolset(store_config)

    # add_file outside the tools globs: the old check placed the function there anyway.
    config = load_config(root, {"add_file": "scripts/extra.py"})
    actions = [Action("add_function", "shout", "Upper", {"type": "object"}, [], SHOUT)]
    with pytest.raises(RewriteError) as by_apply:
        plan_actions(config, toolset, actions)
    with pytest.raises(RewriteError) as by_check:
        replay_mod.replay_for_actions(config, store, toolset, actions)
    assert str(by_check.value) == str(by_apply.value)
    assert "not matched by the tools globs" in str(by_check.value)

    # An import that conflicts with the module's: the old check appended the
    # code at the end of the file and ran that; apply refuses.
    clash = "import json as word_count_helper\n" + WORDS
    (root / "tools" / "agent_tools.py").write_text(
        (root / "tools" / "agent_tools.py").read_text(encoding="utf-8")
        + "\nimport csv as word_count_helper\n",
        encoding="utf-8",
    )
    toolset = load_toolset(store_config)
    actions = [Action("revise_function", "word_count", "Words", {"type": "object"}, [], clash)]
    with pytest.raises(RewriteError) as by_apply:
        plan_actions(store_config, toolset, actions)
    with pytest.raises(RewriteError) as by_check:
        replay_mod.replay_for_actions(store_config, store, toolset, actions)
    assert str(by_check.value) == str(by_apply.value)
    assert "conflicts with" in str(by_check.value)


def test_a_file_libcst_cannot_parse_is_checked_not_called_broken(tmp_path: Path):
    from tests.unit.test_check_cli import TOOLS, run

    root = make_workspace(tmp_path / "ws")
    fixed = TOOLS.replace('len(text.split(" "))', "len(text.split())")
    (root / "tools" / "agent_tools.py").write_text(
        fixed + "\n(scale): float = 1.0\n", encoding="utf-8"
    )
    out = run("check", str(root), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert "word_count" in data["functions"]
    assert not any("no longer load" in p for p in data.get("problems", []))
