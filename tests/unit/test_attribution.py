"""Proposals and commits credit what really answered, never the configured model name."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.config import load_config
from funcforge.history.git import apply_proposal
from funcforge.history.versions import funcforge_commits
from funcforge.optimizer.llm import make_client
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.step import StepContext, run_step
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.test_history_support import NEW_CONVERT, make_workspace, scores, sha, write_traces

REVISE = {
    "name": "revise_function",
    "arguments": {
        "name": "convert_units",
        "description": "Convert a length to metres.",
        "arguments": {
            "type": "object",
            "properties": {"value": {"type": "number"}, "unit": {"type": "string"}},
            "required": ["value", "unit"],
        },
        "code": NEW_CONVERT,
    },
}


def _step(root: Path, overrides: dict[str, str], llm: str | None = None):
    config = load_config(root, overrides)
    store = TraceStore(config)
    store.refresh()
    client = make_client(config, llm=llm)
    result = run_step(
        StepContext(
            config=config,
            store=store,
            toolset=load_toolset(config),
            client=client,
            state=OptimizerState(),
            version=sha(root)[:7],
            execute=False,
        )
    )
    return config, result


def test_a_live_answer_is_credited_to_the_model_the_response_names(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    write_traces(config.root, sha(config.root)[:7], scores(0.5, 4))
    script = [{"tool_calls": [REVISE], "model": "gpt-4o-2024-08-06"}, {"content": "TERMINATE"}]
    with FakeOpenAI(script=script) as srv:
        config, result = _step(config.root, {"base_url": srv.base_url, "model": "gpt-4o"})
    assert result.proposal is not None and result.proposal.model == "gpt-4o-2024-08-06"
    applied = apply_proposal(config, result.proposal)
    assert "Co-authored-by: funcforge (gpt-4o-2024-08-06) <" in applied.message
    (commit,) = funcforge_commits_of(config)
    assert commit.model == "gpt-4o-2024-08-06"


def funcforge_commits_of(config):
    from funcforge.history.git import open_repo

    with open_repo(config) as repo:
        return funcforge_commits(repo)


def test_a_replayed_answer_is_credited_to_the_transcript(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    write_traces(config.root, sha(config.root)[:7], scores(0.5, 4))
    transcript = tmp_path / "answers.jsonl"
    completion = {
        "id": "x",
        "object": "chat.completion",
        "model": "gpt-4o",  # what a hand-written transcript may claim
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {
                                "name": "revise_function",
                                "arguments": json.dumps(REVISE["arguments"]),
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    stop = {
        **completion,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "TERMINATE"}}],
    }
    lines = [{"type": "header", "format": 1}] + [
        {"type": "exchange", "response": r} for r in (completion, stop)
    ]
    transcript.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    config, result = _step(config.root, {}, llm=f"replay:{transcript}")
    assert result.proposal is not None
    assert result.proposal.model == "replay of answers.jsonl"
    message = apply_proposal(config, result.proposal).message
    assert "Co-authored-by: funcforge (replay of answers.jsonl) <" in message
    assert "gpt-4o" not in message
