"""The training report: Markdown and JSON, and a PNG plot of scores per epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from funcforge.fsutil import write_atomic


def report_data(run: Any) -> dict[str, Any]:
    """The JSON report: settings, per-epoch scores and actions, test before/after, usage."""
    epochs = [
        {
            "epoch": e.epoch,
            "commit": e.commit[:12],
            "train_score": round(e.train_score, 4),
            "n": e.n,
            "decision": e.decision,
            "actions": e.actions,
            "applied": e.applied[:12] if e.applied else None,
            "rolled_back": bool(e.reverted),
            "agent_failures": e.failures,
            "tokens": e.usage,
            "reason": e.reason,
            "best_score_same_tasks": e.best_score,
            "split": e.split,
        }
        for e in run.epochs
    ]
    return {
        "run": run.run_id,
        "branch": run.branch,
        "status": run.status,
        "stop_reason": run.stop_reason,
        "settings": run.settings,
        "base_commit": run.base_commit[:12],
        "best_commit": (run.best_commit or "")[:12] or None,
        "epochs": epochs,
        "rollbacks": sum(1 for e in run.epochs if e.reverted),
        "test": run.test,
        "selected": selected_version(run),
        "usage": run.usage,
    }


def selected_version(run: Any) -> dict[str, Any] | None:
    """The toolset training selected: its commit, train score (as judged) and test score."""
    best = run.best_commit
    if not best:
        return None
    state = run.optimizer or {}
    train = state.get("best_score")
    test = (run.test or {}).get("best")
    return {
        "commit": best[:12],
        "train_score": round(train, 4) if train is not None else None,
        "train_n": state.get("best_n"),
        "test_score": test.get("score") if test else None,
        "test_n": test.get("n") if test else None,
    }


def _markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# funcforge training run {data['run']}",
        "",
        f"Branch `{data['branch']}`; status **{data['status']}**"
        + (f" ({data['stop_reason']})" if data["stop_reason"] else "")
        + f"; base `{data['base_commit']}`, best `{data['best_commit']}`.",
        "",
    ]
    sel = data.get("selected")
    if sel:
        train = (
            "-" if sel["train_score"] is None else f"{sel['train_score']:.3f} (n={sel['train_n']})"
        )
        test_part = (
            "-" if sel["test_score"] is None else f"{sel['test_score']:.3f} (n={sel['test_n']})"
        )
        lines += [
            f"Selected toolset `{sel['commit'][:7]}`: train {train}, test {test_part} "
            "(test tasks are held out: never shown to the optimizer nor used to select).",
            "",
        ]
    test = data["test"]
    if test:
        start, end = test.get("initial"), test.get("best")
        lines.append("## Test split")
        lines.append("")
        lines.append("| toolset | commit | score | n |")
        lines.append("| --- | --- | ---: | ---: |")
        for label, item in (("initial", start), ("best", end)):
            if item:
                lines.append(
                    f"| {label} | `{item['commit'][:7]}` | {item['score']:.3f} | {item['n']} |"
                )
        lines.append("")
    lines += [
        "## Epochs (train split)",
        "",
        "| epoch | commit | score | n | decision | proposed | rolled back | tokens | why |",
        "| ---: | --- | ---: | ---: | --- | --- | --- | ---: | --- |",
    ]
    for e in data["epochs"]:
        tokens = (e["tokens"] or {}).get("prompt_tokens", 0) + (e["tokens"] or {}).get(
            "completion_tokens", 0
        )
        lines.append(
            f"| {e['epoch']} | `{e['commit'][:7]}` | {e['train_score']:.3f} | {e['n']} | "
            f"{e['decision']} | {', '.join(e['actions']) or '-'} | "
            f"{'yes' if e['rolled_back'] else ''} | {tokens} | "
            f"{(e.get('reason') or '').replace('|', '/')} |"
        )
    usage = data.get("usage") or {}
    lines += [
        "",
        f"Roll-backs: {data['rollbacks']}. Optimizer model calls: {usage.get('calls', 0)}, "
        f"tokens: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} "
        "completion.",
        "",
    ]
    return "\n".join(lines)


def plot(data: dict[str, Any], path: Path) -> bool:
    """Scores per epoch as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    measured = [e for e in data["epochs"] if e["n"]]  # skipped epochs ran nothing
    xs = [e["epoch"] for e in measured]
    ys = [e["train_score"] for e in measured]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(xs, ys, marker="o", label="train")
    for e in measured:
        if e["rolled_back"]:
            ax.annotate(
                "roll-back",
                (e["epoch"], e["train_score"]),
                fontsize=8,
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
            )
    test = data["test"]
    if test.get("initial"):
        ax.axhline(test["initial"]["score"], color="grey", linestyle=":", label="test, initial")
    if test.get("best"):
        ax.axhline(test["best"]["score"], color="green", linestyle="--", label="test, best")
    ax.set_xlabel("epoch")
    ax.set_ylabel("score")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"funcforge training {data['run']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(run_dir: Path, run: Any) -> dict[str, Path]:
    data = report_data(run)
    out = {"json": run_dir / "report.json", "markdown": run_dir / "report.md"}
    write_atomic(out["json"], json.dumps(data, indent=2) + "\n")
    write_atomic(out["markdown"], _markdown(data))
    if plot(data, run_dir / "scores.png"):
        out["plot"] = run_dir / "scores.png"
    return out
