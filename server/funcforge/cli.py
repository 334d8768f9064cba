"""The `funcforge` command line: discovers subcommands in `funcforge.commands`.

Each module there defines `register(subparsers)` and sets `func` on its parser;
errors the user can act on are raised as `UserError` and printed as one line.
Exit codes are shared by every command (`funcforge.errors`, docs/cli.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from funcforge import __version__, commands
from funcforge.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    UserError,
)

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


class _Parser(argparse.ArgumentParser):
    """argparse, except that a closed pipe is not swallowed (`funcforge --help | head -1`).

    argparse ignores OSError when printing help or usage, so a reader that went
    away gave exit 0 with the text lost; here it ends as every command does (141).
    Subcommand parsers are made of the same class.
    """

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if message:
            (file or sys.stderr).write(message)


# Commands whose module is imported alone when they are the one run: an editor starts
# `funcforge serve` at every launch, and importing every command (libcst, the trace
# formats) before the server can answer costs a large part of a warm start.
ALONE = {"serve": "serve"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; `only` (a module name): that module's commands."""
    parser = _Parser(
        prog="funcforge",
        description="Train an LLM agent's tools instead of its weights (AgentOptimizer).",
    )
    parser.add_argument("--version", action="version", version=f"funcforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [only] if only else sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
    for name in names:
        module = importlib.import_module(f"funcforge.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args_in = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser(ALONE.get(args_in[0]) if args_in else None)
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # --help, --version, a usage error: flush here, not at shutdown
            sys.stdout.flush()
            raise
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_ERROR
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's shutdown
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except UserError as exc:
        print(f"funcforge: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("funcforge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """The reader went away (`funcforge log | head`): drop what is still buffered, quietly.

    Python would otherwise report the failed flush at exit with a traceback.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
