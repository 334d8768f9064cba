"""The trainer's MCP server for `command:` agents: the toolset under training, over MCP.

A command agent is told `FUNCFORGE_MCP_COMMAND` (a JSON list: the command line
of an MCP stdio server) and calls the tools through it, so the agent process
(which may hold a model key) never imports model-written code. The command is
`funcforge.mcp_relay` (`relay_command`): a stdlib relay to this host, which
serves `funcforge mcp`'s server (the same SDK server and `ToolServer`) for the
task's toolset version on a private Unix socket, with one warm sandbox pool
per version instead of a server and a sandbox per task. Calls are not logged
as workspace traces here: the trainer records the agent's own trace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
import threading
from typing import Any

from funcforge.config import Config
from funcforge.toolserver import ToolServer

KEEP_VERSIONS = 2  # listeners kept alive: the current toolset and the one before


class _Listener:
    """One toolset version served on a Unix socket; a session per connection."""

    def __init__(self, tools: ToolServer) -> None:
        self.tools = tools
        self.dir = tempfile.mkdtemp(prefix="ff-mcp-")
        self.path = os.path.join(self.dir, "mcp.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="funcforge-mcp-host").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        import anyio

        from funcforge.mcp_server import serve_streams

        reader = conn.makefile("r", encoding="utf-8", newline="")
        writer = conn.makefile("w", encoding="utf-8", newline="")
        try:
            anyio.run(serve_streams, self.tools, anyio.wrap_file(reader), anyio.wrap_file(writer))
        except Exception:  # a client that went away mid-session ends only its session
            pass
        finally:
            for f in (reader, writer, conn):
                with contextlib.suppress(OSError):
                    f.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self.tools.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# `python -c`, not `-m`: runpy imports part of the standard library (contextlib, ...)
# after `-m` put the current folder first on sys.path, and a command agent runs in
# the folder of the toolset's files, so a tool file `contextlib.py` would be
# imported into the agent's process. `-c` adds only "", removed before any import.
_RELAY = (
    "import sys; sys.path[:] = [p for p in sys.path if p != '']; "
    "from funcforge.mcp_relay import main; sys.exit(main(sys.argv[1:]))"
)


def relay_command(socket_path: str) -> list[str]:
    """The command line of the stdio relay to the listener at `socket_path`."""
    return [sys.executable, "-c", _RELAY, socket_path]


class McpHost:
    """Serves each toolset a command agent runs with; `command(toolbox)` is its command line."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}

    def command(self, toolbox: Any) -> list[str]:
        """The MCP server command line for `toolbox` (a `training.agents.Toolbox`)."""
        key = f"{toolbox.root}\0{toolbox.version}"
        with self._lock:
            listener = self._listeners.get(key)
            if listener is None:
                config = dataclasses.replace(self.config, root=toolbox.root)
                tools = ToolServer(
                    config, files=dict(toolbox.files), version=toolbox.version, workers=2
                )
                listener = self._listeners[key] = _Listener(tools)
                while len(self._listeners) > KEEP_VERSIONS:
                    oldest = next(iter(self._listeners))
                    self._listeners.pop(oldest).close()
        return relay_command(listener.path)

    def close(self) -> None:
        with self._lock:
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            listener.close()

    def __getstate__(self) -> dict[str, Any]:
        """Shipped (to a Ray worker) as its configuration; listeners start where it runs."""
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])  # type: ignore[misc]
