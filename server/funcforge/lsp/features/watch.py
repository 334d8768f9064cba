"""Watching and ingesting: configuration, indexing, file watchers and the poller."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

from lsprotocol import types

from funcforge.errors import UserError
from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change, PathKind, ServerState
from funcforge.lsp.positions import uri_to_path
from funcforge.lsp.session import Settings
from funcforge.lsp.watch import Poller, classify

log = logging.getLogger("funcforge.lsp")

WATCH_GLOBS = ["**/*.py", "**/*.jsonl", "**/*.json", "**/pyproject.toml", "**/funcforge.toml"]


class WatchFeature(Feature):
    """Owns the poller; reads configuration, indexes, and turns file events into `Change`s."""

    def __init__(self, ls) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ls)
        self.poller: Poller | None = None

    def register(self) -> None:
        ls = self.ls
        ls.handle(types.INITIALIZED, self.initialized)
        ls.handle(types.WORKSPACE_DID_CHANGE_WATCHED_FILES, self.did_change_watched)
        ls.handle(types.WORKSPACE_DID_CHANGE_CONFIGURATION, self.did_change_configuration)

    def initialized(self, params: types.InitializedParams) -> None:
        session = self.ls.require_session()
        self.poller = Poller(self.ls, poll_tools=not self.ls.caps.dynamic_watch)

        def start() -> None:
            result = self._pull_configuration()
            if result is not None:
                merged = Settings.from_client(result)
                if not result.get("allowExecution") and "allowExecution" not in result:
                    merged.allow_execution = session.settings.allow_execution
                session.settings = merged
            self.index()

        threading.Thread(target=start, name="funcforge-index", daemon=True).start()
        self._register_watchers()

    def _pull_configuration(self) -> dict[str, Any] | None:
        """`workspace/configuration` for section funcforge, from a worker thread."""
        ls = self.ls
        if not ls.caps.configuration or ls.loop is None:
            return None
        params = types.ConfigurationParams(items=[types.ConfigurationItem(section="funcforge")])
        try:
            future = asyncio.run_coroutine_threadsafe(
                ls.workspace_configuration_async(params), ls.loop
            )
            result = future.result(timeout=10)
        except Exception as exc:  # a client that refuses or times out
            log.info("workspace/configuration failed: %s", exc)
            return None
        return result[0] if result and isinstance(result[0], dict) else None

    def index(self) -> None:
        """(Re)load config, tools and traces, then publish (worker thread)."""
        ls = self.ls
        session = ls.require_session()
        ls.status.set(ServerState.INDEXING)
        for message in session.load_config():
            ls.show(f"funcforge: {message}", types.MessageType.Warning)
        if self.poller is not None:
            self.poller.rebase()  # what is created from now on is a change
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
        notices = list(store.notices) if store is not None else []
        notices += session.parse_cache.notices  # e.g. a corrupt parse cache ignored
        session.parse_cache.notices.clear()
        for notice in notices:
            ls.log_line(f"funcforge: {notice}")  # e.g. a corrupt trace index was rebuilt
        if store is not None and store.malformed:
            first = store.malformed[0]
            ls.log_line(
                f"funcforge: {len(store.malformed)} malformed trace lines skipped "
                f"(first: {first.file}:{first.line}: {first.reason})"
            )
        converged = session.converged()
        ls.status.state = ServerState.CONVERGED if converged else ServerState.IDLE
        # The index is long-lived: keep the cyclic GC from re-scanning it (pauses of
        # hundreds of ms at 100k traces otherwise).
        gc.freeze()
        ls.fan_out(Change(tools=True, traces=True, proposals=True))

    def _register_watchers(self) -> None:
        """Ask the client to watch our files, or watch them ourselves."""
        ls = self.ls
        if ls.caps.dynamic_watch:
            params = types.RegistrationParams(
                registrations=[
                    types.Registration(
                        id="funcforge-watch",
                        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=types.DidChangeWatchedFilesRegistrationOptions(
                            watchers=[types.FileSystemWatcher(glob_pattern=g) for g in WATCH_GLOBS]
                        ),
                    )
                ]
            )
            ls.client_register_capability(params)
        if self.poller is not None:
            self.poller.start()

    def did_change_watched(self, params: types.DidChangeWatchedFilesParams) -> None:
        ls, session = self.ls, self.ls.session
        if session is None:
            return
        kinds = {classify(session, uri_to_path(c.uri)) for c in params.changes if _is_file(c.uri)}
        if PathKind.CONFIG in kinds:
            ls.debounce("index", 0.2, self.index)
        elif kinds - {None}:
            if PathKind.PROPOSAL in kinds:
                session.proposals_changed()
            change = Change(
                tools=PathKind.TOOL in kinds,
                traces=PathKind.TRACE in kinds,
                proposals=PathKind.PROPOSAL in kinds,
            )
            ls.debounce("refresh", 0.1, lambda: ls.refresh(change))

    def did_change_configuration(self, params: types.DidChangeConfigurationParams) -> None:
        ls, session = self.ls, self.ls.session
        if session is None:
            return
        settings = params.settings
        if isinstance(settings, dict) and settings:
            session.settings = Settings.from_client(settings)
            session.load_config()  # cheap; commands see the new values at once (index() reports)
            ls.debounce("index", 0.2, self.index)
            return

        def pull() -> None:
            result = self._pull_configuration()
            if result is not None:
                session.settings = Settings.from_client(result)
            self.index()

        threading.Thread(target=pull, daemon=True).start()


def _is_file(uri: str) -> bool:
    return uri.startswith("file:")
