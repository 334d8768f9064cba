"""Language-server latency benchmark (issue 5): request latency, trace-append delay, memory.

Generates a workspace in a temp folder (a git repository with the tools
committed): 1,000 tool functions in 100 files and 100,000 synthetic native
traces (`--small`: 100 functions in 10 files, 10,000 traces). Starts
`python -m funcforge serve` over stdio with pytest-lsp's client (no pytest
needed), opens one tool file, waits for its diagnostics, then measures:

- p50 / p95 of textDocument/codeAction, hover and codeLens on the open file,
  next to a trivial request's round trip (workspace/executeCommand
  `funcforge.status`); target p95 < 20 ms;
- how long an appended failing call takes to show in that tool's diagnostic
  (the "N of M logged calls failed" count changes); target < 200 ms;
- the server's resident memory (VmRSS from /proc/<pid>/status);
- then, in this process, the trace store alone (issue 18): opening it over the
  index the server left (warm), and `refresh()` after appending 100 traces, five
  times (target < 50 ms), each followed by `tool_stats("all")` as the server does.

Run: `python3 benchmarks/lsp_latency.py [--small]`. For issue 18, `--traces 1000000
--workspace /tmp/ff-1m` keeps the generated workspace (1 GB) outside the repository and
reuses it; `--warm-only` then skips the cold start (its index is removed otherwise), and
`--profile DIR` samples the server with py-spy (collapsed stacks, one file per start).
Appended traces stay in a kept workspace: its count grows by 11 per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompt_budget import write_traces

LATENCY_TARGET_MS = 20.0
APPEND_TARGET_MS = 200.0
FAILED = re.compile(r"^(\d+) of (\d+) logged calls failed")


def tool_file(index: int, per_file: int) -> tuple[str, list[str]]:
    """Source of one tool module with `per_file` functions, and their names."""
    names = [f"tool_{index:03d}_{k}" for k in range(per_file)]
    parts = [f'"""Synthetic tool module {index}."""\n\nfrom __future__ import annotations\n']
    for name in names:
        parts.append(
            f"def {name}(expression: str, k: int = 0) -> str:\n"
            f'    """Evaluate `expression` ({name}).\n\n'
            "    Args:\n"
            "        expression: The arithmetic expression to work on.\n"
            "        k: Which step of the task this call is.\n"
            '    """\n'
            "    value = float(expression.split()[0]) * (k + 1)\n"
            "    return f'{value:.4f}'\n"
        )
    return "\n\n".join(parts), names


def make_workspace(root: Path, files: int, per_file: int, traces: int) -> list[str]:
    """Write tools and traces; commit the tools. Returns every tool name."""
    (root / "tools").mkdir(parents=True)
    names: list[str] = []
    for i in range(files):
        text, file_names = tool_file(i, per_file)
        (root / "tools" / f"mod_{i:03d}.py").write_text(text)
        names += file_names
    chunk = 10_000
    for start in range(0, traces, chunk):  # one writer, several calls, same file
        write_traces(
            root / "traces" / "runs.jsonl", start, min(chunk, traces - start), names, mode="a"
        )
    git = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "-C", str(root), "add", "tools"], check=True)
    subprocess.run([*git, "-C", str(root), "commit", "-q", "-m", "tools"], check=True)
    return names


def failing_trace(n: int, tool: str) -> str:
    """One native trace line with one failing call of `tool`."""
    call = {"id": "c1", "type": "function", "function": {"name": tool, "arguments": "{}"}}
    trace = {
        "id": f"append-{n}",
        "task": {"id": f"append-{n}", "input": "1 + 1", "expected": "2"},
        "messages": [
            {"role": "user", "content": "1 + 1"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "Error: KeyError: 'x'"},
            {"role": "assistant", "content": "?"},
        ],
        "outcome": {"score": 0.0, "passed": False},
        "toolset_version": "v0",
        "split": "train",
    }
    return json.dumps(trace) + "\n"


def failed_count(client: LanguageClient, uri: str, line: int) -> int | None:
    """The 'N of M logged calls failed' N of the diagnostic on `line`, if any."""
    for d in client.diagnostics.get(uri, []):
        m = FAILED.match(d.message)
        if m and d.range.start.line == line:
            return int(m.group(1))
    return None


