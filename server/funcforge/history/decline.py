"""Has the current version declined against the last accepted one? Has training stopped improving?

The rule (documented for users, with its guarantee, in docs/history.md):

* A version is judged only with at least `min_traces` scored traces (default 20),
  against the **last accepted version**: the nearest ancestor of the current
  version (for an uncommitted tree: HEAD or its nearest ancestor) that has
  `min_traces` scored traces and was not reverted by a roll-back. Not the
  highest-scoring of many ancestors: that choice has a winner's curse.
* Each version's mean score is put on the variance-stabilising arcsine scale,
  theta = asin(sqrt((s + 3/8) / (n + 3/4))), whose variance is 1/(4n + 2)
  whatever the success rate.
* The evidence of a decline is the one-sided mixture likelihood ratio (mSPRT,
  Robbins 1970; Johari et al. 2017) of "the current rate is lower" against "it
  is not", with a half-normal mixture of scale `TAU` over the size of the decline.
  Under no decline it is a non-negative (super)martingale in the current
  version's traces, so by Ville's inequality it ever exceeds 1/alpha with
  probability at most alpha, however often it is re-checked as traces arrive.
* The current version has **declined** when that evidence reaches
  1 / `decline_alpha` (default alpha = 0.05, a threshold of 20).
* Early stop: `patience` steps in a row that did not beat the best score so
  far (ties follow `tie_rule`): the policy's counter (optimizer/policy.py), as
  the trainer or `optimize` recorded it, then the optimizer commits it has not
  decided on yet, judged by the same policy.

`benchmarks/decline.py` simulates the rule (false roll-backs and detection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from funcforge.config import Config
from funcforge.history.versions import VersionScore, VersionTable
from funcforge.optimizer.optimizer import OptimizerState

GRID_POINTS = 2001  # per distribution; the error is far below the 0.01 anyone reads
SPAN_SD = 12.0  # each grid covers mean +- 12 standard deviations (clipped to [0, 1])
TAU = 0.15  # mixture scale on the arcsine scale (about a 15-point decline at a rate of 0.5)


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
    """P(X < Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2): the integral of f_Y(y) F_X(y) dy.

    Descriptive only (the old one-look rule; plots): decisions use `decline_evidence`.
    """
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
    """P(p_current < p_best) under the Beta posteriors of both versions (descriptive)."""
    a1, b1 = beta_params(current.score_sum, current.scored)
    a2, b2 = beta_params(best.score_sum, best.scored)
    return prob_less(a1, b1, a2, b2)


# -- the sequential rule ---------------------------------------------------------------


def arcsine(score_sum: float, n: int) -> float:
    """Anscombe's variance-stabilised rate: asin(sqrt((s + 3/8) / (n + 3/4)))."""
    s = min(max(score_sum, 0.0), float(n))
    return math.asin(math.sqrt((s + 0.375) / (n + 0.75)))


def log_norm_cdf(x: float) -> float:
    """log Phi(x), accurate far into the lower tail."""
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2.0 * math.pi)


def decline_evidence(
    accepted_sum: float, accepted_n: int, current_sum: float, current_n: int, tau: float = TAU
) -> float:
    """The log of the mixture likelihood ratio for "current is below accepted".

    theta-hat = arcsine(accepted) - arcsine(current) with variance
    V = 1/(4 n_a + 2) + 1/(4 n_c + 2); the half-normal(tau) mixture over the
    decline gives 2 sqrt(V / (V + tau^2)) exp(theta^2 tau^2 / (2 V (V + tau^2)))
    Phi(theta tau / sqrt(V (V + tau^2))) in closed form.
    """
    if accepted_n <= 0 or current_n <= 0:
        return -math.inf
    theta = arcsine(accepted_sum, accepted_n) - arcsine(current_sum, current_n)
    var = 1.0 / (4 * accepted_n + 2) + 1.0 / (4 * current_n + 2)
    t2 = tau * tau
    return (
        math.log(2.0)
        - 0.5 * math.log((var + t2) / var)
        + theta * theta * t2 / (2.0 * var * (var + t2))
        + log_norm_cdf(theta * tau / math.sqrt(var * (var + t2)))
    )


