"""Decline-rule simulation (issue 13): false roll-backs and detection under re-checking.

Bernoulli traces. The last accepted version ("best") has a fixed sample of
`best_n` traces (100 or 500) at true rate p (0.3, 0.5, 0.7, 0.9); the current
version's traces arrive one by one at rate p - d (d = 0, 0.1, 0.2), and the rule
is re-checked after every trace up to 500, as the language server does. A run
"rolls back" the first time the rule fires. Per cell: the share of runs that ever
fired (d = 0: false roll-backs), fired by the 200th trace, and the mean trace
number at detection; beside funcforge's sequential rule (history/decline.py),
the paper's rule (roll back when the current mean is below the best's), both
judged only from `min_traces` = 20 traces on.

The rule is vectorised here with numpy; `check_against_library()` first checks
that this copy gives the same evidence as `funcforge.history.decline` on a grid
of inputs, so the figures are about the shipped code.

Run: `python3 benchmarks/decline.py [--reps 2000] [--seed 13]` (about 15 s).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from funcforge.history.decline import TAU, decline_evidence

RATES = (0.3, 0.5, 0.7, 0.9)
BEST_NS = (100, 500)
DROPS = (0.0, 0.1, 0.2)
HORIZON = 500
MIN_TRACES = 20
ALPHA = 0.05

_erfc = np.vectorize(math.erfc, otypes=[float])


def log_norm_cdf(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    mid = x > -30.0
    out[mid] = np.log(0.5 * _erfc(-x[mid] / math.sqrt(2.0)))
    low = x[~mid]
    out[~mid] = -0.5 * low * low - np.log(-low) - 0.5 * math.log(2.0 * math.pi)
    return out


def evidence(a_sum: np.ndarray, a_n: float, c_sum: np.ndarray, c_n: np.ndarray) -> np.ndarray:
    """`decline_evidence`, vectorised (same formula; see history/decline.py)."""
    theta = np.arcsin(np.sqrt((a_sum + 0.375) / (a_n + 0.75))) - np.arcsin(
        np.sqrt((c_sum + 0.375) / (c_n + 0.75))
    )
    var = 1.0 / (4 * a_n + 2) + 1.0 / (4 * c_n + 2)
    t2 = TAU * TAU
    return (
        math.log(2.0)
        - 0.5 * np.log((var + t2) / var)
        + theta * theta * t2 / (2.0 * var * (var + t2))
        + log_norm_cdf(theta * TAU / np.sqrt(var * (var + t2)))
    )


def check_against_library() -> None:
    """The vectorised copy agrees with the library function (to 1e-9)."""
    for a_n in (20, 100, 500):
        for a_sum in (0, a_n // 3, a_n // 2, a_n):
            cs = np.array([0.0, 5.0, 10.0, 37.0, 100.0])
            cn = np.array([20.0, 20.0, 50.0, 80.0, 100.0])
            got = evidence(np.full(5, float(a_sum)), float(a_n), cs, cn)
            for g, s, n in zip(got, cs, cn, strict=True):
                want = decline_evidence(a_sum, a_n, float(s), int(n))
                if not math.isclose(g, want, rel_tol=1e-9, abs_tol=1e-9):
                    raise SystemExit(f"vectorised evidence {g} != library {want}")


@dataclass
class Cell:
    best_n: int
    rate: float
    drop: float
    ours_ever: float
    ours_by200: float
    ours_mean: float | None
    paper_ever: float
    paper_by200: float
    paper_mean: float | None


def _first(alarm: np.ndarray) -> np.ndarray:
    """1-based trace number of the first alarm per run, 0 when none."""
    return np.where(alarm.any(axis=1), alarm.argmax(axis=1) + 1, 0)


def _summary(first: np.ndarray) -> tuple[float, float, float | None]:
    hit = first > 0
    mean = float(first[hit].mean()) if hit.any() else None
    return float(hit.mean()), float((hit & (first <= 200)).mean()), mean


def simulate(reps: int, seed: int, horizon: int = HORIZON) -> list[Cell]:
    rng = np.random.default_rng(seed)
    threshold = math.log(1.0 / ALPHA)
    n = np.arange(1, horizon + 1, dtype=float)[None, :]
    judged = n >= MIN_TRACES
    cells: list[Cell] = []
    for best_n in BEST_NS:
        for rate in RATES:
            for drop in DROPS:
                best = rng.binomial(best_n, rate, size=reps).astype(float)[:, None]
                cur = np.cumsum(rng.random((reps, horizon)) < rate - drop, axis=1, dtype=float)
                ours = _first((evidence(best, float(best_n), cur, n) >= threshold) & judged)
                paper = _first((cur / n < best / best_n) & judged)
                cells.append(Cell(best_n, rate, drop, *_summary(ours), *_summary(paper)))
    return cells


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _mean(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def render(cells: list[Cell]) -> str:
    lines = [
        "| best n | rate | drop | ours: ever | by 200 | mean traces | paper: ever | by 200 | mean traces |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cells:
        lines.append(
            f"| {c.best_n} | {c.rate:.1f} | {c.drop:.1f} | {_pct(c.ours_ever)} | "
            f"{_pct(c.ours_by200)} | {_mean(c.ours_mean)} | {_pct(c.paper_ever)} | "
            f"{_pct(c.paper_by200)} | {_mean(c.paper_mean)} |"
        )
    return "\n".join(lines)


def verdicts(cells: list[Cell]) -> list[str]:
    """The issue's targets, each as one line saying met or missed."""
    worst_false = max(c.ours_ever for c in cells if c.drop == 0)
    worst_20 = min(c.ours_by200 for c in cells if c.drop == 0.2 and c.best_n == 500)
    return [
        f"false roll-back, worst cell: {_pct(worst_false)} (target <= 5%): "
        + ("met" if worst_false <= 0.05 else "MISSED"),
        f"20-point decline caught by trace 200 with best n=500, worst cell: {_pct(worst_20)} "
        "(target >= 90%): " + ("met" if worst_20 >= 0.9 else "MISSED"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000, help="runs per cell (default 2000)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    check_against_library()
    start = time.perf_counter()
    cells = simulate(args.reps, args.seed)
    took = time.perf_counter() - start
    print(
        f"{args.reps} runs per cell, seed {args.seed}, re-checked after every trace up to "
        f"{HORIZON}, min_traces {MIN_TRACES}, alpha {ALPHA}, tau {TAU} ({took:.1f} s)\n"
    )
    print(render(cells))
    print()
    for line in verdicts(cells):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
