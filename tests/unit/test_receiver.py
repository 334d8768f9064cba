"""The OTLP/HTTP receiver: real OpenTelemetry SDK exporters in, native traces out.

`funcforge receive` runs as a subprocess; an "agent" in this process re-emits
the spans of the importer's GenAI and OpenInference fixtures through the real
SDK (`TracerProvider` + `OTLPSpanExporter` over HTTP, protobuf), and the
traces the receiver writes must equal what `funcforge import` makes of the
same spans. Bad requests get 400/413/415 with a reason and leave the file alone.
"""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funcforge.config import Config
from funcforge.traces.formats import otlp
from funcforge.traces.formats.native import FORMAT as NATIVE
from funcforge.traces.store import TraceStore

pytest.importorskip("opentelemetry.sdk", reason="installed by the test extras")
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "traces"
WAIT = 20.0


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen]]:
    """`funcforge receive` on a free port in a temp workspace; yields (root, port, process)."""
    root = tmp_path / "ws"
    (root / "traces").mkdir(parents=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "funcforge",
            "receive",
            str(root),
            "--port",
            "0",
            "--idle",
            "0.5",
            "--max-bytes",
            "200000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        yield root, port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _received(root: Path, n: int) -> list[dict]:
    path = root / "traces" / "otlp" / "received.jsonl"
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(x) for x in path.read_text().splitlines()]
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {n} traces in {path}")


def _emit(fixture: Path, endpoint: str) -> None:
    """Re-emit the fixture's spans through the real SDK and its OTLP/HTTP exporter."""
    reader = otlp.SpanReader(fixture.name)
    reader.read(fixture)
    resource = reader.spans[0].resource if reader.spans else {}
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("funcforge-test-agent")
    children: dict[str | None, list[otlp.Span]] = {}
    ids = {s.span_id for s in reader.spans}
    for span in reader.spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)

    def attrs(values: dict[str, Any]) -> dict[str, Any]:
        return {
            k: (json.dumps(v) if isinstance(v, dict) else v)
            for k, v in values.items()
            if v is not None
        }

    def emit(span: otlp.Span, context: Any) -> None:
        live = tracer.start_span(
            span.name, context=context, attributes=attrs(span.attrs), start_time=span.start
        )
        for event in span.events:
            live.add_event(event.name, attrs(event.attrs), timestamp=event.time or None)
        if span.failed:
            live.set_status(Status(StatusCode.ERROR, span.status_message or None))
        for child in children.get(span.span_id, []):
            emit(child, otel_trace.set_span_in_context(live))
        live.end(end_time=span.end)

    for root in children.get(None, []):
        emit(root, None)
    provider.shutdown()


def _comparable(trace: dict) -> dict:
    out = dict(trace)
    out.pop("otel_trace_ids", None)
    return out


@pytest.mark.parametrize("fixture", ["otlp_genai.jsonl", "otlp_openinference.jsonl"])
def test_real_sdk_spans_become_the_traces_the_importer_makes(receiver, fixture: str) -> None:
    root, port, _ = receiver
    path = FIXTURES / fixture
    imported = [
        t.to_native() for t in otlp.parse_file(path, path.name) if not isinstance(t, otlp.Malformed)
    ]
    _emit(path, f"http://127.0.0.1:{port}/v1/traces")
    got = _received(root, len(imported))
    assert [_comparable(t) for t in got] == [_comparable(t) for t in imported]
    # The file is native JSON Lines the store reads like any other.
    store = TraceStore(Config(root=root, traces=["traces/**/*.jsonl"]))
    store.refresh()
    assert len(store) == len(imported) and not store.malformed
    assert store.files()[0].format == NATIVE.name


def _post(port: int, body: bytes, ctype: str, path: str = "/v1/traces", **headers: str):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method="POST",
        headers={"Content-Type": ctype, **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _one_json_request() -> bytes:
    line = (FIXTURES / "otlp_genai.jsonl").read_text().splitlines()[0]
    return line.encode()


BAD = [
    (b"{not json", "application/json", 400, "not JSON"),
    (b"[1, 2]", "application/json", 400, "ExportTraceServiceRequest"),
    (b'{"resourceLogs": []}', "application/json", 400, "resourceSpans"),
    (
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "00f067aa0ba902b7"}]}]}]}',
        "application/json",
        400,
        "traceId",
    ),
    (b'{"resourceSpans": "x"}', "application/json", 400, "must be an array"),
    (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", 400, "ExportTraceServiceRequest"),
    (b"hello", "text/plain", 415, "Content-Type"),
]


def test_malformed_oversized_and_misdirected_requests_are_refused(receiver) -> None:
    root, port, _ = receiver
    out = root / "traces" / "otlp" / "received.jsonl"
    for body, ctype, status, words in BAD:
        code, reply = _post(port, body, ctype)
        assert code == status, (body, reply)
        assert words in json.loads(reply)["message"], reply
    # A good request mixed with one bad span is refused whole.
    good = json.loads(_one_json_request())
    spans = good["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({"traceId": "nothex", "spanId": "00f067aa0ba902b7"})
    code, reply = _post(port, json.dumps(good).encode(), "application/json")
    assert code == 400 and "traceId" in json.loads(reply)["message"]
    # Oversized (limit 200000 here): 413 without reading it; a gzip bomb too.
    code, reply = _post(port, b"{" + b" " * 300000 + b"}", "application/json")
    assert code == 413 and "over the limit" in json.loads(reply)["message"]
    bomb = gzip.compress(b"{" + b" " * 5_000_000 + b"}")
    code, reply = _post(port, bomb, "application/json", **{"Content-Encoding": "gzip"})
    assert code == 413
    code, _ = _post(port, b"garbage", "application/json", **{"Content-Encoding": "gzip"})
    assert code == 400
    code, _ = _post(port, _one_json_request(), "application/json", path="/v1/logs")
    assert code == 404
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/traces", timeout=10)
    assert err.value.code == 405
    time.sleep(1.0)  # past the idle flush: nothing was kept from any of them
    assert not out.exists()
    # The receiver still works, and a gzip JSON export is taken.
    code, _ = _post(
        port, gzip.compress(_one_json_request()), "application/json", **{"Content-Encoding": "gzip"}
    )
    assert code == 200
    assert len(_received(root, 1)) >= 1
