"""`funcforge train`: the paper's offline training loop."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from funcforge.commands import PATH_HELP


def _train(args: argparse.Namespace) -> int:
    from funcforge.training.report import report_data
    from funcforge.training.runs import adoption_hint, preflight_endpoint
    from funcforge.training.trainer import Trainer, TrainOptions
    from funcforge.workspace import user_file, workspace_root

    if args.adopt is not None or args.clean is not None:
        return _runs(args)
    for flag, given in (("--delete-branch", args.delete_branch), ("--json", args.json)):
        if given:  # before: ignored, and a whole training run started
            from funcforge.errors import UserError

            raise UserError(f"{flag} goes with --clean or --adopt; training was not started")
    root = workspace_root(args.path)  # found upward from PATH (said on stderr when moved)
    trainer = Trainer(
        root,
        TrainOptions(
            # as typed, from here (the workspace's own file when there is none here)
            tasks=str(user_file(args.tasks, root)) if args.tasks else None,
            epochs=args.epochs,
            patience=args.patience,
            agent=args.agent,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            llm=args.llm,
            record=args.record,
            fresh=args.fresh,
            executor=args.executor,
        ),
    )
    trainer.check_inputs()  # agent, numbers, task file, transcript: before any work
    preflight_endpoint(trainer.config, trainer.settings["agent"], trainer.settings["llm"])
    run = trainer.train()
    data = report_data(run)
    first = run.epochs[0] if run.epochs else None
    selected = data["selected"]
    print(f"Training run {run.run_id} on branch {run.branch}: {run.status}")
    if first is not None and selected and selected["train_score"] is not None:
        print(
            f"  train score: {first.train_score:.3f} at start (n={first.n}); selected toolset "
            f"{selected['commit'][:7]}: {selected['train_score']:.3f} (n={selected['train_n']})"
        )
    for label in ("initial", "best"):
        item = run.test.get(label)
        if item:
            print(
                f"  test score ({label} toolset {item['commit'][:7]}): {item['score']:.3f} (n={item['n']})"
            )
    print(f"  epochs: {sum(1 for e in run.epochs if e.epoch > 0)}, roll-backs: {data['rollbacks']}")
    if run.stop_reason:
        print(f"  {run.stop_reason}")
    assert trainer.run_dir is not None
    print(f"  report: {trainer.run_dir / 'report.md'}")
    if run.status == "finished":
        for line in adoption_hint(
            run.run_id, run.branch, run.best_commit, run.base_commit, args.path
        ):
            print(f"  {line}")
    sys.stdout.flush()
    return 0


def _runs(args: argparse.Namespace) -> int:
    """`--adopt RUN` and `--clean [RUN]`: a finished run's result, and its worktree."""
    from funcforge.training.runs import adopt_run, clean_runs
    from funcforge.workspace import open_config

    if args.clean and args.path == "." and Path(args.clean).is_dir():
        # `funcforge train --clean samples/x`: a folder given after --clean is the workspace
        args.path, args.clean = args.clean, ""
    config = open_config(args.path)
    if args.adopt is not None and args.clean is not None:
        from funcforge.errors import UserError

        raise UserError("--adopt and --clean are separate steps: run one, then the other")
    if args.adopt is not None:
        result = adopt_run(config, args.adopt)
        commit = result.commit_command(config.root)
        if args.json:
            print(json.dumps({**result.to_dict(), "commit_traces": commit}))
        elif result.how == "already":
            print(f"run {result.run_id}: its best toolset {result.best[:7]} is already on HEAD")
        else:
            print(
                f"run {result.run_id}: adopted its best toolset {result.best[:7]} by "
                f"{result.how}; HEAD is {result.commit[:7]}"
            )
        if not args.json:
            _say_traces(result, commit)
        return 0
    cleaned = clean_runs(config, args.clean or None, delete_branches=args.delete_branch)
    if args.json:
        print(json.dumps(cleaned.to_dict()))
        return 0
    for run_id in cleaned.removed:
        print(f"removed the worktree of run {run_id} (its traces are kept in the run folder)")
    for branch, tip in cleaned.deleted_branches:
        print(f"deleted branch {branch} (was {tip[:7]})")
    for run_id, why in cleaned.kept:
        print(f"kept run {run_id}: {why}")
    if not (cleaned.removed or cleaned.deleted_branches or cleaned.kept):
        print("nothing to clean: no finished run has a worktree")
    elif cleaned.freed_bytes:
        print(f"freed {cleaned.freed_bytes / 1e6:.1f} MB")
    return 0


def _say_traces(result: Any, commit: str | None) -> None:
    """Where the run's trace files went, and the exact command that commits them.

    funcforge does not commit them: its commits hold only tool changes (a
    fast-forward adopt makes none), and traces hold the tasks' inputs and
    answers, so whether they belong in the repository is the user's choice.
    """
    from funcforge.training.runs import TRAIN_TRACES

    if result.traces:
        print(
            f"copied the run's {len(result.traces)} trace file(s) to {TRAIN_TRACES}/: the "
            "scores of its versions, for `funcforge log` and `rollback --best`"
        )
    if commit:
        print(
            f"  {len(result.untracked)} trace file(s) of the run are not committed (funcforge "
            "commits only tool changes); to keep their scores with the toolset for everyone "
            "who clones it:\n"
            f"    {commit}"
        )
    if result.ignored:
        print(
            f"  {len(result.ignored)} of the run's trace file(s) are ignored by your .gitignore "
            "and stay in this checkout only"
        )


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train the tools over a task set (offline, as in the paper)")
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument(
        "--tasks", metavar="FILE", help="task file (JSON Lines: id, input, expected, split)"
    )
    p.add_argument("--epochs", type=int, metavar="N", help="training epochs (default 10)")
    p.add_argument(
        "--patience", type=int, help="early stop after this many epochs without improvement"
    )
    p.add_argument("--agent", help="function-calling, react, or command:CMD")
    p.add_argument(
        "--batch-size", type=int, metavar="N", help="a random batch of train tasks per epoch"
    )
    p.add_argument("--concurrency", type=int, metavar="N", help="tasks run at once")
    p.add_argument(
        "--llm", metavar="replay:FILE", help="replay:FILE answers the optimizer from a transcript"
    )
    p.add_argument(
        "--record", type=Path, metavar="FILE", help="record the optimizer's model exchanges"
    )
    p.add_argument(
        "--executor",
        choices=["thread", "ray"],
        help="where task evaluations run: threads here (default) or Ray tasks "
        "(RAY_ADDRESS names the cluster; docs/ray.md)",
    )
    p.add_argument("--fresh", action="store_true", help="start a new run instead of resuming")
    p.add_argument(
        "--adopt",
        metavar="RUN",
        help="merge a finished run's best commit into the current branch (fast-forward "
        "when possible); RUN is a run id, a unique prefix, or `latest`",
    )
    p.add_argument(
        "--clean",
        nargs="?",
        const="",
        metavar="RUN",
        help="remove the worktrees of finished runs (or of RUN); traces and reports stay",
    )
    p.add_argument(
        "--delete-branch",
        action="store_true",
        help="with --clean: delete the runs' branches too (kept by default)",
    )
    p.add_argument("--json", action="store_true", help="with --adopt/--clean: print JSON")
    p.set_defaults(func=_train)
