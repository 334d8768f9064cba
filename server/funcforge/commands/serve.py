"""`funcforge serve`: the language server over stdio."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.INFO)
    else:
        # stderr is the editor's log: keep pygls' routine notices (late cancels) out of it.
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("pygls").setLevel(logging.ERROR)
    from funcforge.lsp.server import serve

    serve()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the language server over stdio")
    p.add_argument("--stdio", action="store_true", help="accepted for editors that pass it")
    p.add_argument("--log-file", help="write the server's log to this file")
    p.set_defaults(func=_serve)
