"""`funcforge receive`: an OTLP/HTTP receiver that appends native traces to a file."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from funcforge.commands import PATH_HELP, port_number


def _receive(args: argparse.Namespace) -> int:
    from funcforge import paths
    from funcforge.config import load_config
    from funcforge.errors import UserError
    from funcforge.traces.receiver import DEFAULT_FILE, ReceiverServer, TraceReceiver
    from funcforge.workspace import workspace_root

    root = workspace_root(args.path).resolve()  # the same error as every command
    config = load_config(root)
    rel = args.file or DEFAULT_FILE
    out = Path(rel) if Path(rel).is_absolute() else root / rel
    receiver = TraceReceiver(out, rel, max_bytes=args.max_bytes, idle_seconds=args.idle)
    try:
        http = ReceiverServer(receiver, args.port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}; choose another --port"
        ) from exc
    rel_out = paths.rel_posix(root, out)
    if rel_out is None or not paths.matches(config.traces, rel_out):
        print(
            f"funcforge receive: note: {rel} is not matched by the traces globs "
            f"{config.traces}; funcforge stats and the language server will not read it",
            file=sys.stderr,
        )
    print(
        f"funcforge receive: listening on http://127.0.0.1:{http.port}/v1/traces, appending to {rel}"
    )
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    http.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    http.stop()
    s = receiver.stats
    print(
        f"funcforge receive: {s.requests} requests, {s.spans} spans, {s.traces} traces written, "
        f"{s.rejected} refused"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "receive",
        help="receive OTLP/HTTP traces from instrumented agents into a trace file",
        description="Listen on 127.0.0.1 for OTLP/HTTP trace exports (protobuf or JSON, "
        "POST /v1/traces), map GenAI and OpenInference spans as `funcforge import` does, "
        "and append native traces to a file of the workspace.",
    )
    p.add_argument("path", nargs="?", default=".", help=PATH_HELP)
    p.add_argument(
        "--port",
        type=port_number,
        default=4318,
        help="port on 127.0.0.1 (default 4318; 0: any free)",
    )
    p.add_argument(
        "--file",
        help="where traces go, relative to the workspace root like the default "
        "(traces/otlp/received.jsonl)",
    )
    p.add_argument(
        "--max-bytes",
        type=int,
        default=16 * 1024 * 1024,
        metavar="N",
        help="largest request body accepted (larger: 413)",
    )
    p.add_argument(
        "--idle",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="write a trace whose root span has not come after this quiet time",
    )
    p.set_defaults(func=_receive)
