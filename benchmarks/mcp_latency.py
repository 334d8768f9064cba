"""MCP tool call round trip through `funcforge mcp`, p50 and p95 (issue 12).

    python3 benchmarks/mcp_latency.py [--calls 200]

Starts `python -m funcforge mcp WORKSPACE` (a temporary workspace with one
trivial tool) with the official SDK's stdio client, then times N
`tools/call` round trips (client send -> sandboxed call -> trace line appended
-> client receives), after one warm-up call that starts the sandbox worker.
Also prints the server's start-up (spawn to `initialize` answered) and the
first call (worker start).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(root: Path, calls: int) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "funcforge", "mcp", str(root)]
    )
    t0 = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        t1 = time.perf_counter()
        await session.call_tool("inc", {"x": 0})
        t2 = time.perf_counter()
        times = []
        for i in range(calls):
            start = time.perf_counter()
            result = await session.call_tool("inc", {"x": i})
            times.append((time.perf_counter() - start) * 1000)
            assert result.content[0].text == str(i + 1)
    print(f"server start-up (spawn -> initialized): {t1 - t0:.3f} s; first call {t2 - t1:.3f} s")
    print(
        f"{calls} round trips: p50 {pct(times, 0.5):.2f} ms, p95 {pct(times, 0.95):.2f} ms, "
        f"mean {statistics.fmean(times):.2f} ms, max {max(times):.2f} ms"
    )
    lines = (root / "traces" / "mcp-calls.jsonl").read_text().splitlines()
    print(f"trace lines logged: {len(lines)}")
    # Each line's latency_ms is the sandboxed call alone (funcforge -> worker -> back):
    # the rest of a round trip is the SDK, JSON-RPC over stdio and the thread hop.
    sandboxed = [json.loads(line)["latency_ms"] for line in lines[1:]]
    print(
        f"of which the sandboxed call (logged latency_ms): p50 {pct(sandboxed, 0.5):.2f} ms, "
        f"p95 {pct(sandboxed, 0.95):.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tools").mkdir()
        (root / "tools" / "t.py").write_text(
            'def inc(x: int) -> int:\n    """Add one."""\n    return x + 1\n'
        )
        anyio.run(measure, root, opts.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
