"""`funcforge serve`: the pygls language server. Registration and plumbing only.

The features read a `Session` (config, tools, traces, proposals); the work
itself (optimizer step, apply, roll-back) is the core's. Long work runs in
worker threads; messages to the client from those threads go through the
event loop (`_post`), so the single stdout writer is never used concurrently.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from funcforge import __version__
from funcforge.errors import UserError
from funcforge.lsp import commands, views
from funcforge.lsp.diagnostics import diagnostics_for
from funcforge.lsp.positions import path_to_uri, uri_to_path
from funcforge.lsp.session import Session, Settings
from funcforge.lsp.watch import Poller, classify

log = logging.getLogger("funcforge.lsp")

COMMANDS = [
    "funcforge.optimize",
    "funcforge.applyProposal",
    "funcforge.rejectProposal",
    "funcforge.rollback",
    "funcforge.history",
    "funcforge.proposals",
    "funcforge.proposalPreview",
    "funcforge.tools",
    "funcforge.pinCall",
    "funcforge.status",
]


class Protocol(LanguageServerProtocol):
    """Pins the position encoding to UTF-16 and serialises writes to the client.

    pygls sends the results of threaded handlers from the worker thread, so
    without the lock two messages could interleave on stdout.
    """

    _send_lock = threading.Lock()

    def _send_data(self, data: Any) -> None:
        with self._send_lock:
            super()._send_data(data)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):  # type: ignore[override]
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = None
        return (yield from super().lsp_initialize(params))


class FuncforgeServer(LanguageServer):
    """The language server with its session and the client's capabilities."""

    def __init__(self) -> None:
        super().__init__("funcforge", __version__, protocol_cls=Protocol, max_workers=4)
        self.session: Session | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pull_diagnostics = False
        self.resolve_actions = False
        self.progress_supported = False
        self.optimize_lock = threading.Lock()
        self.cancel_event = threading.Event()
        self.optimizing = False
        self.poller: Poller | None = None
        self._debounce: dict[str, threading.Timer] = {}
        self.decline: dict[str, Any] | None = None
        self._decline_key: tuple[int, str] | None = None
        self._published: dict[str, list[types.Diagnostic]] = {}
        self.hand_diags: dict[str, list[types.Diagnostic]] = {}

    # -- plumbing --------------------------------------------------------------

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

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.post(self.window_show_message, types.ShowMessageParams(type=kind, message=message))

    def log_line(self, message: str) -> None:
        self.post(
            self.window_log_message,
            types.LogMessageParams(type=types.MessageType.Log, message=message),
        )

    def send_status(self, message: str | None = None) -> None:
        session = self.session
        if session is None:
            return
        self.post(self.protocol.notify, "funcforge/status", views.status(self, session, message))

    def publish_all(self, recompute_decline: bool = True, only: set[str] | None = None) -> None:
        """Push diagnostics of the tool files that changed (`only`: just these files),
        or ask a pull client to refresh; then, debounced, re-judge the decline rule."""
        session = self.session
        if session is None:
            return
        self._publish(session, only)
        if recompute_decline:
            self.debounce("decline", 2.0, lambda: self._judge_decline(session))

    def _judge_decline(self, session: Session) -> None:
        """The decline rule reads git and every version's score: run it off the hot path."""
        key = (len(session.store) if session.store else 0, session.toolset.content_hash())
        if key == self._decline_key:
            return
        self._decline_key = key
        found = views.decline(session)
        if found != self.decline:
            self.decline = found
            self._publish(session)

    def _publish(self, session: Session, only: set[str] | None = None) -> None:
        if self.pull_diagnostics:
            ws = self.client_capabilities.workspace
            refresh = getattr(ws, "diagnostics", None) if ws else None
            if refresh is not None and getattr(refresh, "refresh_support", False):
                self.post(self.workspace_diagnostic_refresh, None)
            return
        files = set(session.tool_files()) | set(session.buffers)
        if only is not None:
            files &= only
        decline = views.decline_tuple(self.decline)
        for rel in sorted(files):
            diags = diagnostics_for(session, rel, decline, self.hand_diags.get(rel))
            uri = path_to_uri(session.root / rel)
            if self._published.get(uri) == diags:
                continue
            self._published[uri] = diags
            doc = self.workspace.text_documents.get(uri)
            self.post(
                self.text_document_publish_diagnostics,
                types.PublishDiagnosticsParams(
                    uri=uri, diagnostics=diags, version=doc.version if doc else None
                ),
            )

    def refresh_everything(
        self, traces: bool = True, tools: bool = True, only_tools: set[str] | None = None
    ) -> None:
        """Re-read what changed, then diagnostics and status (worker thread).

        `only_tools`: just these tools' statistics changed (a trace append), so
        only their files need new diagnostics.
        """
        session = self.session
        if session is None:
            return
        try:
            if traces:
                session.refresh_traces()
            if tools:
                session.reload_tools()
        except UserError as exc:
            self.show(str(exc), types.MessageType.Warning)
        only = session.files_of(only_tools) if only_tools is not None and not tools else None
        self.publish_all(only=only)
        self.send_status()

    def debounce(self, key: str, delay: float, fn: Callable[[], None]) -> None:
        old = self._debounce.pop(key, None)
        if old is not None:
            old.cancel()
        timer = threading.Timer(delay, fn)
        timer.daemon = True
        self._debounce[key] = timer
        timer.start()

    def rel_of(self, uri: str) -> str | None:
        if self.session is None or not uri.startswith("file:"):
            return None
        return self.session.rel(uri_to_path(uri))


