"""The sequential decline rule (last accepted version, min_traces, decline_alpha) and early stop."""

from __future__ import annotations

import math
import random
from math import exp, lgamma

import pytest

from funcforge.config import Config
from funcforge.history.decline import (
    accepted_version,
    best_version,
    beta_params,
    decline_evidence,
    declines,
    detect_decline,
    early_stop,
    log_norm_cdf,
    prob_less,
)
from funcforge.history.versions import FuncforgeCommit, VersionScore, VersionTable


def exact_prob_less(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X < Y) for integer Beta parameters, in closed form (a sum of Beta functions)."""

    def lbeta(a: float, b: float) -> float:
        return lgamma(a) + lgamma(b) - lgamma(a + b)

    return sum(
        exp(lbeta(a1 + i, b1 + b2) - lbeta(1 + i, b2) - lbeta(a1, b1)) / (b2 + i) for i in range(a2)
    )


def commit(sha: str, mean: float, n: int) -> VersionScore:
    return VersionScore(sha, "commit", n=n, score_sum=mean * n, scored=n, passed=round(mean * n))


def table(*versions: VersionScore, reachable: set[str] | None = None) -> VersionTable:
    """Versions given oldest first; committed ones form HEAD's history in that order."""
    t = VersionTable()
    for v in versions:
        (t.commits if v.kind == "commit" else t.dirty)[v.version] = v
        v.aliases.append(v.version[:7] if v.kind == "commit" else v.version)
    t.reachable = (
        {v.version for v in versions if v.kind == "commit"} if reachable is None else reachable
    )
    t.ancestry = [v.version for v in reversed(versions) if v.version in t.reachable]
    t.head = t.ancestry[0] if t.ancestry else None
    return t


@pytest.mark.parametrize(
    "params",
    [(1, 1, 1, 1), (5, 20, 15, 10), (25, 17, 21, 21), (300, 700, 320, 680), (3, 1, 1, 3)],
)
def test_posterior_probability_matches_the_closed_form(params: tuple[int, int, int, int]) -> None:
    assert prob_less(*params) == pytest.approx(exact_prob_less(*params), abs=2e-5)


def test_fractional_scores_are_successes() -> None:
    assert beta_params(12.5, 20) == (13.5, 8.5)
    assert beta_params(25.0, 20) == (21.0, 1.0)  # clipped to [0, n]


def test_log_norm_cdf_is_accurate_in_both_tails() -> None:
    assert log_norm_cdf(0.0) == pytest.approx(math.log(0.5))
    assert log_norm_cdf(-5.0) == pytest.approx(math.log(2.866515718791939e-07), rel=1e-9)
    assert log_norm_cdf(-40.0) == pytest.approx(-804.6084420137538, rel=1e-6)
    assert log_norm_cdf(8.0) == pytest.approx(0.0, abs=1e-12)


def test_evidence_grows_with_the_decline_and_the_traces() -> None:
    assert decline_evidence(50, 100, 50, 100) < 0  # no difference: evidence below 1
    assert decline_evidence(60, 100, 40, 100) > decline_evidence(60, 100, 50, 100)
    assert decline_evidence(300, 500, 80, 200) > decline_evidence(300, 500, 40, 100)
    assert decline_evidence(50, 100, 70, 100) < decline_evidence(50, 100, 50, 100)  # a rise
    assert decline_evidence(0, 0, 5, 10) == -math.inf


def test_clear_decline() -> None:
    config = Config(min_traces=20)
    best, current = commit("a" * 40, 0.80, 100), commit("b" * 40, 0.50, 40)
    d = detect_decline(config, table(best, current), "bbbbbbb")
    assert d.declined and d.best is best and d.current is current
    assert d.evidence is not None and d.threshold == 20 and d.evidence > 50
    assert d.message() == "score fell from 0.80 (n=100, aaaaaaa) to 0.50 (n=40) on the train split"
    assert "sequential test, alpha 0.05" in d.reason and "train split" in d.reason


