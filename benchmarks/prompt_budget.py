"""Prompt-budget benchmark (issue 3): prompt size against trace count, and step overhead.

For 10, 100, 1,000 and 10,000 synthetic native traces (tool calls, ~15% errors)
in a temp workspace with 12 tool functions, prints:

- the estimated tokens of our prompt (`build_prompt` within the configured
  `token_budget`, default 12,000) and of a prompt embedding every history
  (`reference_prompt_tokens`, the paper's reference code), and their ratio;
- the optimizer step's overhead without the model's latency at 10,000 traces:
  `run_step` with a client that answers TERMINATE instantly, median of a few
  runs (target < 200 ms). The store is indexed before timing; ingest has its
  own benchmark (benchmarks/ingest.py).

Run: `python3 benchmarks/prompt_budget.py` (about half a minute).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from funcforge.config import Config, load_config
from funcforge.optimizer.actions import ACTION_TOOLS
from funcforge.optimizer.llm import ChatClient, LLMReply, Usage
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.prompt import PromptInputs, build_prompt, reference_prompt_tokens
from funcforge.optimizer.step import StepContext, candidates, run_step, stat_rows
from funcforge.optimizer.tokens import DEFAULT_BUDGET
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import ERRORS, TOOLS  # the same synthetic tools and errors

STEP_TARGET_MS = 200.0


def tool_source(name: str) -> str:
    """A small, realistic tool function with a docstring."""
    return (
        f"def {name}(expression: str, k: int = 0) -> str:\n"
        f'    """Evaluate `expression` for {name.replace("_", " ")}.\n\n'
        "    Args:\n"
        "        expression: The arithmetic expression to work on.\n"
        "        k: Which step of the task this call is.\n"
        '    """\n'
        "    value = float(expression.split()[0]) * (k + 1)\n"
        "    return f'{value:.4f}'\n"
    )


def make_trace(rng: random.Random, n: int, tools: list[str], version: str = "v0") -> dict[str, Any]:
    """One native-format trace: a question, 1-4 tool calls (some failing), an answer."""
    task = rng.randrange(2000)
    question = f"Task {task}: what is {rng.randint(1, 99)}/{rng.randint(2, 16)} + 1/8?"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You solve math and table questions with tools."},
        {"role": "user", "content": question},
    ]
    failed = False
    for k in range(rng.choice((1, 1, 2, 2, 3, 4))):
        name = rng.choice(tools)
        cid = f"call_{n}_{k}"
        args = json.dumps({"expression": f"{rng.random():.6f} * {rng.randint(1, 500)}", "k": k})
        call = {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        if rng.random() < 0.15:
            failed = True
            content = rng.choice(ERRORS)
        else:
            content = f"{rng.random() * 1000:.4f}"
        messages.append({"role": "tool", "tool_call_id": cid, "content": content})
    passed = not failed and rng.random() < 0.8
    messages.append({"role": "assistant", "content": "7/8" if passed else "42"})
    return {
        "id": f"run-{n:07d}",
        "task": {"id": f"task-{task}", "input": question, "expected": "7/8"},
        "messages": messages,
        "outcome": {"score": 1.0 if passed else 0.0, "passed": passed},
        "toolset_version": version,
        "split": "train",
        "time": f"2026-11-20T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
    }


def write_traces(
    path: Path, start: int, count: int, tools: list[str], mode: str = "w", seed: int = 0
) -> None:
    """Append (or write) `count` synthetic traces numbered from `start`."""
    rng = random.Random(seed * 1_000_003 + start)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as f:
        for n in range(start, start + count):
            f.write(json.dumps(make_trace(rng, n, tools)) + "\n")


def make_workspace(root: Path, traces: int) -> Config:
    """A workspace with one tool file of 12 functions and `traces` traces."""
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "tools.py").write_text(
        '"""Synthetic tools."""\n\n\n' + "\n\n".join(tool_source(t) for t in TOOLS)
    )
    write_traces(root / "traces" / "runs.jsonl", 0, traces, TOOLS)
    return load_config(root)


