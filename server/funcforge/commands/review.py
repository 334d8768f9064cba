"""`funcforge review [RANGE] [PATH]`: a pull request's tool changes as Markdown or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from funcforge.commands import PATH_HELP


def _review(args: argparse.Namespace) -> int:
    from funcforge.errors import UserError
    from funcforge.fsutil import dumps, write_output
    from funcforge.review.report import build_review, render_markdown
    from funcforge.workspace import open_config

    rng, path = args.range, args.path
    if rng and path == "." and ".." not in rng and Path(rng).is_dir():
        rng, path = None, rng  # `funcforge review samples/x`: a folder, not a revision
    config = open_config(path)
    review = build_review(config, rng, execute=not args.no_execute)
    text = dumps(review.to_dict(), indent=2) + "\n" if args.json else render_markdown(review)
    if args.output:
        try:
            write_output(Path(args.output), text)
        except OSError as exc:
            raise UserError(
                f"{args.output}: cannot write the review: {exc.strerror or exc}"
            ) from None
    else:
        print(text, end="")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "review",
        help="Markdown report of a range's tool changes for a pull request (optimizer commits, "
        "roll-backs, hand edits, replay verdicts, scores)",
    )
    p.add_argument(
        "range",
        nargs="?",
        metavar="RANGE",
        help="commits to review, e.g. origin/main..HEAD or a base REF (default: the branch's "
        "commits not on its upstream, else not on main)",
    )
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument("--json", action="store_true", help="the same report as JSON")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE")
    p.add_argument(
        "--no-execute",
        action="store_true",
        help="skip the replay checks (runs no workspace code); scores and messages only",
    )
    p.set_defaults(func=_review)
