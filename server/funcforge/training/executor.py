"""Where task evaluations run: threads in this process, or Ray tasks on a cluster.

The trainer hands an executor the agent, a picklable recipe to rebuild it
elsewhere, the tasks, the toolbox and the split; the executor runs
`agent.run` per task and returns the traces in task order, whichever worker
finished first, so a run gives the same traces on every executor. Judging,
trace ids and progress stay with the trainer (the caller's `on_trace`).

Ray (`pip install 'funcforge[ray]'`): each task is one Ray task. The worker
rebuilds the agent from its `AgentRecipe` once per worker process (a model
agent's client reads its key from the worker's own environment; keys are
never shipped) and runs the tools in its own sandbox, built from the
toolbox's source text. A command agent is shipped as is and needs the
workspace at the same path on every node. `ray.init()` joins the cluster
named by `RAY_ADDRESS`, else starts a local one. Ray clusters started by
`ray start` use token authentication whenever a token exists, but a joining
driver only sends its token in token mode: when `RAY_AUTH_MODE` is unset and a
token is available, funcforge turns token mode on for itself (`ray_auth_mode`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.optimizer.llm import ChatClient, LLMError, make_client
from funcforge.sandbox import SandboxPool, require_sandbox, resolve_mode
from funcforge.traces.model import Trace
from funcforge.training.agents import (
    Agent,
    CommandAgent,
    FunctionCallingAgent,
    ReActAgent,
    TaskSpec,
    Toolbox,
    failed_trace,
)
from funcforge.training.mcp_host import McpHost
from funcforge.training.ratelimit import RateLimitedClient

EXECUTORS = ("thread", "ray")
OnTrace = Callable[[TaskSpec, Trace], None]


@dataclass(frozen=True)
class AgentRecipe:
    """How to build the agent, with no live objects and no secrets (picklable)."""

    spec: str  # function-calling | react | command:CMD
    cwd: Path  # a command agent's working folder
    config: Config  # the workspace's configuration (endpoint, sandbox limits)
    agent_timeout: float
    turn_limit: int
    rate_limit: float | None

    def build(self, client_factory: Callable[[], ChatClient] | None = None) -> Agent:
        """The agent; model agents get `client_factory()` (default: the configured endpoint)."""
        spec = self.spec
        config = self.config
        require_sandbox(resolve_mode(config.sandbox))  # here, and on each Ray worker
        if spec.startswith("command:"):
            # The agent calls the tools through MCP, in the sandbox (training/mcp_host.py).
            host = McpHost(config)
            return CommandAgent(spec[len("command:") :], self.cwd, self.agent_timeout, host)
        if client_factory is None:

            def client_factory() -> ChatClient:
                return RateLimitedClient(make_client(config), self.rate_limit)

        def make_pool(toolbox: Toolbox) -> SandboxPool:
            return SandboxPool(
                {str(toolbox.root / f): text for f, text in toolbox.files.items()},
                timeout=config.call_timeout,
                memory_mb=config.memory_mb,
                isolation=config.sandbox,
            )

        if spec == "function-calling":
            return FunctionCallingAgent(client_factory(), make_pool, self.turn_limit)
        if spec == "react":
            return ReActAgent(client_factory(), make_pool, self.turn_limit)
        raise UserError(f"unknown agent `{spec}`: use function-calling, react or command:CMD")


def run_task(agent: Agent, task: TaskSpec, toolbox: Toolbox, split: str) -> Trace:
    """One task: an agent bug becomes a failed trace; a model error (`LLMError`) propagates."""
    try:
        return agent.run(task, toolbox, split)
    except LLMError:
        raise
    except Exception as exc:  # an agent bug must not end training
        return failed_trace(task, f"agent failed: {type(exc).__name__}: {exc}")


class TaskExecutor(ABC):
    """Runs one batch of tasks and returns their traces in task order."""

    name: str

    @abstractmethod
    def map(
        self,
        agent: Agent,
        recipe: AgentRecipe,
        tasks: list[TaskSpec],
        toolbox: Toolbox,
        split: str,
        on_trace: OnTrace,
    ) -> list[Trace]:
        """Traces of `tasks` in order; `on_trace` runs in this process as each one ends.

        The first `LLMError` stops the batch (tasks not yet started are not run)
        and is raised.
        """


class ThreadExecutor(TaskExecutor):
    """`concurrency` threads in this process sharing one agent."""

    name = "thread"

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)

    def map(
        self,
        agent: Agent,
        recipe: AgentRecipe,
        tasks: list[TaskSpec],
        toolbox: Toolbox,
        split: str,
        on_trace: OnTrace,
    ) -> list[Trace]:
        stop = threading.Event()

        def one(task: TaskSpec) -> Trace:
            if stop.is_set():
                raise LLMError("training stopped")
            try:
                trace = run_task(agent, task, toolbox, split)
            except LLMError:
                stop.set()
                raise
            on_trace(task, trace)
            return trace

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, tasks))


# -- Ray -----------------------------------------------------------------------------

_WORKER_AGENTS: dict[bytes, Agent] = {}  # per worker process: recipe digest -> agent
_WORKER_LOCK = threading.Lock()


def _worker_agent(payload: bytes) -> Agent:
    """The agent a pickled recipe (or command agent) describes, built once per process."""
    key = hashlib.sha256(payload).digest()
    with _WORKER_LOCK:
        agent = _WORKER_AGENTS.get(key)
        if agent is None:
            item = pickle.loads(payload)
            agent = item.build() if isinstance(item, AgentRecipe) else item
            _WORKER_AGENTS[key] = agent
        return agent


def ray_task_body(payload: bytes, task: TaskSpec, toolbox: Toolbox, split: str) -> tuple[str, Any]:
    """What one Ray task runs on its worker: ("ok", trace) or ("llm_error", message)."""
    agent = _worker_agent(payload)
    try:
        return "ok", run_task(agent, task, toolbox, split)
    except LLMError as exc:
        return "llm_error", str(exc)


class RayExecutor(TaskExecutor):
    """Each task a Ray task (one CPU each), at most `concurrency` in flight per worker CPU."""

    name = "ray"

    def __init__(self, concurrency: int, address: str | None = None) -> None:
        mode = ray_auth_mode(os.environ, Path.home())
        if mode is not None:
            os.environ["RAY_AUTH_MODE"] = mode  # before Ray reads its configuration
        try:
            import ray
        except ImportError as exc:
            raise UserError(
                "--executor ray needs Ray: pip install 'funcforge[ray]' (or pip install ray)"
            ) from exc
        self._ray = ray
        self.concurrency = max(1, concurrency)
        if not ray.is_initialized():
            if mode is not None:
                _refresh_ray_config()  # Ray was imported earlier (by a caller) with the old mode
            # No address: RAY_ADDRESS if set, else a local cluster of this machine's CPUs.
            check_reachable(address or os.environ.get("RAY_ADDRESS", ""))
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except ConnectionError as exc:
                raise UserError(
                    f"cannot join the Ray cluster: {exc} (is RAY_ADDRESS right, and does "
                    "this machine have the cluster's token: RAY_AUTH_TOKEN, "
                    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token?)"
                ) from exc
        self._remote = ray.remote(num_cpus=1, max_retries=0)(ray_task_body)
        self._toolboxes: dict[int, Any] = {}

    def cluster_cpus(self) -> int:
        return int(self._ray.cluster_resources().get("CPU", 1))

    def map(
        self,
        agent: Agent,
        recipe: AgentRecipe,
        tasks: list[TaskSpec],
        toolbox: Toolbox,
        split: str,
        on_trace: OnTrace,
    ) -> list[Trace]:
        ray = self._ray
        payload = pickle.dumps(agent if isinstance(agent, CommandAgent) else recipe)
        box = ray.put(toolbox)  # shipped once per batch, not once per task
        in_flight_max = max(self.concurrency, self.cluster_cpus())
        results: list[Trace | None] = [None] * len(tasks)
        pending: dict[Any, int] = {}
        next_i = 0
        try:
            while next_i < len(tasks) or pending:
                while next_i < len(tasks) and len(pending) < in_flight_max:
                    ref = self._remote.remote(payload, tasks[next_i], box, split)
                    pending[ref] = next_i
                    next_i += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    kind, value = _get(ray, ref)
                    if kind == "llm_error":
                        raise LLMError(value)
                    results[i] = value
                    on_trace(tasks[i], value)
        finally:
            for ref in pending:
                ray.cancel(ref)
        return [t for t in results if t is not None]


REACH_SECONDS = 10.0  # how long a cluster's address may take to accept a connection


def check_reachable(address: str, timeout: float = REACH_SECONDS) -> None:
    """A `UserError` when the cluster at `address` (host:port, ray://host:port) does not
    accept a TCP connection within `timeout`: `ray.init` itself retries such an address
    for many minutes. Other forms ("auto", "local", empty) are left to Ray."""
    target = address.strip().removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        else:
            reason = exc.strerror or str(exc)
        raise UserError(
            f"cannot reach the Ray cluster at {address}: {reason} "
            "(is the head node up, and is RAY_ADDRESS its host:port?)"
        ) from exc


def ray_auth_mode(env: Mapping[str, str], home: Path) -> str | None:
    """`token` when the mode is unset and a token is at hand, else None (leave it be).

    `ray start` enables token authentication by itself when it finds a token,
    while a driver joining with the mode unset connects without one and is
    refused ("InvalidAuthToken"); a token sent to a cluster without
    authentication is ignored, so turning token mode on is safe either way.
    """
    if env.get("RAY_AUTH_MODE"):
        return None
    if env.get("RAY_AUTH_TOKEN"):
        return "token"
    path = env.get("RAY_AUTH_TOKEN_PATH")
    candidates = [Path(path)] if path else []
    candidates.append(home / ".ray" / "auth_token")
    if any(p.is_file() for p in candidates):
        return "token"
    return None


def _refresh_ray_config() -> None:
    """Make an already imported Ray re-read RAY_AUTH_MODE (what `ray start` does for itself)."""
    try:
        from ray._raylet import Config  # type: ignore[attr-defined]  # absent before token auth
    except ImportError:
        return
    initialize = getattr(Config, "initialize", None)
    if initialize is not None:
        initialize("")


def _get(ray: Any, ref: Any) -> tuple[str, Any]:
    try:
        return ray.get(ref)  # type: ignore[no-any-return]
    except ray.exceptions.RayError as exc:  # the worker died or Ray failed
        raise UserError(f"a Ray task failed: {exc}") from exc


def make_executor(name: str, concurrency: int) -> TaskExecutor:
    """The executor called `name` (`thread` or `ray`)."""
    if name == "thread":
        return ThreadExecutor(concurrency)
    if name == "ray":
        return RayExecutor(concurrency)
    raise UserError(f"unknown executor `{name}`: use {' or '.join(EXECUTORS)}")
