"""One optimizer step through the real openai SDK and a fake endpoint on loopback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from funcforge.config import load_config
from funcforge.optimizer.llm import make_client
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.proposal import list_proposals
from funcforge.optimizer.step import StepContext, run_step
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore
from tests.conftest import SAMPLES, init_repo
from tests.fakes.openai_server import FakeOpenAI
from tests.lsp.conftest import CONVERT_ARGS, FIXED_CONVERT


def revise(code: str = FIXED_CONVERT, name: str = "convert_units", arguments=CONVERT_ARGS) -> dict:
    return {
        "tool_calls": [
            {
                "name": "revise_function",
                "arguments": {
                    "name": name,
                    "description": "Convert units.",
                    "arguments": arguments,
                    "code": code,
                    "rationale": "miles were missing",
                },
            }
        ]
    }


TERMINATE = {"content": "TERMINATE"}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    dest = tmp_path / "math-tools"
    shutil.copytree(
        SAMPLES / "math-tools", dest, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    return init_repo(dest)


def step(ws: Path, srv: FakeOpenAI, execute: bool = False, function: str | None = None):
    config = load_config(ws, {"base_url": srv.base_url, "model": "fake-model"})
    store = TraceStore(config)
    store.refresh()
    client = make_client(config, backoff_base=0.01, backoff_max=0.05)
    return run_step(
        StepContext(
            config=config,
            store=store,
            toolset=load_toolset(config),
            client=client,
            state=OptimizerState(),
            version="abc1234",
            execute=execute,
            function=function,
        )
    ), config


def prompts(srv: FakeOpenAI) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in srv.chat_requests]


def test_valid_action_then_terminate_makes_a_proposal(ws: Path) -> None:
    with FakeOpenAI(script=[revise(), TERMINATE]) as srv:
        result, config = step(ws, srv, execute=True)
    p = result.proposal
    assert p is not None and p.title == "revise convert_units"
    assert p.replay is not None and "regressions" in p.replay["summary"]
    assert p.function_hashes["convert_units"] and p.files["convert_units"] == "tools/units.py"
    # Traces carry the content hash; the 25 test-split traces are held out of the score.
    assert p.base_score == {"score": pytest.approx(30 / 52), "n": 52, "split": "train"}
    assert p.usage["calls"] == 2
    assert [q.id for q in list_proposals(config.proposals_path)] == [p.id]
    # The request carried the paper's action tools and the evidence.
    body = srv.chat_requests[0].body
    assert {t["function"]["name"] for t in body["tools"]} == {
        "add_function",
        "revise_function",
        "remove_function",
    }
    assert "KeyError" in body["messages"][-1]["content"]


BAD_REPLIES = [
    ({"tool_calls": [{"name": "revise_function", "arguments": "{not json"}]}, "not valid JSON"),
    (revise(arguments={"type": "object", "properties": {"value": {"type": "tuple"}}}), "tuple"),
    (revise(code="def convert_units(:\n    pass\n"), "does not parse"),
    (
        revise(code="def other(value, from_unit, to_unit):\n    return 1\n"),
        "exactly one top-level function",
    ),
    (
        {"tool_calls": [{"name": "remove_function", "arguments": {"name": "no_such_tool"}}]},
        "does not exist",
    ),
    ({"tool_calls": [revise()["tool_calls"][0], revise()["tool_calls"][0]]}, "2 tool calls"),
    ({"content": ""}, "empty"),
    ({"content": "I think the tools are fine."}, "no tool call and is not TERMINATE"),
    (
        revise(code="def convert_units(value, from_unit, to_unit):\n" + "    x = 1\n" * 20000),
        "too long",
    ),
]


@pytest.mark.parametrize(("bad", "needle"), BAD_REPLIES)
def test_invalid_reply_is_retried_with_the_error_fed_back(ws: Path, bad: dict, needle: str) -> None:
    with FakeOpenAI(script=[bad, revise(), TERMINATE]) as srv:
        result, _ = step(ws, srv)
        sent = prompts(srv)
    assert result.proposal is not None and result.proposal.title == "revise convert_units"
    assert len(result.trials) == 1 and needle in result.trials[0]
    assert "Your previous answer was rejected" in sent[1] and needle in sent[1]


def test_an_action_that_never_validates_is_skipped_and_the_step_goes_on(ws: Path) -> None:
    """The paper's loop: three invalid answers skip that action; the next one may succeed."""
    bad = {"content": "no"}
    with FakeOpenAI(script=[bad, bad, bad, revise(), TERMINATE]) as srv:
        result, _ = step(ws, srv)
    assert result.proposal is not None and result.proposal.title == "revise convert_units"
    assert len(result.skipped) == 1 and "no valid answer in 3 trials" in result.skipped[0]
    assert result.skipped[0] in result.proposal.notes


