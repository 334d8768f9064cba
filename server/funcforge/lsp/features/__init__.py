"""One object per LSP feature, each owning its state (esbonio's shape).

The server builds the features, calls `register` once so each feature hooks
its own LSP methods, and fans events out: `initialize` (the client's
parameters), `on_change` (a `Change`: something was re-read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from funcforge.lsp.model import Change

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer


class Feature:
    """Base of the features: a reference to the server and no-op hooks."""

    def __init__(self, ls: FuncforgeServer) -> None:
        self.ls = ls

    def register(self) -> None:
        """Hook this feature's LSP methods on the server (called once, at import)."""

    def initialize(self, params: types.InitializeParams) -> None:
        """React to `initialize` (the session and client capabilities are set)."""

    def on_change(self, change: Change) -> None:
        """React to re-read files or buffers (worker thread)."""
