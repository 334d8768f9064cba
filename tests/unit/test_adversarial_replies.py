"""Hostile and malformed model replies through the real SDK and the fake server: every one survived."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.optimizer.proposal import load_proposal
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
