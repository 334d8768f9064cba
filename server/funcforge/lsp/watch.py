"""Watching files: what a changed path is, and a poller for what the client does not watch.

Trace files are always polled (cheap: the store compares sizes and reads only
appended bytes), so an agent appending traces shows up within a poll interval
even in clients without file watching. Tool files, proposals and the optimizer
state are polled too when the client cannot watch files for us.
"""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from funcforge.lsp.model import Change, ServerState

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer
    from funcforge.lsp.session import Session


def _match(rel: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.replace("**/", "")) for g in globs)


def classify(session: Session, path: Path) -> str | None:
    """'tool', 'trace', 'proposal', 'state', 'config' or None for a changed path."""
    rel = session.rel(path)
    if rel is None:
        return None
    state_dir = session.config.state_dir.rstrip("/")
    if rel.startswith(f"{state_dir}/proposals/"):
        return "proposal"
    if rel.startswith(f"{state_dir}/"):
        return "state"
    if rel in ("pyproject.toml", "funcforge.toml"):
        return "config"
    if _match(rel, session.config.traces):
        return "trace"
    if _match(rel, session.config.tools) or rel in session.toolset.files:
        return "tool"
    return None


class Poller(threading.Thread):
    """Polls traces always, and tools/proposals/state when the client cannot watch."""

    def __init__(self, ls: FuncforgeServer, poll_tools: bool, interval: float = 0.05) -> None:
        super().__init__(name="funcforge-poller", daemon=True)
        self.ls, self.poll_tools, self.interval = ls, poll_tools, interval
        self.stop_event = threading.Event()
        self._seen: dict[str, tuple[float, int]] | None = None

    def _snapshot(self, session: Session) -> dict[str, tuple[float, int]]:
        out: dict[str, tuple[float, int]] = {}
        paths: list[Path] = []
        proposals = session.config.proposals_path
        if proposals.is_dir():
            paths.extend(proposals.glob("*.json"))
        paths.append(session.config.state_path / "state.json")
        if self.poll_tools:
            for pattern in session.config.tools:
                paths.extend(session.root.glob(pattern))
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            out[str(p)] = (st.st_mtime, st.st_size)
        return out

    def run(self) -> None:
        rounds = 0
        while not self.stop_event.wait(self.interval):
            session = self.ls.session
            indexing = self.ls.status.state is ServerState.INDEXING
            if session is None or session.store is None or indexing:
                continue
            rounds += 1
            others_changed = False
            try:
                traces_changed = bool(session.refresh_traces())
                if rounds % 10 == 1:  # tools, proposals, state: a slower beat (globs, stats)
                    snap = self._snapshot(session)
                    others_changed = self._seen is not None and snap != self._seen
                    self._seen = snap
            except Exception:  # a file vanished mid-scan: try again next round
                continue
            if others_changed:
                session.proposals_changed()
                self.ls.refresh(Change(tools=True, proposals=True))
            elif traces_changed:
                changed = session.changed_tools
                names = frozenset(changed) if changed is not None else None
                self.ls.fan_out(Change(traces=True, tool_names=names))
