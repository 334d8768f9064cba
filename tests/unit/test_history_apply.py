"""apply_proposal on real git repositories: the commit, its message, and every refusal."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from funcforge.config import load_config
from funcforge.errors import UserError
from funcforge.history.git import (
    ApplyConflict,
    apply_proposal,
    committed_version,
    current_version,
    open_repo,
)
from funcforge.history.versions import funcforge_commits
from funcforge.optimizer.proposal import load_proposal
from funcforge.toolset.action import Action
from funcforge.toolset.rewrite import plan_actions
from funcforge.toolset.toolset import load_toolset
from tests.conftest import git
from tests.unit.test_history_support import (
    NEW_CONVERT,
    NEW_FEET,
    OLD_CONVERT,
    OLD_SHOUT,
    OTHER,
    UNITS,
    make_proposal,
    make_workspace,
    porcelain,
    revise,
    sha,
    snapshot,
    user_commit,
)

EXPECTED_UNITS = UNITS.replace(OLD_CONVERT, NEW_CONVERT)


def trailers(root: Path, rev: str = "HEAD") -> list[str]:
    """The trailers as git itself parses them."""
    body = git(root, "log", "-1", "--format=%B", rev)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        cwd=root,
        input=body,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parsed.splitlines()


def committed_files(root: Path, rev: str = "HEAD") -> list[str]:
    return git(root, "show", "--name-only", "--format=", rev).split()


def test_commit_has_the_change_message_trailers_and_only_the_touched_file(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    base = sha(root)
    (root / "tools" / "other.py").write_text(OTHER + "# mine\n", encoding="utf-8")
    (root / "notes.txt").write_text("scratch\n", encoding="utf-8")
    proposal = make_proposal(config, [revise()])

    result = apply_proposal(config, proposal)

    assert result.commit == sha(root)
    assert sha(root, "HEAD~1") == base
    assert result.files == ["tools/units.py"]
    assert committed_files(root) == ["tools/units.py"]
    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == EXPECTED_UNITS
    # The other changes stay uncommitted and unchanged.
    assert (root / "tools" / "other.py").read_text(encoding="utf-8") == OTHER + "# mine\n"
    assert porcelain(root).splitlines() == [" M tools/other.py", "?? notes.txt"]
    subject, _, body = git(root, "log", "-1", "--format=%B").partition("\n\n")
    assert subject == "funcforge: revise convert_units"
    assert "convert_units fails on miles" in body
    assert "`convert_units`: 12 of 40 logged calls failed (KeyError (12))" in body
    assert "replay check: fixes 11/12 failing logged calls, changes 0/28 passing ones" in body
    assert f"base version {base[:7]} scored 0.62 (n=40)" in body
    assert trailers(root) == [
        "Funcforge-Proposal: 2f1c9e",
        "Funcforge-Step: 3",
        f"Funcforge-Base: {base[:7]}",
        "Funcforge-Score: 0.62 (n=40)",
        "Co-authored-by: funcforge (gpt-4o) <funcforge@localhost>",
    ]
    assert git(root, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "Test User <test@example.com>|Test User <test@example.com>\n"
    )
    saved = load_proposal(config.proposals_path, "2f1c9e")
    assert saved.status == "applied" and saved.commit == result.commit
    with open_repo(config) as repo:
        [c] = funcforge_commits(repo)
    assert (c.sha, c.step, c.base, c.base_score, c.base_n) == (result.commit, 3, base[:7], 0.62, 40)
    assert (c.actions, c.model, c.proposal) == (["revise convert_units"], "gpt-4o", "2f1c9e")


def test_staged_changes_elsewhere_stay_staged_and_out_of_the_commit(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    (root / "tools" / "other.py").write_text(OTHER + "# staged\n", encoding="utf-8")
    git(root, "add", "tools/other.py")
    apply_proposal(config, make_proposal(config, [revise()]))
    assert committed_files(root) == ["tools/units.py"]
    assert git(root, "diff", "--cached", "--name-only") == "tools/other.py\n"
    assert git(root, "show", "HEAD:tools/other.py") == OTHER


def test_several_actions_make_one_commit_with_a_short_list_subject(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    add = Action("add_function", "to_feet", description="Convert metres to feet.", code=NEW_FEET)
    result = apply_proposal(config, make_proposal(config, [revise(), add]))
    assert result.message.splitlines()[0] == "funcforge: revise convert_units, add to_feet"
    assert sorted(result.files) == ["tools/other.py", "tools/units.py"]  # add: first tool file
    assert sorted(committed_files(config.root)) == ["tools/other.py", "tools/units.py"]
    assert git(config.root, "show", "HEAD:tools/other.py") == OTHER + "\n\n" + NEW_FEET
    assert load_toolset(config).functions.keys() >= {"convert_units", "to_feet", "shout", "add"}


def test_workspace_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "repo", sub="agent")
    result = apply_proposal(config, make_proposal(config, [revise()]))
    assert result.files == ["tools/units.py"]
    assert committed_files(tmp_path / "repo") == ["agent/tools/units.py"]


SHOUT_EDIT = UNITS.replace("text.upper()", "text.upper() + '!'")  # the user's own edit


def test_saved_edits_elsewhere_in_the_touched_file_stay_uncommitted(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    (root / "tools" / "units.py").write_text(SHOUT_EDIT, encoding="utf-8")

    result = apply_proposal(config, proposal)

    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS  # only the proposal
    both = SHOUT_EDIT.replace(OLD_CONVERT, NEW_CONVERT)
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == both
    diff = git(root, "diff", "-U0", "HEAD", "--", "tools/units.py")
    assert "+    return text.upper() + '!'" in diff and "mile" not in diff
    assert git(root, "diff", "--cached", "--name-only") == ""  # nothing left staged
    assert result.buffer_texts == {}


def test_the_autosaved_fix_with_another_edit_commits_only_the_fix(tmp_path: Path) -> None:
    """The editor applied the fix and autosave wrote it with the user's other edit."""
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    both = SHOUT_EDIT.replace(OLD_CONVERT, NEW_CONVERT)
    (root / "tools" / "units.py").write_text(both, encoding="utf-8")

    apply_proposal(config, proposal)

    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == both
    assert porcelain(root).splitlines() == [" M tools/units.py"]
    diff = git(root, "diff", "-U0", "HEAD", "--", "tools/units.py")
    assert "text.upper() + '!'" in diff and "mile" not in diff


