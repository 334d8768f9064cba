"""The optimizer's prompt, built from the paper's inputs within a token budget.

Inputs: the best function list (List A), the incumbent list after this step's
actions (List B), execution histories of the best version with pass/fail, a
statistics table, and failure experience (rolled-back sets, ascending score).
Histories are chosen to fit the budget: failing ones first, spread round-robin
across (tool, error type), some passing ones for contrast, long tool outputs cut
with a marker, deterministically for a given seed. Tokens are counted over
every message and the tool schemas by a `TokenCounter` (optimizer/tokens.py:
the endpoint's tokenizer, tiktoken, or a calibrated characters / 4); without
one, characters / 4.
"""

from __future__ import annotations

import heapq
import json
import random
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from funcforge.errors import UserError
from funcforge.optimizer.tokens import TokenCounter, estimate_tokens
from funcforge.traces.model import Trace

SYSTEM = """\
You are an optimizer of an LLM agent's functions (its tools). The agent solves
tasks by calling these Python functions. You read the function list, execution
histories with their pass/fail outcome, statistics and the experience of earlier
failed attempts, and improve the functions so that the agent solves more tasks.

Each reply performs exactly ONE action by calling one of the tools
add_function, revise_function or remove_function, with the complete source of
the function in `code` and its parameters as JSON Schema in `arguments`.
Keep function names and parameters compatible with existing calls unless the
histories show they are wrong. Fix root causes seen in the failures; do not
special-case individual tasks. When no further action would help, reply with
the single word TERMINATE."""

CUT_MARKER = "…[cut {n} chars]"
MAX_HISTORIES = 200  # histories shown at most in one prompt
MAX_MISSES = 20  # histories skipped for size before a queue is given up
# Candidates a bucket keeps (`bounded_candidates`): enough that it never runs dry before
# the prompt is full, since a queue yields at most MAX_HISTORIES + MAX_MISSES new ones and
# skips at most as many already taken from other queues.
BUCKET_CAP = 2 * (MAX_HISTORIES + MAX_MISSES)


