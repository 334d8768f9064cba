"""CLI subcommands: each module defines `register(subparsers)`; cli.py discovers them.

Helpers shared by several commands live here (this file is not a command).
"""

from __future__ import annotations

import argparse

# The help of every command's PATH (docs/cli.md, "Which workspace").
PATH_HELP = (
    "the workspace or a folder in it (default: .); the workspace is the nearest folder "
    "upward with funcforge.toml or [tool.funcforge] in pyproject.toml"
)


def port_number(text: str) -> int:
    """An argparse type for a TCP port: 0 (any free one) to 65535.

    Out of range, the socket layer raised OverflowError: a traceback, exit 1.
    """
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {port}")
    return port
