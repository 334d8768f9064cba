"""Ingest benchmark for `TraceStore` (issue 2): speed, incremental refresh, memory.

Generates synthetic native trace files of 10k and 100k traces under
`benchmarks/.data/` (gitignored) and prints a table:

- full ingest time against plain `json.loads` over the same lines (target <= 2x);
- `refresh()` after appending 100 traces, at 10k and at 100k (target < 50 ms,
  and about the same at both sizes);
- resident memory added by an index of 100k traces, measured in a fresh
  subprocess from /proc/self/status (target < 300 MB).

- warm start (issue 18): a new store over an unchanged file with its persistent
  index on disk, to the first statistics (target <= 1 s at 1,000,000 traces);
- resident memory of a process holding the warm store (target <= 200 MB).
- peak resident memory of a fresh process doing one cold ingest (bounded: it should not
  grow with the trace count).

Every cold ingest writes a new persistent index (its SQLite cost is counted).
Run: `python3 benchmarks/ingest.py` (add `--sizes 10000` for a quick run;
`--sizes 1000000 --data /tmp/ff-bench` for the issue-18 figures, 1 GB of data).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from funcforge.config import Config
from funcforge.traces.store import TraceStore

DATA = Path(__file__).resolve().parent / ".data"
SCRATCH = Path(tempfile.gettempdir())
TOOLS = [
    "convert_units",
    "evaluate_expression",
    "simplify_fraction",
    "solve_linear",
    "lookup_cell",
    "parse_table",
    "sum_column",
    "format_number",
    "round_value",
    "percent_change",
    "compare_values",
    "count_rows",
]
ERRORS = [
    "Error: KeyError: 'mile'",
    "Error: ValueError: could not convert string to float: '$1,200'",
    "Error: ZeroDivisionError: division by zero",
    'Traceback (most recent call last):\n  File "tools/math.py", line 12, in evaluate_expression\n'
    "    return eval(expr)\nSyntaxError: invalid syntax",
    "Error: bad input",
]


def make_trace(rng: random.Random, n: int) -> dict:
    """One realistic native trace: a question, 1-4 tool calls with results, an answer."""
    task = rng.randrange(2000)
    question = f"Task {task}: what is {rng.randint(1, 99)}/{rng.randint(2, 16)} + 1/8?"
    messages: list[dict] = [
        {"role": "system", "content": "You solve math and table questions with tools."},
        {"role": "user", "content": question},
    ]
    failed = False
    for k in range(rng.choice((1, 1, 2, 2, 3, 4))):
        name = rng.choice(TOOLS)
        cid = f"call_{n}_{k}"
        args = json.dumps({"expression": f"{rng.random():.6f} * {rng.randint(1, 500)}", "k": k})
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                ],
            }
        )
        if rng.random() < 0.15:
            failed = True
            content = rng.choice(ERRORS)
        else:
            content = f"{rng.random() * 1000:.4f}"
        messages.append({"role": "tool", "tool_call_id": cid, "content": content})
    passed = not failed and rng.random() < 0.8
    messages.append({"role": "assistant", "content": "The answer is 7/8." if passed else "42"})
    return {
        "id": f"run-{n:07d}",
        "task": {"id": f"task-{task}", "input": question, "expected": "7/8"},
        "messages": messages,
        "outcome": {"score": 1.0 if passed else 0.0, "passed": passed},
        "toolset_version": f"v{n // 20000}",
        "split": "train" if task % 10 < 7 else "test",
        "time": f"2026-11-{1 + n // 100000 % 28:02d}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
    }


def write_traces(path: Path, start: int, count: int, mode: str = "w") -> None:
    rng = random.Random(start)
    with open(path, mode, encoding="utf-8") as f:
        for n in range(start, start + count):
            f.write(json.dumps(make_trace(rng, n)) + "\n")


def workspace(size: int, reuse: bool = False) -> tuple[Config, Path]:
    """A fresh workspace with one trace file of `size` traces (kept as is with `reuse`)."""
    root = DATA / f"ws-{size}"
    (root / "traces").mkdir(parents=True, exist_ok=True)
    path = root / "traces" / "runs.jsonl"
    if not (reuse and path.exists()):
        write_traces(path, 0, size)
    shutil.rmtree(root / ".funcforge", ignore_errors=True)
    return Config(root=root, traces=["traces/**/*.jsonl"]), path


def scratch_index() -> Path:
    """A new, empty index location (each cold ingest builds its own)."""
    return Path(tempfile.mkdtemp(prefix="ff-index-", dir=SCRATCH)) / "traces.sqlite"


def plain_json(path: Path) -> tuple[float, float]:
    """(CPU, wall) seconds to read the file and json.loads every line: the baseline."""
    c0, t0 = time.process_time(), time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)
    return time.process_time() - c0, time.perf_counter() - t0


def full_ingest(config: Config, expected: int) -> tuple[float, float]:
    """(CPU, wall) seconds of a first `refresh()` of a new store."""
    index = scratch_index()
    store = TraceStore(config, index_path=index)
    c0, t0 = time.process_time(), time.perf_counter()
    store.refresh()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    assert len(store) == expected and not store.malformed
    store.close()
    shutil.rmtree(index.parent, ignore_errors=True)
    return cpu, wall


def append_refresh(config: Config, path: Path, size: int, rounds: int) -> list[float]:
    """refresh() times after appending 100 traces, `rounds` times, on an indexed store."""
    store = TraceStore(config)
    store.refresh()
    times = []
    next_id = size
    for _ in range(rounds):
        write_traces(path, next_id, 100, mode="a")
        next_id += 100
        before = store.bytes_read
        t0 = time.perf_counter()
        changed = store.refresh()
        times.append(time.perf_counter() - t0)
        assert changed == ["traces/runs.jsonl"], changed
        appended = store.bytes_read - before
        assert appended < 200_000, f"refresh read {appended} bytes for 100 traces"
    assert len(store) == size + 100 * rounds
    return times


def rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(root: str) -> None:
    """In a fresh process: RSS before and after opening the (warm) store, and the seconds
    from `TraceStore(...)` to the first statistics, printed as JSON."""
    config = Config(root=Path(root), traces=["traces/**/*.jsonl"])
    gc.collect()
    before = rss_kb()
    t0 = time.perf_counter()
    store = TraceStore(config)
    store.refresh()
    store.tool_stats()
    store.version_stats()
    warm = time.perf_counter() - t0
    assert store.bytes_read == 0, "the warm start re-read the trace file"
    gc.collect()
    after = rss_kb()
    print(
        json.dumps(
            {
                "before_kb": before,
                "after_kb": after,
                "peak_kb": rss_kb("VmHWM"),
                "traces": len(store),
                "warm_s": warm,
            }
        )
    )


def cold_child(root: str) -> None:
    """In a fresh process: a cold ingest into a new index; its CPU seconds and the
    process's peak resident memory (VmHWM), printed as JSON."""
    config = Config(root=Path(root), traces=["traces/**/*.jsonl"])
    index = scratch_index()
    store = TraceStore(config, index_path=index)
    c0 = time.process_time()
    store.refresh()
    cpu = time.process_time() - c0
    print(json.dumps({"cpu_s": cpu, "peak_kb": rss_kb("VmHWM"), "traces": len(store)}))
    store.close()
    shutil.rmtree(index.parent, ignore_errors=True)


