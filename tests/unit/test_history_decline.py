"""The decline rule (Beta posteriors, min_traces, decline_probability) and early stop."""

from __future__ import annotations

from math import exp, lgamma

import pytest

from funcforge.config import Config
from funcforge.history.decline import (
    best_version,
    beta_params,
    detect_decline,
    early_stop,
    prob_less,
    prob_worse,
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
    t = VersionTable()
    for v in versions:
        (t.commits if v.kind == "commit" else t.dirty)[v.version] = v
        v.aliases.append(v.version[:7] if v.kind == "commit" else v.version)
    t.reachable = (
        {v.version for v in versions if v.kind == "commit"} if reachable is None else reachable
    )
    return t


@pytest.mark.parametrize(
    "params",
    [
        (1, 1, 1, 1),
        (5, 20, 15, 10),
        (25, 17, 21, 21),
        (1, 21, 2, 20),
        (300, 700, 320, 680),
        (3, 1, 1, 3),
    ],
)
def test_integration_matches_the_closed_form(params: tuple[int, int, int, int]) -> None:
    assert prob_less(*params) == pytest.approx(exact_prob_less(*params), abs=2e-5)


def test_probability_is_symmetric_and_deterministic() -> None:
    assert prob_less(8.5, 3.5, 8.5, 3.5) == pytest.approx(0.5, abs=1e-6)
    p = prob_less(10.2, 31.8, 30.5, 11.5)
    assert p == prob_less(10.2, 31.8, 30.5, 11.5)
    assert p + prob_less(30.5, 11.5, 10.2, 31.8) == pytest.approx(1.0, abs=1e-6)


def test_fractional_scores_are_successes() -> None:
    assert beta_params(12.5, 20) == (13.5, 8.5)
    assert beta_params(25.0, 20) == (21.0, 1.0)  # clipped to [0, n]


def test_clear_decline() -> None:
    config = Config(min_traces=20, decline_probability=0.9)
    best, current = commit("a" * 40, 0.80, 100), commit("b" * 40, 0.50, 40)
    d = detect_decline(config, table(best, current), "bbbbbbb")
    assert d.declined and d.best is best and d.current is current
    assert d.probability is not None and d.probability > 0.999
    assert d.message() == "score fell from 0.80 (n=100, aaaaaaa) to 0.50 (n=40)"


def test_borderline_difference_is_not_a_decline_at_the_default_threshold() -> None:
    best, current = commit("a" * 40, 0.60, 40), commit("b" * 40, 0.50, 40)
    expected = exact_prob_less(21, 21, 25, 17)  # P(p_current < p_best)
    d = detect_decline(Config(), table(best, current), "bbbbbbb")
    assert d.probability == pytest.approx(expected, abs=2e-5)
    assert 0.75 < expected < 0.9 and not d.declined
    assert "<= 0.9" in d.reason
    # The knob decides the borderline case.
    lowered = detect_decline(Config(decline_probability=0.75), table(best, current), "bbbbbbb")
    assert lowered.declined


def test_too_few_traces_are_not_judged() -> None:
    best, current = commit("a" * 40, 0.95, 100), commit("b" * 40, 0.0, 19)
    d = detect_decline(Config(min_traces=20), table(best, current), "bbbbbbb")
    assert not d.declined and d.reason == "current version bbbbbbb has 19 scored traces; need 20"
    assert detect_decline(Config(min_traces=10), table(best, current), "bbbbbbb").declined
    thin_best = commit("a" * 40, 0.95, 19)
    dirty = VersionScore("dirty-1", "dirty", n=50, score_sum=0.0, scored=50)
    d = detect_decline(Config(min_traces=20), table(thin_best, dirty), "dirty-1")
    assert not d.declined and d.reason == "no committed version has 20 scored traces yet"


def test_the_best_version_itself_has_not_declined() -> None:
    best = commit("a" * 40, 0.8, 50)
    d = detect_decline(Config(), table(best, commit("b" * 40, 0.4, 50)), "aaaaaaa")
    assert not d.declined and d.reason == "current version aaaaaaa is the best"


def test_best_ignores_dirty_and_unreachable_versions_and_prefers_more_traces() -> None:
    off_branch = commit("c" * 40, 0.99, 100)
    dirty = VersionScore("dirty-0123", "dirty", n=100, score_sum=100.0, scored=100)
    a, b = commit("a" * 40, 0.7, 30), commit("b" * 40, 0.7, 60)
    t = table(a, b, off_branch, dirty, reachable={a.version, b.version})
    assert best_version(Config(), t) is b
    d = detect_decline(Config(), t, "dirty-0123")
    assert d.current is dirty and d.best is b and not d.declined  # dirty beats best: no decline
    worse_dirty = VersionScore("dirty-9", "dirty", n=40, score_sum=10.0, scored=40)
    t.dirty["dirty-9"] = worse_dirty
    worse_dirty.aliases.append("dirty-9")
    assert detect_decline(Config(), t, "dirty-9").declined


def test_prob_worse_uses_both_versions() -> None:
    assert prob_worse(commit("b" * 40, 0.5, 40), commit("a" * 40, 0.6, 40)) == pytest.approx(
        exact_prob_less(21, 21, 25, 17), abs=2e-5
    )


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