def declines(
    accepted_sum: float,
    accepted_n: int,
    current_sum: float,
    current_n: int,
    *,
    alpha: float = 0.05,
    min_traces: int = 20,
) -> bool:
    """The rule in one call: enough traces on both sides and evidence >= 1/alpha."""
    if accepted_n < min_traces or current_n < min_traces:
        return False
    return decline_evidence(accepted_sum, accepted_n, current_sum, current_n) >= -math.log(alpha)


def best_version(config: Config, table: VersionTable) -> VersionScore | None:
    """The committed, reachable version with the highest mean score and >= min_traces traces.

    A roll-back *target* for `rollback --best`; the decline rule compares with
    `accepted_version` instead.
    """
    candidates = [
        v
        for sha, v in table.commits.items()
        if sha in table.reachable and v.scored >= config.min_traces and v.mean_score is not None
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda v: (v.mean_score or 0.0, v.scored, v.version))


def reverted_commits(table: VersionTable) -> set[str]:
    """Commits withdrawn by a roll-back commit in the table."""
    out: set[str] = set()
    for c in table.funcforge.values():
        if c.kind == "rollback":
            out.update(c.reverts)
    return out


def accepted_version(
    config: Config, table: VersionTable, current: VersionScore | None
) -> VersionScore | None:
    """The last accepted version before `current`: its nearest measured, not reverted ancestor.

    For a commit the search starts at its parent; for an uncommitted (dirty or
    unresolved) version at HEAD. Walks `table.ancestry` (HEAD first).
    """
    order = table.ancestry
    if current is not None and current.kind == "commit":
        # One version may be several commits (same tools' content): start below the oldest.
        mine = [i for i, sha in enumerate(order) if table.commits.get(sha) is current]
        if not mine:
            return None
        order = order[max(mine) + 1 :]
    withdrawn = reverted_commits(table)
    for sha in order:
        if sha in withdrawn:
            continue
        v = table.commits.get(sha)
        if v is None or v is current:
            continue
        if v.scored >= config.min_traces and v.mean_score is not None:
            return v
    return None


@dataclass
class Decline:
    """The decline verdict for the current version, with the numbers behind it."""

    declined: bool
    reason: str
    current: VersionScore | None = None
    best: VersionScore | None = None  # the last accepted version it is compared with
    evidence: float | None = None  # the mixture likelihood ratio (not its log)
    threshold: float | None = None  # 1 / decline_alpha

    def message(self) -> str:
        """`score fell from 0.78 (n=120, a1b2c3d) to 0.61 (n=45) on the train split`, or the reason."""
        if not (self.declined and self.best and self.current):
            return self.reason
        b, c = self.best, self.current
        return (
            f"score fell from {b.mean_score:.2f} (n={b.scored}, {b.label}) "
            f"to {c.mean_score:.2f} (n={c.scored}) on the train split"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "declined": self.declined,
            "reason": self.reason,
            "message": self.message(),
            "rule": "sequential",
            "split": "train",
            "evidence": self.evidence,
            "threshold": self.threshold,
            "current": self.current.to_dict() if self.current else None,
            "best": self.best.to_dict() if self.best else None,
        }


def _fmt_evidence(e: float) -> str:
    return f"{e:.1f}" if e < 1e6 else f"{e:.1e}"


def judge_decline(
    config: Config, current: VersionScore | None, accepted: VersionScore | None, label: str
) -> Decline:
    """The rule on two measured versions (`label` names the current one when unmeasured)."""
    need = config.min_traces
    if current is None or current.scored < need:
        have = current.scored if current else 0
        return Decline(
            False, f"current version {label} has {have} scored traces; need {need}", current
        )
    if accepted is None:
        return Decline(False, f"no earlier accepted version has {need} scored traces yet", current)
    if accepted.version == current.version:
        return Decline(False, f"current version {current.label} is the accepted one", current)
    log_e = decline_evidence(accepted.score_sum, accepted.scored, current.score_sum, current.scored)
    threshold = 1.0 / config.decline_alpha
    verdict = log_e >= math.log(threshold)
    evidence = math.exp(min(log_e, 700.0))
    reason = (
        f"decline evidence {_fmt_evidence(evidence)} {'>=' if verdict else '<'} "
        f"{threshold:g} (sequential test, alpha {config.decline_alpha:g}) for "
        f"{current.label} {current.describe()} against accepted {accepted.label} "
        f"{accepted.describe()}, train split"
    )
    return Decline(verdict, reason, current, accepted, evidence, threshold)