def test_open_buffers_are_not_written_and_get_the_edit_back(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    unsaved = "# typed above\n" + SHOUT_EDIT

    result = apply_proposal(config, proposal, buffers={"tools/units.py": unsaved})

    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS
    # The disk under a buffer is left alone (the editor saves it), the index has the fix.
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == UNITS
    assert git(root, "diff", "--cached") == ""
    assert result.buffer_texts == {"tools/units.py": unsaved.replace(OLD_CONVERT, NEW_CONVERT)}


def test_a_buffer_that_already_holds_the_fix_is_committed_from_the_index(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    (root / "tools" / "units.py").write_text(SHOUT_EDIT, encoding="utf-8")  # saved edit
    buffer = "# unsaved\n" + SHOUT_EDIT.replace(OLD_CONVERT, NEW_CONVERT)

    result = apply_proposal(config, proposal, buffers={"tools/units.py": buffer})

    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == SHOUT_EDIT
    assert result.buffer_texts == {}


def test_lines_the_user_changed_too_are_a_conflict_and_nothing_changes(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    head = sha(root)
    mine = UNITS.replace('"m": 1.0}', '"m": 1.0, "cm": 0.01}')
    (root / "tools" / "units.py").write_text(mine, encoding="utf-8")
    before = snapshot(root, ["tools/units.py"])
    with pytest.raises(
        ApplyConflict,
        match=r"tools/units.py:\d+: proposal 2f1c9e's lines conflict "
        r"with your uncommitted edits .*Propose again",
    ) as info:
        apply_proposal(config, proposal)
    assert info.value.functions == ["convert_units"] and info.value.proposal == "2f1c9e"
    assert sha(root) == head and snapshot(root, ["tools/units.py"]) == before
    assert git(root, "diff", "--cached", "--name-only") == ""
    assert load_proposal(config.proposals_path, proposal.id).status == "pending"
    with pytest.raises(ApplyConflict, match=r"your unsaved edits in the editor"):
        apply_proposal(config, proposal, buffers={"tools/units.py": "\n" + mine})


def test_staged_edits_in_the_touched_file_stay_staged(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    (root / "tools" / "units.py").write_text(SHOUT_EDIT, encoding="utf-8")
    git(root, "add", "tools/units.py")

    apply_proposal(config, proposal)

    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS
    staged = git(root, "diff", "--cached", "-U0")
    assert "text.upper() + '!'" in staged and "mile" not in staged
    assert git(root, "diff") == ""  # the disk equals the index


def test_concurrent_applies_commit_once_and_keep_the_work_tree(tmp_path: Path) -> None:
    """A double click: two applies at once, in two processes."""
    config = make_workspace(tmp_path / "ws")
    root = config.root
    make_proposal(config, [revise()])
    script = (
        "import sys\n"
        "from funcforge.config import load_config\n"
        "from funcforge.errors import UserError\n"
        "from funcforge.history.git import apply_proposal\n"
        "from funcforge.optimizer.proposal import load_proposal\n"
        "c = load_config(sys.argv[1])\n"
        "try:\n"
        "    print('ok', apply_proposal(c, load_proposal(c.proposals_path, '2f1c9e')).commit)\n"
        "except UserError as e:\n"
        "    print('error', e)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs[0].startswith("error proposal 2f1c9e is already applied as ")
    assert outs[1] == f"ok {sha(root)}"
    assert git(root, "rev-list", "--count", "HEAD") == "2\n"
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == EXPECTED_UNITS
    assert porcelain(root) == ""


def test_a_symlinked_tool_file_stays_a_link_and_its_target_is_committed(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    (root / "lib").mkdir()
    git(root, "mv", "tools/units.py", "lib/units.py")
    (root / "tools" / "units.py").symlink_to("../lib/units.py")
    git(root, "add", "tools/units.py")
    git(root, "commit", "-q", "-m", "link")
    config = load_config(root)
    proposal = make_proposal(config, [revise()])

    result = apply_proposal(config, proposal)

    assert (root / "tools" / "units.py").is_symlink()
    assert committed_files(root) == ["lib/units.py"]
    assert (root / "lib" / "units.py").read_text(encoding="utf-8") == EXPECTED_UNITS
    assert result.files == ["tools/units.py"] and porcelain(root) == ""


def test_a_repository_without_commits_is_a_clear_error(tmp_path: Path) -> None:
    ws = tmp_path / "fresh"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "units.py").write_text(UNITS, encoding="utf-8")
    config = load_config(ws)
    proposal = make_proposal(config, [revise()])  # made before `git init`: no base version
    git(ws, "init", "-q", "-b", "main")
    git(ws, "config", "user.name", "Test User")
    git(ws, "config", "user.email", "test@example.com")
    with pytest.raises(UserError, match=r"has no commits yet: commit your tool files first"):
        apply_proposal(config, proposal)
    assert (ws / "tools" / "units.py").read_text(encoding="utf-8") == UNITS


def test_a_real_rebase_in_progress_is_named_as_such(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    git(root, "checkout", "-q", "-b", "side")
    user_commit(root, "README.md", "side\n")
    git(root, "checkout", "-q", "main")
    user_commit(root, "README.md", "main\n")
    git(root, "checkout", "-q", "side")
    proc = subprocess.run(["git", "rebase", "main"], cwd=root, capture_output=True)
    assert proc.returncode != 0
    with pytest.raises(UserError, match=r"^a rebase is in progress"):
        apply_proposal(config, make_proposal(config, [revise()]))


def test_commit_dirty_commits_the_users_edits_first_as_their_own(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    edited = UNITS.replace("text.upper()", "text.upper() + '!'")
    (root / "tools" / "units.py").write_text(edited, encoding="utf-8")

    result = apply_proposal(config, proposal, commit_dirty=True)

    assert result.wip_commit == sha(root, "HEAD~1")
    assert git(root, "log", "-1", "--format=%s", "HEAD~1") == (
        "WIP: user's edits to tools/units.py before funcforge proposal 2f1c9e\n"
    )
    assert git(root, "show", "HEAD~1:tools/units.py") == edited
    assert "Funcforge-Proposal" not in git(root, "log", "-1", "--format=%B", "HEAD~1")
    assert git(root, "show", "HEAD:tools/units.py") == edited.replace(OLD_CONVERT, NEW_CONVERT)
    assert porcelain(root) == ""


def test_stale_when_the_function_changed_since_the_proposal(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    user_commit(root, "tools/units.py", UNITS.replace('"m": 1.0', '"m": 1.0, "cm": 0.01'))
    head = sha(root)
    with pytest.raises(UserError, match=r"proposal is stale: `convert_units` changed since it was"):
        apply_proposal(config, proposal)
    assert sha(root) == head and porcelain(root) == ""


def test_stale_when_the_function_no_longer_exists(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    proposal = make_proposal(config, [revise()])
    user_commit(config.root, "tools/units.py", UNITS.replace(OLD_CONVERT + "\n\n", ""))
    with pytest.raises(UserError, match=r"`convert_units` changed .* no longer exists"):
        apply_proposal(config, proposal)


def test_reapplied_on_the_current_text_when_only_the_rest_of_the_file_changed(
    tmp_path: Path,
) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    changed = UNITS.replace(OLD_SHOUT, OLD_SHOUT.replace("text.upper()", "text.upper().strip()"))
    user_commit(root, "tools/units.py", changed)
    apply_proposal(config, proposal)
    assert git(root, "show", "HEAD:tools/units.py") == changed.replace(OLD_CONVERT, NEW_CONVERT)


def test_the_editors_own_application_of_the_edit_is_committed(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    proposal = make_proposal(config, [revise()])
    [change] = plan_actions(config, load_toolset(config), proposal.actions)
    (root / "tools" / "units.py").write_bytes(change.new_bytes())  # the editor applied it
    result = apply_proposal(config, proposal)
    assert committed_files(root) == ["tools/units.py"]
    assert git(root, "show", "HEAD:tools/units.py") == EXPECTED_UNITS
    assert result.wip_commit is None and porcelain(root) == ""


def test_an_applied_proposal_is_not_applied_twice(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    proposal = make_proposal(config, [revise()])
    result = apply_proposal(config, proposal)
    again = load_proposal(config.proposals_path, proposal.id)
    with pytest.raises(UserError, match=rf"already applied as {result.commit[:7]}"):
        apply_proposal(config, again)


def test_a_failed_commit_puts_the_files_and_the_index_back(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    git(root, "config", "commit.gpgsign", "true")
    git(root, "config", "gpg.program", "false")  # signing fails, so git commit fails
    add = Action("add_function", "to_feet", description="Convert metres to feet.", code=NEW_FEET)
    proposal = make_proposal(config, [revise()], pid="abc123")
    files = ["tools/units.py", "tools/other.py"]
    before = snapshot(root, files)
    with pytest.raises(UserError, match=r"git commit-tree failed.*gpg failed to sign"):
        apply_proposal(config, proposal)
    assert snapshot(root, files) == before
    assert load_proposal(config.proposals_path, "abc123").status == "pending"
    config.add_file = "tools/feet.py"  # a new file is removed again
    with pytest.raises(UserError, match=r"git commit-tree failed.*gpg failed to sign"):
        apply_proposal(config, make_proposal(config, [add], pid="abc124"))
    assert not (root / "tools" / "feet.py").exists()
    assert snapshot(root, files) == before


def test_detached_head_is_refused(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    git(config.root, "checkout", "-q", "--detach")
    with pytest.raises(UserError, match=r"HEAD is detached at [0-9a-f]{7}.*switch to a branch"):
        apply_proposal(config, make_proposal(config, [revise()]))


def test_a_real_merge_in_progress_is_refused(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    git(root, "checkout", "-q", "-b", "side")
    user_commit(root, "README.md", "side\n")
    git(root, "checkout", "-q", "main")
    user_commit(root, "README.md", "main\n")
    proc = subprocess.run(["git", "merge", "side"], cwd=root, capture_output=True)
    assert proc.returncode != 0 and (root / ".git" / "MERGE_HEAD").exists()
    with pytest.raises(UserError, match=r"a merge is in progress"):
        apply_proposal(config, make_proposal(config, [revise()]))


@pytest.mark.parametrize(
    ("marker", "what"),
    [
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase or git am"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
    ],
)
def test_operations_in_progress_are_refused(tmp_path: Path, marker: str, what: str) -> None:
    config = make_workspace(tmp_path / "ws")
    target = config.root / ".git" / marker
    if marker.startswith("rebase"):
        target.mkdir()
    else:
        target.write_text(sha(config.root) + "\n")
    with pytest.raises(UserError, match=rf"^{what} is in progress"):
        apply_proposal(config, make_proposal(config, [revise()]))


def test_a_held_index_lock_is_refused_after_waiting(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    (config.root / ".git" / "index.lock").write_text("")
    with pytest.raises(UserError, match=r"another git process .*index.lock exists"):
        apply_proposal(config, make_proposal(config, [revise()]), lock_timeout=0.2)


def test_an_index_lock_released_while_waiting_is_fine(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    lock = config.root / ".git" / "index.lock"
    lock.write_text("")

    def release() -> None:
        time.sleep(0.2)
        lock.unlink()

    threading.Thread(target=release, daemon=True).start()
    result = apply_proposal(config, make_proposal(config, [revise()]), lock_timeout=30)
    assert result.commit == sha(config.root)


def test_missing_git_identity_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_workspace(tmp_path / "ws")
    git(config.root, "config", "--unset", "user.name")
    git(config.root, "config", "--unset", "user.email")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UserError, match=r"no git identity .*user.name and user.email not set"):
        apply_proposal(config, make_proposal(config, [revise()]))


def test_not_a_git_repository(tmp_path: Path) -> None:
    ws = tmp_path / "plain"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "units.py").write_text(UNITS, encoding="utf-8")
    config = load_config(ws)
    with pytest.raises(UserError, match=r"is not a git repository: everything but commits works"):
        open_repo(config)
    toolset = load_toolset(config)
    assert current_version(config, toolset) == f"dirty-{toolset.content_hash()}"


def test_current_version_is_head_when_clean_else_the_content_hash(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    head7 = sha(root)[:7]
    assert current_version(config, load_toolset(config)) == head7
    (root / "README.md").write_text("not a tool file\n")
    (root / "notes.py").write_text("x = 1\n")
    assert current_version(config, load_toolset(config)) == head7

    # Unsaved editor text never changes the version evidence is bound to.
    unsaved = load_toolset(config, {"tools/units.py": UNITS + "\n# typing\n"})
    assert current_version(config, unsaved) == head7

    (root / "tools" / "new.py").write_text("def f() -> int:\n    return 1\n")
    toolset = load_toolset(config)
    assert current_version(config, toolset) == f"dirty-{toolset.content_hash()}"
    (root / "tools" / "new.py").unlink()

    (root / "tools" / "other.py").unlink()
    toolset = load_toolset(config)
    assert current_version(config, toolset) == f"dirty-{toolset.content_hash()}"
    git(root, "checkout", "--", "tools/other.py")
    assert current_version(config, load_toolset(config)) == head7


def test_the_committed_version_ignores_saved_and_unsaved_edits(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    head7 = sha(config.root)[:7]
    (config.root / "tools" / "units.py").write_text(SHOUT_EDIT, encoding="utf-8")  # autosaved
    toolset = load_toolset(config, {"tools/other.py": OTHER + "# unsaved\n"})
    assert current_version(config, toolset).startswith("dirty-")  # what runs now
    assert committed_version(config, toolset) == head7  # what evidence is bound to
