"""`funcforge log --plot FILE.png`: score per version along HEAD's history (matplotlib, optional).

matplotlib is imported only here, lazily, through its object API (no pyplot,
no global backend switch), so the language server never pays for it.
"""

from __future__ import annotations

import math
from pathlib import Path

from funcforge.errors import UserError
from funcforge.history.decline import beta_params
from funcforge.history.log import HistoryLog

Z90 = 1.645  # half-width of a 90% interval in standard deviations


def _interval(score_sum: float, n: int) -> float:
    """Half-width of the 90% band of the Beta posterior (normal approximation)."""
    a, b = beta_params(score_sum, n)
    return Z90 * math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def plot_log(log: HistoryLog, path: Path | str) -> Path:
    """Draw mean score (with a 90% band) per measured version; mark optimizer commits and best."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(
            "--plot needs matplotlib, which is not installed: pip install 'funcforge[plot]'"
        ) from None
    points = [p for p in log.versions if p.score is not None]
    if not points:
        raise UserError("nothing to plot: no version on this branch has scored traces")
    out = Path(path)
    fig = Figure(figsize=(max(6.0, 0.6 * len(points) + 2), 4.0))
    ax = fig.add_subplot()
    xs = list(range(len(points)))
    ys = [p.score or 0.0 for p in points]
    errs = [_interval(p.score_sum, p.n) for p in points]
    ax.plot(xs, ys, color="0.6", linewidth=1, zorder=1)
    for x, y, err, p in zip(xs, ys, errs, points, strict=True):
        if p.rolled_back:
            color, marker = "tab:red", "x"
        elif p.optimizer:
            color, marker = "tab:blue", "o"
        elif p.rollback:
            color, marker = "tab:orange", "s"
        else:
            color, marker = "0.3", "D"
        ax.errorbar([x], [y], yerr=[[min(err, y)], [min(err, 1 - y)]], fmt=marker, color=color)
        if p.is_best:
            ax.scatter([x], [y], s=260, marker="*", color="gold", edgecolors="k", zorder=3)
    labels = [f"{p.short}\nstep {p.step}" if p.step is not None else p.short for p in points]
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("mean score (90% band)")
    ax.set_title("funcforge: score per version (o optimizer, x rolled back, s roll-back, * best)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
