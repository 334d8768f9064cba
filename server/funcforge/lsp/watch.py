"""Watching files: what a changed path is, and a poller for what the client does not watch.

Trace files are always polled, so an agent appending traces shows up within a
poll interval even in clients without file watching. Tool files, proposals
and the optimizer state are polled too when the client cannot watch files for
us. Polling stats the files and folders found before (`funcforge.paths.FileSet`)
and searches again only when a folder changed or at a slow beat: no globbing
every 50 ms.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from funcforge import paths
from funcforge.lsp.model import Change, PathKind, ServerState

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer
    from funcforge.lsp.session import Session


def classify(session: Session, path: Path) -> PathKind | None:
    """What a changed path is (tool, trace, proposal, state, config), or None."""
    rel = session.rel(path)
    if rel is None:
        return None
    state_dir = session.config.state_dir.rstrip("/")
    if rel.startswith(f"{state_dir}/proposals/"):
        return PathKind.PROPOSAL
    if rel.startswith(f"{state_dir}/"):
        return PathKind.STATE
    if rel in ("pyproject.toml", "funcforge.toml"):
        return PathKind.CONFIG
    if paths.matches(session.config.traces, rel):
        return PathKind.TRACE
    if paths.matches(session.config.tools, rel) or rel in session.toolset.files:
        return PathKind.TOOL
    return None


class Watched:
    """The file sets one configuration asks to poll (built afresh when the globs change)."""

    def __init__(self, session: Session, poll_tools: bool) -> None:
        config = session.config
        state = config.state_dir.strip("/")
        self.key = (tuple(config.traces), tuple(config.tools), state, poll_tools)
        root = session.root
        self.traces = paths.FileSet(root, config.traces, exclude=[state])
        self.state = paths.FileSet(root, [f"{state}/proposals/*.json", f"{state}/state.json"])
        self.tools = paths.FileSet(root, config.tools, exclude=[state]) if poll_tools else None


class Poller(threading.Thread):
    """Polls traces always (every `interval`), and tools/proposals/state when the client
    cannot watch (every `slow` seconds)."""

    def __init__(
        self, ls: FuncforgeServer, poll_tools: bool, interval: float = 0.05, slow: float = 0.25
    ) -> None:
        super().__init__(name="funcforge-poller", daemon=True)
        self.ls, self.poll_tools, self.interval, self.slow = ls, poll_tools, interval, slow
        self.stop_event = threading.Event()
        self._watched: Watched | None = None
        self._lock = threading.Lock()

    def rebase(self) -> None:
        """Take what is on disk now as the baseline (before an index reads it), so
        anything created after is seen as a change."""
        session = self.ls.session
        if session is None:
            return
        with self._lock:
            self._watched = Watched(session, self.poll_tools)

    def _current(self, session: Session) -> Watched:
        with self._lock:
            watched = self._watched
            config = session.config
            key = (
                tuple(config.traces),
                tuple(config.tools),
                config.state_dir.strip("/"),
                self.poll_tools,
            )
            if watched is None or watched.key != key:
                watched = self._watched = Watched(session, self.poll_tools)
            return watched

    def run(self) -> None:
        every = max(1, round(self.slow / self.interval))
        rounds = 0
        while not self.stop_event.wait(self.interval):
            session = self.ls.session
            indexing = self.ls.status.state is ServerState.INDEXING
            if session is None or session.store is None or indexing:
                continue
            rounds += 1
            try:
                self.poll_once(session, slow=rounds % every == 0)
            except Exception:  # a file vanished mid-scan: try again next round
                continue

    def poll_once(self, session: Session, slow: bool = True) -> None:
        """One round: re-read what changed and tell the features."""
        watched = self._current(session)
        traces_changed = bool(watched.traces.changed()) and bool(session.refresh_traces())
        others_changed = tools_changed = False
        if slow:
            others_changed = bool(watched.state.changed())
            tools_changed = watched.tools is not None and bool(watched.tools.changed())
        if others_changed or tools_changed:
            session.proposals_changed()
            self.ls.refresh(Change(tools=True, proposals=True))
        elif traces_changed:
            changed = session.changed_tools
            names = frozenset(changed) if changed is not None else None
            self.ls.fan_out(Change(traces=True, tool_names=names))
