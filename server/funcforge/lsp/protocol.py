"""The JSON-RPC protocol: UTF-16 positions, one writer at a time, faults answered.

Over pygls' `LanguageServerProtocol`:

- writes are serialised by a lock and never report their own failure back
  through a write (pygls' error report re-entered the lock: a hang on exit);
  a closed or broken stdout ends writing quietly;
- every request gets an answer: a message that does not fit its method's
  params is answered with InvalidParams, a `UserError` with RequestFailed and
  its text, anything else with InternalError naming the fault (the traceback
  goes to the server's log, never to the client);
- `$/cancelRequest` of a running command sets that command's cancel flag;
- `shutdown` cancels running work and waits for it within a bound; `exit`
  stops the server whatever runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, cast

from cattrs import transform_error
from cattrs.v import format_exception
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)
from pygls.feature_manager import is_thread_function
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from funcforge.errors import UserError

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer

log = logging.getLogger("funcforge.lsp")

INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PARSE_ERROR = -32700
REQUEST_CANCELLED = -32800
REQUEST_FAILED = -32803
SERVER_NOT_INITIALIZED = -32002
SHUTDOWN_WAIT = 5.0  # seconds `shutdown` waits for cancelled work to end


def error_of(exc: BaseException) -> types.ResponseError:
    """The response error for an exception raised by a handler (no traceback)."""
    if isinstance(exc, JsonRpcException):
        return exc.to_response_error()
    if isinstance(exc, UserError):
        return types.ResponseError(code=REQUEST_FAILED, message=str(exc))
    return types.ResponseError(
        code=INTERNAL_ERROR,
        message=f"funcforge internal error ({type(exc).__name__}: {exc}); "
        "the server's log (stderr) has the details",
    )


class Protocol(LanguageServerProtocol):
    """Pins the position encoding to UTF-16; writes, answers and cancels as above."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self._write_lock = threading.Lock()
        self.closed = False  # stdout is gone: nothing more is written
        self.initialize_seen = False  # requests before it get ServerNotInitialized

    @property
    def ls(self) -> FuncforgeServer:
        return cast("FuncforgeServer", self._server)

    # -- writing -----------------------------------------------------------------

    def _send_data(self, data: Any) -> None:
        if not data or self.closed or self.writer is None:
            return
        try:
            body = json.dumps(data, default=self._serialize_message).encode("utf-8")
        except Exception:  # a bug of ours: log it, never write half a message
            log.exception("cannot serialise an outgoing message")
            return
        if self._include_headers:
            head = (
                f"Content-Length: {len(body)}\r\n"
                f"Content-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
            )
            body = head.encode("ascii") + body
        with self._write_lock:
            if self.closed:
                return
            try:
                self.writer.write(body)  # type: ignore[union-attr]
            except (OSError, ValueError) as exc:  # closed or broken: the client is gone
                self.closed = True
                log.info("the client's stream is closed (%s); not writing any more", exc)

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        """A JSON-RPC error response (`msg_id` None for a message without an id)."""
        self._send_data(
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )

    # -- answering ---------------------------------------------------------------

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self._send_response(
                msg_id, error=JsonRpcRequestCancelled("request cancelled").to_response_error()
            )
            return
        exc = future.exception()
        if exc is None:
            try:
                self._send_response(msg_id, result=future.result())
            except Exception as err:  # a result that cannot be serialised
                log.exception("cannot send the result of %s", msg_id)
                self._send_response(msg_id, error=error_of(err))
            return
        if not isinstance(exc, (UserError, JsonRpcException)):
            log.error("request %s failed", msg_id, exc_info=exc)
        self._send_response(msg_id, error=error_of(exc))

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: Any = None,
        kwargs: Any = None,
    ) -> None:
        """As pygls, but a threaded handler runs in its request's context (it knows its id)."""
        if is_thread_function(handler):
            ctx = contextvars.copy_context()
            future = self._server.thread_pool.submit(
                ctx.run, handler, *(args or ()), **(kwargs or {})
            )
            self._request_futures[msg_id] = future
            future.add_done_callback(callback)
            return
        super()._execute_handler(msg_id, handler, callback, args, kwargs)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        if self.ls.commands.cancel(msg_id):
            return  # a running command: it stops at its flag and answers RequestCancelled
        future = self._request_futures.get(msg_id)
        if future is not None and future.cancel():  # not started yet
            self._request_futures.pop(msg_id, None)

    # -- reading (frames come from `stdio.FrameReader`) ---------------------------

    def dispatch(self, value: Any, fault: str | None = None) -> None:
        """Handle one decoded message; answer what cannot be handled (event loop)."""
        msg_id = value.get("id") if isinstance(value, dict) else None
        method = value.get("method") if isinstance(value, dict) else None
        is_request = isinstance(value, dict) and "id" in value and isinstance(method, str)
        if fault is not None:
            log.warning("bad frame from the client: %s", fault)
            if is_request or value is None:
                self.send_error(msg_id, INVALID_REQUEST if value else PARSE_ERROR, fault)
            return
        if not isinstance(value, dict) or value.get("jsonrpc") != "2.0":
            self.send_error(msg_id, INVALID_REQUEST, "not a JSON-RPC 2.0 message object")
            return
        if "method" not in value and "id" in value:  # a response to one of our requests
            pass
        elif not isinstance(method, str):
            self.send_error(msg_id, INVALID_REQUEST, "`method` must be a string")
            return
        if is_request and self._shutdown and method != types.EXIT:
            self.send_error(msg_id, INVALID_REQUEST, "the server is shutting down")
            return
        if method == types.INITIALIZE and self.initialize_seen:
            if is_request:
                self.send_error(msg_id, INVALID_REQUEST, "initialize may be sent only once")
            return
        if not self.initialize_seen and method not in (types.INITIALIZE, types.EXIT):
            if is_request:  # LSP: -32002 before initialize; notifications are dropped
                self.send_error(msg_id, SERVER_NOT_INITIALIZED, f"{method}: not initialized yet")
            return
        try:
            message = self.structure_message(value)
        except JsonRpcInvalidParams as exc:
            detail = _cause(exc)
            if is_request:
                self.send_error(msg_id, INVALID_PARAMS, f"invalid params for {method}: {detail}")
            else:
                log.warning("ignored %s with invalid params: %s", method, detail)
            return
        except Exception as exc:
            log.exception("cannot read a message")
            if is_request:
                self.send_error(msg_id, INTERNAL_ERROR, f"cannot read the message: {exc}")
            return
        try:
            self.handle_message(message)
        except Exception as exc:  # pygls answers most faults itself; this is the rest
            log.exception("cannot handle %s", method)
            if is_request:
                self.send_error(msg_id, INTERNAL_ERROR, f"cannot handle {method}: {exc}")

    # -- lifecycle ---------------------------------------------------------------

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):  # type: ignore[override]
        self.initialize_seen = True
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = None
        return (yield from super().lsp_initialize(params))

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any):  # type: ignore[override]
        """Cancel running work and wait for it (within `SHUTDOWN_WAIT`), then refuse
        new requests."""
        current = self.msg_id
        self.ls.begin_shutdown()
        pending = []
        for msg_id, future in list(self._request_futures.items()):
            if msg_id == current or future.done():
                continue
            if not future.cancel():  # running: wait for it (its cancel flag is set)
                pending.append(future)
        if pending:
            yield self._wait_for, (pending, SHUTDOWN_WAIT), None
        self._shutdown = True
        return None

    async def _wait_for(self, futures: list[Any], bound: float) -> None:
        waitables = [asyncio.wrap_future(f) if isinstance(f, Future) else f for f in futures]
        await asyncio.wait(waitables, timeout=bound)

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any):  # type: ignore[override]
        """Stop reading and end the process (`serve` waits briefly for workers)."""
        self.ls.stop(0 if self._shutdown else 1)
        yield from ()
        return None


def _cause(exc: BaseException) -> str:
    """What cattrs found wrong and where, as JSON paths (`position.line: ... @
    $.params.position`), without a traceback."""
    cause = exc.__cause__ or exc
    try:
        found = transform_error(cause, format_exception=_format_fault)
    except Exception:  # not a cattrs error: its first line
        found = [str(cause).splitlines()[0] if str(cause) else type(cause).__name__]
    return "; ".join(_camel_path(x) for x in found[:3])[:300]


def _format_fault(exc: BaseException, type_: Any) -> str:
    """cattrs' wording, plus a validator's own message (a range, a missing field)."""
    base = format_exception(exc, type_)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, (KeyError, ValueError)) and detail:
        return f"{base}: {detail.strip(chr(39))}" if detail not in base else base
    return base


def _camel_path(text: str) -> str:
    """`$.params.text_document.uri` as the client spelled it: `$.params.textDocument.uri`."""
    head, sep, path = text.rpartition(" @ ")
    if not sep:
        return text
    return head + sep + re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)
