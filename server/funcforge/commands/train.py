"""`funcforge train`: the paper's offline training loop."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _train(args: argparse.Namespace) -> int:
    from funcforge.training.report import report_data
    from funcforge.training.trainer import Trainer, TrainOptions

    trainer = Trainer(
        Path(args.path),
        TrainOptions(
            tasks=args.tasks,
            epochs=args.epochs,
            patience=args.patience,
            agent=args.agent,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            llm=args.llm,
            record=args.record,
            fresh=args.fresh,
        ),
    )
    run = trainer.train()
    data = report_data(run)
    first = run.epochs[0].train_score if run.epochs else None
    best = max((e.train_score for e in run.epochs), default=None)
    print(f"Training run {run.run_id} on branch {run.branch}: {run.status}")
    if first is not None and best is not None:
        print(f"  train score: {first:.3f} at start, best {best:.3f}")
    for label in ("initial", "best"):
        item = run.test.get(label)
        if item:
            print(
                f"  test score ({label} toolset {item['commit'][:7]}): {item['score']:.3f} (n={item['n']})"
            )
    print(f"  epochs: {len(run.epochs)}, roll-backs: {data['rollbacks']}")
    if run.stop_reason:
        print(f"  {run.stop_reason}")
    assert trainer.run_dir is not None
    print(f"  report: {trainer.run_dir / 'report.md'}")
    sys.stdout.flush()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train the tools over a task set (offline, as in the paper)")
    p.add_argument("path", nargs="?", default=".", help="the workspace (default: .)")
    p.add_argument("--tasks", help="task file (JSON Lines: id, input, expected, split)")
    p.add_argument("--epochs", type=int)
    p.add_argument(
        "--patience", type=int, help="early stop after this many epochs without improvement"
    )
    p.add_argument("--agent", help="function-calling, react, or command:CMD")
    p.add_argument("--batch-size", type=int, help="a random batch of train tasks per epoch")
    p.add_argument("--concurrency", type=int, help="tasks run at once")
    p.add_argument("--llm", help="replay:FILE answers the optimizer from a transcript")
    p.add_argument("--record", type=Path, help="record the optimizer's model exchanges")
    p.add_argument("--fresh", action="store_true", help="start a new run instead of resuming")
    p.set_defaults(func=_train)
