"""The JSON-RPC protocol: UTF-16 positions and one writer at a time."""

from __future__ import annotations

import threading
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method


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
