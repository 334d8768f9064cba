"""The AgentOptimizer's policy on scripted score sequences: roll-back, ties, early stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcforge.errors import UserError
from funcforge.optimizer.optimizer import OptimizerState


def run(scores: list[float], patience: int = 10, tie_rule: str = "not-improvement"):
    state = OptimizerState()
    decisions = []
    for i, score in enumerate(scores):
        out = state.record_score(
            f"v{i}",
            score,
            40,
            {"f": f"def f():\n    return {i}\n"},
            patience=patience,
            tie_rule=tie_rule,
            actions=[f"revise f #{i}"],
        )
        decisions.append((out.decision, out.early_stop))
    return state, decisions


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


def test_same_version_measured_again_only_refreshes() -> None:
    state = OptimizerState()
    state.record_score("v0", 0.5, 20, {}, patience=3)
    out = state.record_score("v0", 0.55, 40, {}, patience=3)
    assert out.decision == "unchanged" and state.best_n == 40 and state.step == 1


def test_state_persists_across_restart(tmp_path: Path) -> None:
    state, _ = run([0.6, 0.4, 0.4], patience=5)
    state.save(tmp_path)
    again = OptimizerState.load(tmp_path)
    assert again == state
    out = again.record_score("v9", 0.3, 10, {}, patience=5)
    assert out.decision == "rollback" and again.no_improvement == 3


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(UserError, match=r"state\.json"):
        OptimizerState.load(tmp_path)