def test_no_valid_action_at_all_is_no_proposal_not_an_error(ws: Path) -> None:
    bad = {"content": "no"}
    with FakeOpenAI(script=[bad] * 9) as srv:
        result, _ = step(ws, srv)
    assert result.proposal is None and not result.terminated
    assert [s.split(":")[0] for s in result.skipped] == [
        "action 1 skipped",
        "action 2 skipped",
        "action 3 skipped",
    ]


def test_rate_limit_then_success(ws: Path) -> None:
    script = [{"status": 429, "headers": {"Retry-After": "0"}}, revise(), TERMINATE]
    with FakeOpenAI(script=script) as srv:
        result, _ = step(ws, srv)
    assert result.proposal is not None and result.usage["retries"] == 1


def test_terminate_first_proposes_nothing(ws: Path) -> None:
    with FakeOpenAI(script=[TERMINATE]) as srv:
        result, config = step(ws, srv)
    assert result.proposal is None and result.terminated
    assert list_proposals(config.proposals_path) == []


def test_focus_allows_only_that_function(ws: Path) -> None:
    other = {"tool_calls": [{"name": "remove_function", "arguments": {"name": "lcm"}}]}
    with FakeOpenAI(script=[other, revise(), TERMINATE]) as srv:
        result, _ = step(ws, srv, function="convert_units")
        sent = prompts(srv)
    assert "Focus: revise `convert_units` only." in sent[0]
    assert "only revise_function `convert_units`" in result.trials[0]


def test_up_to_three_actions_per_step(ws: Path) -> None:
    lcm = (ws / "tools" / "fraction_tools.py").read_text()
    start = lcm.index("def lcm")
    lcm_code = lcm[start:]
    remove = {
        "tool_calls": [{"name": "remove_function", "arguments": {"name": "simplify_fraction"}}]
    }
    add = {
        "tool_calls": [
            {
                "name": "add_function",
                "arguments": {
                    "name": "gcd",
                    "description": "Greatest common divisor.",
                    "arguments": {
                        "type": "object",
                        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                        "required": ["a", "b"],
                    },
                    "code": "import math\n\ndef gcd(a: int, b: int) -> int:\n    return math.gcd(a, b)\n",
                },
            }
        ]
    }
    with FakeOpenAI(script=[revise(), remove, add, {"content": "unused"}]) as srv:
        result, _ = step(ws, srv)
        assert len(srv.chat_requests) == 3
    assert result.proposal is not None
    assert result.proposal.title == "revise convert_units, remove simplify_fraction, add gcd"
    assert "lcm" in lcm_code  # untouched function stays


def test_key_never_reaches_the_proposal_or_transcript(
    ws: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "sk-test-" + "x" * 24
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    config = load_config(ws, {"base_url": "http://127.0.0.1:9/v1"})
    with FakeOpenAI(script=[revise(), TERMINATE], api_key=secret) as srv:
        config.base_url = srv.base_url
        store = TraceStore(config)
        store.refresh()
        record = tmp_path / "t.jsonl"
        client = make_client(config, record=record)
        result = run_step(
            StepContext(
                config,
                store,
                load_toolset(config),
                client,
                OptimizerState(),
                "abc1234",
                execute=False,
            )
        )
    assert result.proposal is not None
    for path in [record, *config.proposals_path.glob("*.json")]:
        assert secret not in path.read_text()
    assert json.loads(record.read_text().splitlines()[0])["type"] == "header"
