"""The optimizer prompt: the paper's inputs, within the token budget, deterministic."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funcforge.errors import UserError
from funcforge.optimizer.actions import ACTION_TOOLS
from funcforge.optimizer.prompt import (
    Candidate,
    Failure,
    PromptInputs,
    StatRow,
    bounded_candidates,
    build_prompt,
    estimate_messages,
    reference_prompt_tokens,
)
from funcforge.traces.model import Outcome, Task, ToolCall, Trace

ERRORS = ["KeyError", "ValueError", "ZeroDivisionError"]


def make_trace(i: int, long_output: bool = False) -> Trace:
    failed = i % 3 != 0
    tool = ["convert_units", "add_fractions"][i % 2]
    call = ToolCall(
        id=f"c{i}",
        name=tool,
        arguments_raw=f'{{"x": {i}}}',
        arguments={"x": i},
        result=("Error: " + ERRORS[i % 3] + ": boom")
        if failed
        else ("y" * 5000 if long_output else "42"),
        is_error=failed,
        error_type=ERRORS[i % 3] if failed else None,
        error_message="boom" if failed else None,
    )
    return Trace(
        id=f"run-{i:05d}",
        task=Task(id=f"task-{i}", input=f"What is {i}?", expected="42"),
        messages=[
            {"role": "assistant", "content": "42" if not failed else "I could not compute it"}
        ],
        tool_calls=[call],
        outcome=Outcome(score=0.0 if failed else 1.0, passed=not failed),
    )


def inputs_for(n: int, long_output: bool = False, **kw) -> PromptInputs:
    traces = {f"run-{i:05d}": make_trace(i, long_output) for i in range(n)}
    cands = [
        Candidate(
            key=t.id,
            sort_key=t.id,
            failed=not t.outcome.passed,
            errors=[(c.name, c.error_type) for c in t.tool_calls if c.is_error and c.error_type],
            tools=[c.name for c in t.tool_calls],
        )
        for t in traces.values()
    ]
    return PromptInputs(
        best={
            "convert_units": "def convert_units(x):\n    return x\n",
            "add_fractions": "def add_fractions(a, b):\n    return a + b\n",
        },
        incumbent={
            "convert_units": "def convert_units(x):\n    return x\n",
            "add_fractions": "def add_fractions(a, b):\n    return a + b\n",
        },
        stats=[StatRow("convert_units", 10, 5, [("KeyError", 5)], 0.5)],
        failures=[
            Failure(
                0.2,
                40,
                ["revise convert_units"],
                {"convert_units": "def convert_units(x):\n    return 0\n"},
            )
        ],
        candidates=cands,
        load=traces.__getitem__,
        **kw,
    )


@pytest.mark.parametrize("n", [10, 100, 1000, 5000])
def test_prompt_never_exceeds_budget(n: int) -> None:
    built = build_prompt(inputs_for(n), ACTION_TOOLS, budget=4000, seed=1)
    assert built.tokens <= 4000
    assert estimate_messages(built.messages, ACTION_TOOLS) == built.tokens
    assert built.histories > 0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 300), budget=st.integers(1500, 20000), seed=st.integers(0, 5))
def test_budget_property(n: int, budget: int, seed: int) -> None:
    built = build_prompt(inputs_for(n, long_output=True), ACTION_TOOLS, budget=budget, seed=seed)
    assert built.tokens <= budget


def test_selection_is_deterministic_for_a_seed_and_varies_with_it() -> None:
    a = build_prompt(inputs_for(500), ACTION_TOOLS, budget=3000, seed=7)
    b = build_prompt(inputs_for(500), ACTION_TOOLS, budget=3000, seed=7)
    c = build_prompt(inputs_for(500), ACTION_TOOLS, budget=3000, seed=8)
    assert a.messages == b.messages
    assert a.trace_ids != c.trace_ids


def test_failing_first_spread_across_error_types_with_passing_for_contrast() -> None:
    built = build_prompt(inputs_for(300), ACTION_TOOLS, budget=3000, seed=0)
    body = built.messages[1]["content"]
    first = [make_trace(int(t.split("-")[1])) for t in built.trace_ids[:4]]
    assert all(not t.outcome.passed for t in first)
    pairs = {(t.tool_calls[0].name, t.tool_calls[0].error_type) for t in first}
    assert len(pairs) == 4  # one history from each (tool, error type) before any repeat
    assert "PASSED" in body and "FAILED" in body


def test_prompt_holds_the_papers_inputs() -> None:
    inputs = inputs_for(20)
    inputs.incumbent = dict(inputs.incumbent, new_tool="def new_tool():\n    return 1\n")
    inputs.actions_so_far = ["add new_tool"]
    inputs.feedback = "the code does not parse: line 2"
    body = build_prompt(inputs, ACTION_TOOLS, budget=6000).messages[1]["content"]
    for needle in [
        "List A: the best function list",
        "List B: the incumbent list",
        "Statistics of logged calls",
        "Failure experience",
        "score 0.20 (n=40)",
        "Execution histories of the best version",
        "Actions already taken this step",
        "Your previous answer was rejected",
        "the code does not parse: line 2",
    ]:
        assert needle in body


def test_long_tool_outputs_are_cut_with_a_marker() -> None:
    body = build_prompt(inputs_for(6, long_output=True), ACTION_TOOLS, budget=6000).messages[1][
        "content"
    ]
    assert "…[cut " in body and "y" * 1000 not in body


def test_budget_too_small_for_the_fixed_part_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="token_budget 200 is too small"):
        build_prompt(inputs_for(5), ACTION_TOOLS, budget=200)


def test_reference_prompt_grows_with_traces_ours_does_not() -> None:
    small, large = inputs_for(50), inputs_for(2000)
    ours = build_prompt(large, ACTION_TOOLS, budget=12000).tokens
    assert reference_prompt_tokens(large, ACTION_TOOLS) > 10 * reference_prompt_tokens(
        small, ACTION_TOOLS
    )
    assert ours <= 12000 < reference_prompt_tokens(large, ACTION_TOOLS)


# -- bounded candidates: a million traces of the best version are not a million objects --


def test_bounded_candidates_drop_nothing_while_every_bucket_fits() -> None:
    inp = inputs_for(600)  # 400 failing over 6 (tool, error) buckets, 200 passing over 2 tools
    kept = bounded_candidates(iter(inp.candidates), seed=3)
    assert kept == inp.candidates
    bounded = build_prompt(replace(inp, candidates=kept), ACTION_TOOLS, budget=3000, seed=3)
    assert bounded.messages == build_prompt(inp, ACTION_TOOLS, budget=3000, seed=3).messages


def test_bounded_candidates_keep_a_seeded_sample_per_bucket_whatever_the_order() -> None:
    inp = inputs_for(5000)
    kept = bounded_candidates(iter(inp.candidates), seed=1, cap=40)
    # 6 failing (tool, error) buckets + 2 tools among failing + 2 among passing, 40 each
    assert len(kept) <= 10 * 40 and len(kept) >= 6 * 40
    shuffled = list(inp.candidates)
    random.Random(0).shuffle(shuffled)
    again = bounded_candidates(iter(shuffled), seed=1, cap=40)
    assert {c.sort_key for c in again} == {c.sort_key for c in kept}  # not the store's order
    other = bounded_candidates(iter(inp.candidates), seed=2, cap=40)
    assert {c.sort_key for c in other} != {c.sort_key for c in kept}  # the seed chooses
    for tool in ("convert_units", "add_fractions"):
        assert sum(1 for c in kept if not c.failed and tool in c.tools) == 40
        for err in ERRORS:
            bucket = [c for c in kept if (tool, err) in c.errors]
            assert len(bucket) >= 40 or len(bucket) == sum(
                1 for c in inp.candidates if (tool, err) in c.errors
            )


def test_bounded_candidates_fill_the_prompt_as_all_candidates_do() -> None:
    inp = inputs_for(5000)
    kept = bounded_candidates(iter(inp.candidates), seed=5)
    assert len(kept) < len(inp.candidates)
    full = build_prompt(inp, ACTION_TOOLS, budget=6000, seed=5)
    bounded = build_prompt(replace(inp, candidates=kept), ACTION_TOOLS, budget=6000, seed=5)
    assert bounded.histories == full.histories
    focused = replace(inp, focus="add_fractions")
    focus_full = build_prompt(focused, ACTION_TOOLS, budget=6000, seed=5)
    focus = build_prompt(replace(focused, candidates=kept), ACTION_TOOLS, budget=6000, seed=5)
    assert focus.histories == focus_full.histories
