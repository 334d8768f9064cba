"""`funcforge serve`: the pygls language server. Registration and plumbing only.

Each LSP feature is an object in `lsp/features/` that owns its state and
hooks its own methods; the server builds them, sets up the `Session`
(config, tools, traces, proposals) at `initialize`, and fans `Change`s out
to them. The work itself (optimizer step, apply, roll-back) is the core's.
Long work runs in worker threads; messages to the client from those threads
go through the event loop (`post`), so the single stdout writer is never
used concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from funcforge import __version__
from funcforge.errors import UserError
from funcforge.lsp.features import Feature
from funcforge.lsp.features.actions import CodeActionsFeature
from funcforge.lsp.features.commands import CommandsFeature
from funcforge.lsp.features.diagnostics import DiagnosticsFeature
from funcforge.lsp.features.documents import DocumentsFeature
from funcforge.lsp.features.handcheck import HandCheckFeature
from funcforge.lsp.features.hover import HoverFeature
from funcforge.lsp.features.lenses import CodeLensFeature
from funcforge.lsp.features.receiver import ReceiverFeature
from funcforge.lsp.features.status import StatusFeature
from funcforge.lsp.features.watch import WatchFeature
from funcforge.lsp.model import Change, ClientCaps
from funcforge.lsp.positions import uri_to_path
from funcforge.lsp.protocol import Protocol
from funcforge.lsp.session import Session, Settings
from funcforge.lsp.textdoc import LspWorkspace

log = logging.getLogger("funcforge.lsp")


class FuncforgeServer(LanguageServer):
    """The language server: the session, the client's capabilities, and the features."""

    def __init__(self) -> None:
        super().__init__("funcforge", __version__, protocol_cls=Protocol, max_workers=4)
        self.session: Session | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.caps = ClientCaps()
        self._timers: dict[str, threading.Timer] = {}
        self.stopping = False
        self.exit_code: int | None = None
        self.on_stop: Callable[[int], None] | None = None  # set by the stdio runner
        self.status = StatusFeature(self)
        self.documents = DocumentsFeature(self)
        self.diagnostics = DiagnosticsFeature(self)
        self.lenses = CodeLensFeature(self)
        self.hovers = HoverFeature(self)
        self.actions = CodeActionsFeature(self)
        self.commands = CommandsFeature(self)
        self.hand_check = HandCheckFeature(self)
        self.watch = WatchFeature(self)
        self.receiver = ReceiverFeature(self)
        self.features: list[Feature] = [
            self.status,
            self.documents,
            self.diagnostics,
            self.lenses,
            self.hovers,
            self.actions,
            self.commands,
            self.hand_check,
            self.watch,
            self.receiver,
        ]
        self.handle(types.INITIALIZE, self._initialize)
        for feature in self.features:
            feature.register()

    # -- lifecycle -------------------------------------------------------------

    def _initialize(self, params: types.InitializeParams) -> None:
        self.loop = asyncio.get_event_loop()
        # Documents whose lines break where LSP's do (pygls' break at form feeds too).
        self.protocol._workspace = LspWorkspace.like(self.workspace)
        self.caps = ClientCaps.from_params(params.capabilities)
        self.session = Session(
            _root_of(params), Settings.from_client(params.initialization_options)
        )
        for feature in self.features:
            feature.initialize(params)

    @property
    def proto(self) -> Protocol:
        return cast(Protocol, self.protocol)

    def begin_shutdown(self) -> None:
        """Cancel running work and pending timers (shutdown or exit)."""
        self.stopping = True
        for timer in list(self._timers.values()):
            timer.cancel()
        self.commands.cancel_all()
        if self.watch.poller is not None:
            self.watch.poller.stop_event.set()

    def stop(self, code: int) -> None:
        """`exit`: stop reading and end the process with `code`."""
        self.begin_shutdown()
        self.exit_code = code
        self.proto.closed = True  # nothing more is written
        if self.on_stop is not None:
            self.on_stop(code)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log faults pygls reports; the client hears of them as error responses or not
        at all (no "Error in server" toasts)."""
        log.error("%s: %s", getattr(source, "__name__", source), error)

    # -- plumbing --------------------------------------------------------------

    def handle(self, method: str, fn: Callable[[Any], Any], options: Any = None) -> None:
        """Register `fn(params)` (a feature's bound method) for the LSP `method`."""

        def handler(params: Any) -> Any:
            return fn(params)

        handler.__name__ = f"{method}:{getattr(fn, '__qualname__', 'handler')}"
        self.feature(method, options)(handler)

    def require_session(self) -> Session:
        if self.session is None:
            raise UserError("the server is not initialized")
        return self.session

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the event loop (safe from worker threads)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            if threading.current_thread() is threading.main_thread():
                fn(*args)
            else:
                loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed while shutting down
            pass

    def show(
        self,
        message: str,
        kind: types.MessageType = types.MessageType.Info,
        *,
        before_answer: bool = False,
    ) -> None:
        """`window/showMessage`. With `before_answer`, from a command's thread: wait (bounded)
        until the loop wrote it, after what was posted before it (the progress' end), so
        the client has the message when the command's answer arrives."""
        params = types.ShowMessageParams(type=kind, message=message)
        loop = self.loop
        if not before_answer or threading.current_thread() is threading.main_thread():
            self.post(self.window_show_message, params)
            return
        if loop is None or loop.is_closed():
            return
        written = threading.Event()

        def send() -> None:
            try:
                self.window_show_message(params)
            finally:
                written.set()

        self.post(send)
        written.wait(2.0)

    def log_line(self, message: str) -> None:
        self.post(
            self.window_log_message,
            types.LogMessageParams(type=types.MessageType.Log, message=message),
        )

    def debounce(self, key: str, delay: float, fn: Callable[[], None]) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        timer = threading.Timer(delay, fn)
        timer.daemon = True
        self._timers[key] = timer
        timer.start()

    def rel_of(self, uri: str) -> str | None:
        if self.session is None or not uri.startswith("file:"):
            return None
        return self.session.rel(uri_to_path(uri))

    def refresh(self, change: Change) -> None:
        """Re-read what `change` names (traces, tools), then fan it out (worker thread)."""
        session = self.session
        if session is None:
            return
        try:
            if change.traces:
                session.refresh_traces()
            if change.tools:
                session.reload_tools(rescan=change.rescan)
        except UserError as exc:
            self.show(str(exc), types.MessageType.Warning)
        self.fan_out(change)

    def fan_out(self, change: Change) -> None:
        """Tell every feature what changed (the data is already re-read)."""
        for feature in self.features:
            feature.on_change(change)


def _root_of(params: types.InitializeParams) -> Path:
    for uri in [f.uri for f in params.workspace_folders or []] + [params.root_uri or ""]:
        if uri.startswith("file:"):
            return uri_to_path(uri)
    if params.root_path:
        return Path(params.root_path)
    return Path.cwd()


server = FuncforgeServer()


def serve(otlp_port: int | None = None, otlp_file: str | None = None) -> None:
    """Run the server over stdio until `exit` or the client goes away; then end the
    process within a bound, whatever still runs. With `otlp_port`, also receive OTLP traces."""
    from funcforge.lsp.stdio import run_stdio

    server.receiver.port, server.receiver.file = otlp_port, otlp_file
    code = run_stdio(server, sys.stdin.buffer, sys.stdout.buffer)
    server.receiver.stop()  # traces still waiting for their root span are written
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
