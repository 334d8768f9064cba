"""The AgentOptimizer's policy on scripted score sequences: roll-back, ties, early stop, repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcforge.errors import UserError
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.policy import Measurement, Policy


def m(i: int, score: float, n: int = 40) -> Measurement:
    return Measurement(f"v{i}", {"f": f"def f():\n    return {i}\n"}, score, n, [f"revise f #{i}"])


def run(scores: list[float], patience: int = 10, tie_rule: str = "not-improvement"):
    policy = Policy(patience=patience, tie_rule=tie_rule)
    decisions = []
    for i, score in enumerate(scores):
        verdict = policy.judge(m(i, score))
        decisions.append((verdict.decision, policy.stop_reason() is not None))
    return policy.state, decisions


def test_improvement_becomes_best_and_clears_failure_experience() -> None:
    state, decisions = run([0.5, 0.4, 0.7])
    assert [d for d, _ in decisions] == ["initial", "rollback", "improved"]
    assert state.best_version == "v2" and state.best_score == 0.7
    assert state.failure_experience == []  # cleared on improvement, as in the paper
    assert state.best_functions == {"f": "def f():\n    return 2\n"}


def test_decline_rolls_back_and_is_remembered_ascending() -> None:
    state, decisions = run([0.6, 0.5, 0.3, 0.55])
    assert [d for d, _ in decisions] == ["initial", "rollback", "rollback", "rollback"]
    assert state.best_version == "v0"
    assert [f.score for f in state.failure_experience] == [0.3, 0.5, 0.55]
    assert state.failure_experience[0].actions == ["revise f #2"]


def test_early_stop_after_patience_steps_without_improvement() -> None:
    state, decisions = run([0.5, 0.4, 0.5, 0.3], patience=3)
    assert [s for _, s in decisions] == [False, False, False, True]
    assert state.converged


def test_improvement_resets_patience() -> None:
    _, decisions = run([0.5, 0.4, 0.4, 0.6, 0.5, 0.5], patience=3)
    assert [s for _, s in decisions] == [False, False, False, False, False, False]


def test_tie_is_kept_but_counts_as_no_improvement_by_default() -> None:
    state, decisions = run([0.5, 0.5, 0.5], patience=2)
    assert [d for d, _ in decisions] == ["initial", "tie", "tie"]
    assert state.best_version == "v2"  # a tie is no decline: the newer set is kept
    assert decisions[-1][1] is True


def test_tie_rule_improvement_resets_patience() -> None:
    _, decisions = run([0.5, 0.5, 0.5], patience=2, tie_rule="improvement")
    assert not any(stop for _, stop in decisions)


def test_batch_mode_compares_with_the_best_on_the_same_tasks() -> None:
    policy = Policy()
    policy.judge(m(0, 0.51, 45))
    # 0.45 against the best's 0.51 elsewhere would be a roll-back; on the same batch it ties.
    verdict = policy.judge(m(1, 0.45, 20), best_now=(0.45, 20))
    assert verdict.decision == "tie" and "on the same tasks" in verdict.reason


def test_a_rolled_back_set_is_recognised_by_content() -> None:
    policy = Policy()
    policy.judge(m(0, 0.6))
    policy.judge(m(1, 0.4))
    again = {"f": "def f():\n    return 1\n"}
    known = policy.known_failure(again)
    assert known is not None and known.version == "v1" and "lower" in known.reason
    assert policy.known_failure({"f": "def f():\n    return 7\n"}) is None
    assert policy.is_best({"f": "def f():\n    return 0\n"})


def test_steps_that_change_nothing_count_towards_patience() -> None:
    policy = Policy(patience=2)
    policy.judge(m(0, 0.6))
    policy.no_change("TERMINATE")
    assert policy.stop_reason() is None
    policy.no_change("no valid action")
    assert policy.stop_reason() is not None and policy.state.notes == [
        "TERMINATE",
        "no valid action",
    ]


def test_state_persists_across_restart(tmp_path: Path) -> None:
    state, _ = run([0.6, 0.4, 0.4], patience=5)
    state.save(tmp_path)
    again = OptimizerState.load(tmp_path)
    assert again == state
    verdict = Policy(again, patience=5).judge(m(9, 0.3, 10))
    assert verdict.decision == "rollback" and again.no_improvement == 3


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(UserError, match=r"state\.json"):
        OptimizerState.load(tmp_path)


def test_live_verdicts_judge_each_version_once_and_count_patience() -> None:
    from funcforge.history.decline import Decline

    policy = Policy(patience=2)
    quiet = Decline(False, "decline evidence 1.0 < 20")
    assert policy.observe_live(quiet, m(0, 0.6, 10), min_traces=20) == quiet.reason
    assert policy.state.history == []  # too few traces: not judged
    policy.observe_live(quiet, m(0, 0.6, 40), min_traces=20)
    policy.observe_live(quiet, m(0, 0.6, 80), min_traces=20)  # the same version again
    assert [r.decision for r in policy.state.history] == ["initial"]
    policy.observe_live(quiet, m(1, 0.55, 40), min_traces=20)
    assert policy.state.no_improvement == 1 and policy.stop_reason() is None
    fired = Decline(True, "decline evidence 40.0 >= 20")
    policy.observe_live(fired, m(2, 0.3, 40), min_traces=20)
    assert [r.decision for r in policy.state.history] == ["initial", "tie", "rollback"]
    assert policy.known_failure(m(2, 0.3).functions) is not None
    assert policy.stop_reason() is not None and policy.state.converged
