"""The paper's offline training loop (Algorithm 1), on a training branch in a git worktree.

First the starting toolset is scored on the train tasks (the baseline). Then,
per epoch (`--epochs N` runs N): stop early if `patience` steps in a row did not
improve; otherwise ask the optimizer for a step (it only proposes); a proposal
that reproduces a rolled-back toolset is skipped with that reason; otherwise it
is committed and scored on the train tasks (in batch mode, the best toolset is
scored on the same batch too), and the policy (`optimizer/policy.py`) keeps it,
or rolls it back by `git revert`, on the trainer's own measurement. Finally the
initial and the selected toolsets are evaluated on the held-out test split
(traces with split "test": reported, never learned from) and a report is written.

Training happens in a worktree on a new branch `funcforge/train/<run>`, under
`.funcforge/train/<run>/worktree`, so the user's checkout and files are never
touched. Progress is saved after every phase in `run.json`; running the same
command again resumes an unfinished run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from funcforge.config import Config, adopt_run_settings, load_config
from funcforge.errors import UserError
from funcforge.fsutil import ensure_state_dir, write_atomic, write_json_atomic
from funcforge.judge import get_judge
from funcforge.optimizer.llm import ChatClient, LLMError, make_client
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.policy import Measurement, Policy
from funcforge.optimizer.step import StepContext, run_step
from funcforge.sandbox import require_sandbox, resolve_mode
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.model import Outcome, Trace
from funcforge.traces.store import TraceStore
from funcforge.training.agents import (
    Agent,
    CommandAgent,
    TaskSpec,
    Toolbox,
)
from funcforge.training.executor import AgentRecipe, TaskExecutor, make_executor
from funcforge.training.ratelimit import RateLimitedClient
from funcforge.training.tasks import batch_for_epoch, load_tasks, split_tasks


@dataclass
class TrainOptions:
    tasks: str | None = None
    epochs: int | None = None
    patience: int | None = None
    agent: str | None = None
    batch_size: int | None = None
    concurrency: int | None = None
    llm: str | None = None
    record: Path | None = None
    fresh: bool = False
    executor: str | None = None  # thread | ray (training/executor.py)


@dataclass
class EpochRecord:
    epoch: int
    commit: str
    train_score: float
    n: int
    decision: str
    actions: list[str] = field(default_factory=list)
    proposal: str | None = None
    applied: str | None = None  # commit of the applied proposal
    reverted: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    reason: str = ""  # the decision's numbers, or why the step changed nothing
    best_score: float | None = None  # the best toolset's score it was compared with
    split: str = "train"


@dataclass
class RunState:
    """Everything needed to resume a run (saved as run.json)."""

    run_id: str
    branch: str
    worktree: str
    workspace: str  # the workspace folder inside the worktree
    tasks: str
    base_commit: str
    settings: dict[str, Any]
    status: str = "running"  # running | finished | stopped
    next_epoch: int = 0  # 0: the baseline; then epochs 1..N
    phase: str = "evaluate"  # evaluate | step
    epochs: list[EpochRecord] = field(default_factory=list)
    optimizer: dict[str, Any] = field(default_factory=dict)
    best_commit: str | None = None
    test: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        data = dict(data)
        data.pop("known", None)  # written by older versions
        data["epochs"] = [EpochRecord(**e) for e in data.get("epochs", [])]
        return cls(**data)


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(
            f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout.strip()


def _agent_in(agent: Agent, root: Path) -> Agent:
    """The agent for a toolset materialised at `root` (a command agent runs there)."""
    if isinstance(agent, CommandAgent):
        return CommandAgent(" ".join(agent.argv), root, agent.timeout, agent.mcp)
    return agent


class Progress:
    """A one-line progress bar per epoch on the terminal (plain lines elsewhere)."""

    def __init__(self, out: TextIO, label: str, total: int) -> None:
        self.out, self.label, self.total, self.done = out, label, total, 0
        self.lock = threading.Lock()
        self.tty = out.isatty()
        self._draw()

    def _draw(self, final: bool = False) -> None:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        line = (
            f"{self.label} [{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total} tasks"
        )
        if self.tty:
            self.out.write("\r" + line + ("\n" if final else ""))
            self.out.flush()
        elif final:
            self.out.write(line + "\n")

    def step(self) -> None:
        with self.lock:
            self.done += 1
            self._draw()

    def close(self) -> None:
        self._draw(final=True)


class Trainer:
    """One training run of a workspace; `run()` trains (or resumes) and reports."""

    def __init__(self, root: Path, options: TrainOptions, out: TextIO = sys.stderr) -> None:
        self.root = root.resolve()
        self.options = options
        self.out = out
        self.config = load_config(self.root)
        self.settings = self._settings()
        self.run: RunState | None = None
        self.run_dir: Path | None = None
        self.executor: TaskExecutor | None = None  # made on first use (Ray starts slowly)
        self.recipe: AgentRecipe | None = None  # how executors rebuild the agent elsewhere
        self._checked = False  # check_inputs ran
        self.state_dir: Path | None = None  # the training workspace's state folder

    # -- setup -----------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        t, o = self.config.train, self.options
        tasks = o.tasks or t.tasks
        if not tasks:
            raise UserError(
                'no task file: pass --tasks FILE or set [tool.funcforge.train] tasks = "..."'
            )
        return {
            "tasks": tasks,
            "epochs": o.epochs if o.epochs is not None else t.epochs,
            "patience": o.patience if o.patience is not None else t.patience,
            "agent": o.agent or t.agent,
            "batch_size": o.batch_size if o.batch_size is not None else t.batch_size,
            "concurrency": o.concurrency if o.concurrency is not None else t.concurrency,
            "judge": t.judge,
            "tolerance": t.tolerance,
            "turn_limit": t.turn_limit,
            "agent_timeout": t.agent_timeout,
            "test_fraction": t.test_fraction,
            "split_seed": t.split_seed,
            "rate_limit": t.rate_limit,
            "executor": o.executor or t.executor,
            "llm": o.llm,
        }

    def check_inputs(self) -> None:
        """Refuse bad inputs before any work: no branch, worktree or evaluation for them.

        The agent's name, the numbers, the task file (read and split) and a
        replayed transcript (read; its path made absolute, so the run reads the
        same file from its worktree) are checked here; each used to fail only
        after a worktree was made, or after the initial evaluation and the
        baseline.
        """
        if self._checked:
            return
        s = self.settings
        agent = str(s["agent"])
        if agent not in ("function-calling", "react") and not (
            agent.startswith("command:") and agent[len("command:") :].strip()
        ):
            raise UserError(f"unknown agent `{agent}`: use function-calling, react or command:CMD")
        for key, least in (("epochs", 0), ("patience", 1), ("concurrency", 1)):
            if int(s[key]) < least:
                raise UserError(f"{key} must be at least {least}, got {s[key]}")
        if s["batch_size"] is not None and int(s["batch_size"]) < 1:
            raise UserError(f"batch size must be at least 1, got {s['batch_size']}")
        train, _ = split_tasks(
            load_tasks(self._tasks_path(s["tasks"])),
            float(s["test_fraction"]),
            int(s["split_seed"]),
        )
        if not train:
            raise UserError(f"{self._tasks_path(s['tasks'])}: no train tasks")
        if s["llm"]:
            s["llm"] = self._replay_spec(str(s["llm"]))
        self._checked = True

    def _replay_spec(self, llm: str) -> str:
        """`replay:FILE` with FILE absolute and readable (relative: cwd, then the workspace)."""
        from funcforge.optimizer.transcript import read_transcript

        name = llm[len("replay:") :].strip() if llm.startswith("replay:") else ""
        if not name:
            raise UserError(
                f"--llm must be replay:FILE (or left out for the configured endpoint), got {llm!r}"
            )
        path = Path(name).expanduser()
        if not path.is_absolute() and not path.exists() and (self.root / path).exists():
            path = self.root / path
        try:
            read_transcript(path)
        except LLMError as exc:
            raise UserError(f"--llm {llm}: {exc}") from None
        return f"replay:{path.resolve()}"

    def _tasks_path(self, tasks: str) -> Path:
        path = Path(tasks)
        if not path.is_absolute():
            path = (self.root / path) if (self.root / path).is_file() else path.resolve()
        return path

    def _train_dir(self) -> Path:
        d = ensure_state_dir(self.config.state_path) / "train"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _find_resumable(self) -> Path | None:
        for run_json in sorted(self._train_dir().glob("*/run.json"), reverse=True):
            try:
                data = json.loads(run_json.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("status") in ("running", "stopped") and data.get("tasks") == str(
                self._tasks_path(self.settings["tasks"])
            ):
                return run_json.parent
        return None

    def _start(self) -> None:
        from funcforge.history.git import open_repo
        from funcforge.history.gitops import head_sha

        repo = open_repo(self.config)
        top = Path(repo.working_tree_dir or self.root).resolve()
        prefix = self.root.relative_to(top).as_posix() if self.root != top else ""
        if head_sha(repo) is None:  # `git rev-parse HEAD` below would fail with git's words
            raise UserError(
                f"the repository {top} has no commits yet: training branches off a commit; "
                "commit your tool files first (git add . && git commit -m 'first commit'), "
                "then train again"
            )
        if not self.options.fresh:
            found = self._find_resumable()
            if found is not None:
                self.run_dir = found
                self.run = RunState.from_dict(json.loads((found / "run.json").read_text()))
                self.say(f"resuming training run {self.run.run_id} at epoch {self.run.next_epoch}")
                return
        dirty = _git(top, "status", "--porcelain", "--", *(self.config.tools or ["."]))
        if dirty:
            self.say(
                "note: uncommitted edits to tool files are not part of training (it starts from HEAD)"
            )
        run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_dir = self._train_dir() / run_id
        while run_dir.exists():
            run_id += "x"
            run_dir = self._train_dir() / run_id
        branch = f"{self.config.train.branch_prefix}/{run_id}"
        worktree = run_dir / "worktree"
        base = _git(top, "rev-parse", "HEAD")
        run_dir.mkdir(parents=True)
        _git(top, "worktree", "add", "-q", "-b", branch, str(worktree), base)
        workspace = worktree / prefix if prefix else worktree
        self.run_dir = run_dir
        self.run = RunState(
            run_id=run_id,
            branch=branch,
            worktree=str(worktree),
            workspace=str(workspace),
            tasks=str(self._tasks_path(self.settings["tasks"])),
            base_commit=base,
            settings={k: v for k, v in self.settings.items() if k != "llm"},
        )
        self.save()
        self.say(f"training on branch {branch} (worktree {worktree})")

    def save(self) -> None:
        """Save run.json, and the policy state as the training workspace's own state.

        The workspace copy is what `log`, the language server and `optimize` read
        in the training worktree: one early-stop counter, the trainer's (its
        steps that made no commit included), not a second one recounted from git.
        """
        assert self.run is not None and self.run_dir is not None
        write_json_atomic(self.run_dir / "run.json", self.run.to_dict())
        if self.run.optimizer and self.state_dir is not None:
            write_json_atomic(ensure_state_dir(self.state_dir) / "state.json", self.run.optimizer)

    def say(self, message: str) -> None:
        self.out.write(f"funcforge train: {message}\n")
        self.out.flush()

    # -- running tasks -----------------------------------------------------------------

    def _agent(self, ws_config: Config, client_factory: Callable[[], ChatClient]) -> Agent:
        require_sandbox(resolve_mode(ws_config.sandbox))  # refuse before any task runs
        self.recipe = AgentRecipe(
            self.settings["agent"],
            Path(self.run.workspace),  # type: ignore[union-attr]
            ws_config,
            float(self.settings["agent_timeout"]),
            int(self.settings["turn_limit"]),
            self.settings["rate_limit"],
        )
        return self.recipe.build(client_factory)

    def run_tasks(
        self,
        agent: Agent,
        tasks: list[TaskSpec],
        toolbox: Toolbox,
        split: str,
        label: str,
    ) -> list[Trace]:
        """Run `tasks` with `concurrency` workers; traces come back in task order."""
        judge = get_judge(self.settings["judge"], float(self.settings["tolerance"]))
        bar = Progress(self.out, label, len(tasks))
        if self.executor is None:
            self.executor = make_executor(
                self.settings.get("executor") or "thread", int(self.settings["concurrency"])
            )

        def done(task: TaskSpec, trace: Trace) -> None:
            self._finish_trace(trace, task, toolbox.version, split, judge)
            bar.step()

        assert self.recipe is not None
        try:
            return self.executor.map(agent, self.recipe, tasks, toolbox, split, done)
        finally:
            bar.close()

    def _finish_trace(
        self, trace: Trace, task: TaskSpec, version: str, split: str, judge: Callable[..., float]
    ) -> None:
        assert self.run is not None
        trace.id = f"train-{self.run.run_id}-{split}-{version[:7]}-{task.id}"
        trace.toolset_version = version
        trace.split = split
        trace.time = trace.time or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if trace.outcome.score is None or "agent_error" in trace.extra:
            if task.expected is not None and "agent_error" not in trace.extra:
                score = judge(trace.final_answer, task.expected)
                trace.outcome = Outcome(score=score, passed=score >= 1.0)
            elif "agent_error" in trace.extra:
                trace.outcome = Outcome(score=0.0, passed=False)

    def write_traces(self, traces: list[Trace], name: str) -> Path:
        assert self.run is not None
        folder = Path(self.run.workspace) / "traces" / "funcforge-train"
        path = folder / f"{self.run.run_id}-{name}.jsonl"
        lines = [json.dumps(t.to_native(), ensure_ascii=False) for t in traces]
        write_atomic(path, "\n".join(lines) + ("\n" if lines else ""))
        return path

    # -- toolsets at commits -------------------------------------------------------------

    def toolbox_at_head(self, ws_config: Config) -> Toolbox:
        toolset = load_toolset(ws_config)
        head = _git(Path(self.run.worktree), "rev-parse", "HEAD")  # type: ignore[union-attr]
        return Toolbox(ws_config.root, toolset.files, list(toolset.functions.values()), head)

    def toolbox_at(self, commit: str, into: Path) -> Toolbox:
        """Materialise the workspace as of `commit` into a temp dir (for test evaluation)."""
        assert self.run is not None
        worktree = Path(self.run.worktree)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=worktree, capture_output=True
        )
        if archive.returncode != 0:
            raise UserError(
                f"git archive {commit} failed: {archive.stderr.decode(errors='replace')}"
            )
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
        prefix = Path(self.run.workspace).relative_to(worktree)
        ws_root = into / prefix
        cfg = load_config(ws_root)
        toolset = load_toolset(cfg)
        return Toolbox(ws_root, toolset.files, list(toolset.functions.values()), commit)

    # -- the loop ------------------------------------------------------------------------

    def train(self) -> RunState:
        self.check_inputs()
        self._start()
        run = self.run
        assert run is not None and self.run_dir is not None
        ws_config = load_config(Path(run.workspace))
        # The worktree holds the committed configuration; how to run (endpoint, limits,
        # optimizer knobs) is what the user has set now, committed or not.
        changed = adopt_run_settings(ws_config, self.config)
        if changed:
            self.say(
                "using the checkout's settings where they differ from the committed ones: "
                + ", ".join(changed)
            )
        self.state_dir = ws_config.state_path
        all_tasks = load_tasks(Path(run.tasks))
        train, test = split_tasks(
            all_tasks, float(self.settings["test_fraction"]), int(self.settings["split_seed"])
        )
        if not train:
            raise UserError(f"{run.tasks}: no train tasks")
        limiter: RateLimitedClient | None = None

        def agent_client() -> ChatClient:
            nonlocal limiter
            if limiter is None:
                limiter = RateLimitedClient(make_client(ws_config), self.settings["rate_limit"])
            return limiter

        agent = self._agent(ws_config, agent_client)
        clients: list[ChatClient] = []

        def optimizer_client() -> ChatClient:
            if not clients:  # made on first use: evaluation alone needs no model
                clients.append(
                    make_client(ws_config, llm=self.settings["llm"], record=self.options.record)
                )
            return clients[0]

        state = OptimizerState.from_dict(run.optimizer) if run.optimizer else OptimizerState()
        epochs, patience = int(self.settings["epochs"]), int(self.settings["patience"])
        ws_config.patience = patience
        state.patience = patience  # `log` in the worktree stops where the trainer does
        policy = Policy(state, patience=patience, tie_rule=ws_config.tie_rule)
        try:
            if "initial" not in run.test and test:
                run.test["initial"] = self.evaluate_at(agent, run.base_commit, test, "test-initial")
                self.save()
            if run.next_epoch == 0:  # the baseline: the starting toolset on the train tasks
                self._evaluate_epoch(agent, ws_config, policy, train, 0)
                run.optimizer = state.to_dict()
                run.next_epoch, run.phase = 1, "step"
                self.save()
            while run.next_epoch <= epochs and run.status != "finished":
                epoch = run.next_epoch
                if run.phase == "step":
                    stop = policy.stop_reason()  # checked before proposing
                    if stop is not None:
                        run.stop_reason = stop
                        self.say(stop)
                        break
                    applied = self._step_epoch(ws_config, optimizer_client(), policy, epoch)
                    run.optimizer = state.to_dict()
                    if applied:
                        run.phase = "evaluate"
                    else:
                        run.next_epoch = epoch + 1
                    self.save()
                if run.phase == "evaluate":
                    self._evaluate_epoch(agent, ws_config, policy, train, epoch)
                    run.optimizer = state.to_dict()
                    run.phase = "step"
                    run.next_epoch = epoch + 1
                    self.save()
            run.best_commit = self._best_commit(state, run)
            if test and "best" not in run.test:
                run.test["best"] = self.evaluate_at(agent, run.best_commit, test, "test-best")
            run.status = "finished"
            run.usage = clients[0].usage.to_dict() if clients else {}
            self.save()
        except LLMError as exc:
            run.status = "stopped"
            run.optimizer = state.to_dict()
            self.save()
            raise UserError(
                f"training stopped at epoch {run.next_epoch}: {exc}; its state is saved in "
                f"{self.run_dir} — run the same command again to resume"
            ) from exc
        finally:
            for c in clients:
                c.close()
            if isinstance(agent, CommandAgent):
                agent.close()
        from funcforge.training.report import write_report

        write_report(self.run_dir, run)
        return run

    def _best_commit(self, state: OptimizerState, run: RunState) -> str:
        return state.best_version or run.base_commit

    def evaluate_at(
        self, agent: Agent, commit: str, tasks: list[TaskSpec], name: str
    ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="funcforge-eval-") as tmp:
            toolbox = self.toolbox_at(commit, Path(tmp))
            agent = _agent_in(agent, toolbox.root)
            traces = self.run_tasks(agent, tasks, toolbox, "test", f"test {name[5:]:>7}")
        self.write_traces(traces, name)
        score = sum(t.outcome.score or 0.0 for t in traces) / len(traces)
        self.say(f"{name}: {score:.3f} on {len(traces)} test tasks (commit {commit[:7]})")
        return {"commit": commit, "score": score, "n": len(traces)}

    def _evaluate_epoch(
        self,
        agent: Agent,
        ws_config: Config,
        policy: Policy,
        train: list[TaskSpec],
        epoch: int,
    ) -> EpochRecord:
        """Score HEAD's toolset on this epoch's train tasks and let the policy judge it.

        Epoch 0 is the baseline. After epoch 0 HEAD is the proposal just committed,
        and in batch mode the best toolset is scored on the same batch so the two
        are compared on the same tasks.
        """
        run = self.run
        assert run is not None
        toolbox = self.toolbox_at_head(ws_config)
        batch = batch_for_epoch(
            train, self.settings["batch_size"], int(self.settings["split_seed"]), epoch
        )
        label = "baseline" if epoch == 0 else f"epoch {epoch:>2}/{self.settings['epochs']}"
        traces = self.run_tasks(agent, batch, toolbox, "train", label)
        self.write_traces(traces, f"epoch-{epoch:02d}")
        failures = sum(1 for t in traces if "agent_error" in t.extra)
        score = sum(t.outcome.score or 0.0 for t in traces) / len(traces)
        n = len(traces)
        best_now: tuple[float, int] | None = None
        state = policy.state
        if (
            epoch > 0
            and self.settings["batch_size"]
            and state.best_version is not None
            and state.best_score is not None
        ):
            best_now = self._score_best_on(agent, state.best_version, batch, epoch)
        previous = run.epochs[-1] if run.epochs else None
        actions = previous.actions if previous is not None and previous.epoch == epoch else []
        verdict = policy.judge(
            Measurement(
                toolbox.version, {sp.name: sp.code for sp in toolbox.specs}, score, n, actions
            ),
            best_now,
        )
        record = (
            previous
            if previous is not None and previous.epoch == epoch
            else EpochRecord(epoch, toolbox.version, score, n, verdict.decision)
        )
        record.commit, record.train_score, record.n = toolbox.version, score, n
        record.decision, record.reason, record.failures = verdict.decision, verdict.reason, failures
        record.best_score = best_now[0] if best_now else None
        if record is not previous:
            run.epochs.append(record)
        if verdict.decision == "rollback":
            record.reverted = self._rollback(ws_config, verdict.rollback_to, verdict.reason)
        self.say(f"{label.strip()}: train score {score:.3f} (n={n}) — {verdict.decision}")
        return record

    def _score_best_on(
        self, agent: Agent, best: str, batch: list[TaskSpec], epoch: int
    ) -> tuple[float, int]:
        """The best toolset's score on this epoch's batch (batch mode compares like with like)."""
        with tempfile.TemporaryDirectory(prefix="funcforge-best-") as tmp:
            toolbox = self.toolbox_at(best, Path(tmp))
            agent = _agent_in(agent, toolbox.root)
            traces = self.run_tasks(agent, batch, toolbox, "train", f"best on batch {epoch:>2}")
        self.write_traces(traces, f"epoch-{epoch:02d}-best")
        return sum(t.outcome.score or 0.0 for t in traces) / len(traces), len(traces)

    def _rollback(self, ws_config: Config, target: str | None, reason: str) -> list[str]:
        from funcforge.history.rollback import rollback

        run = self.run
        assert run is not None
        target = target or run.base_commit
        result = rollback(ws_config, to=target, reason=f"Decided by the trainer: {reason}.")
        self.say(f"rolled back to {target[:7]} ({len(result.reverted)} commit(s) reverted)")
        return list(result.reverted)

    def _step_epoch(
        self, ws_config: Config, client: ChatClient, policy: Policy, epoch: int
    ) -> bool:
        """Ask for a step and commit its proposal; False when the epoch changed nothing."""
        from funcforge.history.git import apply_proposal
        from funcforge.toolset.rewrite import plan_actions

        run = self.run
        assert run is not None
        store = TraceStore(ws_config)
        store.refresh()
        toolset = load_toolset(ws_config)
        head = _git(Path(run.worktree), "rev-parse", "HEAD")
        before = client.usage.to_dict()
        result = run_step(
            StepContext(
                config=ws_config,
                store=store,
                toolset=toolset,
                client=client,
                state=policy.state,
                version=head,
                execute=True,
            )
        )
        after = client.usage.to_dict()
        record = EpochRecord(epoch, head, 0.0, 0, "no change")
        record.usage = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        run.epochs.append(record)
        proposal = result.proposal
        if proposal is None:
            if result.repeat:
                record.decision = "repeat"
                record.reason = result.repeat
            elif result.skipped:
                record.decision = "skipped"
                record.reason = "; ".join(result.skipped)
            else:
                record.reason = "the optimizer proposed no change (TERMINATE)"
            policy.no_change(f"epoch {epoch}: {record.reason}")
            self.say(f"epoch {epoch}: {record.reason}")
            return False
        record.actions = [a.summary() for a in proposal.actions]
        record.proposal = proposal.id
        overrides = {c.file: c.new_text for c in plan_actions(ws_config, toolset, proposal.actions)}
        proposed = load_toolset(ws_config, overrides=overrides)
        functions = {name: spec.code for name, spec in proposed.functions.items()}
        known = policy.known_failure(functions)
        if known is not None or policy.is_best(functions):
            record.decision = "repeat" if known is not None else "no change"
            record.reason = (
                f"the proposal reproduces a rolled-back toolset ({known.version[:7]}, "
                f"score {known.score:.3f}, n={known.n}); skipped, not run again"
                if known is not None
                else "the proposal gives the best toolset unchanged; skipped"
            )
            proposal.status = "rejected"
            proposal.save(ws_config.proposals_path)
            policy.no_change(f"epoch {epoch}: {record.reason}")
            self.say(f"epoch {epoch}: {record.reason}")
            return False
        applied = apply_proposal(ws_config, proposal)
        record.applied = applied.commit
        self.say(f"epoch {epoch}: committed {applied.commit[:7]}: {proposal.title}")
        return True
