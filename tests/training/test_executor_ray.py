"""`--executor ray`: task evaluations as Ray tasks on a local cluster this test starts.

One cluster per session (`ray start --head --block`, 2 CPUs, in its own process
group, killed at the end); the tests reach it through `RAY_ADDRESS`, the way a
user reaches any cluster. Results must equal the thread executor's.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from funcforge.config import load_config
from funcforge.toolset.toolset import load_toolset
from funcforge.training.agents import TaskSpec, Toolbox
from funcforge.training.executor import AgentRecipe, RayExecutor, ThreadExecutor
from funcforge.training.trainer import Trainer, TrainOptions
from tests.fakes.openai_server import FakeOpenAI, ReceivedRequest
from tests.training.test_trainer import TRANSCRIPT, small_workspace

ray = pytest.importorskip("ray", reason="ray is installed by the test extras (scripts/setup.sh)")

START_TIMEOUT = 120.0
KEY = "sk-ray-test-key-not-secret"

TOOLS = '''import os


def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def write_file(path: str) -> str:
    """Try to write outside the sandbox.

    Args:
        path: Where.
    """
    with open(path, "w") as f:
        f.write("x")
    return "written"


def whoami() -> int:
    """The process the tool runs in."""
    return os.getpid()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A 2-CPU local Ray cluster with token authentication; yields its address and token file."""
    port = _free_port()
    temp = Path("/tmp") / f"ff-ray-{os.getpid()}"  # short: Ray's socket paths are limited
    state = tmp_path_factory.mktemp("ray")
    token = state / "auth_token"  # the cluster's own token: independent of ~/.ray
    token.write_text(secrets.token_hex(32))
    env = dict(
        os.environ,
        OPENAI_API_KEY=KEY,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
    )
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_TOKEN", None)
    log = state / "ray-start.log"
    ray_bin = Path(sys.executable).with_name("ray")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(ray_bin),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ray did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield address, token
    finally:
        if ray.is_initialized():
            ray.shutdown()
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def on_cluster(ray_address: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    """Join as a user would: address and token file given, auth mode left unset."""
    address, token = ray_address
    monkeypatch.setenv("RAY_ADDRESS", address)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    return address


def _toolbox(root: Path) -> Toolbox:
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "t.py").write_text(TOOLS)
    ts = load_toolset(load_config(root))
    return Toolbox(root, ts.files, list(ts.functions.values()), "v1")


ESCAPE = Path("/tmp") / f"ff-ray-escape-{os.getpid()}"


def _script(request: ReceivedRequest) -> dict:
    """Per task: add(n, 1), write_file(), then the sum as the answer (stateless by content)."""
    messages = request.body["messages"]
    task = next(m["content"] for m in messages if m["role"] == "user")
    n = int(task.split()[-1])
    tools_done = [m for m in messages if m["role"] == "tool"]
    if not tools_done:
        return {"tool_calls": [{"name": "add", "arguments": {"a": n, "b": 1}}]}
    if len(tools_done) == 1:
        return {"tool_calls": [{"name": "write_file", "arguments": {"path": str(ESCAPE)}}]}
    if len(tools_done) == 2:
        return {"tool_calls": [{"name": "whoami", "arguments": {}}]}
    return {"content": tools_done[0]["content"]}


def _comparable(trace) -> tuple:
    """What must not depend on the executor (ids and times are per run; pids per process)."""
    calls = [
        (c.name, c.arguments, None if c.name == "whoami" else c.result, c.is_error, c.error_type)
        for c in trace.tool_calls
    ]
    return trace.task.id, calls, trace.final_answer


def test_model_agent_on_ray_equals_threads_and_tools_run_sandboxed_on_the_worker(
    tmp_path: Path, on_cluster: str
) -> None:
    with FakeOpenAI(responder=_script, api_key=KEY) as srv:
        root = tmp_path / "ws"
        root.mkdir()
        (root / "funcforge.toml").write_text(
            f'base_url = "{srv.base_url}"\nmodel = "fake-model"\nmax_retries = 0\n'
        )
        box = _toolbox(root)
        config = load_config(root)
        recipe = AgentRecipe("function-calling", root, config, 30.0, 8, None)
        tasks = [TaskSpec(f"t{i}", f"add one to {i}", str(i + 1)) for i in range(6)]
        seen: list[str] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("OPENAI_API_KEY", KEY)
            local_agent = recipe.build()
            threads = ThreadExecutor(3).map(
                local_agent, recipe, tasks, box, "train", lambda t, _: seen.append(t.id)
            )
        # The driver's environment has no key: workers use their own.
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("OPENAI_API_KEY", raising=False)
            remote_seen: list[str] = []
            executor = RayExecutor(2)
            on_ray = executor.map(
                local_agent, recipe, tasks, box, "train", lambda t, _: remote_seen.append(t.id)
            )
    assert [t.task.id for t in on_ray] == [t.id for t in tasks]  # task order, not finish order
    assert sorted(remote_seen) == sorted(t.id for t in tasks)
    assert [_comparable(t) for t in on_ray] == [_comparable(t) for t in threads]
    for trace, task in zip(on_ray, tasks, strict=True):
        add_call, escape, pid = trace.tool_calls
        assert float(add_call.result or 0) == float(task.expected or 0)
        assert escape.name == "write_file"
        assert int(pid.result or 0) != os.getpid()
    assert not ESCAPE.exists()  # the worker's sandbox kept the write inside
    assert all(KEY not in json.dumps(t.to_native()) for t in on_ray)


def test_train_with_ray_executor_matches_thread_executor(tmp_path: Path, on_cluster: str) -> None:
    runs = {}
    for name in ("thread", "ray"):
        ws = small_workspace(tmp_path / name, train=6, test=2)
        trainer = Trainer(
            ws,
            TrainOptions(llm=f"replay:{TRANSCRIPT}", epochs=1, concurrency=2, executor=name),
            out=io.StringIO(),
        )
        run = trainer.train()
        traces = Path(run.workspace) / "traces" / "funcforge-train"
        lines = (traces / f"{run.run_id}-epoch-00.jsonl").read_text().splitlines()
        outcomes = [(json.loads(x)["task"]["id"], json.loads(x)["outcome"]) for x in lines]
        runs[name] = ([(e.train_score, e.decision, e.actions) for e in run.epochs], outcomes, run)
    assert runs["ray"][0] == runs["thread"][0]
    assert runs["ray"][1] == runs["thread"][1]
    assert runs["ray"][2].test["initial"]["score"] == runs["thread"][2].test["initial"]["score"]
