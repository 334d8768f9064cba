"""Reading LSP frames from stdin on a thread of their own, surviving bad frames.

pygls' reader reads stdin through the same thread pool the commands run on
(a busy pool leaves the server deaf) and gives up on the stream's framing
after one bad `Content-Length` (deaf for good; `2^40` raises MemoryError).
`FrameReader` never allocates what a header claims: it buffers what really
arrived, and after a bad header or body it reports the fault and resyncs on
the next `Content-Length:` header. A body shorter or longer than its header
says is still taken when it is one complete JSON value.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import select
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from pygls.io_ import StdoutWriter

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer

log = logging.getLogger("funcforge.lsp")

MAX_FRAME = 256 * 1024 * 1024  # bytes; a bigger Content-Length is refused (and skipped)
MAX_HEADER = 64 * 1024  # bytes of header without a blank line: not a header
STALL = 0.5  # seconds without bytes after which a complete JSON body is taken as is
EXIT_WAIT = 2.0  # seconds the process waits for running work at exit

_MARK = re.compile(rb"content-length:", re.IGNORECASE)
_MARK_LEN = len(b"content-length:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Frame:
    """One message (`value`, decoded JSON) or one fault (`fault`: what was wrong; `value`
    is then the message behind the bad header when it could be read, to answer it)."""

    value: Any = None
    fault: str | None = None


class FrameReader:
    """Frames from a binary stream; iterate until the stream ends."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None

    # -- bytes -------------------------------------------------------------------

    def _fill(self, timeout: float | None = None) -> bool:
        """Read what is available (blocking, or up to `timeout`); False at EOF or timeout."""
        if self.eof:
            return False
        if self.fd is not None:
            if timeout is not None:
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if not ready:
                    return False
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                chunk = b""
        else:
            read1 = getattr(self.stream, "read1", None)
            chunk = read1(1 << 16) if read1 else self.stream.read(1 << 16)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _resync(self, start: int) -> None:
        """Drop bytes up to the next `Content-Length:` at or after `start`."""
        found = _MARK.search(self.buf, start)
        if found is not None:
            del self.buf[: found.start()]
        else:  # keep a tail that may be the start of a header
            del self.buf[: max(start, len(self.buf) - _MARK_LEN)]

    # -- frames ------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self._next()
            if frame is None:
                return
            yield frame

    def _next(self) -> Frame | None:
        while True:
            found = _HEADER_END.search(self.buf)
            if found is None:
                if len(self.buf) > MAX_HEADER:
                    self._resync(1)
                    return Frame(fault="a header without an end (no blank line)")
                if not self._fill():
                    return None
                continue
            header = bytes(self.buf[: found.start()])
            body_at = found.end()
            length, fault = _content_length(header)
            if fault is not None:
                # Answer the message behind a bad header when it is there whole (the
                # client then gets an error for its request instead of silence).
                nxt = _MARK.search(self.buf, body_at)
                value = self._peek_json(body_at, nxt.start() if nxt else len(self.buf))
                self._resync(1)
                return Frame(value=value, fault=fault)
            assert length is not None
            if length > MAX_FRAME:
                nxt = _MARK.search(self.buf, body_at)
                value = self._peek_json(body_at, nxt.start() if nxt else len(self.buf))
                self._resync(body_at)
                limit = f"Content-Length {length} is over the {MAX_FRAME} byte limit"
                return Frame(value=value, fault=limit)
            return self._body(body_at, length)

    def _body(self, at: int, length: int) -> Frame | None:
        """The body after the header: `length` bytes, or one JSON value if that is wrong."""
        scanned = at
        while len(self.buf) < at + length:
            got = self._fill(timeout=STALL if self.fd is not None else None)
            if got:
                nxt = _MARK.search(self.buf, max(at, scanned - _MARK_LEN))
                scanned = len(self.buf)
                if nxt is None:
                    continue
                # The next frame began before this one's length ran out: too long a length.
                taken = self._take_json(at, nxt.start())
                if taken is not None:
                    return taken
                continue
            if self.eof:
                taken = self._take_json(at, len(self.buf))
                if taken is None:
                    del self.buf[:]
                return taken
            # A stall: the client waits for an answer, so the body may be complete already.
            taken = self._take_json(at, len(self.buf))
            if taken is not None:
                return taken
        raw = bytes(self.buf[at : at + length])
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            # Too short a length: the value may end later in what arrived.
            taken = self._take_json(at, len(self.buf), prefix_ok=True)
            if taken is not None:
                return taken
            self._resync(at + length)
            return Frame(fault=f"the body is not JSON ({length} bytes)")
        del self.buf[: at + length]
        return Frame(value=value)

    def _peek_json(self, start: int, end: int) -> Any:
        try:
            return json.loads(bytes(self.buf[start:end]))
        except (ValueError, RecursionError):
            return None

    def _take_json(self, start: int, end: int, prefix_ok: bool = False) -> Frame | None:
        """The JSON value in buf[start:end] (all of it, or its prefix with `prefix_ok`)."""
        try:
            text = bytes(self.buf[start:end]).decode("utf-8")
            value, stop = _DECODER.raw_decode(text.lstrip())
        except (ValueError, RecursionError):
            return None
        consumed = len(text) - len(text.lstrip()) + stop
        if not prefix_ok and text[consumed:].strip():
            return None
        used = len(text[:consumed].encode("utf-8"))
        del self.buf[: start + used]
        # What follows belongs to the next frame: skip to its header.
        self._resync(0)
        return Frame(value=value)


def _content_length(header: bytes) -> tuple[int | None, str | None]:
    """The Content-Length of a header block, or what is wrong with it."""
    length: int | None = None
    for line in header.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            return None, f"a header line without a colon: {line[:60]!r}"
        if name.strip().lower() != b"content-length":
            continue
        text = value.strip()
        if not text.isdigit():
            return None, f"Content-Length is not a non-negative integer: {text[:40]!r}"
        length = int(text)
    if length is None:
        return None, "a header without Content-Length"
    if length == 0:
        return None, "Content-Length 0 (an empty body)"
    return length, None


def run_stdio(ls: FuncforgeServer, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Serve over stdio: frames are read on a thread of their own and handled on the
    event loop; returns the exit code once `exit` came or stdin ended.

    Running work is cancelled and waited for at most `EXIT_WAIT` seconds.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ls.loop = loop
    ls.protocol.set_writer(StdoutWriter(stdout))
    done: asyncio.Future[int] = loop.create_future()

    def finish(code: int) -> None:
        if not done.done():
            done.set_result(code)

    def stop_soon(code: int) -> None:
        loop.call_soon_threadsafe(finish, code)

    ls.on_stop = stop_soon

    def read() -> None:
        try:
            for frame in FrameReader(stdin):
                if ls.stopping and ls.exit_code is not None:
                    break
                loop.call_soon_threadsafe(ls.proto.dispatch, frame.value, frame.fault)
        except Exception:
            log.exception("reading from the client failed")
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(finish, 0)  # the client went away

    threading.Thread(target=read, name="funcforge-reader", daemon=True).start()
    try:
        code = loop.run_until_complete(done)
    except KeyboardInterrupt:
        code = 1
    ls.begin_shutdown()
    ls.proto.closed = True
    running = [f for f in list(ls.proto._request_futures.values()) if isinstance(f, Future)]
    if running:
        wait_futures(running, timeout=EXIT_WAIT)
    return code