server = FuncforgeServer()


def pull_configuration(ls: FuncforgeServer) -> Any:
    """`workspace/configuration` for section funcforge, from a worker thread."""
    assert ls.loop is not None
    params = types.ConfigurationParams(items=[types.ConfigurationItem(section="funcforge")])
    future = asyncio.run_coroutine_threadsafe(ls.workspace_configuration_async(params), ls.loop)
    return future.result(timeout=10)


def _root_of(params: types.InitializeParams) -> Path:
    if params.workspace_folders:
        return uri_to_path(params.workspace_folders[0].uri)
    if params.root_uri:
        return uri_to_path(params.root_uri)
    if params.root_path:
        return Path(params.root_path)
    return Path.cwd()


@server.feature(types.INITIALIZE)
def initialize(ls: FuncforgeServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_event_loop()
    caps = params.capabilities
    td = caps.text_document
    ls.pull_diagnostics = bool(td and td.diagnostic)
    ls.resolve_actions = bool(
        td
        and td.code_action
        and td.code_action.resolve_support
        and "edit" in (td.code_action.resolve_support.properties or [])
    )
    ls.progress_supported = bool(caps.window and caps.window.work_done_progress)
    ls.session = Session(_root_of(params), Settings.from_client(params.initialization_options))
    edit_caps = caps.workspace.workspace_edit if caps.workspace else None
    ls.session.versioned_edits = bool(edit_caps and edit_caps.document_changes)


@server.feature(types.INITIALIZED)
def initialized(ls: FuncforgeServer, params: types.InitializedParams) -> None:
    session = ls.session
    assert session is not None
    caps = ls.client_capabilities

    def start() -> None:
        if caps.workspace and caps.workspace.configuration:
            try:
                result = pull_configuration(ls)
                if result and isinstance(result[0], dict):
                    merged = Settings.from_client(result[0])
                    if not result[0].get("allowExecution") and "allowExecution" not in result[0]:
                        merged.allow_execution = session.settings.allow_execution
                    session.settings = merged
            except Exception as exc:  # a client that refuses or times out
                log.info("workspace/configuration failed: %s", exc)
        index(ls)

    threading.Thread(target=start, name="funcforge-index", daemon=True).start()
    _register_watchers(ls)


def index(ls: FuncforgeServer) -> None:
    """(Re)load config, tools and traces, then publish (worker thread)."""
    session = ls.session
    assert session is not None
    session.state_name = "indexing"
    ls.send_status()
    for message in session.load_config():
        ls.show(f"funcforge: {message}", types.MessageType.Warning)
    try:
        session.index()
    except UserError as exc:
        ls.show(f"funcforge: {exc}", types.MessageType.Error)
    from funcforge.history.git import open_repo

    try:
        open_repo(session.config).close()
    except UserError as exc:
        ls.show(f"funcforge: {exc}", types.MessageType.Warning)
    store = session.store
    if store is not None and store.malformed:
        first = store.malformed[0]
        ls.log_line(
            f"funcforge: {len(store.malformed)} malformed trace lines skipped "
            f"(first: {first.file}:{first.line}: {first.reason})"
        )
    session.state_name = "converged" if session.optimizer_state().converged else "idle"
    # The index is long-lived: keep the cyclic GC from re-scanning it (pauses of
    # hundreds of ms at 100k traces otherwise).
    gc.freeze()
    ls.publish_all()
    ls.send_status()


def _register_watchers(ls: FuncforgeServer) -> None:
    """Ask the client to watch our files, or watch them ourselves."""
    session = ls.session
    assert session is not None
    caps = ls.client_capabilities
    dynamic = bool(
        caps.workspace
        and caps.workspace.did_change_watched_files
        and caps.workspace.did_change_watched_files.dynamic_registration
    )
    if dynamic:
        globs = ["**/*.py", "**/*.jsonl", "**/*.json", "**/pyproject.toml", "**/funcforge.toml"]
        params = types.RegistrationParams(
            registrations=[
                types.Registration(
                    id="funcforge-watch",
                    method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                    register_options=types.DidChangeWatchedFilesRegistrationOptions(
                        watchers=[types.FileSystemWatcher(glob_pattern=g) for g in globs]
                    ),
                )
            ]
        )
        ls.client_register_capability(params)
    ls.poller = Poller(ls, poll_tools=not dynamic)
    ls.poller.start()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched(ls: FuncforgeServer, params: types.DidChangeWatchedFilesParams) -> None:
    session = ls.session
    if session is None:
        return
    kinds = {classify(session, uri_to_path(c.uri)) for c in params.changes}
    if "config" in kinds:
        ls.debounce("index", 0.2, lambda: index(ls))
    elif kinds & {"tool", "trace", "proposal", "state"}:
        if "proposal" in kinds:
            session.proposals_changed()
        ls.debounce(
            "refresh",
            0.1,
            lambda: ls.refresh_everything(traces="trace" in kinds, tools="tool" in kinds),
        )


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(
    ls: FuncforgeServer, params: types.DidChangeConfigurationParams
) -> None:
    session = ls.session
    if session is None:
        return
    settings = params.settings
    if isinstance(settings, dict) and settings:
        session.settings = Settings.from_client(settings)
        session.load_config()  # cheap; commands see the new values at once (index() reports)
        ls.debounce("index", 0.2, lambda: index(ls))
        return

    def pull() -> None:
        caps = ls.client_capabilities
        if caps.workspace and caps.workspace.configuration:
            try:
                result = pull_configuration(ls)
                if result and isinstance(result[0], dict):
                    session.settings = Settings.from_client(result[0])
            except Exception as exc:
                log.info("workspace/configuration failed: %s", exc)
        index(ls)

    threading.Thread(target=pull, daemon=True).start()


# -- documents -------------------------------------------------------------------


def _document_changed(ls: FuncforgeServer, uri: str, text: str | None) -> None:
    session = ls.session
    rel = ls.rel_of(uri)
    if session is None or rel is None or not rel.endswith(".py"):
        return
    with session.lock:
        if text is None:
            session.buffers.pop(rel, None)
        else:
            session.buffers[rel] = text
    ls.debounce(f"doc:{rel}", 0.25, lambda: ls.refresh_everything(traces=False, tools=True))


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: FuncforgeServer, params: types.DidOpenTextDocumentParams) -> None:
    _document_changed(ls, params.text_document.uri, params.text_document.text)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: FuncforgeServer, params: types.DidChangeTextDocumentParams) -> None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    _document_changed(ls, params.text_document.uri, doc.source)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: FuncforgeServer, params: types.DidSaveTextDocumentParams) -> None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    _document_changed(ls, params.text_document.uri, doc.source)
    schedule_hand_check(ls)


