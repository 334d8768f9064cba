"""Is the current version worse than the best one? And has training stopped improving?

The rule (documented for users in docs/history.md):

* A version is judged only with at least `min_traces` scored traces (default 20).
* Scores lie in [0, 1]; a version with n scored traces whose scores sum to s
  gets the posterior Beta(1 + s, 1 + n - s) for its success rate (a uniform
  prior; with pass/fail scores this is the textbook Beta-Binomial model).
* The best version is the committed version on the current branch (HEAD or an
  ancestor) with the highest mean score, ties broken by more traces.
* The current version has declined when P(p_current < p_best) exceeds
  `decline_probability` (default 0.9). The probability is computed by
  deterministic numerical integration, so the same traces give the same answer.
* Early stop: `patience` accepted optimizer commits in a row whose measured
  score did not beat the best score so far (ties follow `tie_rule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from funcforge.config import Config
from funcforge.history.versions import VersionScore, VersionTable

GRID_POINTS = 2001  # per distribution; the error is far below the 0.01 anyone reads
SPAN_SD = 12.0  # each grid covers mean +- 12 standard deviations (clipped to [0, 1])


def beta_params(score_sum: float, n: int) -> tuple[float, float]:
    """Beta(1 + s, 1 + n - s): the posterior of a success rate after n scores summing to s."""
    s = min(max(score_sum, 0.0), float(n))
    return 1.0 + s, 1.0 + n - s


def _grid(a: float, b: float) -> tuple[float, float, list[float]]:
    """A uniform grid over the bulk of Beta(a, b) with its normalised density values."""
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    lo, hi = max(0.0, mean - SPAN_SD * sd), min(1.0, mean + SPAN_SD * sd)
    h = (hi - lo) / (GRID_POINTS - 1)
    logs: list[float] = []
    for i in range(GRID_POINTS):
        x = lo + i * h
        logs.append(_xlogy(a - 1, x) + _xlogy(b - 1, 1.0 - x))
    top = max(logs)
    dens = [math.exp(v - top) if v != -math.inf else 0.0 for v in logs]
    total = h * (sum(dens) - 0.5 * (dens[0] + dens[-1]))
    return lo, h, [d / total for d in dens]


def _xlogy(k: float, x: float) -> float:
    if k == 0:
        return 0.0
    return k * math.log(x) if x > 0 else -math.inf


def prob_less(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X < Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2): the integral of f_Y(y) F_X(y) dy."""
    lo_x, hx, fx = _grid(a1, b1)
    cdf = [0.0]
    for i in range(1, len(fx)):
        cdf.append(cdf[-1] + 0.5 * hx * (fx[i - 1] + fx[i]))
    last = len(cdf) - 1

    def cdf_x(y: float) -> float:
        t = (y - lo_x) / hx if hx > 0 else (math.inf if y >= lo_x else -math.inf)
        if t <= 0:
            return 0.0
        if t >= last:
            return 1.0
        i = int(t)
        return cdf[i] + (t - i) * (cdf[i + 1] - cdf[i])

    lo_y, hy, fy = _grid(a2, b2)
    vals = [fy[i] * cdf_x(lo_y + i * hy) for i in range(len(fy))]
    p = hy * (sum(vals) - 0.5 * (vals[0] + vals[-1]))
    return min(max(p, 0.0), 1.0)


def prob_worse(current: VersionScore, best: VersionScore) -> float:
    """P(p_current < p_best) under the Beta posteriors of both versions."""
    a1, b1 = beta_params(current.score_sum, current.scored)
    a2, b2 = beta_params(best.score_sum, best.scored)
    return prob_less(a1, b1, a2, b2)


def best_version(config: Config, table: VersionTable) -> VersionScore | None:
    """The committed, reachable version with the highest mean score and >= min_traces traces."""
    candidates = [
        v
        for sha, v in table.commits.items()
        if sha in table.reachable and v.scored >= config.min_traces and v.mean_score is not None
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda v: (v.mean_score or 0.0, v.scored, v.version))


@dataclass
class Decline:
    """The decline verdict for the current version, with the numbers behind it."""

    declined: bool
    reason: str
    current: VersionScore | None = None
    best: VersionScore | None = None
    probability: float | None = None  # P(p_current < p_best)

    def message(self) -> str:
        """`score fell from 0.78 (n=120, a1b2c3d) to 0.61 (n=45)` when declined, else the reason."""
        if not (self.declined and self.best and self.current):
            return self.reason
        b, c = self.best, self.current
        return (
            f"score fell from {b.mean_score:.2f} (n={b.scored}, {b.label}) "
            f"to {c.mean_score:.2f} (n={c.scored})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "declined": self.declined,
            "reason": self.reason,
            "message": self.message(),
            "probability": self.probability,
            "current": self.current.to_dict() if self.current else None,
            "best": self.best.to_dict() if self.best else None,
        }


def detect_decline(config: Config, table: VersionTable, current_version: str) -> Decline:
    """Apply the decline rule to `current_version` (a sha, short sha or dirty-hash string)."""
    need = config.min_traces
    current = table.lookup(current_version)
    if current is None or current.scored < need:
        have = current.scored if current else 0
        return Decline(
            False,
            f"current version {current_version} has {have} scored traces; need {need}",
            current,
        )
    best = best_version(config, table)
    if best is None:
        return Decline(False, f"no committed version has {need} scored traces yet", current)
    if best.version == current.version:
        return Decline(False, f"current version {current.label} is the best", current, best)
    p = prob_worse(current, best)
    verdict = p > config.decline_probability
    reason = (
        f"P(current {current.label} < best {best.label}) = {p:.3f} "
        f"{'>' if verdict else '<='} {config.decline_probability}"
    )
    return Decline(verdict, reason, current, best, p)


@dataclass
class EarlyStop:
    """`patience` accepted optimizer commits in a row without improving the best score."""

    stop: bool
    streak: int
    patience: int
    measured: int  # optimizer commits with enough traces to judge
    unmeasured: int  # optimizer commits still waiting for min_traces scored traces
    best_score: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def early_stop(config: Config, table: VersionTable) -> EarlyStop:
    """Walk the optimizer commits oldest first and count the steps since the last improvement.

    The starting best is the measured score of the first optimizer commit's
    parent, else the base score in its `Funcforge-Score` trailer. Commits
    without `min_traces` scored traces are not judged (they neither extend nor
    break the streak). Rolled-back commits count: they were accepted steps.
    """
    proposals = [c for c in reversed(list(table.funcforge.values())) if c.kind == "proposal"]
    best: float | None = None
    if proposals:
        first = proposals[0]
        parent = table.commits.get(first.parents[0]) if first.parents else None
        if parent is not None and parent.scored >= config.min_traces:
            best = parent.mean_score
        elif first.base_score is not None:
            best = first.base_score
    streak = measured = unmeasured = 0
    for c in proposals:
        v = table.commits.get(c.sha)
        if v is None or v.scored < config.min_traces or v.mean_score is None:
            unmeasured += 1
            continue
        measured += 1
        score = v.mean_score
        improved = (
            best is None or score > best or (config.tie_rule == "improvement" and score == best)
        )
        if improved:
            best, streak = score, 0
        else:
            streak += 1
    stop = streak >= config.patience
    reason = (
        f"{streak} optimizer commits in a row without improvement (patience {config.patience})"
        + ("" if best is None else f"; best score {best:.2f}")
    )
    return EarlyStop(stop, streak, config.patience, measured, unmeasured, best, reason)
