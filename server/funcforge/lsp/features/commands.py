"""workspace/executeCommand: registers the handlers of `lsp/commands.py` and owns
the optimizer's one-at-a-time lock and its cancel flag."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from funcforge.errors import UserError
from funcforge.lsp import commands
from funcforge.lsp.features import Feature

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer

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


class CommandsFeature(Feature):
    """The funcforge commands; each runs in a worker thread."""

    def __init__(self, ls: FuncforgeServer) -> None:
        super().__init__(ls)
        self.optimize_lock = threading.Lock()
        self.cancel_event = threading.Event()

    def register(self) -> None:
        for name in COMMANDS:
            self._register(name, getattr(commands, name.split(".", 1)[1]))

    def _register(
        self, name: str, handler: Callable[[FuncforgeServer, dict[str, Any]], Any]
    ) -> None:
        ls = self.ls

        def run(*args: Any) -> Any:
            arg = args[0] if args and isinstance(args[0], dict) else {}
            if args and isinstance(args[0], list):  # some clients wrap arguments in a list
                arg = args[0][0] if args[0] and isinstance(args[0][0], dict) else {}
            try:
                return handler(ls, arg)
            except UserError as exc:
                ls.show(f"funcforge: {exc}", types.MessageType.Error)
                return {"error": str(exc)}

        ls.command(name)(ls.thread()(run))
