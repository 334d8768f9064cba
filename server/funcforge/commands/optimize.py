"""`funcforge optimize`, `funcforge proposals`, `funcforge reject`."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported in the commands: `funcforge --help` stays fast
    from funcforge.optimizer.proposal import Proposal
    from funcforge.workspace import Workspace


def proposal_diff(ws: Workspace, proposal: Proposal) -> str:
    """The proposal as a unified diff against the current files."""
    from funcforge.toolset.rewrite import plan_actions

    out: list[str] = []
    for change in plan_actions(ws.config, ws.toolset, proposal.actions):
        out.extend(
            difflib.unified_diff(
                change.old_text.splitlines(keepends=True),
                change.new_text.splitlines(keepends=True),
                fromfile=f"a/{change.file}",
                tofile=f"b/{change.file}",
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def replay_summary(proposal: Proposal) -> str:
    replay = proposal.replay or {}
    return str(replay.get("summary") or "no replay check")


def _optimize(args: argparse.Namespace) -> int:
    from funcforge.optimizer.llm import make_client
    from funcforge.optimizer.optimizer import OptimizerState
    from funcforge.optimizer.step import StepContext, run_step
    from funcforge.workspace import Workspace

    ws = Workspace.open(args.path)
    for note in ws.notes:
        print(f"funcforge: warning: {note}", file=sys.stderr)
    client = make_client(ws.config, llm=args.llm, record=args.record)
    state = OptimizerState.load(ws.config.state_path)

    def progress(pct: int, message: str) -> None:
        if not args.json:
            print(f"[{pct:3d}%] {message}", file=sys.stderr)

    result = run_step(
        StepContext(
            config=ws.config,
            store=ws.store,
            toolset=ws.toolset,
            client=client,
            state=state,
            version=ws.version(),
            execute=not args.no_execute,
            function=args.function,
            progress=progress,
        )
    )
    state.save(ws.config.state_path)
    p = result.proposal
    if args.json:
        payload: dict[str, Any] = {
            "proposal": p.to_dict() if p else None,
            "diff": proposal_diff(ws, p) if p else "",
            "terminated": result.terminated,
            "decision": result.outcome.decision if result.outcome else None,
            "usage": result.usage,
            "rejected_answers": result.trials,
        }
        print(json.dumps(payload, indent=2))
        return 0
    if result.outcome is not None and result.outcome.decision == "rollback":
        print(
            f"note: the current version scores below the best ({state.best_version}, "
            f"{state.best_score:.2f}); `funcforge rollback --best` restores it"
        )
    if p is None:
        print("The model proposed no change (TERMINATE).")
        return 0
    print(f"Proposal {p.id}: {p.title}")
    if p.rationale:
        print(f"\n{p.rationale}\n")
    print(f"Replay check: {replay_summary(p)}\n")
    sys.stdout.write(proposal_diff(ws, p))
    print(
        f"\nUsage: {result.usage.get('calls', 0)} model calls, "
        f"{result.usage.get('prompt_tokens', 0)} prompt + "
        f"{result.usage.get('completion_tokens', 0)} completion tokens"
    )
    print(f"Apply with: funcforge apply {p.id} {args.path}")
    return 0


def _proposals(args: argparse.Namespace) -> int:
    from funcforge.optimizer.proposal import list_proposals

    ws_root = Path(args.path)
    from funcforge.config import load_config

    config = load_config(ws_root)
    items = list_proposals(config.proposals_path, None if args.all else "pending")
    if args.json:
        print(json.dumps([p.to_dict() for p in items], indent=2))
        return 0
    if not items:
        print("No pending proposals." if not args.all else "No proposals.")
        return 0
    for p in items:
        print(f"{p.id}  {p.status:8}  {p.created}  {p.title}  —  {replay_summary(p)}")
    return 0


def _reject(args: argparse.Namespace) -> int:
    from funcforge.config import load_config
    from funcforge.optimizer.proposal import load_proposal

    config = load_config(args.path)
    p = load_proposal(config.proposals_path, args.id)
    p.status = "rejected"
    p.save(config.proposals_path)
    print(f"Rejected proposal {p.id}: {p.title}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("optimize", help="run one optimizer step and save a proposal")
    p.add_argument("path", nargs="?", default=".", help="the workspace (default: .)")
    p.add_argument("--function", help="revise only this function")
    p.add_argument("--llm", help="replay:FILE answers from a recorded transcript")
    p.add_argument("--record", type=Path, help="record every request and response to FILE")
    p.add_argument("--json", action="store_true", help="print the proposal as JSON")
    p.add_argument(
        "--no-execute", action="store_true", help="skip the replay check (runs no workspace code)"
    )
    p.set_defaults(func=_optimize)

    p = sub.add_parser("proposals", help="list proposals")
    p.add_argument("path", nargs="?", default=".")
    p.add_argument("--all", action="store_true", help="include applied and rejected ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_proposals)

    p = sub.add_parser("reject", help="reject a proposal")
    p.add_argument("id")
    p.add_argument("path", nargs="?", default=".")
    p.set_defaults(func=_reject)