def test_borderline_difference_waits_for_more_traces() -> None:
    best, current = commit("a" * 40, 0.60, 40), commit("b" * 40, 0.50, 40)
    d = detect_decline(Config(), table(best, current), "bbbbbbb")
    assert not d.declined and d.evidence is not None and d.evidence < 20
    assert "< 20" in d.reason
    # The same rates over many more traces are a decline; alpha is the knob.
    many = detect_decline(
        Config(), table(commit("a" * 40, 0.6, 500), commit("b" * 40, 0.5, 400)), "bbbbbbb"
    )
    assert many.declined
    loose = Config(decline_alpha=0.5)
    assert detect_decline(loose, table(best, commit("b" * 40, 0.4, 40)), "bbbbbbb").declined


def test_too_few_traces_are_not_judged() -> None:
    best, current = commit("a" * 40, 0.95, 100), commit("b" * 40, 0.0, 19)
    d = detect_decline(Config(min_traces=20), table(best, current), "bbbbbbb")
    assert not d.declined and d.reason == "current version bbbbbbb has 19 scored traces; need 20"
    assert detect_decline(Config(min_traces=10), table(best, current), "bbbbbbb").declined
    thin_best = commit("a" * 40, 0.95, 19)
    dirty = VersionScore("dirty-1", "dirty", n=50, score_sum=0.0, scored=50)
    d = detect_decline(Config(min_traces=20), table(thin_best, dirty), "dirty-1")
    assert not d.declined and d.reason == "no earlier accepted version has 20 scored traces yet"


def test_compares_with_the_last_accepted_version_not_the_best_of_many() -> None:
    """A lucky old version does not condemn the current one (no winner's curse)."""
    lucky, accepted = commit("a" * 40, 0.95, 40), commit("b" * 40, 0.60, 200)
    current = commit("c" * 40, 0.58, 100)
    t = table(lucky, accepted, current)
    assert best_version(Config(), t) is lucky  # still the roll-back target of --best
    assert accepted_version(Config(), t, current) is accepted
    d = detect_decline(Config(), t, "ccccccc")
    assert d.best is accepted and not d.declined


def test_reverted_and_unmeasured_ancestors_are_skipped() -> None:
    base, bad = commit("a" * 40, 0.7, 100), commit("b" * 40, 0.2, 100)
    thin = commit("d" * 40, 0.1, 5)
    current = commit("e" * 40, 0.45, 60)
    undo = VersionScore("c" * 40, "commit")  # the roll-back commit, no traces of its own
    t = table(base, bad, undo, thin, current)
    t.funcforge["c" * 40] = FuncforgeCommit(
        "c" * 40, "roll back", ["b" * 40], 0, "rollback", rollback_to="a" * 40, reverts=["b" * 40]
    )
    assert accepted_version(Config(), t, current) is base
    assert detect_decline(Config(), t, "eeeeeee").declined
    # An uncommitted tree compares with HEAD's nearest accepted version.
    dirty = VersionScore("dirty-9", "dirty", n=40, score_sum=10.0, scored=40, aliases=["dirty-9"])
    t.dirty["dirty-9"] = dirty
    assert accepted_version(Config(), t, dirty) is current


def test_alpha_must_be_a_probability(tmp_path) -> None:
    from funcforge.config import ConfigError, load_config

    (tmp_path / "funcforge.toml").write_text("decline_alpha = 1.5\n")
    with pytest.raises(ConfigError, match=r"funcforge.toml:1: 'decline_alpha' must be between 0"):
        load_config(tmp_path)


