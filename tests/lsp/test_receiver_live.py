"""`funcforge serve --otlp-port 0`: an agent instrumented with the real OpenTelemetry SDK
exports spans to the language server, whose diagnostics follow at once."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.test_features import wait_for
from tests.lsp.test_server import diagnostics_for, open_doc, start

SERVER = [sys.executable, "-m", "funcforge", "serve", "--otlp-port", "0"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def receiving(lsp_client: LanguageClient, math_ws: Path):
    await start(lsp_client, math_ws, {})
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def _export(port: int, version: str, n: int) -> None:
    """An agent run per call: invoke_agent with one failing execute_tool, via OTLP/HTTP."""
    from opentelemetry import trace as otel_trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
    )
    tracer = provider.get_tracer("live-agent")
    for i in range(n):
        with tracer.start_as_current_span(
            "invoke_agent units",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.conversation.id": f"live-{i}",
                "funcforge.toolset_version": version,
            },
        ):
            span = tracer.start_span(
                "execute_tool convert_units",
                context=otel_trace.set_span_in_context(otel_trace.get_current_span()),
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "convert_units",
                    "gen_ai.tool.call.id": f"call-{i}",
                    "gen_ai.tool.call.arguments": '{"value": 1, "from_unit": "furlong", "to_unit": "m"}',
                    "error.type": "KeyError",
                },
            )
            span.set_status(Status(StatusCode.ERROR, "'furlong'"))
            span.end()
    provider.shutdown()


async def test_spans_exported_to_serve_update_diagnostics_live(receiving: LanguageClient) -> None:
    client = receiving
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / "tools" / "units.py")
    before = await diagnostics_for(client, uri, "logged calls failed")
    said = next(d.message for d in before if "logged calls failed" in d.message)
    failed, total, version = re.match(
        r"(\d+) of (\d+) logged calls failed on (\S+):", said
    ).groups()
    await wait_for(
        lambda: any("receiving OTLP traces" in m.message for m in client.log_messages),
        what="the receiver's address",
    )
    line = next(m.message for m in client.log_messages if "receiving OTLP traces" in m.message)
    port = int(line.split("127.0.0.1:")[1].split("/")[0])
    await asyncio.get_running_loop().run_in_executor(None, _export, port, version, 5)
    await diagnostics_for(
        client, uri, f"{int(failed) + 5} of {int(total) + 5} logged calls failed", timeout=20
    )
    received = root / "traces" / "otlp" / "received.jsonl"
    assert len(received.read_text().splitlines()) == 5