def detect_decline(config: Config, table: VersionTable, current_version: str) -> Decline:
    """Apply the decline rule to `current_version` (a sha, short sha or dirty-hash string)."""
    current = table.lookup(current_version)
    accepted = accepted_version(config, table, current) if current is not None else None
    return judge_decline(config, current, accepted, current_version)


@dataclass
class EarlyStop:
    """`patience` steps in a row without improving the best score (the policy's counter)."""

    stop: bool
    streak: int
    patience: int
    measured: int  # optimizer commits judged (by the recorded policy state or here)
    unmeasured: int  # optimizer commits still waiting for min_traces scored traces
    best_score: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _recorded_shas(table: VersionTable, state: OptimizerState) -> tuple[set[str], list[str]]:
    """Commits whose toolset the policy state already decided on (full shas, and raw names)."""
    shas: set[str] = set()
    raw: list[str] = []
    for record in state.history:
        v = table.lookup(record.version)
        if v is not None and v.kind == "commit":
            shas.update(v.shas or [v.version])
        elif len(record.version) >= 7:
            raw.append(record.version)
    return shas, raw


def early_stop(
    config: Config, table: VersionTable, state: OptimizerState | None = None
) -> EarlyStop:
    """The policy's early-stop counter, brought up to date with the optimizer commits.

    One counter, the `Policy`'s (optimizer/policy.py): `state` is what the
    trainer or `optimize` recorded (steps that made no commit, such as a
    TERMINATE, a skipped action or a repeat of a rolled-back toolset, count
    there); the optimizer commits it has not decided on yet are then judged,
    oldest first, by the same `Policy.judge` on their measured score. Without a
    state the starting best is the measured score of the first optimizer
    commit's parent, else the base score in its `Funcforge-Score` trailer.
    Commits without `min_traces` scored traces are not judged (they neither
    extend nor break the streak). Rolled-back commits count: they were steps.
    """
    from funcforge.optimizer.policy import Measurement, Policy

    base = OptimizerState.from_dict(state.to_dict()) if state is not None else OptimizerState()
    patience = base.patience or config.patience
    policy = Policy(base, patience=patience, tie_rule=config.tie_rule)
    recorded, raw = _recorded_shas(table, base)
    proposals = [c for c in reversed(list(table.funcforge.values())) if c.kind == "proposal"]
    if proposals and policy.best_score is None:
        first = proposals[0]
        parent = table.commits.get(first.parents[0]) if first.parents else None
        if parent is not None and parent.scored >= config.min_traces:
            assert parent.mean_score is not None
            policy.judge(Measurement(parent.version, {}, parent.mean_score, parent.scored))
        elif first.base_score is not None:
            policy.judge(
                Measurement(
                    first.parents[0] if first.parents else "",
                    {},
                    first.base_score,
                    first.base_n or 0,
                )
            )
    # The state covers HEAD's history up to the newest commit it decided on: only the
    # optimizer commits after that one are judged here (an older one, judged after the
    # state's best, would count as a step backwards that never happened).
    place = {sha: i for i, sha in enumerate(table.ancestry)}  # HEAD first
    covered = [
        place[sha] for sha in place if sha in recorded or any(sha.startswith(r) for r in raw)
    ]
    newest = min(covered) if covered else len(place) + 1
    measured = unmeasured = 0
    for c in proposals:
        if place.get(c.sha, -1) >= newest:
            measured += 1  # decided by whoever recorded the state (e.g. the trainer's paired rule)
            continue
        v = table.commits.get(c.sha)
        if v is None or v.scored < config.min_traces or v.mean_score is None:
            unmeasured += 1
            continue
        measured += 1
        policy.judge(Measurement(c.sha, {}, v.mean_score, v.scored))
    streak, best = policy.state.no_improvement, policy.best_score
    stop = policy.stop_reason() is not None
    steps = "step" if streak == 1 else "steps"
    reason = f"{streak} {steps} in a row without improvement (patience {patience})" + (
        "" if best is None else f"; best score {best:.2f}"
    )
    return EarlyStop(stop, streak, patience, measured, unmeasured, best, reason)
