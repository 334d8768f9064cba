"""Sandbox start and per-call overhead: `funcforge replay-check` of 200 logged calls (issue 12).

    python3 benchmarks/sandbox_overhead.py [--calls 200] [--repeat 3]

A trivial function (old: `x + 1`, new: `1 + x`) and a calls file of N
distinct logged calls. Each mode runs the real CLI (`python -m funcforge
replay-check`): every call twice on the old and twice on the new version,
4N sandboxed calls in two workers. "Beyond start-up" subtracts the same
CLI's start-up with zero calls (which loads everything but starts no
worker). Modes: `bwrap` (the default) and `process` (the weaker opt-in, the
closest to the sandbox before issue 12). Best of `--repeat` runs, wall clock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "funcforge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"replay-check failed: {done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "old.py").write_text("def inc(x):\n    return x + 1\n")
        (root / "new.py").write_text("def inc(x):\n    return 1 + x\n")
        lines = [json.dumps({"args": {"x": i}, "result": str(i + 1)}) for i in range(opts.calls)]
        (root / "calls.jsonl").write_text("\n".join(lines) + "\n")
        (root / "none.jsonl").write_text("")
        base = ["replay-check", "--old", "old.py", "--new", "new.py", "--budget", str(opts.calls)]
        startup = min(run([*base, "--calls", "none.jsonl"], root) for _ in range(opts.repeat))
        print(f"CLI start-up (0 calls): {startup:.3f} s")
        for mode in ("bwrap", "process"):
            best = min(
                run([*base, "--calls", "calls.jsonl", "--sandbox", mode], root)
                for _ in range(opts.repeat)
            )
            print(
                f"{mode:>8}: {opts.calls} calls (x2 versions x2 runs): {best:.3f} s wall, "
                f"{best - startup:.3f} s beyond start-up"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
