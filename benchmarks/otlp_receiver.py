"""OTLP receiver benchmark (issue 18): sustained spans per second, span-to-statistics latency.

An in-process `ReceiverServer` on 127.0.0.1 appends to a trace file of a temp
workspace; each append refreshes a `TraceStore` of that workspace and reads its
tool statistics — what the language server does before it publishes
diagnostics (`serve --otlp-port`). Requests are protobuf
`ExportTraceServiceRequest`s, one agent run each: an `invoke_agent` root, a
`chat` span and two `execute_tool` spans (one failing).

- throughput: `--requests` runs sent by `--clients` threads over keep-alive
  connections as fast as answered; spans/s over the whole run;
- latency: `--probes` runs sent one at a time (10 per second); the time from
  sending a run to the store's statistics counting it, p50 / p95 (target < 500 ms).

Run: `python3 benchmarks/otlp_receiver.py`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from funcforge.config import Config
from funcforge.traces.receiver import ReceiverServer, TraceReceiver
from funcforge.traces.store import TraceStore


def _attrs(values: dict) -> list[dict]:
    return [{"key": k, "value": {"stringValue": str(v)}} for k, v in values.items()]


def run_request(n: int) -> bytes:
    """One agent run (4 spans) as a protobuf export request."""
    trace_id = os.urandom(16).hex()
    ids = [os.urandom(8).hex() for _ in range(4)]
    t = time.time_ns()
    root = {
        "traceId": trace_id,
        "spanId": ids[0],
        "name": "invoke_agent bench",
        "startTimeUnixNano": str(t),
        "endTimeUnixNano": str(t + 1000),
        "attributes": _attrs(
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": f"bench-{n}"}
        ),
    }
    chat = {
        "traceId": trace_id,
        "spanId": ids[1],
        "parentSpanId": ids[0],
        "name": "chat bench-model",
        "startTimeUnixNano": str(t),
        "endTimeUnixNano": str(t + 500),
        "attributes": _attrs(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": f"task {n}"}]}]
                ),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "42"}]}]
                ),
            }
        ),
    }
    tools = []
    for k, (name, ok) in enumerate((("convert_units", True), ("format_money", False))):
        span = {
            "traceId": trace_id,
            "spanId": ids[2 + k],
            "parentSpanId": ids[0],
            "name": f"execute_tool {name}",
            "startTimeUnixNano": str(t + 100 * k),
            "endTimeUnixNano": str(t + 100 * k + 50),
            "attributes": _attrs(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": name,
                    "gen_ai.tool.call.id": f"c{n}-{k}",
                    "gen_ai.tool.call.arguments": json.dumps({"n": n}),
                    **({"gen_ai.tool.call.result": "1.6"} if ok else {"error.type": "KeyError"}),
                }
            ),
        }
        if not ok:
            span["status"] = {"code": 2, "message": "'mile'"}
        tools.append(span)
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [chat, *tools, root]}]}]}
    return ParseDict(body, ExportTraceServiceRequest()).SerializeToString()


def post(conn: http.client.HTTPConnection, body: bytes) -> None:
    conn.request(
        "POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"}
    )
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise RuntimeError(f"receiver answered {resp.status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--probes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-otlp-bench-") as tmp:
        root = Path(tmp)
        (root / "traces").mkdir()
        store = TraceStore(Config(root=root, traces=["traces/**/*.jsonl"]))
        seen: dict[str, float] = {}
        waiting: list[str] = []
        lock = threading.Lock()
        wake = threading.Event()
        done = threading.Event()

        def refresher() -> None:
            """Like the language server: one refresh at a time, covering every append since."""
            while not done.is_set():
                if not wake.wait(0.05):
                    continue
                wake.clear()
                with lock:
                    ids = list(waiting)
                    waiting.clear()
                store.refresh()
                store.tool_stats()
                now = time.perf_counter()
                for i in ids:
                    seen[i] = now

        def appended(traces) -> None:  # type: ignore[no-untyped-def]
            with lock:
                waiting.extend(t.id for t in traces)
            wake.set()

        worker = threading.Thread(target=refresher, daemon=True)
        worker.start()
        receiver = TraceReceiver(
            root / "traces" / "otlp.jsonl", "traces/otlp.jsonl", on_append=appended
        )
        server = ReceiverServer(receiver, 0).start()
        port = server.port
        bodies = [run_request(n) for n in range(args.requests)]
        per_client = [bodies[i :: args.clients] for i in range(args.clients)]

        def client(batch: list[bytes]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for body in batch:
                post(conn, body)
            conn.close()

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(b,)) for b in per_client]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        spans = 4 * args.requests
        assert receiver.stats.traces == args.requests, receiver.stats
        latencies = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n in range(args.probes):
            body = run_request(10**6 + n)
            key = f"bench-{10**6 + n}"
            sent = time.perf_counter()
            post(conn, body)
            while key not in seen:
                time.sleep(0.001)
            latencies.append(seen[key] - sent)
            time.sleep(0.1)
        conn.close()
        server.stop()
        done.set()
        worker.join()
        store.refresh()
        assert len(store) == args.requests + args.probes
        store.close()
    p50 = statistics.median(latencies) * 1e3
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1e3
    print(
        f"throughput: {args.requests} runs ({spans} spans) from {args.clients} clients "
        f"in {elapsed:.2f} s: {spans / elapsed:.0f} spans/s, {args.requests / elapsed:.0f} runs/s"
    )
    print(
        f"span-to-statistics latency over {args.probes} runs: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"(target p95 < 500 ms)"
    )
    return 0 if p95 < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