class InstantClient(ChatClient):
    """A model that answers TERMINATE at once: the step's overhead without latency."""

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
    ) -> LLMReply:
        self._count(Usage(calls=1))
        return LLMReply({"role": "assistant", "content": "TERMINATE"}, Usage(calls=1))


def prompt_sizes(config: Config) -> tuple[int, int, int, float]:
    """(histories shown, our prompt's tokens, reference tokens, seconds to build ours)."""
    store = TraceStore(config)
    store.refresh()
    toolset = load_toolset(config)
    codes = {name: spec.code for name, spec in toolset.functions.items()}
    inputs = PromptInputs(
        best=codes,
        incumbent=codes,
        stats=stat_rows(store, list(codes)),
        failures=[],
        candidates=candidates(store, None),
        load=store.load,
    )
    t0 = time.perf_counter()
    budget = config.token_budget or DEFAULT_BUDGET  # no context window known here
    built = build_prompt(inputs, ACTION_TOOLS, budget, seed=config.seed)
    seconds = time.perf_counter() - t0
    return built.histories, built.tokens, reference_prompt_tokens(inputs, ACTION_TOOLS), seconds


def step_overhead(config: Config, runs: int) -> tuple[list[float], int]:
    """Seconds of `run_step` with an instant model, per run, and the prompt's tokens."""
    store = TraceStore(config)
    store.refresh()
    toolset = load_toolset(config)
    times: list[float] = []
    tokens = 0
    for _ in range(runs):
        ctx = StepContext(
            config=config,
            store=store,
            toolset=toolset,
            client=InstantClient(config.model),
            state=OptimizerState(),
            version="v0",
            execute=False,
        )
        t0 = time.perf_counter()
        result = run_step(ctx)
        times.append(time.perf_counter() - t0)
        if not result.terminated or result.proposal is not None:
            raise RuntimeError("the step did not terminate on TERMINATE")
        tokens = result.prompt_tokens[0]
    return times, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1_000, 10_000])
    parser.add_argument("--runs", type=int, default=5, help="timed steps at the largest size")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="ff-prompt-") as tmp:
        for size in args.sizes:
            config = make_workspace(Path(tmp) / f"ws-{size}", size)
            rows.append((size, config.token_budget or DEFAULT_BUDGET, *prompt_sizes(config)))
        largest = max(args.sizes)
        step_times, step_tokens = step_overhead(load_config(Path(tmp) / f"ws-{largest}"), args.runs)

    print(
        f"{'traces':>7} {'budget':>7} {'shown':>6} {'ours tok':>9} {'reference tok':>14} "
        f"{'ref/ours':>9} {'build ms':>9}"
    )
    over_budget = False
    for size, budget, shown, ours, ref, seconds in rows:
        over_budget |= ours > budget
        print(
            f"{size:>7} {budget:>7} {shown:>6} {ours:>9} {ref:>14} "
            f"{ref / ours:>8.1f}x {seconds * 1000:>9.1f}"
        )
    median_ms = statistics.median(step_times) * 1000
    print()
    print(
        f"step overhead at {largest} traces (instant TERMINATE model, execute=False): "
        f"median {median_ms:.1f} ms over {len(step_times)} runs "
        f"(min {min(step_times) * 1000:.1f}, max {max(step_times) * 1000:.1f}); "
        f"prompt {step_tokens} tokens"
    )
    print()
    ok_budget = not over_budget
    ok_step = median_ms < STEP_TARGET_MS
    print(
        f"target: our prompt within the budget at every size: {'met' if ok_budget else 'NOT met'}"
    )
    print(
        f"target: step overhead < {STEP_TARGET_MS:.0f} ms at {largest} traces: "
        f"{'met' if ok_step else 'NOT met'} ({median_ms:.1f} ms)"
    )
    return 0 if ok_budget and ok_step else 1


if __name__ == "__main__":
    sys.exit(main())
