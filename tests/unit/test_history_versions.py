"""Trace versions resolved to commits on real repositories; funcforge commits parsed; messages."""

from __future__ import annotations

from pathlib import Path

from funcforge.history.git import open_repo
from funcforge.history.message import (
    format_score,
    parse_score,
    parse_trailers,
    proposal_message,
    rollback_message,
)
from funcforge.history.versions import load_version_table, resolve_versions
from funcforge.optimizer.proposal import Proposal
from funcforge.traces.store import TraceStore
from tests.conftest import git
from tests.unit.test_history_support import (
    NEW_CONVERT,
    OLD_CONVERT,
    UNITS,
    make_proposal,
    make_workspace,
    optimizer_commit,
    revise,
    scores,
    sha,
    user_commit,
    write_traces,
)


def test_versions_merge_per_commit_and_keep_dirty_and_unknown_apart(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    c0 = sha(root)
    proposal = make_proposal(config, [revise()])
    c1 = optimizer_commit(root, "tools/units.py", UNITS.replace(OLD_CONVERT, NEW_CONVERT), proposal)
    write_traces(root, c0[:7], scores(0.5, 20))
    write_traces(root, c0, [1.0] * 10)  # the full sha of the same commit
    write_traces(root, c0[:10], [0.0] * 4)  # another abbreviation of it
    write_traces(root, c1[:7], [1.0, 1.0, 0.5])
    write_traces(root, "dirty-0123456789ab", [1.0, 0.0])
    write_traces(root, "deadbee", [1.0])  # hex, but no such commit
    write_traces(root, "main", [1.0])  # a branch name is not a version: it moves

    with open_repo(config) as repo:
        table = load_version_table(config, repo)

    assert set(table.commits) == {c0, c1}
    v0 = table.commits[c0]
    assert (v0.kind, v0.n, v0.scored, v0.passed) == ("commit", 34, 34, 20)
    assert v0.mean_score == (10 + 10) / 34
    assert sorted(v0.aliases) == sorted([c0[:7], c0, c0[:10]])
    assert not v0.is_optimizer and v0.funcforge is None
    v1 = table.commits[c1]
    assert v1.is_optimizer and v1.funcforge is not None and v1.funcforge.step == 3
    assert v1.mean_score == 2.5 / 3 and v1.describe() == "0.83 (n=3)"
    assert list(table.dirty) == ["dirty-0123456789ab"]
    assert table.dirty["dirty-0123456789ab"].kind == "dirty"
    assert set(table.unresolved) == {"deadbee", "main"}
    assert table.reachable == {c0, c1}
    assert table.head == c1
    # Lookup by any alias, by a fresh abbreviation, by the dirty string.
    assert table.lookup(c0[:7]) is v0 and table.lookup(c0[:12]) is v0 and table.lookup(c0) is v0
    assert table.lookup("dirty-0123456789ab") is table.dirty["dirty-0123456789ab"]
    assert table.lookup("feedface") is None


def test_resolve_versions_rejects_non_commits_and_unknown(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    head = sha(root)
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    with open_repo(config) as repo:
        out = resolve_versions(repo, [head[:7], head, tree, "0000000", "HEAD", "dirty-abc"])
    assert out == {head[:7]: head, head: head, tree: None, "0000000": None}


def test_a_version_on_another_branch_is_resolved_but_not_reachable(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    git(root, "checkout", "-q", "-b", "side")
    side = user_commit(root, "tools/other.py", "def add(a, b):\n    return b + a\n")
    git(root, "checkout", "-q", "main")
    write_traces(root, side[:7], [1.0] * 3)
    with open_repo(config) as repo:
        table = load_version_table(config, repo)
    assert side in table.commits and side not in table.reachable


def test_stats_from_a_store_can_be_passed_in(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    write_traces(config.root, sha(config.root)[:7], [0.25, 0.75])
    store = TraceStore(config)
    store.refresh()
    with open_repo(config) as repo:
        table = load_version_table(config, repo, store.version_stats())
    [entry] = table.commits.values()
    assert (entry.n, entry.mean_score) == (2, 0.5)


def test_proposal_message_without_optional_parts() -> None:
    p = Proposal(id="abc123", actions=[revise()], rationale="")
    text = proposal_message(p)
    assert text == (
        "funcforge: revise convert_units\n\n"
        "Funcforge-Proposal: abc123\n"
        "Co-authored-by: funcforge <funcforge@localhost>\n"
    )
    assert parse_trailers(text) == [
        ("Funcforge-Proposal", "abc123"),
        ("Co-authored-by", "funcforge <funcforge@localhost>"),
    ]


def test_long_rationale_is_wrapped_but_lists_are_kept() -> None:
    rationale = ("word " * 40).strip() + "\n\n- keep this line exactly as it is, even if long" * 1
    p = Proposal(id="abc123", actions=[revise()], rationale=rationale)
    body = proposal_message(p).split("\n\n")
    assert all(len(line) <= 72 for line in body[1].splitlines())
    assert body[2] == "- keep this line exactly as it is, even if long"


def test_rollback_message_and_scores_round_trip() -> None:
    text = rollback_message(
        "a" * 40, "0.78, n=120", "0.61 (n=45)", [("b" * 40, "funcforge: revise f")]
    )
    assert text.splitlines()[0] == "funcforge: roll back to aaaaaaa (0.78, n=120) from 0.61 (n=45)"
    assert f"This reverts commit {'b' * 40}." in text
    assert parse_trailers(text) == [
        ("Funcforge-Rollback-To", "a" * 40),
        ("Funcforge-Reverts", "b" * 40),
    ]
    assert format_score(0.6249, 40) == "0.62 (n=40)"
    assert parse_score("0.62 (n=40)") == (0.62, 40)
    assert parse_score("no traces") is None
    assert format_score(None, 0) == "no traces"