async def wait_for(check: Callable[[], bool], timeout: float, poll: float = 0.002) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if check():
            return True
        await asyncio.sleep(poll)
    return check()


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    """Milliseconds of `n` sequential awaits of `fn()` (after 3 unmeasured ones)."""
    for _ in range(3):
        await fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _py_spy() -> str:
    """py-spy beside this Python (a virtualenv's bin) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(
    root: Path, names: list[str], requests: int, appends: int, profile: Path | None = None
) -> dict[str, Any]:
    client = make_test_lsp_client()  # stores diagnostics, messages, configuration

    @client.feature("funcforge/status")
    def on_status(params: Any) -> None:
        """The server's status-bar notification; not measured here."""

    await client.start_io(sys.executable, "-m", "funcforge", "serve", cwd=str(root))
    assert client._server is not None
    pid = client._server.pid
    spy = None
    if profile is not None:  # samples until the server exits
        command = [_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
        spy = subprocess.Popen(
            [*command, "--nonblocking", "-o", str(profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    t_start = time.perf_counter()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=root.as_uri(),
            initialization_options={},
        )
    )
    path = root / "tools" / "mod_000.py"
    text = path.read_text()
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    lines = text.splitlines()
    tool = names[0]
    line = next(i for i, s in enumerate(lines) if s.startswith(f"def {tool}("))
    if not await wait_for(lambda: failed_count(client, uri, line) is not None, 600, 0.05):
        raise RuntimeError(f"no failing-call diagnostic for {tool}: {client.diagnostics.get(uri)}")
    ready = time.perf_counter() - t_start
    doc = types.TextDocumentIdentifier(uri=uri)
    at = types.Position(line=line, character=6)
    rng = types.Range(start=at, end=at)

    async def code_action() -> Any:
        return await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=doc,
                range=rng,
                context=types.CodeActionContext(diagnostics=list(client.diagnostics.get(uri, []))),
            )
        )

    async def hover() -> Any:
        result = await client.text_document_hover_async(
            types.HoverParams(text_document=doc, position=at)
        )
        assert result is not None, "no hover on a tool name"
        return result

    async def code_lens() -> Any:
        result = await client.text_document_code_lens_async(types.CodeLensParams(text_document=doc))
        assert result, "no code lenses on a tool file"
        return result

    async def status() -> Any:
        return await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="funcforge.status", arguments=[{}])
        )

    latencies = {
        "executeCommand funcforge.status (trivial)": await timed(status, requests),
        "textDocument/codeAction": await timed(code_action, requests),
        "textDocument/hover": await timed(hover, requests),
        "textDocument/codeLens": await timed(code_lens, requests),
    }

    def count_is(n: int) -> Callable[[], bool]:
        return lambda: failed_count(client, uri, line) == n

    delays: list[float | None] = []
    trace_file = root / "traces" / "runs.jsonl"
    for n in range(appends):
        before = failed_count(client, uri, line)
        assert before is not None
        target = before + 1
        t0 = time.perf_counter()
        with open(trace_file, "a", encoding="utf-8") as f:
            f.write(failing_trace(n, tool))
        if await wait_for(count_is(target), 10):
            delays.append((time.perf_counter() - t0) * 1000)
        else:  # not reflected within 10 s: count it as a miss and go on
            delays.append(None)
            print(f"append {n}: not reflected within 10 s", file=sys.stderr)
        await asyncio.sleep(0.05 + random.random() * 0.15)  # land at random poll phases

    memory = rss_mb(pid)
    await client.shutdown_session()
    await client.stop()
    if spy is not None:
        spy.wait(timeout=60)
    return {"ready": ready, "latencies": latencies, "delays": delays, "rss_mb": memory}


