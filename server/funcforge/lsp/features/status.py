"""The `funcforge/status` notification and the server's state."""

from __future__ import annotations

from typing import Any

from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change, ServerState
from funcforge.sandbox_os import describe_mode, resolve_mode

STATUS = "funcforge/status"


class StatusFeature(Feature):
    """Owns the server state (indexing, idle, optimizing) and sends it to the client."""

    state: ServerState = ServerState.INDEXING
    message: str | None = None

    def set(self, state: ServerState, message: str | None = None) -> None:
        self.state, self.message = state, message
        self.send()

    def payload(self) -> dict[str, Any]:
        """The `funcforge/status` payload (also the `funcforge.status` command's result)."""
        session = self.ls.require_session()
        opt = session.optimizer_state()
        state = self.state
        if state is ServerState.IDLE and session.converged():
            state = ServerState.CONVERGED
        return {
            "state": state.value,
            "message": self.message,
            "bestScore": opt.best_score,
            "bestN": opt.best_n or None,
            "step": opt.step,
            "proposals": len(session.pending_proposals()),
            "executionAllowed": session.settings.allow_execution,
            # "bwrap", or "process (weaker: no OS sandbox)" when the user opted in.
            "sandbox": describe_mode(resolve_mode(session.config.sandbox)),
        }

    def send(self) -> None:
        if self.ls.session is None:
            return
        self.ls.post(self.ls.protocol.notify, STATUS, self.payload())

    def on_change(self, change: Change) -> None:
        self.send()