def estimate_messages(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
    """Estimated tokens of a whole request (contents, 4 per message, tool schemas)."""
    total = sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages)
    if tools:
        total += estimate_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def cut(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters with a marker saying how much went."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 24)
    return text[:keep] + CUT_MARKER.format(n=len(text) - keep)


@dataclass
class Candidate:
    """A trace the prompt may show: a key to load it, and what selection needs."""

    key: Any
    sort_key: Any  # a stable, sortable identity (ties broken in this order)
    failed: bool
    errors: list[tuple[str, str]] = field(default_factory=list)  # (tool, error type)
    tools: list[str] = field(default_factory=list)


@dataclass
class StatRow:
    name: str
    calls: int
    errors: int
    top_errors: list[tuple[str, int]]
    pass_rate: float | None


@dataclass
class Failure:
    """A rolled-back function set (failure experience)."""

    score: float
    n: int
    actions: list[str]
    functions: dict[str, str]
    reason: str = ""  # why it was rolled back or rejected


@dataclass
class PromptInputs:
    best: dict[str, str]  # List A: name -> code
    incumbent: dict[str, str]  # List B: name -> code (after this step's actions)
    stats: list[StatRow]
    failures: list[Failure]
    candidates: list[Candidate]
    load: Callable[[Any], Trace]
    actions_so_far: list[str] = field(default_factory=list)
    feedback: str | None = None  # the validation error of the previous trial
    focus: str | None = None  # optimize one function
    best_score: tuple[float, int] | None = None


@dataclass
class BuiltPrompt:
    messages: list[dict[str, Any]]
    tokens: int  # as counted (see `method`)
    histories: int
    trace_ids: list[str]
    method: str = "estimate (characters / 4)"


def _functions_block(title: str, funcs: dict[str, str], limit: int | None = None) -> str:
    parts = [f"## {title}\n"]
    for name in sorted(funcs):
        code = funcs[name] if limit is None else cut(funcs[name], limit)
        parts.append(f"```python\n{code.rstrip()}\n```\n")
    if not funcs:
        parts.append("(no functions)\n")
    return "\n".join(parts)


def _stats_block(rows: list[StatRow]) -> str:
    lines = [
        "## Statistics of logged calls\n",
        "| function | calls | errors | top errors | pass rate |",
    ]
    lines.append("| --- | --- | --- | --- | --- |")
    for r in rows:
        top = ", ".join(f"{t} ({n})" for t, n in r.top_errors[:3]) or "-"
        rate = "-" if r.pass_rate is None else f"{r.pass_rate:.0%}"
        lines.append(f"| {r.name} | {r.calls} | {r.errors} | {top} | {rate} |")
    return "\n".join(lines) + "\n"


def _failures_block(failures: list[Failure], limit: int) -> str:
    if not failures:
        return ""
    parts = [
        "## Failure experience\n",
        "These function sets were tried and rolled back because they scored lower, or "
        "rejected by the user (lowest first). Do not repeat them.\n",
    ]
    for f in sorted(failures, key=lambda f: f.score):
        parts.append(f"- score {f.score:.2f} (n={f.n}) after: {', '.join(f.actions) or 'changes'}")
        if f.reason:
            parts.append(f"  why: {cut(f.reason, limit)}")
        for name in sorted(f.functions):
            parts.append(f"```python\n{cut(f.functions[name], limit).rstrip()}\n```")
    return "\n".join(parts) + "\n"


def render_history(trace: Trace, output_limit: int) -> str:
    """One execution history, compact: task, calls with results, answer, outcome."""
    outcome = trace.outcome
    verdict = "PASSED" if outcome.passed else "FAILED" if outcome.passed is False else "NOT SCORED"
    score = "" if outcome.score is None else f" (score {outcome.score:.2f})"
    task_id = trace.task.id if trace.task else trace.id
    lines = [f"### Task {task_id} — {verdict}{score}"]
    if trace.task is not None:
        lines.append(f"Input: {cut(trace.task.input, output_limit * 2)}")
        if trace.task.expected is not None:
            lines.append(f"Expected: {cut(trace.task.expected, output_limit)}")
    for call in trace.tool_calls:
        args = cut(call.arguments_raw, output_limit)
        if call.is_error:
            err = f"{call.error_type or 'Error'}: {call.error_message or call.result or ''}"
            lines.append(f"- {call.name}({args}) -> ERROR {cut(err, output_limit)}")
        else:
            lines.append(f"- {call.name}({args}) -> {cut(call.result or '', output_limit)}")
    answer = trace.final_answer
    if answer is not None:
        lines.append(f"Final answer: {cut(answer, output_limit)}")
    return "\n".join(lines) + "\n"


def bounded_candidates(
    items: Iterable[Candidate], seed: int, cap: int = BUCKET_CAP
) -> list[Candidate]:
    """The candidates `order_candidates` can reach, in memory bounded by the buckets, not the traces.

    A million traces of the best version would otherwise be a million candidates
    held through the step. Each failing (tool, error type), and each tool among
    the failing and among the passing traces (a focused step filters on it),
    keeps the `cap` candidates with the lowest seeded hash: a uniform seeded
    sample, independent of the store's order. A candidate stays when any of its
    buckets keeps it. When no bucket holds more than `cap`, nothing is dropped
    and the prompt is exactly the one built from all candidates.
    """
    heaps: dict[tuple[str, ...], list[tuple[int, int, Candidate]]] = {}
    prefix = f"{seed}:"
    for order, c in enumerate(items):
        prio = zlib.crc32((prefix + repr(c.sort_key)).encode("utf-8", "surrogatepass"))
        entry = (-prio, -order, c)  # in a max-heap of the kept: the worst kept is at the top
        keys: list[tuple[str, ...]]
        if c.failed:
            keys = [("e", *e) for e in set(c.errors)] or [("e", "", "wrong answer")]
            keys.extend(("f", t) for t in set(c.tools))
        else:
            keys = [("p", t) for t in set(c.tools)] or [("p", "")]
        for key in keys:
            heap = heaps.get(key)
            if heap is None:
                heap = heaps[key] = []
            if len(heap) < cap:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    kept: dict[int, Candidate] = {}
    for heap in heaps.values():
        for _, neg_order, c in heap:
            kept[-neg_order] = c
    return [kept[k] for k in sorted(kept)]


def order_candidates(cands: list[Candidate], seed: int) -> tuple[list[Candidate], list[Candidate]]:
    """Failing candidates spread across (tool, error type), and passing ones, both seeded."""
    rng = random.Random(seed)
    ordered = sorted(cands, key=lambda c: c.sort_key)
    buckets: dict[tuple[str, str], list[Candidate]] = {}
    passing: list[Candidate] = []
    for c in ordered:
        if not c.failed:
            passing.append(c)
            continue
        keys = sorted(set(c.errors)) or [("", "wrong answer")]
        for k in keys:
            buckets.setdefault(k, []).append(c)
    for k in sorted(buckets):
        rng.shuffle(buckets[k])
    rng.shuffle(passing)
    failing: list[Candidate] = []
    seen: set[Any] = set()
    queues = [deque(buckets[k]) for k in sorted(buckets)]
    while any(queues):
        for q in queues:
            while q:
                c = q.popleft()
                if c.sort_key not in seen:
                    seen.add(c.sort_key)
                    failing.append(c)
                    break
    return failing, passing


def build_prompt(
    inputs: PromptInputs,
    tools: Sequence[dict[str, Any]],
    budget: int,
    seed: int = 0,
    output_limit: int = 300,
    max_histories: int = MAX_HISTORIES,
    counter: TokenCounter | None = None,
) -> BuiltPrompt:
    """The request messages, never over `budget` tokens as `counter` counts them.

    Histories are chosen with the counter's fast per-piece estimate; the whole
    request is then counted (by the endpoint, tiktoken or the calibrated
    estimate) and histories dropped until it fits.
    """
    piece = counter.estimate if counter is not None else estimate_tokens

    def measure(messages: list[dict[str, Any]]) -> int:
        if counter is not None:
            return counter.count(messages, tools)
        return estimate_messages(messages, tools)

    header = [
        "Improve the agent's functions.",
        f"Focus: revise `{inputs.focus}` only." if inputs.focus else "",
        (
            f"The best version scored {inputs.best_score[0]:.2f} (n={inputs.best_score[1]})."
            if inputs.best_score
            else ""
        ),
    ]
    head = "\n".join(h for h in header if h) + "\n"
    tail_parts = []
    if inputs.actions_so_far:
        tail_parts.append(
            "## Actions already taken this step\n"
            + "\n".join(f"- {a}" for a in inputs.actions_so_far)
            + "\n"
        )
    if inputs.feedback:
        tail_parts.append(
            "## Your previous answer was rejected\n"
            + cut(inputs.feedback, 1500)
            + "\nCorrect it and answer again with one valid action.\n"
        )
    tail_parts.append(
        "Call exactly one of add_function, revise_function, remove_function, "
        "or reply TERMINATE if no further change would help."
    )
    tail = "\n".join(tail_parts)

    def fixed(code_limit: int | None) -> list[str]:
        blocks = [head, _functions_block("List A: the best function list", inputs.best, code_limit)]
        if inputs.incumbent != inputs.best:
            blocks.append(
                _functions_block(
                    "List B: the incumbent list after this step's actions",
                    inputs.incumbent,
                    code_limit,
                )
            )
        blocks.append(_stats_block(inputs.stats))
        blocks.append(_failures_block(inputs.failures, code_limit or 2000))
        return blocks

    def assemble(blocks: list[str], histories: list[str]) -> list[dict[str, Any]]:
        body = "\n".join(b for b in blocks if b)
        if histories:
            body += "\n## Execution histories of the best version\n\n" + "\n".join(histories)
        body += "\n" + tail
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]

    code_limit: int | None = None
    blocks = fixed(code_limit)
    used = measure(assemble(blocks, []))
    for limit in (4000, 2000, 1000, 400):
        if used <= budget:
            break
        code_limit = limit
        blocks = fixed(code_limit)
        used = measure(assemble(blocks, []))
    if used > budget:
        raise UserError(
            f"token_budget {budget} is too small: the functions and instructions alone "
            f"need about {used} tokens"
        )

    failing, passing = order_candidates(inputs.candidates, seed)
    if inputs.focus:
        failing = [c for c in failing if inputs.focus in c.tools]
        passing = [c for c in passing if inputs.focus in c.tools]
    remaining = budget - used - piece("\n## Execution histories of the best version\n\n")
    contrast_share = remaining // 4 if passing else 0
    histories: list[str] = []
    ids: list[str] = []

    def take(queue: list[Candidate], allowance: int) -> int:
        spent = 0
        misses = 0
        for c in queue:
            if len(histories) >= max_histories or misses >= MAX_MISSES:
                break
            trace = inputs.load(c.key)
            text = render_history(trace, output_limit)
            cost = piece(text + "\n")
            if cost > allowance - spent:
                text = render_history(trace, output_limit // 4)
                cost = piece(text + "\n")
            if cost > allowance - spent:
                misses += 1
                continue
            histories.append(text)
            ids.append(trace.id)
            spent += cost
        return spent

    spent = take(failing, remaining - contrast_share)
    spent += take(passing, remaining - spent)
    messages = assemble(blocks, histories)
    tokens = measure(messages)
    while tokens > budget and histories:  # the per-piece estimate drifted: drop the last ones
        excess = tokens - budget
        dropped = 0
        while histories and dropped <= excess:
            dropped += piece(histories.pop() + "\n")
            ids.pop()
        messages = assemble(blocks, histories)
        tokens = measure(messages)
    method = counter.method if counter is not None else "estimate (characters / 4)"
    return BuiltPrompt(messages, tokens, len(histories), ids, method)


def reference_prompt_tokens(inputs: PromptInputs, tools: Sequence[dict[str, Any]]) -> int:
    """Size of a prompt embedding every history (the paper's reference code), for benchmarks."""
    blocks = [
        _functions_block("List A", inputs.best),
        _stats_block(inputs.stats),
        _failures_block(inputs.failures, 10**9),
    ]
    histories = [render_history(inputs.load(c.key), 10**9) for c in inputs.candidates]
    body = "\n".join(blocks) + "\n".join(histories)
    return estimate_messages(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}], tools
    )
