"""Training throughput benchmark (issue 7): tasks per second at concurrency 1 and 8.

Runs `--tasks` tasks (default 200) with the function-calling agent through the
real `openai` SDK against the fake OpenAI-compatible server on 127.0.0.1
(tests/fakes/openai_server.py) with 200 ms latency per call; the fake answers
every request with the final answer "42", so each task is one model call.
The toolset is one tiny tool in a temp folder (sandbox workers start only on a
tool call, so none start here). Tasks run on a thread pool the way
`Trainer.run_tasks` does; prints seconds for concurrency 1 and 8 and the
speed-up (target >= 6x).

Run: `python3 benchmarks/train_throughput.py` (about a minute; `--tasks 50` for a quick run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes

from funcforge.config import load_config  # noqa: E402
from funcforge.optimizer.llm import LLMClient  # noqa: E402
from funcforge.sandbox import SandboxPool  # noqa: E402
from funcforge.toolset.toolset import load_toolset  # noqa: E402
from funcforge.training.agents import FunctionCallingAgent, TaskSpec, Toolbox  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, ReceivedRequest, ScriptItem  # noqa: E402

LATENCY = 0.2
TARGET_SPEEDUP = 6.0
TOOL = '''def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
'''


def answer(request: ReceivedRequest) -> ScriptItem:
    """Every request gets the final answer: one model call per task."""
    return {"content": "42"}


def make_toolbox(root: Path) -> Toolbox:
    """A workspace with one tiny tool, as the agent sees it."""
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "math.py").write_text(TOOL)
    config = load_config(root)
    toolset = load_toolset(config)
    return Toolbox(
        root=root,
        files=dict(toolset.files),
        specs=list(toolset.functions.values()),
        version="bench",
    )


def run(base_url: str, toolbox: Toolbox, tasks: list[TaskSpec], concurrency: int) -> float:
    """Seconds to run every task with `concurrency` workers; checks every answer."""
    client = LLMClient("fake-model", api_key="bench-key", base_url=base_url, timeout=30.0)

    def make_pool(box: Toolbox) -> SandboxPool:
        return SandboxPool({str(box.root / f): text for f, text in box.files.items()})

    agent = FunctionCallingAgent(client, make_pool)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        traces = list(pool.map(lambda task: agent.run(task, toolbox, "train"), tasks))
    seconds = time.perf_counter() - t0
    client.close()
    wrong = [t.id for t in traces if t.final_answer != "42"]
    if wrong:
        raise RuntimeError(f"{len(wrong)} tasks did not end with the answer 42: {wrong[:3]}")
    if client.usage.calls != len(tasks):
        raise RuntimeError(f"expected {len(tasks)} model calls, counted {client.usage.calls}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs=2, default=[1, 8], metavar=("LOW", "HIGH"))
    args = parser.parse_args()
    tasks = [
        TaskSpec(id=f"t{i:04d}", input=f"What is {i} + 1?", expected="42")
        for i in range(args.tasks)
    ]
    low, high = args.concurrency
    with (
        tempfile.TemporaryDirectory(prefix="ff-train-") as tmp,
        FakeOpenAI(responder=answer, latency=LATENCY) as fake,
    ):
        toolbox = make_toolbox(Path(tmp))
        run(fake.base_url, toolbox, tasks[: min(4, len(tasks))], 1)  # warm up imports and sockets
        slow = run(fake.base_url, toolbox, tasks, low)
        fast = run(fake.base_url, toolbox, tasks, high)
    speedup = slow / fast
    ideal = len(tasks) * LATENCY
    print(f"{len(tasks)} tasks, one model call each, {LATENCY * 1000:.0f} ms latency per call")
    print(f"{'concurrency':>11} {'seconds':>8} {'tasks/s':>8} {'vs ideal':>9}")
    for n, seconds in ((low, slow), (high, fast)):
        print(f"{n:>11} {seconds:>8.2f} {len(tasks) / seconds:>8.1f} {ideal / n / seconds:>8.0%}")
    print(f"speed-up {high} vs {low}: {speedup:.2f}x")
    met = speedup >= TARGET_SPEEDUP
    print(f"target: >= {TARGET_SPEEDUP:.0f}x faster with {high}: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
