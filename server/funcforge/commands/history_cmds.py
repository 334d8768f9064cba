"""`funcforge apply | rollback | log`: proposals become commits; git history is the training history."""

from __future__ import annotations

import argparse
import json
from typing import Any

from funcforge.commands import PATH_HELP
from funcforge.errors import UserError


def _config(args: argparse.Namespace) -> Any:
    from funcforge.workspace import open_config

    return open_config(args.path)


def _apply(args: argparse.Namespace) -> int:
    from funcforge.history.git import apply_proposal
    from funcforge.optimizer.proposal import ProposalError, load_proposal

    config = _config(args)
    try:
        proposal = load_proposal(config.proposals_path, args.id)
    except ProposalError as exc:  # what to do, as `reject` says it
        raise UserError(f"{exc}; `funcforge proposals --all` lists them") from None
    result = apply_proposal(config, proposal, commit_dirty=args.commit_dirty)
    if args.json:
        print(
            json.dumps(
                {"commit": result.commit, "files": result.files, "wip_commit": result.wip_commit}
            )
        )
        return 0
    if result.wip_commit:
        print(f"committed your own edits first: {result.wip_commit[:7]}")
    subject = result.message.splitlines()[0]
    print(f"committed {result.short} {subject} ({', '.join(result.files)})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from funcforge.history.rollback import rollback

    config = _config(args)
    result = rollback(config, to=args.to, best=args.best)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    if not result.commits:
        print(result.message.strip())
        return 0
    subject = result.message.splitlines()[0]
    reverted = ", ".join(s[:7] for s in result.reverted)
    print(f"committed {result.commits[0][:7]} {subject}")
    print(f"reverted {reverted}")
    if result.kept:
        kept = ", ".join(s[:7] for s in result.kept)
        print(f"kept your commits on the same files: {kept}")
    return 0


def _log(args: argparse.Namespace) -> int:
    from funcforge.history.git import current_version
    from funcforge.history.log import history_log, render_log
    from funcforge.toolset.toolset import load_toolset

    config = _config(args)
    log = history_log(config, current=current_version(config, load_toolset(config)))
    if args.plot:
        from funcforge.history.plot import plot_log

        plot_log(log, args.plot)
    if args.json:
        print(json.dumps(log.to_dict(), indent=2))
    else:
        print(render_log(log), end="")
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "apply", help="commit a proposal: write its change and commit only the touched files"
    )
    p.add_argument("id", help="proposal id (a unique prefix is enough)")
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument(
        "--commit-dirty",
        action="store_true",
        help="commit your own uncommitted edits to the touched files first, as your commit",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_apply)

    r = sub.add_parser(
        "rollback", help="revert funcforge's commits after the best or a given version"
    )
    r.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--best", action="store_true", help="roll back to the best measured version"
    )
    target.add_argument("--to", metavar="SHA", help="roll back to this commit")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=_rollback)

    g = sub.add_parser("log", help="funcforge's commits with step, actions and scores")
    g.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    g.add_argument("--json", action="store_true", help="print the log as JSON")
    g.add_argument("--plot", metavar="FILE.png", help="draw the score per version (matplotlib)")
    g.set_defaults(func=_log)