def schedule_hand_check(ls: FuncforgeServer) -> None:
    """Check the saved edits against logged calls (debounced; only when execution is allowed)."""
    session = ls.session
    if session is None or not session.settings.allow_execution:
        return

    def run() -> None:
        from funcforge.lsp.handcheck import hand_edit_diagnostics

        try:
            ls.hand_diags = hand_edit_diagnostics(session)
        except UserError as exc:
            ls.log_line(f"funcforge: hand-edit check skipped: {exc}")
            ls.hand_diags = {}
        ls.publish_all(recompute_decline=False)

    ls.debounce("hand-check", 0.5, run)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: FuncforgeServer, params: types.DidCloseTextDocumentParams) -> None:
    _document_changed(ls, params.text_document.uri, None)


# -- evidence --------------------------------------------------------------------


@server.feature(
    types.TEXT_DOCUMENT_DIAGNOSTIC,
    types.DiagnosticOptions(
        identifier="funcforge", inter_file_dependencies=True, workspace_diagnostics=False
    ),
)
def pull_diagnostics(
    ls: FuncforgeServer, params: types.DocumentDiagnosticParams
) -> types.RelatedFullDocumentDiagnosticReport:
    rel = ls.rel_of(params.text_document.uri)
    items = []
    if ls.session is not None and rel is not None:
        items = diagnostics_for(
            ls.session, rel, views.decline_tuple(ls.decline), ls.hand_diags.get(rel)
        )
    return types.RelatedFullDocumentDiagnosticReport(items=items)


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: FuncforgeServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    return views.code_lenses(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: FuncforgeServer, params: types.HoverParams) -> types.Hover | None:
    return views.hover(ls, params.text_document.uri, params.position)


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[
            types.CodeActionKind.QuickFix,
            types.CodeActionKind.RefactorRewrite,
        ],
        resolve_provider=True,
    ),
)
def code_action(ls: FuncforgeServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    return views.code_actions(ls, params)


@server.feature(types.CODE_ACTION_RESOLVE)
def code_action_resolve(ls: FuncforgeServer, action: types.CodeAction) -> types.CodeAction:
    return views.resolve(ls, action)


# -- commands --------------------------------------------------------------------


def _command(name: str, handler: Callable[[FuncforgeServer, dict[str, Any]], Any]) -> None:
    @server.command(name)
    @server.thread()
    def run(ls: FuncforgeServer, *args: Any) -> Any:
        arg = args[0] if args and isinstance(args[0], dict) else {}
        if args and isinstance(args[0], list):  # some clients wrap arguments in a list
            arg = args[0][0] if args[0] and isinstance(args[0][0], dict) else {}
        try:
            return handler(ls, arg)
        except UserError as exc:
            ls.show(f"funcforge: {exc}", types.MessageType.Error)
            return {"error": str(exc)}


for _name in COMMANDS:
    _command(_name, getattr(commands, _name.split(".", 1)[1]))


def serve() -> None:
    """Run the server over stdio until the client goes away."""
    server.start_io()
