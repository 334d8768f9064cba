"""An OTLP/HTTP trace receiver: agents send spans, native traces are appended to a file.

`POST /v1/traces` takes an `ExportTraceServiceRequest` as protobuf
(`application/x-protobuf`) or as OTLP JSON (`application/json`), optionally
gzip- or deflate-compressed, the way OpenTelemetry's OTLP/HTTP exporters
send it. Spans are read by the OTLP importer's own reader and mapped by the
same GenAI and OpenInference mappings (`formats/otlp.py`), so a live trace
equals an imported one. Spans wait per OTLP trace until its root span arrives
(or `idle_seconds` pass without a new span), then the trace becomes one native
JSON line appended to `out` — a file the store's globs match, so the language
server's poller refreshes diagnostics from it.

A request is checked whole before anything is kept: undecodable bodies,
wrong shapes and malformed spans get 400 with the reason; a body over
`max_bytes` gets 413 unread; other paths 404, other methods 405, other
content types 415. Bodies come with a Content-Length or chunked
(Transfer-Encoding: chunked, bounded by `max_bytes` as they are read). Nothing malformed reaches the trace file. Binds to
127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from funcforge.traces.formats import otlp
from funcforge.traces.model import MalformedTrace, Trace

log = logging.getLogger("funcforge.receiver")

DEFAULT_PORT = 4318  # OTLP/HTTP's registered port
DEFAULT_FILE = "traces/otlp/received.jsonl"
MAX_BYTES = 16 * 1024 * 1024
IDLE_SECONDS = 2.0  # a trace whose root span never comes is written after this quiet time
DRAIN_BYTES = 64 * 1024 * 1024  # an over-limit body is read (and dropped) up to this much
MAX_PENDING = 10_000  # OTLP traces waiting for their root span; the oldest is written beyond
PROTOBUF = "application/x-protobuf"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
JSON = "application/json"


class BadRequest(Exception):
    """A request refused with an HTTP status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Pending:
    spans: list[otlp.Span] = field(default_factory=list)
    logs: list[otlp.LogEvent] = field(default_factory=list)
    last: float = 0.0
    done: bool = False


@dataclass
class ReceiverStats:
    requests: int = 0
    rejected: int = 0
    spans: int = 0
    traces: int = 0


