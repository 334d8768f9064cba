"""Connect this process's stdio to an MCP server listening on a Unix socket (stdlib only).

`python -m funcforge.mcp_relay SOCKET` is the command line the trainer hands a
`command:` agent in `FUNCFORGE_MCP_COMMAND`: the agent starts it like any
stdio MCP server, and the relay joins it to the trainer's own `funcforge mcp`
session for the toolset under training (one warm sandbox pool for every task,
instead of a server and a sandbox per task). It imports nothing but the
standard library, so it starts in a few milliseconds.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # `python -m` put the current folder (a command agent's: the toolset's files)
    # first on sys.path; a `socket.py` there would run in the agent's process.
    # (runpy's own imports precede this: the trainer uses `relay_command`, -c.)
    _here = os.path.abspath(os.curdir)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import contextlib
import socket
import threading


def _pump(read: int, write: socket.socket | int) -> None:
    while True:
        try:
            chunk = os.read(read, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            break
        try:
            if isinstance(write, socket.socket):
                write.sendall(chunk)
            else:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(write, view) :]
        except OSError:
            break
    if isinstance(write, socket.socket):
        with contextlib.suppress(OSError):
            write.shutdown(socket.SHUT_WR)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m funcforge.mcp_relay SOCKET", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(argv[0])
    except OSError as exc:
        print(f"funcforge mcp relay: cannot reach {argv[0]}: {exc}", file=sys.stderr)
        return 1
    upstream = threading.Thread(target=_pump, args=(0, sock), daemon=True)
    upstream.start()
    _pump(sock.fileno(), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
