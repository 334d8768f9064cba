"""Hostile and malformed model replies through the real SDK and the fake server: every one survived."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from funcforge.config import load_config
from funcforge.errors import UserError
from funcforge.optimizer.llm import make_client
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.proposal import load_proposal
from funcforge.optimizer.step import StepContext, run_step
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.test_step import TERMINATE, revise, step, ws  # noqa: F401 - the fixture

RAW_LONE = "\\ud800"  # a JSON escape that decodes to a lone surrogate


def raw_completion(message_json: str, finish: str = "tool_calls") -> dict:
    """A 200 answer whose body is written by hand (to carry escapes the SDK never makes)."""
    body = (
        '{"id": "x", "object": "chat.completion", "model": "fake-model", "choices": '
        f'[{{"index": 0, "finish_reason": "{finish}", "message": {message_json}}}]}}'
    )
    return {"raw": body}


def lone_surrogate_action() -> dict:
    action = revise()["tool_calls"][0]["arguments"]
    args = json.dumps(action)
    args = args.replace("miles were missing", f"miles {RAW_LONE} were missing")
    args = args.replace("Convert units.", f"Convert {RAW_LONE} units.")
    call = {"id": "c1", "type": "function", "function": {"name": "revise_function"}}
    call["function"]["arguments"] = args
    return raw_completion(json.dumps({"role": "assistant", "content": None, "tool_calls": [call]}))


def test_lone_surrogates_in_rationale_and_description_are_escaped_not_fatal(
    ws: Path,  # noqa: F811
) -> None:
    with FakeOpenAI(script=[lone_surrogate_action(), TERMINATE]) as srv:
        result, config = step(ws, srv)
    proposal = result.proposal
    assert proposal is not None
    saved = load_proposal(config.proposals_path, proposal.id)
    assert "miles \\ud800 were missing" in saved.rationale
    assert saved.actions[0].description == "Convert \\ud800 units."


def run(root: Path, srv: FakeOpenAI, record: Path | None = None, llm: str | None = None, **over):
    """One optimizer step against `srv` (or a replay), with config overrides."""
    config = load_config(root, {"base_url": srv.base_url, "model": "fake-model", **over})
    store = TraceStore(config)
    store.refresh()
    client = make_client(config, llm=llm, record=record, backoff_base=0.01, backoff_max=0.05)
    try:
        result = run_step(
            StepContext(
                config=config,
                store=store,
                toolset=load_toolset(config),
                client=client,
                state=OptimizerState(),
                version="abc1234",
                execute=False,
            )
        )
    finally:
        client.close()
    return result, config


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_call(arguments_text: str) -> dict:
    call = {"id": "c1", "type": "function", "function": {"name": "revise_function"}}
    call["function"]["arguments"] = arguments_text
    return raw_completion(json.dumps({"role": "assistant", "content": None, "tool_calls": [call]}))


def revise_args(**changes) -> dict:
    args = dict(revise()["tool_calls"][0]["arguments"])
    args.update(changes)
    return args


FED_BACK = [
    # tool-call arguments nested 5,000 deep
    (deep_call('{"name": "convert_units", "code": ' + nested(5000) + "}"), "nested more than"),
    # the `arguments` schema nested 5,000 deep, as an object and as a JSON string
    (
        deep_call(
            json.dumps(revise_args(arguments=None)).replace(
                '"arguments": null', '"arguments": ' + '{"a":' * 5000 + "1" + "}" * 5000
            )
        ),
        "nested more than",
    ),
    (
        {
            "tool_calls": [
                {"name": "revise_function", "arguments": revise_args(arguments=nested(5000))}
            ]
        },
        "nested more than",
    ),
    # a tool call with a null function name
    (
        raw_completion(
            json.dumps(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": None, "arguments": "{}"},
                        }
                    ],
                }
            )
        ),
        "no function name",
    ),
    # content as a list of parts (not TERMINATE): read as text, fed back
    (
        raw_completion(
            json.dumps({"role": "assistant", "content": [{"type": "text", "text": "I would"}]}),
            finish="stop",
        ),
        "no tool call and is not TERMINATE",
    ),
    # cut off at the output limit: the feedback names finish_reason "length"
    (
        {
            "tool_calls": [
                {"name": "revise_function", "arguments": '{"name": "convert_units", "code": "def'}
            ],
            "finish_reason": "length",
        },
        'finish_reason "length"',
    ),
]


@pytest.mark.parametrize(("bad", "needle"), FED_BACK)
def test_unusable_answers_are_fed_back_and_the_step_goes_on(
    ws: Path,  # noqa: F811
    bad: dict,
    needle: str,
) -> None:
    with FakeOpenAI(script=[bad, revise(), TERMINATE]) as srv:
        result, _ = run(ws, srv)
        sent = [r.body["messages"][-1]["content"] for r in srv.chat_requests]
    assert result.proposal is not None and result.proposal.title == "revise convert_units"
    assert len(result.trials) == 1 and needle in result.trials[0]
    assert needle in sent[1]


RETRIED = [
    {"raw": "<html>502 Bad Gateway</html>"},
    {"completion": {"object": "chat.completion", "model": "m"}},  # no choices
    {"raw": '{"choices": ' + nested(5000) + "}"},  # a body nested 5,000 deep
]


@pytest.mark.parametrize("bad", RETRIED)
def test_malformed_200_bodies_are_retried_not_fatal(ws: Path, bad: dict) -> None:  # noqa: F811
    with FakeOpenAI(script=[bad, revise(), TERMINATE]) as srv:
        result, _ = run(ws, srv)
    assert result.proposal is not None
    assert result.usage["retries"] == 1 and result.trials == []


def test_list_of_parts_saying_terminate_ends_the_step(ws: Path) -> None:  # noqa: F811
    parts = raw_completion(
        json.dumps({"role": "assistant", "content": [{"type": "text", "text": "TERMINATE"}]}),
        finish="stop",
    )
    with FakeOpenAI(script=[parts]) as srv:
        result, _ = run(ws, srv)
    assert result.proposal is None and result.terminated


def test_trickling_server_is_cut_at_the_request_timeout_as_wall_time(ws: Path) -> None:  # noqa: F811
    # One byte every 0.2 s of a ~600-byte answer would take two minutes; every single
    # read arrives well within the timeout, so only a wall-clock deadline ends it.
    with FakeOpenAI(script=[{"trickle": 0.2, **TERMINATE}] * 3) as srv:
        started = time.monotonic()
        with pytest.raises(UserError, match=r"timed out after 1 s; gave up after 2 attempts"):
            run(ws, srv, request_timeout=1.0, max_retries=1)
        elapsed = time.monotonic() - started
    assert elapsed < 20, f"held for {elapsed:.0f} s"


def test_step_timeout_bounds_the_whole_step(ws: Path) -> None:  # noqa: F811
    slow_invalid = {"delay": 0.6, "content": "not an action"}
    with FakeOpenAI(script=[slow_invalid] * 6) as srv:
        with pytest.raises(UserError, match=r"step_timeout|time limit"):
            run(ws, srv, step_timeout=1.0, max_trials=6)
        assert len(srv.chat_requests) <= 3


def test_suspicious_unicode_in_code_is_flagged_in_the_proposal(ws: Path) -> None:  # noqa: F811
    from tests.lsp.conftest import FIXED_CONVERT

    code = FIXED_CONVERT.replace(
        "def convert_units", "# admin\u202e \u2066# check\u2069\ndef convert_units", 1
    )
    code = code.replace("def convert_units", "# zero\u200bwidth\ndef convert_units", 1)
    with FakeOpenAI(script=[revise(code=code), TERMINATE]) as srv:
        result, config = run(ws, srv)
    proposal = result.proposal
    assert proposal is not None
    flagged = load_proposal(config.proposals_path, proposal.id).suspicious_unicode
    places = flagged["convert_units"]
    assert any("U+202E RIGHT-TO-LEFT OVERRIDE" in p and p.startswith("line 1,") for p in places)
    assert any("U+2066 LEFT-TO-RIGHT ISOLATE" in p for p in places)
    assert any("U+200B ZERO WIDTH SPACE" in p and p.startswith("line 2,") for p in places)


def test_ag2_properties_only_arguments_are_read_as_a_schema(ws: Path) -> None:  # noqa: F811
    from tests.lsp.conftest import CONVERT_ARGS

    properties_only = dict(CONVERT_ARGS["properties"])
    with FakeOpenAI(script=[revise(arguments=properties_only), TERMINATE]) as srv:
        result, _ = run(ws, srv)
    assert result.trials == []
    proposal = result.proposal
    assert proposal is not None
    schema = proposal.actions[0].arguments
    assert schema["type"] == "object" and schema["properties"] == properties_only
    assert set(schema["required"]) == set(CONVERT_ARGS.get("required", []))
    assert any("AG2" in note for note in proposal.notes)


def test_lone_surrogate_in_message_content_with_record(ws: Path, tmp_path: Path) -> None:  # noqa: F811
    said = raw_completion(
        json.dumps({"role": "assistant", "content": "thinking " + "\udc00"}).replace(
            "\\udc00", RAW_LONE
        ),
        finish="stop",
    )
    transcript = tmp_path / "run.jsonl"
    with FakeOpenAI(script=[said, revise(), TERMINATE]) as srv:
        result, _ = run(ws, srv, record=transcript)
    assert result.proposal is not None
    text = transcript.read_text(encoding="utf-8")
    assert "thinking \\\\ud800" in text  # escaped, written
    assert "\\\\ud800 were" not in text
