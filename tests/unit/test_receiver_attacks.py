"""The OTLP receiver against how HTTP clients really send: chunked bodies (no
Content-Length), gzip from the real SDK exporter; and what it writes reads back."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.traces.receiver import ReceiverServer, TraceReceiver
from funcforge.traces.store import TraceStore

pytest.importorskip("opentelemetry.sdk", reason="installed by the test extras")
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

OUT = "traces/otlp/received.jsonl"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ReceiverServer, Path]]:
    root = tmp_path / "ws"
    (root / "traces").mkdir(parents=True)
    receiver = TraceReceiver(root / OUT, OUT, idle_seconds=0.2, max_bytes=5000)
    http_server = ReceiverServer(receiver, 0).start()
    try:
        yield http_server, root
    finally:
        http_server.stop()


def _request(trace_id: str) -> bytes:
    attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.prompt.0.role", "value": {"stringValue": "user"}},
        {"key": "gen_ai.prompt.0.content", "value": {"stringValue": f"question {trace_id}"}},
    ]
    span = {
        "traceId": trace_id,
        "spanId": "00000000000000a1",
        "name": "chat",
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": attrs,
    }
    scope = {"scope": {"name": "agent"}, "spans": [span]}
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [scope]}]}).encode()


def _chunked(port: int, chunks: list[bytes], terminate: bool = True, te: str = "chunked"):
    """POST raw chunks (each already framed by the caller or by `frame`); (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: {te}\r\n\r\n"
        ).encode()
        sock.sendall(head + b"".join(chunks) + (b"0\r\n\r\n" if terminate else b""))
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def frame(data: bytes, size: int = 40) -> list[bytes]:
    return [
        b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size])
        for i in range(0, len(data), size)
    ]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_chunked_body_is_taken_and_bounded(server) -> None:
    http_server, root = server
    out = root / OUT
    status, _ = _chunked(http_server.port, frame(_request("0" * 31 + "1")))
    assert status == 200
    assert [t["task"]["input"] for t in _lines(out)] == ["question " + "0" * 31 + "1"]
    # Over the limit (5000 bytes) as it is read: 413, nothing written.
    status, reply = _chunked(http_server.port, frame(b" " * 6000, size=1000))
    assert status == 413 and b"over the limit of 5000 bytes" in reply
    # Bad framing: 400 with the reason; another transfer coding: 501.
    status, reply = _chunked(http_server.port, [b"zz\r\n{}\r\n"])
    assert status == 400 and b"bad chunk size" in reply
    status, reply = _chunked(http_server.port, [b"-2\r\n{}\r\n"])
    assert status == 400 and b"bad chunk size" in reply
    status, reply = _chunked(http_server.port, [b"2\r\n{}}}\r\n"])
    assert status == 400 and b"cut short" in reply
    status, reply = _chunked(http_server.port, [], te="gzip")
    assert status == 501 and b"Transfer-Encoding" in reply
    assert len(_lines(out)) == 1
    # Still serving, and the file reads back as native traces.
    status, _ = _chunked(http_server.port, frame(_request("0" * 31 + "2"), size=7))
    assert status == 200
    store = TraceStore(Config(root=root, traces=["traces/**/*.jsonl"]))
    store.refresh(final=True)
    assert len(store) == 2 and not store.malformed


def test_the_real_exporter_with_gzip_reaches_the_store(server) -> None:
    http_server, root = server
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{http_server.port}/v1/traces", compression=Compression.Gzip
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.prompt.0.role", "user")
        span.set_attribute("gen_ai.prompt.0.content", "What is 2 + 2?")
        span.set_attribute("gen_ai.completion.0.role", "assistant")
        span.set_attribute("gen_ai.completion.0.content", "4")
    with tracer.start_as_current_span("GET /health"):  # no GenAI attributes: not a trace
        pass
    provider.shutdown()
    assert http_server.receiver.stats.rejected == 0
    traces = _lines(root / OUT)
    assert [t["task"]["input"] for t in traces] == ["What is 2 + 2?"]
    store = TraceStore(Config(root=root, traces=["traces/**/*.jsonl"]))
    store.refresh(final=True)
    assert len(store) == 1 and not store.malformed
