"""`funcforge serve`: the language server over stdio."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from funcforge.commands import port_number


def _serve(args: argparse.Namespace) -> int:
    from funcforge.errors import UserError

    if args.log_file:
        try:  # opened here: basicConfig does nothing (and opens nothing) once logging is set up
            handler = logging.FileHandler(args.log_file)
        except OSError as exc:  # before: a traceback and exit 1 before the server started
            raise UserError(
                f"--log-file {args.log_file}: cannot write the log: {exc.strerror or exc}"
            ) from None
        logging.basicConfig(handlers=[handler], level=logging.INFO)
    else:
        # stderr is the editor's log: keep pygls' routine notices (late cancels) out of it.
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("pygls").setLevel(logging.ERROR)
    from funcforge.lsp.server import serve

    serve(otlp_port=args.otlp_port, otlp_file=args.otlp_file)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the language server over stdio")
    p.add_argument("--stdio", action="store_true", help="accepted for editors that pass it")
    p.add_argument("--log-file", help="write the server's log to this file")
    p.add_argument(
        "--otlp-port",
        type=port_number,
        metavar="PORT",
        help="also receive OTLP/HTTP traces on 127.0.0.1:PORT/v1/traces (off by default; "
        "4318 is OTLP's usual port; 0 picks a free one)",
    )
    p.add_argument(
        "--otlp-file",
        metavar="FILE",
        help="workspace-relative file the received traces are appended to "
        "(default traces/otlp/received.jsonl)",
    )
    p.set_defaults(func=_serve)
