"""workspace/executeCommand: registers the handlers of `lsp/commands.py` and owns
the optimizer's one-at-a-time lock and its cancel flag.

One message per user action: a command that has something to tell the user
puts it in its result (`message`, `messageType`); here it becomes one
`window/showMessage`, unless the client declared that it shows results itself
(`experimental.funcforge.showsResults`: the VS Code extension, which adds
buttons to it). Failures are the error response alone, never a message too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

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
        self._running: dict[Any, CancelFlag] = {}  # request id -> its cancel flag
        self._guard = threading.Lock()
        self._local = threading.local()

    def flag(self) -> CancelFlag:
        """The running command's cancel flag (set by `$/cancelRequest`, shutdown, exit)."""
        flag = getattr(self._local, "flag", None)
        return flag if flag is not None else CancelFlag()

    def cancel(self, msg_id: Any) -> bool:
        """`$/cancelRequest`: ask the command answering `msg_id` to stop (True when one is
        running)."""
        with self._guard:
            flag = self._running.get(msg_id)
        if flag is None:
            return False
        flag.by_client = True
        flag.set()
        return True

    def cancel_all(self) -> None:
        with self._guard:
            flags = list(self._running.values())
        for flag in flags:
            flag.set()

    def register(self) -> None:
        for name in COMMANDS:
            self._register(name, getattr(commands, name.split(".", 1)[1]))

    def _register(
        self, name: str, handler: Callable[[FuncforgeServer, dict[str, Any]], Any]
    ) -> None:
        ls = self.ls

        def run(*args: Any) -> Any:
            arg = _argument(name, args)
            msg_id = ls.protocol.msg_id
            flag = CancelFlag()
            with self._guard:
                self._running[msg_id] = flag
            self._local.flag = flag
            try:
                if ls.stopping:
                    raise JsonRpcRequestCancelled("the server is shutting down")
                result = handler(ls, arg)
            finally:
                self._local.flag = None
                with self._guard:
                    self._running.pop(msg_id, None)
            self._tell(result)
            if flag.by_client:
                raise JsonRpcRequestCancelled(f"{name} cancelled")
            return result

        ls.command(name)(ls.thread()(run))

    def _tell(self, result: Any) -> None:
        """Send the result's `message` as the action's one `window/showMessage` (before the
        command's answer), unless the client shows results itself."""
        message = result.get("message") if isinstance(result, dict) else None
        if not isinstance(message, str) or self.ls.caps.shows_results or self.ls.stopping:
            return
        kind = result.get("messageType", types.MessageType.Info)
        self.ls.show(message, types.MessageType(kind), before_answer=True)


class CancelFlag(threading.Event):
    """A command's cancel flag; `by_client` when `$/cancelRequest` set it (the answer is
    then a RequestCancelled error)."""

    by_client = False


def _argument(name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The one argument object of a command (`[]`, `[{}]` or `[[{}]]` from some clients)."""
    if not args:
        return {}
    arg = args[0]
    if isinstance(arg, list) and len(args) == 1:  # some clients wrap arguments in a list
        arg = arg[0] if arg else {}
    if arg is None:
        return {}
    if not isinstance(arg, dict):
        raise JsonRpcInvalidParams(
            f'{name} takes one argument object, like [{{"id": "..."}}]; got {type(arg).__name__}'
        )
    return arg
