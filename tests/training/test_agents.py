"""The model agents through the real SDK and a fake endpoint; tools run in the sandbox."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from funcforge.config import load_config
from funcforge.errors import UserError
from funcforge.optimizer.llm import make_client
from funcforge.sandbox import SandboxPool
from funcforge.toolset.toolset import load_toolset
from funcforge.training.agents import (
    FunctionCallingAgent,
    ReActAgent,
    TaskSpec,
    Toolbox,
    parse_react,
)
from funcforge.training.trainer import Trainer, TrainOptions
from tests.conftest import SAMPLES, git, init_repo
from tests.fakes.openai_server import FakeOpenAI

TOOLS = '''import os


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert lengths.

    Args:
        value: The quantity.
        from_unit: Unit of value.
        to_unit: Target unit.
    """
    table = {"m": 1.0, "km": 1000.0}
    return value * table[from_unit] / table[to_unit]


def whoami() -> int:
    """The process id the tool runs in."""
    return os.getpid()
'''


@pytest.fixture
def toolbox(tmp_path: Path) -> Toolbox:
    ws = tmp_path / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "t.py").write_text(TOOLS)
    config = load_config(ws)
    ts = load_toolset(config)
    return Toolbox(ws, ts.files, list(ts.functions.values()), "v1")


def pool_factory(box: Toolbox) -> SandboxPool:
    return SandboxPool(
        {str(box.root / f): t for f, t in box.files.items()}, timeout=5, memory_mb=512
    )


def client_for(srv: FakeOpenAI, root: Path):
    config = load_config(root, {"base_url": srv.base_url, "model": "fake-model", "max_retries": 0})
    return make_client(config)


def call(name: str, args: dict) -> dict:
    return {"tool_calls": [{"name": name, "arguments": args}]}


def test_function_calling_agent_runs_tools_in_the_sandbox(toolbox: Toolbox) -> None:
    script = [
        call("convert_units", {"value": 5, "from_unit": "mile", "to_unit": "km"}),
        call("whoami", {}),
        {"content": "I could not compute it"},
    ]
    with FakeOpenAI(script=script) as srv:
        agent = FunctionCallingAgent(client_for(srv, toolbox.root), pool_factory, turn_limit=5)
        trace = agent.run(TaskSpec("t1", "5 mile in km?", "8.05"), toolbox, "train")
        first = srv.chat_requests[0].body
    assert {t["function"]["name"] for t in first["tools"]} == {"convert_units", "whoami"}
    err, pid = trace.tool_calls
    assert err.is_error and err.error_type == "KeyError" and "mile" in (err.error_message or "")
    assert not pid.is_error and int(pid.result or 0) != os.getpid()  # ran in another process
    assert trace.final_answer == "I could not compute it"


def test_function_calling_turn_limit(toolbox: Toolbox) -> None:
    loop = call("convert_units", {"value": 1, "from_unit": "m", "to_unit": "km"})
    with FakeOpenAI(script=[loop] * 3) as srv:
        agent = FunctionCallingAgent(client_for(srv, toolbox.root), pool_factory, turn_limit=3)
        trace = agent.run(TaskSpec("t1", "q"), toolbox, "train")
    assert "turn limit (3)" in trace.extra["agent_error"] and len(trace.tool_calls) == 3


def test_react_agent_parses_tolerantly(toolbox: Toolbox) -> None:
    replies = [
        {
            "content": "Thought: convert\nAction: `convert_units`\nAction Input: ```json\n{'value': 2, 'from_unit': 'km', 'to_unit': 'm'}\n``` trailing"
        },
        {"content": "Thought: oops, nonsense"},
        {"content": "Thought: done\nFinal Answer: 2000"},
    ]
    with FakeOpenAI(script=replies) as srv:
        agent = ReActAgent(client_for(srv, toolbox.root), pool_factory, turn_limit=5)
        trace = agent.run(TaskSpec("t1", "2 km in m?", "2000"), toolbox, "train")
        third = srv.chat_requests[2].body["messages"]
    assert [c.name for c in trace.tool_calls] == ["convert_units"]
    assert trace.tool_calls[0].result == "2000.0"
    assert trace.final_answer == "2000"
    assert any("could not parse" in m["content"] for m in third if m["role"] == "user")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Action: f\nAction Input: {"a": 1}', ("f", {"a": 1})),
        ("Action: f(a)\nAction Input: {'a': 1}\nObservation: x", ("f", {"a": 1})),
        ("Thought: x\nFinal Answer: 7/8", "7/8"),
        ('Action 1: g\nAction 1 Input: {"b": [1, 2]} and more', ("g", {"b": [1, 2]})),
        ("nothing here", None),
    ],
)
def test_parse_react(text: str, expected: object) -> None:
    assert parse_react(text) == expected


def test_training_with_a_model_agent_and_an_endpoint_that_fails_mid_training(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "math"
    shutil.copytree(
        SAMPLES / "math-tools", ws, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    tasks = [json.loads(x) for x in (ws / "tasks.jsonl").read_text().splitlines() if x][:3]
    for t in tasks:
        t["split"] = "train"
    (ws / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    init_repo(ws)
    git(ws, "config", "user.name", "Ada")
    git(ws, "config", "user.email", "ada@example.com")

    def responder(request):
        tools = {t["function"]["name"] for t in request.body.get("tools") or []}
        if "revise_function" in tools:
            return {"status": 503}
        return {"content": "42"}

    with FakeOpenAI(responder=responder) as srv:
        (ws / "funcforge.toml").write_text(
            f'base_url = "{srv.base_url}"\nmodel = "fake-model"\nmax_retries = 1\nrequest_timeout = 5\n'
            '[train]\nagent = "function-calling"\ntasks = "tasks.jsonl"\n'
        )
        git(ws, "add", "-A")
        git(ws, "commit", "-qm", "config")
        trainer = Trainer(ws, TrainOptions(epochs=2), out=io.StringIO())
        with pytest.raises(
            UserError, match=r"training stopped at epoch 1: .*run the same command again to resume"
        ):
            trainer.train()
        saved = json.loads((trainer.run_dir / "run.json").read_text())
        assert saved["status"] == "stopped" and saved["phase"] == "step"
        assert saved["epochs"][0]["n"] == 3  # the evaluation went through the model agent
        agent_requests = [
            r for r in srv.chat_requests if "revise_function" not in json.dumps(r.body.get("tools"))
        ]
        assert len(agent_requests) == 3
    with FakeOpenAI(
        script=[{"content": "TERMINATE"}], responder=lambda r: {"content": "42"}
    ) as srv2:
        (ws / "funcforge.toml").write_text(
            (ws / "funcforge.toml").read_text().replace(srv.base_url, srv2.base_url)
        )
        # Only the checkout's config is edited (uncommitted): the resumed run follows it.
        out = io.StringIO()
        run = Trainer(ws, TrainOptions(epochs=1), out=out).train()
        assert "differ from the committed ones: base_url" in out.getvalue()
        assert srv2.chat_requests  # the new endpoint answered
    assert run.status == "finished" and run.run_id == saved["run_id"]
