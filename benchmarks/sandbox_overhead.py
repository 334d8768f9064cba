"""Sandbox start and per-call overhead: `funcforge replay-check` of 200 logged calls (issue 12).

    python3 benchmarks/sandbox_overhead.py [--calls 200] [--repeat 3]

A trivial function (old: `x + 1`, new: `1 + x`) and a calls file of N
distinct logged calls. Each mode runs the real CLI (`python -m funcforge
replay-check`): every call twice on the old and twice on the new version,
4N sandboxed calls in two workers. "Beyond start-up" subtracts the same
CLI's start-up with zero calls (which loads everything but starts no
worker). Modes: `bwrap` (the default) and `process` (the weaker opt-in, the
closest to the sandbox before issue 12). CPU time (user + system, every process
of the run, bwrap and workers included) is printed too: on a loaded machine it
says more than the wall clock. Best of `--repeat` interleaved rounds, wall
clock.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU: dict[str, float] = {}


def run(args: list[str], cwd: Path, name: str = "") -> float:
    """Wall seconds of one CLI run; its CPU seconds (all processes) go to CPU[name] (best)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "funcforge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU[name] = min(CPU.get(name, float("inf")), cpu)
    if done.returncode not in (0, 1):
        raise SystemExit(f"replay-check failed: {done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    print(
        "load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "old.py").write_text("def inc(x):\n    return x + 1\n")
        (root / "new.py").write_text("def inc(x):\n    return 1 + x\n")
        lines = [json.dumps({"args": {"x": i}, "result": str(i + 1)}) for i in range(opts.calls)]
        (root / "calls.jsonl").write_text("\n".join(lines) + "\n")
        (root / "none.jsonl").write_text("")
        base = ["replay-check", "--old", "old.py", "--new", "new.py", "--budget", str(opts.calls)]
        # Interleaved rounds, best of each: the shared machine's load swings between runs.
        best: dict[str, float] = {}
        for _ in range(opts.repeat):
            for name, extra in (
                ("start-up", ["--calls", "none.jsonl"]),
                ("bwrap", ["--calls", "calls.jsonl", "--sandbox", "bwrap"]),
                ("process", ["--calls", "calls.jsonl", "--sandbox", "process"]),
            ):
                best[name] = min(best.get(name, float("inf")), run([*base, *extra], root, name))
        startup = best["start-up"]
        print(
            "load average (1, 5, 15 min) at the end: "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        )
        print(f"CLI start-up (0 calls): {startup:.3f} s wall, {CPU['start-up']:.3f} s CPU")
        for mode in ("bwrap", "process"):
            print(
                f"{mode:>8}: {opts.calls} calls (x2 versions x2 runs): {best[mode]:.3f} s wall, "
                f"{best[mode] - startup:.3f} s beyond start-up; CPU {CPU[mode]:.3f} s, "
                f"{CPU[mode] - CPU['start-up']:.3f} s beyond start-up"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
