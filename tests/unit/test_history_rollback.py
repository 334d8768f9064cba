"""Roll-back by `git revert` on real repositories: exact bytes, messages, conflicts, refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from funcforge.errors import UserError
from funcforge.history.git import open_repo
from funcforge.history.log import history_log
from funcforge.history.rollback import RevertConflict, rollback
from funcforge.history.versions import funcforge_commits
from tests.conftest import git
from tests.unit.test_history_support import (
    NEW_ADD,
    OLD_SHOUT,
    TOOL_FILES,
    UNITS,
    at,
    make_workspace,
    porcelain,
    scores,
    sha,
    snapshot,
    trained,
    user_commit,
    write_traces,
)


def test_rollback_to_best_restores_its_bytes_with_one_revert_commit(tmp_path: Path) -> None:
    config, c0, o1, o2 = trained(tmp_path)
    root = config.root
    status = porcelain(root)

    result = rollback(config, best=True)

    [new] = result.commits
    assert new == sha(root) and sha(root, "HEAD~1") == o2  # added on top, nothing rewritten
    assert (result.target, result.reverted, result.kept) == (c0, [o2, o1], [])
    for f in TOOL_FILES:
        assert at(root, "HEAD", f) == at(root, c0, f) == (root / f).read_bytes()
    assert porcelain(root) == status
    message = git(root, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == (
        f"funcforge: roll back to {c0[:7]} (0.80, n=30) from 0.50 (n=30)"
    )
    assert f"This reverts commit {o2}.\nThis reverts commit {o1}." in message
    assert f"- {o1[:7]} funcforge: revise convert_units" in message
    assert "decline evidence" in message and "sequential test" in message
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, cwd=root, text=True,
        capture_output=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert parsed == [
        f"Funcforge-Rollback-To: {c0}",
        f"Funcforge-Reverts: {o2}",
        f"Funcforge-Reverts: {o1}",
    ]
    with open_repo(config) as repo:
        newest = funcforge_commits(repo)[0]
    assert (newest.kind, newest.rollback_to, newest.reverts) == ("rollback", c0, [o2, o1])


def test_rollback_to_a_given_commit_reverts_only_what_came_after(tmp_path: Path) -> None:
    config, _c0, o1, o2 = trained(tmp_path)
    root = config.root
    result = rollback(config, to=o1[:7])
    assert result.reverted == [o2]
    for f in TOOL_FILES:
        assert at(root, "HEAD", f) == at(root, o1, f)


def test_a_second_rollback_to_the_same_version_does_nothing(tmp_path: Path) -> None:
    config, c0, _o1, _o2 = trained(tmp_path)
    rollback(config, best=True)
    head = sha(config.root)
    result = rollback(config, to=c0)
    assert result.commits == [] and "nothing to roll back" in result.message
    assert sha(config.root) == head


def test_a_rollback_can_itself_be_rolled_back(tmp_path: Path) -> None:
    config, _c0, _o1, o2 = trained(tmp_path)
    root = config.root
    first = rollback(config, best=True).commits[0]
    result = rollback(config, to=o2)
    assert result.reverted == [first]
    for f in TOOL_FILES:
        assert at(root, "HEAD", f) == at(root, o2, f)


def test_user_commits_are_never_reverted(tmp_path: Path) -> None:
    config, c0, o1, o2 = trained(tmp_path)
    root = config.root
    user_commit(root, "README.md", "user's own notes\n")
    shout = OLD_SHOUT.replace("text.upper()", "text.upper().strip()")
    current = (root / "tools" / "units.py").read_text(encoding="utf-8")
    same_file = user_commit(root, "tools/units.py", current.replace(OLD_SHOUT, shout))

    result = rollback(config, to=c0)

    assert result.reverted == [o2, o1] and result.kept == [same_file]
    assert (root / "README.md").read_text() == "user's own notes\n"
    assert (root / "tools" / "units.py").read_text(encoding="utf-8") == UNITS.replace(
        OLD_SHOUT, shout
    )
    assert at(root, "HEAD", "tools/other.py") == at(root, c0, "tools/other.py")
    assert "kept: " + same_file[:7] in git(root, "log", "-1", "--format=%B")


def test_a_conflicting_revert_leaves_the_repository_as_it_was(tmp_path: Path) -> None:
    config, c0, o1, _o2 = trained(tmp_path)
    root = config.root
    current = (root / "tools" / "units.py").read_text(encoding="utf-8")
    user_commit(root, "tools/units.py", current.replace('"mile": 1609.344', '"mile": 1609.3'))
    (root / "README.md").write_text("unstaged edit\n")  # unrelated work in progress
    (root / "scratch.txt").write_text("untracked\n")
    files = [*TOOL_FILES, "README.md", "scratch.txt"]
    before = snapshot(root, files)

    with pytest.raises(RevertConflict) as info:
        rollback(config, to=c0)

    assert info.value.files == ["tools/units.py"]
    assert f"reverting {o1[:7]} conflicts in tools/units.py" in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert snapshot(root, files) == before
    assert not (root / ".git" / "REVERT_HEAD").exists()
    assert not (root / ".git" / "sequencer").exists()


def test_staged_changes_are_refused(tmp_path: Path) -> None:
    config, c0, _o1, _o2 = trained(tmp_path)
    root = config.root
    (root / "README.md").write_text("staged\n")
    git(root, "add", "README.md")
    before = snapshot(root, ["README.md", *TOOL_FILES])
    with pytest.raises(UserError, match=r"staged changes in README.md: commit or unstage"):
        rollback(config, to=c0)
    assert snapshot(root, ["README.md", *TOOL_FILES]) == before


def test_uncommitted_changes_in_a_reverted_file_are_refused(tmp_path: Path) -> None:
    config, c0, _o1, _o2 = trained(tmp_path)
    (config.root / "tools" / "other.py").write_text(NEW_ADD + "# wip\n")
    with pytest.raises(UserError, match=r"tools/other.py has uncommitted changes"):
        rollback(config, to=c0)


def test_refusals_and_nothing_to_do(tmp_path: Path) -> None:
    config, c0, _o1, o2 = trained(tmp_path)
    root = config.root
    with pytest.raises(UserError, match="exactly one of --to SHA or --best"):
        rollback(config)
    with pytest.raises(UserError, match="exactly one of"):
        rollback(config, to=c0, best=True)
    with pytest.raises(UserError, match=r"unknown commit 'nope'"):
        rollback(config, to="nope")
    assert rollback(config, to=o2).message == f"HEAD is {o2[:7]} already: nothing to roll back"
    git(root, "checkout", "-q", "-b", "side", c0)
    side = user_commit(root, "README.md", "side\n")
    git(root, "checkout", "-q", "main")
    with pytest.raises(UserError, match=rf"{side[:7]} is not an ancestor of HEAD"):
        rollback(config, to=side)
    user_commit(root, "README.md", "later\n")
    assert "no funcforge commits after" in rollback(config, to=o2).message
    git(root, "checkout", "-q", "--detach")
    with pytest.raises(UserError, match="HEAD is detached"):
        rollback(config, to=c0)


def test_a_leftover_revert_sequence_is_refused_not_aborted(tmp_path: Path) -> None:
    config, c0, _o1, _o2 = trained(tmp_path)
    (config.root / ".git" / "sequencer").mkdir()
    head = sha(config.root)
    with pytest.raises(UserError, match=r"sequence was left in progress.*git revert --quit"):
        rollback(config, to=c0)
    assert sha(config.root) == head and (config.root / ".git" / "sequencer").is_dir()


def test_best_needs_enough_traces(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    write_traces(config.root, sha(config.root)[:7], [1.0] * 5)
    with pytest.raises(UserError, match=r"no version on this branch has 20 scored traces"):
        rollback(config, best=True)


def test_log_shows_steps_scores_and_the_rollback(tmp_path: Path) -> None:
    config, c0, o1, o2 = trained(tmp_path)
    # 0.70 -> 0.50 on 30 traces each is not yet a decline under the sequential rule ...
    first = history_log(config).decline
    assert first is not None and not first.declined and first.best and first.best.version == o1
    # ... on 120 traces each it is (o2 is compared with o1, the last accepted version).
    write_traces(config.root, o1[:7], scores(0.7, 90), "traces/more.jsonl")
    write_traces(config.root, o2[:7], scores(0.5, 90), "traces/more.jsonl")
    before = history_log(config)
    assert before.decline is not None and before.decline.declined
    assert before.best is not None and before.best.version == c0
    [e2, e1] = before.entries
    assert (e2.commit.sha, e2.commit.step, e2.measured and e2.measured.describe()) == (
        o2,
        2,
        "0.50 (n=120)",
    )
    assert e1.commit.base_score == 0.62 and e1.reverted_by is None
    rb = rollback(config, best=True).commits[0]
    log = history_log(config)
    assert [e.commit.sha for e in log.entries] == [rb, o2, o1]
    assert log.entries[1].reverted_by == rb and log.entries[2].reverted_by == rb
    assert [v.commit for v in log.versions] == [c0, o1, o2, rb]
    # the roll-back restored c0's tools: the same toolset, so the same (best) version
    assert [v.is_best for v in log.versions] == [True, False, False, True]
    assert log.versions[-1].is_head and log.versions[-1].rollback
