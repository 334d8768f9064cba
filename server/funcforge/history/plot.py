"""`funcforge log --plot FILE.png`: score per version along HEAD's history (matplotlib, optional).

matplotlib is imported only here, lazily, through its object API (no pyplot,
no global backend switch), so the language server never pays for it.

Every funcforge commit on HEAD's history is on the x axis, roll-backs included
(a roll-back restores an earlier toolset, so it scores as that version does);
a commit without scored traces gets a dotted line and "no traces" instead of
a point. The legend names each marker in words.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from funcforge.errors import UserError
from funcforge.history.decline import beta_params
from funcforge.history.log import HistoryLog, VersionPoint

Z90 = 1.645  # half-width of a 90% interval in standard deviations

# kind -> (colour, marker, legend text)
STYLES: dict[str, tuple[str, str, str]] = {
    "other": ("0.3", "D", "commit not made by funcforge (e.g. the starting toolset)"),
    "optimizer": ("tab:blue", "o", "optimizer step (accepted proposal)"),
    "rolled_back": ("tab:red", "X", "optimizer step later rolled back"),
    "rollback": ("tab:orange", "s", "roll-back commit (restores an earlier toolset)"),
}


def _interval(score_sum: float, n: int) -> float:
    """Half-width of the 90% band of the Beta posterior (normal approximation)."""
    a, b = beta_params(score_sum, n)
    return Z90 * math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def _kind(p: VersionPoint) -> str:
    if p.rolled_back:
        return "rolled_back"
    if p.optimizer:
        return "optimizer"
    if p.rollback:
        return "rollback"
    return "other"


def _label(p: VersionPoint) -> str:
    if p.step is not None:
        return f"{p.short}\nstep {p.step}"
    if p.rollback:
        return f"{p.short}\nroll-back" + (f"\nto {p.rollback_to[:7]}" if p.rollback_to else "")
    return p.short


def _same_toolset_as_before(points: list[VersionPoint]) -> list[tuple[VersionPoint, str]]:
    """The points to draw, each with its tick label. A commit not made by funcforge whose tools
    are those of the point before it (HEAD after commits that touched no tool) scores the
    same traces: drawn again, it was a second point and a second best star for one toolset
    (the sample's fresh clone plotted 2fbb9da and HEAD side by side); it names the point
    before instead ('2fbb9da\n= HEAD 0ae008e')."""
    out: list[tuple[VersionPoint, str]] = []
    for p in points:
        if (
            out
            and p.content is not None
            and p.content == out[-1][0].content
            and not (p.optimizer or p.rollback)
        ):
            kept, label = out[-1]
            out[-1] = (kept, label + (f"\n= HEAD {p.short}" if p.is_head else f"\n= {p.short}"))
            continue
        out.append((p, _label(p)))
    return out


def plot_log(log: HistoryLog, path: Path | str) -> Path:
    """Write the plot of `figure_for(log)` to `path` (PNG by its suffix)."""
    fig = figure_for(log)
    out = Path(path)
    kind = out.suffix[1:].lower()
    supported = fig.canvas.get_supported_filetypes()
    if kind and kind not in supported:
        raise UserError(
            f"--plot {path}: matplotlib cannot write .{kind} files; name a file ending in "
            + ", ".join(f".{k}" for k in sorted(supported))
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100, bbox_inches="tight")
    except OSError as exc:
        raise UserError(f"--plot {path}: cannot write the plot: {exc.strerror or exc}") from None
    return out


def figure_for(log: HistoryLog) -> Any:
    """Draw mean train score (90% band) per version, test scores beside, a legend in words."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        raise UserError(
            "--plot needs matplotlib, which is not installed: pip install 'funcforge[plot]'"
        ) from None
    labelled = _same_toolset_as_before(
        [p for p in log.versions if p.score is not None or p.optimizer or p.rollback]
    )
    points = [p for p, _ in labelled]
    if not any(p.score is not None for p in points):
        raise UserError(
            "nothing to plot: no version on this branch has scored train traces "
            "(trace toolset_version must name a commit or the tools' content hash)"
        )
    fig = Figure(figsize=(max(7.0, 0.9 * len(points) + 3), 5.0))
    ax = fig.add_subplot()
    xs = list(range(len(points)))
    scored = [(x, p) for x, p in zip(xs, points, strict=True) if p.score is not None]
    ax.plot(
        [x for x, _ in scored],
        [p.score or 0.0 for _, p in scored],
        color="0.6",
        linewidth=1,
        zorder=1,
    )
    used: set[str] = set()
    for x, p in zip(xs, points, strict=True):
        kind = _kind(p)
        color, marker, _ = STYLES[kind]
        if p.score is None:
            ax.axvline(x, color=color, linestyle=":", linewidth=1.2)
            ax.annotate("no traces", (x, 0.02), rotation=90, fontsize=7, ha="right", color=color)
            used.add(kind)
            continue
        y, err = p.score, _interval(p.score_sum, p.n)
        ax.errorbar(
            [x], [y], yerr=[[min(err, y)], [min(err, 1 - y)]], fmt=marker, color=color, capsize=3
        )
        used.add(kind)
        if p.test_score is not None:
            ax.scatter([x + 0.18], [p.test_score], marker="^", facecolors="none", edgecolors="k")
            used.add("test")
        if p.is_best:
            ax.scatter([x], [y], s=300, marker="*", color="gold", edgecolors="k", zorder=3)
            used.add("best")
    handles: list[Any] = []
    for kind, (color, marker, text) in STYLES.items():
        if kind in used:
            handles.append(Line2D([], [], color=color, marker=marker, linestyle="", label=text))
    if "test" in used:
        handles.append(
            Line2D(
                [],
                [],
                marker="^",
                markerfacecolor="none",
                markeredgecolor="k",
                linestyle="",
                label="test split (held out: shown, not used to decide)",
            )
        )
    if "best" in used:
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                color="gold",
                markeredgecolor="k",
                markersize=14,
                linestyle="",
                label="best version (what `rollback --best` restores)",
            )
        )
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels([label for _, label in labelled], fontsize=8)
    ax.set_xlim(-0.6, len(points) - 0.4)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("mean train score (90% band)")
    ax.set_title("funcforge: score per toolset version along this branch", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