def test_false_rollbacks_stay_below_alpha_when_rechecked_after_every_trace() -> None:
    """The guarantee, small: equal rates, re-checked after each of 300 traces, 400 runs."""
    rng = random.Random(1234)
    false = 0
    for rep in range(400):
        p = (0.3, 0.5, 0.7, 0.9)[rep % 4]
        best_n = (100, 500)[rep % 2]
        best_sum = sum(rng.random() < p for _ in range(best_n))
        s = 0
        for n in range(1, 301):
            s += rng.random() < p
            if declines(best_sum, best_n, s, n):
                false += 1
                break
    assert false / 400 <= 0.05
    # ... and a 20-point decline against 500 traces is caught by the 200th trace.
    caught = 0
    for _ in range(100):
        best_sum = sum(rng.random() < 0.6 for _ in range(500))
        s = 0
        for n in range(1, 201):
            s += rng.random() < 0.4
            if declines(best_sum, 500, s, n):
                caught += 1
                break
    assert caught >= 90


def _ff(sha: str, parent: str, step: int, base: float | None = None) -> FuncforgeCommit:
    return FuncforgeCommit(
        sha, f"funcforge: step {step}", [parent], 0, "proposal", step=step, base_score=base
    )


def _history(means: list[float | None], base: float | None) -> VersionTable:
    """Optimizer commits c1..ck on top of c0; None means not yet measured."""
    t = table(*([commit("0" * 40, base, 40)] if base is not None else []))
    shas = [str(i) * 40 for i in range(1, len(means) + 1)]
    parent = "0" * 40
    for sha, mean in zip(shas, means, strict=True):
        t.funcforge[sha] = _ff(sha, parent, int(sha[0]))
        if mean is not None:
            t.commits[sha] = commit(sha, mean, 40)
        parent = sha
    t.funcforge = dict(reversed(list(t.funcforge.items())))  # newest first, as git log lists
    return t


def test_early_stop_counts_steps_without_improvement() -> None:
    t = _history([0.6, 0.55, 0.6, None], base=0.5)
    es = early_stop(Config(patience=2), t)
    assert es.stop and (es.streak, es.measured, es.unmeasured) == (2, 3, 1)
    assert es.best_score == 0.6
    assert not early_stop(Config(patience=3), t).stop


def test_early_stop_ties_follow_the_tie_rule() -> None:
    t = _history([0.6, 0.55, 0.6], base=0.5)
    es = early_stop(Config(patience=2, tie_rule="improvement"), t)
    assert (es.stop, es.streak) == (False, 0)


def test_early_stop_starts_from_the_trailer_score_without_a_measured_base() -> None:
    t = _history([0.4, 0.45], base=None)
    first = next(reversed(list(t.funcforge.values())))
    first.base_score = 0.5
    es = early_stop(Config(patience=2), t)
    assert es.stop and es.best_score == 0.5
    improvement = _history([0.55, 0.7], base=0.5)
    assert early_stop(Config(patience=1), improvement).streak == 0


def test_early_stop_continues_the_policy_state_from_its_newest_decision() -> None:
    """One counter: the recorded state's (steps without a commit included), then newer commits."""
    from funcforge.optimizer.optimizer import OptimizerState, ScoreRecord

    t = _history([0.5, 0.6, 0.7, 0.65], base=0.4)
    t.ancestry = [str(i) * 40 for i in (4, 3, 2, 1, 0)]  # HEAD first
    # The state decided on commit 3 (0.7, the best) and then two steps made no commit.
    state = OptimizerState(best_version="3" * 40, best_score=0.7, best_n=40, no_improvement=2)
    state.history.append(ScoreRecord(0, "3" * 40, 0.7, 40, "improved"))
    es = early_stop(Config(patience=3), t, state)
    # Commits 1 and 2 are older than what the state decided: not judged again against 0.7.
    assert (es.streak, es.stop, es.best_score) == (3, True, 0.7)
    assert early_stop(Config(patience=3), t).streak == 1  # without a state: the commits alone
    state.patience = 5  # the trainer's --patience, saved with its state
    assert not early_stop(Config(patience=3), t, state).stop