def store_figures(root: Path, names: list[str], rounds: int = 5) -> dict[str, Any]:
    """Warm open of the trace store and append-100 refreshes, timed in this process."""
    from funcforge.config import load_config
    from funcforge.traces.store import TraceStore

    config = load_config(root)
    t0 = time.perf_counter()
    store = TraceStore(config)
    store.refresh()
    store.tool_stats("all")
    opened = time.perf_counter() - t0
    rng = random.Random(18)
    refresh_ms: list[float] = []
    refresh_cpu_ms: list[float] = []
    stats_ms: list[float] = []
    for r in range(rounds):
        with open(root / "traces" / "runs.jsonl", "a", encoding="utf-8") as f:
            for n in range(100):
                f.write(failing_trace(r * 100 + n, rng.choice(names)))
        t0, c0 = time.perf_counter(), time.process_time()
        store.refresh()
        t1 = time.perf_counter()
        refresh_cpu_ms.append((time.process_time() - c0) * 1000)
        store.tool_stats("all")
        refresh_ms.append((t1 - t0) * 1000)
        stats_ms.append((time.perf_counter() - t1) * 1000)
    store.close()
    return {
        "open": opened,
        "refresh_ms": refresh_ms,
        "refresh_cpu_ms": refresh_cpu_ms,
        "stats_ms": stats_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100 functions, 10,000 traces")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per kind")
    parser.add_argument("--appends", type=int, default=10, help="timed trace appends")
    parser.add_argument("--traces", type=int, help="number of traces (issue 18: 1000000)")
    parser.add_argument(
        "--workspace", type=Path, help="keep the workspace here and reuse it (e.g. /tmp/ff-1m)"
    )
    parser.add_argument(
        "--warm-only", action="store_true", help="with --workspace: keep its index, no cold start"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy samples of each start here")
    args = parser.parse_args()
    files, per_file, traces = (10, 10, 10_000) if args.small else (100, 10, 100_000)
    traces = args.traces or traces

    with tempfile.TemporaryDirectory(prefix="ff-lsp-") as tmp:
        made = 0.0
        if args.workspace is not None:
            root = args.workspace / f"ws-{files}x{per_file}-{traces}"
            marker = root / ".complete"
            if not marker.exists():
                shutil.rmtree(root, ignore_errors=True)
                t0 = time.perf_counter()
                names = make_workspace(root, files, per_file, traces)
                made = time.perf_counter() - t0
                marker.write_text("\n".join(names))
            names = marker.read_text().split()
            if not args.warm_only:
                shutil.rmtree(root / ".funcforge" / "cache", ignore_errors=True)
        else:
            root = Path(tmp) / "ws"
            t0 = time.perf_counter()
            names = make_workspace(root, files, per_file, traces)
            made = time.perf_counter() - t0
        mb = (root / "traces" / "runs.jsonl").stat().st_size / 1e6
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        prof = args.profile
        first = asyncio.run(
            bench(root, names, args.requests, args.appends, prof and prof / "first.txt")
        )
        # A second start finds the persistent trace index on disk (issue 18's warm start).
        warm = asyncio.run(bench(root, names, 5, 1, prof and prof / "warm.txt"))
        store = store_figures(root, names)
    result = first

    print(
        f"workspace: {len(names)} tool functions in {files} files, {traces} traces "
        f"({mb:.0f} MB)" + (f", generated in {made:.1f} s" if made else ", kept from a last run")
    )
    kind = "warm (--warm-only)" if args.warm_only else "cold"
    print(f"server start ({kind}) to first diagnostics on the open file: {result['ready']:.2f} s")
    print(
        f"warm start (index on disk, traces unchanged) to first diagnostics: "
        f"{warm['ready']:.2f} s; then resident memory {warm['rss_mb']:.0f} MB"
    )
    print()
    print(f"{'request':<42} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    ok_latency = True
    for name, values in result["latencies"].items():
        p95 = pct(values, 0.95)
        if not name.startswith("executeCommand"):
            ok_latency &= p95 < LATENCY_TARGET_MS
        print(
            f"{name:<42} {len(values):>4} {statistics.median(values):>7.1f} {p95:>7.1f} "
            f"{max(values):>7.1f}"
        )
    seen = [d for d in result["delays"] if d is not None]
    missed = len(result["delays"]) - len(seen)
    print()
    if seen:
        print(
            f"trace append -> diagnostics updated: median {statistics.median(seen):.0f} ms, "
            f"max {max(seen):.0f} ms over {len(seen)} appends; {missed} not reflected in 10 s"
        )
    else:
        print(f"trace append -> diagnostics: none of {missed} appends reflected within 10 s")
    print(f"server resident memory (VmRSS): {result['rss_mb']:.0f} MB")
    print()
    print(
        f"trace store alone: warm open + refresh + tool_stats {store['open']:.2f} s; "
        f"append 100 -> refresh median {statistics.median(store['refresh_ms']):.1f} ms, "
        f"max {max(store['refresh_ms']):.1f} ms (target < 50 ms; CPU median "
        f"{statistics.median(store['refresh_cpu_ms']):.1f} ms); then tool_stats('all') "
        f"median {statistics.median(store['stats_ms']):.1f} ms"
    )
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"load average at the end: {' '.join(load)} (a shared machine: figures vary)")
    except OSError:
        pass
    print()
    ok_append = not missed and max(seen) < APPEND_TARGET_MS
    print(
        f"target: p95 < {LATENCY_TARGET_MS:.0f} ms for codeAction, hover, codeLens: "
        f"{'met' if ok_latency else 'NOT met'}"
    )
    print(
        f"target: trace append in diagnostics < {APPEND_TARGET_MS:.0f} ms (every append): "
        f"{'met' if ok_append else 'NOT met'}"
    )
    return 0 if ok_latency and ok_append else 1


if __name__ == "__main__":
    sys.exit(main())
