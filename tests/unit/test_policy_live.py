"""One verdict, three places: `funcforge optimize`, the language server and `log` agree.

Also: rejected proposals (CLI and the editor's command) become failure experience
with their reason, and the next prompt shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funcforge.cli import main as cli_main
from funcforge.config import Config
from funcforge.lsp.decline import find_decline
from funcforge.lsp.session import Session, Settings
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.policy import reject_proposal
from funcforge.optimizer.proposal import load_proposal
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.test_history_support import make_proposal, revise, scores, trained, write_traces

TERMINATE = {"content": "TERMINATE"}


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def three_verdicts(config: Config, capsys: pytest.CaptureFixture[str]) -> tuple[bool, bool, bool]:
    """(log, server, optimize) say declined?"""
    root = config.root
    code, out, err = main(capsys, "log", str(root), "--json")
    assert code == 0, err
    by_log = json.loads(out)["decline"]["declined"]
    session = Session(root, Settings())
    session.load_config()
    session.index()
    by_server = find_decline(session) is not None
    with FakeOpenAI(script=[TERMINATE]) as srv:
        (root / "funcforge.toml").write_text(
            f'base_url = "{srv.base_url}"\nmodel = "fake-model"\n', encoding="utf-8"
        )
        code, out, err = main(capsys, "optimize", str(root), "--no-execute", "--json")
    assert code == 0, err
    payload = json.loads(out)
    by_optimize = payload["decision"] == "rollback"
    assert payload["verdict"]["declined"] is by_optimize
    return by_log, by_server, by_optimize


def test_optimize_server_and_log_agree_on_a_small_decline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.70 -> 0.50 on 30 traces each: "any decline" would roll back; the sequential rule waits."""
    config, *_ = trained(tmp_path)
    assert three_verdicts(config, capsys) == (False, False, False)
    state = OptimizerState.load(config.state_path)
    assert state.failure_experience == []  # nothing was condemned on thin evidence


def test_optimize_server_and_log_agree_on_a_clear_decline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, o1, o2 = trained(tmp_path)
    write_traces(config.root, o1[:7], scores(0.7, 90), "traces/more.jsonl")
    write_traces(config.root, o2[:7], scores(0.5, 90), "traces/more.jsonl")
    assert three_verdicts(config, capsys) == (True, True, True)
    # optimize recorded the verdict: the declined function set is failure experience.
    [failure] = OptimizerState.load(config.state_path).failure_experience
    assert failure.version == o2[:7] and failure.reason.startswith("declined: decline evidence")


def test_held_out_traces_do_not_change_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Terrible test-split scores for HEAD are reported, never used to decide."""
    config, _, _, o2 = trained(tmp_path)
    path = config.root / "traces" / "held.jsonl"
    write_traces(config.root, o2[:7], [0.0] * 200, "traces/held.jsonl")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "split": "test"}) + "\n" for r in rows))
    assert three_verdicts(config, capsys) == (False, False, False)


def test_rejected_proposals_become_failure_experience_with_their_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, *_ = trained(tmp_path)
    p = make_proposal(config, [revise("convert_units", "def convert_units(v, u):\n    return 0\n")])
    p.save(config.proposals_path)
    code, out, err = main(
        capsys, "reject", p.id, str(config.root), "--reason", "returns 0 for everything"
    )
    assert code == 0, err and "failure experience" in out
    assert load_proposal(config.proposals_path, p.id).status == "rejected"
    [failure] = OptimizerState.load(config.state_path).failure_experience
    assert failure.reason == "rejected by the user: returns 0 for everything"
    assert failure.actions == ["revise convert_units"]
    assert "return 0" in failure.functions["convert_units"]
    # The editor's Reject goes through the same function.
    q = make_proposal(config, [revise("add", "def add(a, b):\n    return a - b\n")], pid="ccc333")
    q.save(config.proposals_path)
    reject_proposal(config, q, "rejected in the editor")
    reasons = [f.reason for f in OptimizerState.load(config.state_path).failure_experience]
    assert "rejected by the user: rejected in the editor" in reasons
    # The next step's prompt shows them, with the reason.
    with FakeOpenAI(script=[TERMINATE]) as srv:
        (config.root / "funcforge.toml").write_text(
            f'base_url = "{srv.base_url}"\nmodel = "fake-model"\n', encoding="utf-8"
        )
        code, out, err = main(capsys, "optimize", str(config.root), "--no-execute", "--json")
        sent = "\n".join(str(m.get("content")) for m in srv.chat_requests[0].body["messages"])
    assert code == 0, err
    assert "why: rejected by the user: returns 0 for everything" in sent


def test_commit_trailers_label_the_split_and_still_parse() -> None:
    from funcforge.history.message import format_split_score, parse_score

    assert format_split_score(0.625, 40, "train") == "0.62 (n=40, train)"
    assert parse_score("0.62 (n=40, train)") == (0.62, 40)
    assert parse_score("0.62 (n=40)") == (0.62, 40)  # trailers written before labels
    assert format_split_score(None, 0, "train") == "no traces"
