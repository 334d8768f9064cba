"""Ray executor throughput (issue 18): tasks per second at 1, 2 and 4 local workers.

The function-calling agent runs `--tasks` tasks against the fake OpenAI-compatible
server on 127.0.0.1 with 200 ms latency per call (one model call per task: the
fake answers "42"), once with `ThreadExecutor(n)` and once with `RayExecutor` on
a local Ray cluster of n CPUs (one Ray task per task, one CPU each), for n in
1, 2, 4. Ray's start-up is not timed; the first batch on each cluster warms
its workers (agent built once per worker process) and is not timed either.

Run: `python3 benchmarks/ray_throughput.py` (a few minutes; Ray must be installed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes

from funcforge.config import load_config  # noqa: E402
from funcforge.toolset.toolset import load_toolset  # noqa: E402
from funcforge.training.agents import TaskSpec, Toolbox  # noqa: E402
from funcforge.training.executor import AgentRecipe, RayExecutor, ThreadExecutor  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, ReceivedRequest, ScriptItem  # noqa: E402

LATENCY = 0.2
KEY = "bench-key"
TOOL = '''def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
'''


def answer(request: ReceivedRequest) -> ScriptItem:
    return {"content": "42"}


def run(executor, recipe: AgentRecipe, box: Toolbox, tasks: list[TaskSpec]) -> float:
    agent = recipe.build()
    t0 = time.perf_counter()
    traces = executor.map(agent, recipe, tasks, box, "train", lambda t, tr: None)
    seconds = time.perf_counter() - t0
    wrong = [t.id for t in traces if t.final_answer != "42"]
    if wrong or len(traces) != len(tasks):
        raise RuntimeError(f"{len(wrong)} tasks did not end with 42: {wrong[:3]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    import ray

    os.environ["OPENAI_API_KEY"] = KEY  # local Ray workers inherit this environment
    os.environ.pop("RAY_ADDRESS", None)
    tasks = [TaskSpec(f"t{i:04d}", f"What is {i} + 1?", "42") for i in range(args.tasks)]
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ff-ray-bench-") as tmp,
        FakeOpenAI(responder=answer, latency=LATENCY, api_key=KEY) as fake,
    ):
        root = Path(tmp)
        (root / "tools").mkdir()
        (root / "tools" / "math.py").write_text(TOOL)
        (root / "funcforge.toml").write_text(
            f'base_url = "{fake.base_url}"\nmodel = "fake-model"\nmax_retries = 0\n'
        )
        config = load_config(root)
        ts = load_toolset(config)
        box = Toolbox(root, dict(ts.files), list(ts.functions.values()), "bench")
        recipe = AgentRecipe("function-calling", root, config, 30.0, 8, None)
        for n in args.workers:
            threads = ThreadExecutor(n)
            run(threads, recipe, box, tasks[:n])
            t_threads = run(threads, recipe, box, tasks)
            ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False)
            try:
                on_ray = RayExecutor(n)
                run(on_ray, recipe, box, tasks[: 2 * n])  # start and warm the workers
                t_ray = run(on_ray, recipe, box, tasks)
            finally:
                ray.shutdown()
            rows.append((n, t_threads, t_ray))
    print(f"{len(tasks)} tasks, one model call each, {LATENCY * 1000:.0f} ms latency per call")
    print(f"{'workers':>7} {'threads tasks/s':>16} {'ray tasks/s':>12} {'ideal':>6}")
    for n, a, b in rows:
        print(f"{n:>7} {len(tasks) / a:>16.1f} {len(tasks) / b:>12.1f} {n / LATENCY:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
