"""The OTLP/HTTP receiver inside the language server (`funcforge serve --otlp-port N`).

Off unless the port is given. Spans that agents export become native traces
appended to the receiving file (in the workspace's trace globs); each append
re-reads the traces at once, so diagnostics follow live runs.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from lsprotocol import types

from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change
from funcforge.traces.model import Trace

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer
    from funcforge.traces.receiver import ReceiverServer

log = logging.getLogger("funcforge.lsp")

REFRESH_DELAY = 0.02  # seconds: exports arriving within this share one refresh


class ReceiverFeature(Feature):
    """Owns the receiver's HTTP server for the session's workspace."""

    def __init__(self, ls: FuncforgeServer) -> None:
        super().__init__(ls)
        self.port: int | None = None  # set by `serve()` from the command line
        self.file: str | None = None
        self.http: ReceiverServer | None = None
        self._pending = (
            False  # a refresh is scheduled (a throttle: a steady stream still refreshes)
        )
        self._pending_lock = threading.Lock()

    def initialize(self, params: types.InitializeParams) -> None:
        if self.port is None or self.http is not None:
            return
        from funcforge.traces.receiver import DEFAULT_FILE, ReceiverServer, TraceReceiver

        session = self.ls.require_session()
        rel = self.file or DEFAULT_FILE
        out = session.root / rel
        receiver = TraceReceiver(out, rel, on_append=self._appended)
        try:
            self.http = ReceiverServer(receiver, self.port).start()
        except OSError as exc:
            self.ls.show(
                f"funcforge: cannot receive OTLP traces on port {self.port}: {exc.strerror}; "
                "choose another with --otlp-port",
                types.MessageType.Error,
            )
            return
        self.ls.log_line(
            f"funcforge: receiving OTLP traces on http://127.0.0.1:{self.http.port}/v1/traces "
            f"into {rel}"
        )

    def _appended(self, traces: list[Trace]) -> None:
        """New traces in the file: re-read them soon (one refresh covers a burst of
        exports; the HTTP answer does not wait for it)."""
        with self._pending_lock:
            if self._pending:
                return  # the scheduled refresh will read these too
            self._pending = True
        timer = threading.Timer(REFRESH_DELAY, self._refresh)
        timer.daemon = True
        timer.start()

    def _refresh(self) -> None:
        with self._pending_lock:
            self._pending = False
        self.ls.refresh(Change(traces=True))

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