def measure_cold(config: Config) -> dict:
    args = [sys.executable, __file__, "--cold-child", str(config.root), "--data", str(SCRATCH)]
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def measure_memory(config: Config) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(config.root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--repeat",
        type=int,
        help="best of N for the timings (default: 5 at 100k, more for smaller files)",
    )
    parser.add_argument("--rounds", type=int, default=10, help="appends timed per size")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--cold-child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help="where the generated workspaces go")
    parser.add_argument("--reuse", action="store_true", help="keep an already generated file")
    args = parser.parse_args()
    global DATA, SCRATCH
    if args.data:
        DATA = SCRATCH = args.data
        DATA.mkdir(parents=True, exist_ok=True)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    if args.cold_child:
        cold_child(args.cold_child)
        return 0

    rows = []
    for size in args.sizes:
        config, path = workspace(size, args.reuse)
        size_bytes = path.stat().st_size
        mb = size_bytes / 1e6
        bases, ingests = [], []
        repeat = args.repeat or max(1, min(5, 500_000 // size))
        for _ in range(repeat):  # interleaved, so both see the same machine load
            bases.append(plain_json(path))
            ingests.append(full_ingest(config, size))
        base, ingest = min(bases), min(ingests)
        appends = append_refresh(config, path, size, args.rounds)
        with open(path, "r+b") as f:  # back to `size` traces for the memory figure
            f.truncate(size_bytes)
        shutil.rmtree(config.root / ".funcforge", ignore_errors=True)
        warmup = TraceStore(config)  # the persistent index, as a previous session left it
        warmup.refresh()
        warmup.close()
        mem = measure_memory(config)
        mem["cold_peak_kb"] = measure_cold(config)["peak_kb"]
        rows.append((size, mb, base, ingest, appends, mem))

    print(
        f"{'traces':>8} {'file MB':>8} {'json.loads s':>13} {'ingest s':>9} {'ratio':>6} "
        f"{'(wall)':>7} {'append+refresh ms':>18} {'warm start s':>13} {'RSS MB':>7} "
        f"{'delta MB':>9} {'cold peak MB':>12}"
    )
    for size, mb, base, ingest, appends, mem in rows:
        med, worst = statistics.median(appends) * 1e3, max(appends) * 1e3
        delta = (mem["after_kb"] - mem["before_kb"]) / 1024
        print(
            f"{size:>8} {mb:>8.1f} {base[0]:>13.3f} {ingest[0]:>9.3f} "
            f"{ingest[0] / base[0]:>6.2f} {ingest[1] / base[1]:>7.2f} "
            f"{f'{med:.1f} / {worst:.1f}':>18} {mem['warm_s']:>13.3f} "
            f"{mem['after_kb'] / 1024:>7.1f} {delta:>9.1f} {mem['cold_peak_kb'] / 1024:>12.1f}"
        )
    print(
        "seconds are CPU time (process_time), best of --repeat; (wall) is the wall-clock ratio;\n"
        "append+refresh: median / max over --rounds appends of 100 traces (wall-clock).\n"
        "warm start: a new process's TraceStore over the unchanged file with its index on disk,\n"
        "to the first statistics; RSS MB: that process's resident memory after it.\n"
        "cold peak MB: peak resident memory (VmHWM) of a fresh process doing one cold ingest.\n"
        "targets (issue 18, at 1,000,000): ratio <= 1.5, append+refresh < 50 ms,\n"
        "warm start <= 1 s, RSS <= 200 MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