def decode_body(body: bytes, content_type: str, encoding: str, max_bytes: int) -> Any:
    """An OTLP request body as OTLP JSON (a dict); `BadRequest` when it is not one."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            if encoding == "gzip":
                body = _bounded_gunzip(body, max_bytes)
            else:
                body = _bounded_inflate(body, max_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadRequest(400, f"body is not valid {encoding} data: {exc}") from exc
    elif encoding not in ("", "identity"):
        raise BadRequest(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == PROTOBUF:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(400, f"body is not an ExportTraceServiceRequest: {exc}") from exc
        return MessageToDict(request)
    if kind == JSON:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(400, f"body is not JSON: {exc}") from exc
    raise BadRequest(
        415, f"unsupported Content-Type {kind or '(none)'!r}: use {PROTOBUF} or {JSON}"
    )


def _bounded_gunzip(body: bytes, limit: int) -> bytes:
    return _bounded(zlib.decompressobj(16 + zlib.MAX_WBITS), body, limit)


def _bounded_inflate(body: bytes, limit: int) -> bytes:
    return _bounded(zlib.decompressobj(), body, limit)


def _bounded(d: Any, body: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes (a small body must not expand without bound)."""
    out = d.decompress(body, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise BadRequest(413, f"decompressed body is over the limit of {limit} bytes")
    if not d.eof:
        raise zlib.error("incomplete compressed data")
    return bytes(out)


class TraceReceiver:
    """Turns OTLP requests into native traces appended to `out` (thread-safe)."""

    def __init__(
        self,
        out: Path,
        rel: str | None = None,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_bytes: int = MAX_BYTES,
        on_append: Callable[[list[Trace]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.rel = rel or out.name
        self.idle_seconds = idle_seconds
        self.max_bytes = max_bytes
        self.on_append = on_append
        self.clock = clock
        self.stats = ReceiverStats()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def accept(self, body: Any) -> int:
        """Take one decoded request (OTLP JSON); returns the spans taken. `BadRequest` if bad."""
        if not isinstance(body, dict):
            raise BadRequest(
                400, f"expected an ExportTraceServiceRequest object, got {otlp.kind_of(body)}"
            )
        if "resourceSpans" not in body:
            if not body:
                return 0  # an empty export (protobuf's JSON mapping drops empty lists)
            raise BadRequest(400, "not an OTLP trace export: no 'resourceSpans'")
        reader = otlp.SpanReader(self.rel)
        try:
            reader.record({"resourceSpans": body["resourceSpans"]}, 1)
        except MalformedTrace as exc:
            raise BadRequest(400, str(exc)) from exc
        if reader.malformed:
            first = reader.malformed[0].reason
            more = len(reader.malformed) - 1
            raise BadRequest(400, first + (f" (and {more} more)" if more else ""))
        now = self.clock()
        ready: list[_Pending] = []
        with self._lock:
            for span in reader.spans:
                p = self._pending.get(span.trace_id)
                if p is None:
                    p = self._pending[span.trace_id] = _Pending()
                p.spans.append(span)
                p.last = now
                if span.parent_id is None:
                    p.done = True
            for trace_id in [t for t, p in self._pending.items() if p.done]:
                ready.append(self._pending.pop(trace_id))
            while len(self._pending) > MAX_PENDING:
                ready.append(self._pending.pop(next(iter(self._pending))))
            self.stats.spans += len(reader.spans)
        self._write(ready)
        return len(reader.spans)

    def flush_idle(self, everything: bool = False) -> int:
        """Write the traces whose spans stopped coming (all of them with `everything`)."""
        now = self.clock()
        with self._lock:
            idle = [
                t
                for t, p in self._pending.items()
                if everything or now - p.last >= self.idle_seconds
            ]
            ready = [self._pending.pop(t) for t in idle]
        return self._write(ready)

    def _write(self, ready: list[_Pending]) -> int:
        traces: list[Trace] = []
        for p in ready:
            for run in otlp.group_runs(p.spans, p.logs):
                try:
                    trace = otlp.build_run(run, self.rel)
                except MalformedTrace as exc:
                    log.warning("OTLP run %s skipped: %s", run.key, exc)
                    continue
                if trace is not None:
                    traces.append(trace)
        if not traces:
            return 0
        data = b"".join(orjson.dumps(t.to_native()) + b"\n" for t in traces)
        with self._write_lock:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            finally:
                os.close(fd)
            self.stats.traces += len(traces)
        if self.on_append is not None:
            self.on_append(traces)
        return len(traces)


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, exc: BadRequest) -> None:
        """The status with a google.rpc.Status-shaped JSON body (readable by people and SDKs)."""
        self.server.receiver.stats.rejected += 1
        log.info("OTLP request refused (%d): %s", exc.status, exc.reason)
        body = json.dumps({"code": 3, "message": exc.reason}).encode()
        self._reply(exc.status, body, JSON)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        receiver.stats.requests += 1
        ctype = self.headers.get("Content-Type", "")
        wants_json = ctype.split(";", 1)[0].strip().lower() == JSON
        try:
            if self.path.split("?", 1)[0] != "/v1/traces":
                self.close_connection = True
                raise BadRequest(404, f"no such endpoint {self.path!r}: send traces to /v1/traces")
            coding = self.headers.get("Transfer-Encoding", "").strip().lower()
            length_header = self.headers.get("Content-Length")
            if coding:  # it overrides any Content-Length (RFC 9112 6.3)
                if coding != "chunked":
                    self.close_connection = True
                    raise BadRequest(501, f"unsupported Transfer-Encoding {coding!r}: use chunked")
                body = self._read_chunked(receiver.max_bytes)
                length_header = None
            elif length_header is None:
                self.close_connection = True
                raise BadRequest(411, "Content-Length or chunked Transfer-Encoding is required")
            if length_header is not None:
                body = self._read_sized(length_header, receiver.max_bytes)
            decoded = decode_body(
                body, ctype, self.headers.get("Content-Encoding", ""), receiver.max_bytes
            )
            receiver.accept(decoded)
        except BadRequest as exc:
            self._refuse(exc)
            return
        except Exception as exc:  # a bug must answer, not hang the exporter
            log.exception("OTLP request failed")
            self._refuse(BadRequest(500, f"{type(exc).__name__}: {exc}"))
            return
        if wants_json:
            self._reply(200, b"{}", JSON)
        else:
            self._reply(200, b"", PROTOBUF)  # an empty ExportTraceServiceResponse

    def _read_sized(self, length_header: str, limit: int) -> bytes:
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise BadRequest(400, f"bad Content-Length {length_header!r}") from None
        if length < 0:
            self.close_connection = True
            raise BadRequest(400, f"bad Content-Length {length_header!r}")
        if length > limit:
            self._discard(length)  # not kept; read so the client sees the answer
            raise BadRequest(413, f"body of {length} bytes is over the limit of {limit} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise BadRequest(400, "body shorter than its Content-Length")
        return bytes(body)

    def _read_chunked(self, limit: int) -> bytes:
        """A chunked body (RFC 9112 7.1), refused past `limit` bytes without reading on."""
        parts: list[bytes] = []
        total = 0
        try:
            while True:
                line = self.rfile.readline(1024)
                size_text = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
                if not line.endswith(b"\n") or not size_text:
                    raise BadRequest(400, f"bad chunk size line {line[:40]!r}")
                if size_text.strip(_HEX_DIGITS):  # int() would also take a sign or "_"
                    raise BadRequest(400, f"bad chunk size {size_text[:40]!r}")
                size = int(size_text, 16)
                if size == 0:
                    for _ in range(100):  # trailer fields, up to the empty line
                        trailer = self.rfile.readline(8192)
                        if trailer in (b"\r\n", b"\n", b""):
                            return b"".join(parts)
                    raise BadRequest(400, "too many trailer fields")
                total += size
                if total > limit:
                    raise BadRequest(
                        413, f"chunked body over the limit of {limit} bytes; not read further"
                    )
                data = self.rfile.read(size)
                if len(data) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise BadRequest(400, "chunked body cut short or a chunk longer than its size")
                parts.append(data)
        except BadRequest:
            self.close_connection = True  # the rest of the body is not read
            raise

    def _discard(self, length: int) -> None:
        """Read and drop a refused body (up to DRAIN_BYTES; beyond, close the connection)."""
        self.close_connection = True
        left = min(length, DRAIN_BYTES)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)

    def do_GET(self) -> None:
        self._method_not_allowed()

    def do_PUT(self) -> None:
        self._method_not_allowed()

    def do_DELETE(self) -> None:
        self._method_not_allowed()

    def _method_not_allowed(self) -> None:
        self.close_connection = True
        body = json.dumps({"code": 3, "message": "use POST /v1/traces"}).encode()
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ReceiverServer(ThreadingHTTPServer):
    """The HTTP side: 127.0.0.1 only, one thread per connection, an idle-flush thread."""

    daemon_threads = True

    def __init__(
        self, receiver: TraceReceiver, port: int = DEFAULT_PORT, host: str = "127.0.0.1"
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the OTLP receiver listens on localhost only")
        super().__init__((host, port), _Handler)
        self.receiver = receiver
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> ReceiverServer:
        """Serve in background threads (for `funcforge serve` and tests)."""
        serve = threading.Thread(target=self.serve_forever, name="funcforge-otlp", daemon=True)
        flush = threading.Thread(target=self._flush_loop, name="funcforge-otlp-flush", daemon=True)
        self._workers = [serve, flush]
        for t in self._workers:
            t.start()
        return self

    def _flush_loop(self) -> None:
        step = max(0.05, min(1.0, self.receiver.idle_seconds / 4))
        while not self._stop.wait(step):
            try:
                self.receiver.flush_idle()
            except Exception:  # keep flushing whatever one trace did
                log.exception("OTLP idle flush failed")

    def stop(self) -> None:
        """Stop serving and write every trace still waiting."""
        self._stop.set()
        self.shutdown()
        self.server_close()
        for t in self._workers:
            t.join(timeout=5)
        self.receiver.flush_idle(everything=True)
