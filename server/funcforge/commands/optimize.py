"""`funcforge optimize`, `funcforge proposals`, `funcforge reject`."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funcforge.commands import PATH_HELP

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


def _refuse_an_empty_folder(root: Path) -> None:
    """No tool file and no trace file: not a workspace; say so before anything is made there.

    Before, optimize created `.funcforge/` in any folder and asked the model
    about an empty toolset with no histories (a model call for nothing).
    """
    from funcforge import paths
    from funcforge.config import load_config
    from funcforge.errors import UserError
    from funcforge.toolset.toolset import tool_files

    config = load_config(root)
    if tool_files(config):
        return
    if paths.find_files(config.root, config.traces, exclude=[config.state_dir]):
        return  # histories without tools: the optimizer may add functions
    raise UserError(
        f"{config.root}: nothing to optimize: no tool files (tools: "
        f"{', '.join(config.tools)}) and no trace files (traces: {', '.join(config.traces)}); "
        "is this the workspace (the folder with [tool.funcforge] or funcforge.toml)?"
    )


def _optimize(args: argparse.Namespace) -> int:
    from funcforge.fsutil import dumps
    from funcforge.optimizer.llm import make_client
    from funcforge.optimizer.policy import Policy, live_verdict
    from funcforge.optimizer.step import StepContext, run_step
    from funcforge.workspace import Workspace, workspace_root

    notes: list[str] = []
    root = workspace_root(args.path, say=notes.append)  # found upward from PATH
    _refuse_an_empty_folder(root)
    for note in notes:  # which workspace, once it is one (a refusal is one line)
        print(note, file=sys.stderr)
    ws = Workspace.open(root)
    for note in ws.notes:
        print(f"funcforge: warning: {note}", file=sys.stderr)
    client = make_client(ws.config, llm=args.llm, record=args.record)
    policy = Policy.load(ws.config)
    version = ws.version()
    # The same verdict as the server and `log`: the sequential rule on train-split traces.
    decline, measured = live_verdict(ws.config, ws.store, ws.toolset, version)
    if decline is not None:
        policy.observe_live(decline, measured, ws.config.min_traces)

    def progress(pct: int, message: str) -> None:
        if not args.json:
            print(f"[{pct:3d}%] {message}", file=sys.stderr)

    result = run_step(
        StepContext(
            config=ws.config,
            store=ws.store,
            toolset=ws.toolset,
            client=client,
            state=policy.state,
            version=version,
            execute=not args.no_execute,
            function=args.function,
            progress=progress,
        )
    )
    policy.save(ws.config.state_path)
    p = result.proposal
    if args.json:
        payload: dict[str, Any] = {
            "proposal": p.to_dict() if p else None,
            "diff": proposal_diff(ws, p) if p else "",
            "terminated": result.terminated,
            "decision": "rollback" if decline is not None and decline.declined else None,
            "verdict": decline.to_dict() if decline is not None else None,
            "skipped_actions": result.skipped,
            "repeat": result.repeat,
            "usage": result.usage,
            "rejected_answers": result.trials,
            "notes": result.notes,
            "budget": result.budget,
            "prompt_tokens_counted": result.prompt_tokens,
        }
        print(dumps(payload, indent=2, ensure_ascii=True))
        return 0
    for note in result.notes:
        print(f"funcforge: note: {note}", file=sys.stderr)
    if decline is not None and decline.declined:
        print(
            f"note: the current version has declined: {decline.message()} ({decline.reason}); "
            "`funcforge rollback --best` restores the best version"
        )
    if p is None:
        _print_rejected(result.trials)
        for reason in result.skipped:
            print(f"Skipped: {reason}")
        if result.repeat:
            print(f"Not proposed: {result.repeat}")
            return 0
        print(
            "No valid action: nothing proposed."
            if result.skipped and not result.terminated
            else "The model proposed no change (TERMINATE)."
        )
        return 0
    _print_rejected(result.trials)
    print(f"Proposal {p.id}: {p.title}")
    if p.rationale:
        print(f"\n{p.rationale}\n")
    print(f"Replay check: {replay_summary(p)}\n")
    for name, places in p.suspicious_unicode.items():
        print(
            f"WARNING: the new code of `{name}` holds invisible or bidirectional characters "
            f"(the code may not do what it looks like): {'; '.join(places)}\n"
        )
    sys.stdout.write(proposal_diff(ws, p))
    print(
        f"\nUsage: {result.usage.get('calls', 0)} model calls, "
        f"{result.usage.get('prompt_tokens', 0)} prompt + "
        f"{result.usage.get('completion_tokens', 0)} completion tokens"
    )
    print(f"Apply with: funcforge apply {p.id} {args.path}")
    return 0


def _print_rejected(trials: list[str]) -> None:
    """Why answers of the model were turned down (each was fed back to it)."""
    if not trials:
        return
    print(f"Rejected answers ({len(trials)}, each fed back to the model):")
    for reason in trials:
        print(f"  - {reason}")
    print()


def _proposals(args: argparse.Namespace) -> int:
    from funcforge.optimizer.proposal import list_proposals
    from funcforge.workspace import open_config

    config = open_config(args.path)
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
    from funcforge.errors import UserError
    from funcforge.optimizer.proposal import ProposalError, load_proposal
    from funcforge.workspace import open_config

    config = open_config(args.path)
    try:
        p = load_proposal(config.proposals_path, args.id)
    except ProposalError as exc:
        raise UserError(f"{exc}; `funcforge proposals --all` lists them") from None
    if p.status == "applied":
        where = f" as commit {p.commit[:7]}" if p.commit else ""
        raise UserError(
            f"proposal {p.id} is already applied{where}: rejecting it would not undo the "
            "commit; `funcforge rollback --to SHA` (or `git revert`) does"
        )
    if p.status == "rejected":
        print(f"Proposal {p.id} is already rejected: {p.title}")
        return 0
    from funcforge.optimizer.policy import reject_proposal

    reason = args.reason or "rejected without a reason"
    reject_proposal(config, p, reason)
    print(f"Rejected proposal {p.id}: {p.title} (remembered as failure experience: {reason})")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("optimize", help="run one optimizer step and save a proposal")
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument("--function", metavar="NAME", help="revise only this function")
    p.add_argument(
        "--llm", metavar="replay:FILE", help="replay:FILE answers from a recorded transcript"
    )
    p.add_argument(
        "--record", type=Path, metavar="FILE", help="record every request and response to FILE"
    )
    p.add_argument("--json", action="store_true", help="print the proposal as JSON")
    p.add_argument(
        "--no-execute", action="store_true", help="skip the replay check (runs no workspace code)"
    )
    p.set_defaults(func=_optimize)

    p = sub.add_parser("proposals", help="list proposals")
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument("--all", action="store_true", help="include applied and rejected ones")
    p.add_argument("--json", action="store_true", help="print the proposals as JSON")
    p.set_defaults(func=_proposals)

    p = sub.add_parser("reject", help="reject a pending proposal")
    p.add_argument("id", help="proposal id (a unique prefix is enough)")
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument(
        "--reason",
        help="why (kept with the proposal's functions as failure experience for later steps)",
    )
    p.set_defaults(func=_reject)
