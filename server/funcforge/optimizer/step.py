"""One optimizer step: measure, ask the model for actions, validate, replay-check, propose.

The step is the paper's inner loop: up to `max_actions_per_step` requests, each
answered by one action (or TERMINATE); an invalid action is retried up to
`max_trials` times with the exact error fed back. Valid actions are applied to
an in-memory incumbent (List B), never to the files: the result is a saved
`Proposal` that the user or the trainer applies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.optimizer.actions import (
    ACTION_TOOLS,
    ActionError,
    Terminate,
    parse_reply,
    suspicious_unicode,
    validate,
)
from funcforge.optimizer.attribution import answered_by, credit
from funcforge.optimizer.llm import LOG, ChatClient, ContextOverflowError, LLMError, LLMReply
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.prompt import (
    BuiltPrompt,
    Candidate,
    Failure,
    PromptInputs,
    StatRow,
    bounded_candidates,
    build_prompt,
)
from funcforge.optimizer.proposal import Proposal, new_proposal_id
from funcforge.optimizer.tokens import Budget, counter_for, resolve_budget
from funcforge.toolset.action import Action
from funcforge.toolset.rewrite import RewriteError, plan_actions
from funcforge.toolset.toolset import Toolset, load_toolset
from funcforge.traces.store import TraceStore

Progress = Callable[[int, str], None]


class Cancelled(UserError):
    """The user cancelled the optimization."""


@dataclass
class StepResult:
    proposal: Proposal | None
    terminated: bool
    usage: dict[str, int] = field(default_factory=dict)
    trials: list[str] = field(default_factory=list)  # validation errors fed back
    prompt_tokens: list[int] = field(default_factory=list)  # as counted, per request
    notes: list[str] = field(default_factory=list)  # what the step had to work around
    budget: str = ""  # the prompt's budget and how tokens were counted
    skipped: list[str] = field(default_factory=list)  # actions that never validated, and why
    repeat: str | None = None  # the actions rebuild a rolled-back or rejected set: not proposed


@dataclass
class StepContext:
    config: Config
    store: TraceStore
    toolset: Toolset
    client: ChatClient
    state: OptimizerState
    version: str
    execute: bool = True
    function: str | None = None
    cancel: threading.Event | None = None
    progress: Progress | None = None


def _codes(toolset: Toolset) -> dict[str, str]:
    return {name: spec.code for name, spec in toolset.functions.items()}


def measured_score(store: TraceStore, *versions: str) -> tuple[float, int] | None:
    """Mean score and n of the traces recorded with the first of `versions` that has any.

    A toolset is known by its commit and by its content hash (what runs on an
    uncommitted tree, or a generator without git, record), so callers pass both.
    """
    table = store.version_stats()
    for version in versions:
        stats = table.get(version)
        if stats is not None and stats.n and stats.mean_score is not None:
            return float(stats.mean_score), int(stats.n)
    return None


def same_content_score(
    config: Config, store: TraceStore, toolset: Toolset
) -> tuple[float, int] | None:
    """The toolset's score under the other commits that had exactly its tools.

    A roll-back commit restores an earlier toolset, and nothing runs under the
    roll-back commit itself: its traces name the earlier commit. Without this
    the next step's proposal, and its commit, said "base version ... scored no
    traces" while `log` and `review` (which group commits by content) gave the
    score. The traces of all those commits are pooled, as `log` pools them.
    """
    from funcforge.history.contents import commit_contents
    from funcforge.history.git import open_repo

    try:
        with open_repo(config) as repo:
            contents = commit_contents(repo, config)
    except UserError:
        return None  # not a git repository: no commits to match
    digest = toolset.content_hash()
    shas = [sha for sha, content in contents.items() if content == digest]
    total, n = 0.0, 0
    for version, stats in store.version_stats().items():
        if (
            len(version) >= 7
            and stats.n
            and stats.mean_score is not None
            and any(sha.startswith(version) for sha in shas)
        ):
            total += float(stats.mean_score) * int(stats.n)
            n += int(stats.n)
    return (total / n, n) if n else None


def version_aliases(version: str, toolset: Toolset) -> tuple[str, ...]:
    digest = toolset.content_hash()
    return (version, digest, f"dirty-{digest}")


def stat_rows(store: TraceStore, names: list[str]) -> list[StatRow]:
    """The statistics table of the prompt, one row per tool in the toolset."""
    stats = store.tool_stats()
    rows = []
    for name in sorted(set(names) | set(stats)):
        s = stats.get(name)
        if s is None:
            rows.append(StatRow(name, 0, 0, [], None))
        else:
            rows.append(StatRow(name, s.calls, s.errors, s.error_types.most_common(3), s.pass_rate))
    return rows


def candidates(store: TraceStore, version: str | None, seed: int = 0) -> list[Candidate]:
    """Traces the prompt may show: those of `version`, else all of them.

    Read one at a time and bounded per bucket (`bounded_candidates`): memory
    stays flat however many traces the version has.
    """
    of_version = bool(version) and version in store.version_stats()  # else all of them
    summaries = store.iter_summaries(version=version if of_version else None)

    def each() -> Iterator[Candidate]:
        for s in summaries:
            errors = sorted({(tool, etype) for tool, etype, _ in s.errors}) if s.errors else []
            failed = s.passed is False or (s.passed is None and bool(errors))
            yield Candidate(s, (s.file, s.line, s.ordinal), failed, errors, list(s.tools))

    return bounded_candidates(each(), seed)


def repeat_of_failure(state: OptimizerState, functions: dict[str, str]) -> str | None:
    """Why `functions` is not proposed: it is a rolled-back or rejected set; None otherwise."""
    from funcforge.optimizer.policy import Policy

    known = Policy(state).known_failure(functions)
    if known is None:
        return None
    kind = "rejected" if known.reason.startswith("rejected") else "rolled-back"
    return (
        f"the proposal reproduces a {kind} toolset ({known.version[:16]}, score "
        f"{known.score:.3f}, n={known.n}: {known.reason}); skipped, not run again"
    )


def _emit(ctx: StepContext, pct: int, message: str) -> None:
    if ctx.cancel is not None and ctx.cancel.is_set():
        raise Cancelled("optimization cancelled")
    if ctx.progress is not None:
        ctx.progress(pct, message)


def evidence_for(store: TraceStore, names: list[str]) -> dict[str, Any]:
    """Failing-call evidence per touched function: counts, top errors, example locations."""
    stats = store.tool_stats()
    out: dict[str, Any] = {}
    for name in names:
        s = stats.get(name)
        if s is None:
            continue
        out[name] = {
            "calls": s.calls,
            "errors": s.errors,
            "error_types": dict(s.error_types.most_common(5)),
            "examples": [str(r) for refs in s.examples.values() for r in refs][:5],
            "pass_rate": s.pass_rate,
        }
    return out


# Context-length refusals survived per step: a backstop only. The step stops
# earlier when the prompt can get no smaller (see `_ask`).
MAX_OVERFLOWS = 12


def _shrunk_budget(
    config: Config, client: ChatClient, budget: Budget, counted: int, exc: ContextOverflowError
) -> Budget:
    """A budget below what overflowed: what fits the window the error named, and at most 3/4.

    The counter has already learnt the endpoint's figure for the refused prompt
    (when the error gave one), so the window can be compared with its counts as they are.
    """
    fitted = resolve_budget(config, client, window=exc.limit) if exc.limit else budget
    tokens = fitted.tokens
    if not exc.limit or not exc.requested or tokens >= counted:
        # Nothing to go by, or the counts say the refused prompt fits: they are wrong, shrink.
        tokens = min(tokens, int(counted * 0.75))
    return Budget(max(0, tokens), fitted.window, fitted.reserve, fitted.source)


def _characters(messages: list[dict[str, Any]]) -> int:
    """The prompt's size in characters (whether a rebuilt prompt really is smaller)."""
    return sum(len(str(m.get("content") or "")) for m in messages)


def _with_finish_reason(feedback: str, reply: LLMReply) -> str:
    """The validation error, naming a reply cut off at the token limit."""
    if reply.finish_reason == "length":
        return (
            f"{feedback} (your answer was cut off at the output token limit, finish_reason "
            '"length": send a shorter action, e.g. more compact code)'
        )
    return feedback


def run_step(ctx: StepContext) -> StepResult:
    """Propose up to `max_actions_per_step` actions (a step only proposes: callers measure).

    The prompt reads the learnable (train-split) traces only; an action that
    never validates in `max_trials` is skipped and listed in `skipped`.
    """
    config, state = ctx.config, ctx.state
    if ctx.function and ctx.function not in ctx.toolset.functions:
        raise UserError(f"no tool function `{ctx.function}` in {config.root}")
    if ctx.execute:  # refuse before asking the model, not after (docs/sandbox.md)
        from funcforge.sandbox_os import require_sandbox, resolve_mode

        require_sandbox(resolve_mode(config.sandbox))
    usage_before = ctx.client.usage.to_dict()
    _emit(ctx, 2, "reading the evidence")
    best = state.best_functions or _codes(ctx.toolset)
    best_score = (state.best_score, state.best_n) if state.best_score is not None else None
    cands = candidates(ctx.store, state.best_version or ctx.version, config.seed + state.step)
    stats = stat_rows(ctx.store, list(ctx.toolset.functions))
    failures = [
        Failure(f.score, f.n, f.actions, f.functions, f.reason) for f in state.failure_experience
    ]

    counter = counter_for(ctx.client)
    budget = resolve_budget(config, ctx.client)
    notes: list[str] = []
    with ctx.client.time_limit(config.step_timeout):
        return _ask(
            ctx,
            best,
            best_score,
            cands,
            stats,
            failures,
            usage_before,
            notes,
            counter,
            budget,
        )


def _ask(
    ctx: StepContext,
    best: dict[str, str],
    best_score: tuple[float, int] | None,
    cands: list[Candidate],
    stats: list[StatRow],
    failures: list[Failure],
    usage_before: dict[str, int],
    notes: list[str],
    counter: Any,
    budget: Budget,
) -> StepResult:
    """The step's requests (under the step's time limit), then the proposal."""
    config, state = ctx.config, ctx.state
    overrides: dict[str, str] = {}
    incumbent = ctx.toolset
    actions: list[Action] = []
    answered: list[str] = []  # who really answered each accepted action
    rationales: list[str] = []
    trials: list[str] = []
    prompt_tokens: list[int] = []
    terminated = False
    n_actions = config.max_actions_per_step
    overflows = 0
    refused: tuple[int, ContextOverflowError] | None = None  # (characters, error) last refused
    suspicious: dict[str, list[str]] = {}
    skipped: list[str] = []
    for k in range(n_actions):
        feedback: str | None = None
        accepted = False
        trial = 0
        while trial < config.max_trials:
            pct = 5 + int(80 * (k * config.max_trials + trial) / (n_actions * config.max_trials))
            left = ctx.client.time_left()
            if left is not None and left <= 0:
                if not actions:
                    raise UserError(
                        f"step_timeout ({config.step_timeout:g} s) ran out before the model "
                        "gave a valid action; raise step_timeout in [tool.funcforge]"
                    )
                notes.append(
                    f"step_timeout ({config.step_timeout:g} s) ran out; proposing "
                    f"the {len(actions)} action(s) accepted so far"
                )
                break
            _emit(ctx, pct, f"asking the model for action {k + 1} (trial {trial + 1})")
            prompt: BuiltPrompt = build_prompt(
                PromptInputs(
                    best=best,
                    incumbent=_codes(incumbent),
                    stats=stats,
                    failures=failures,
                    candidates=cands,
                    load=ctx.store.load,
                    actions_so_far=[a.summary() for a in actions],
                    feedback=feedback,
                    focus=ctx.function,
                    best_score=best_score,
                ),
                ACTION_TOOLS,
                budget.tokens,
                seed=config.seed + state.step,
                counter=counter,
            )
            prompt_tokens.append(prompt.tokens)
            size = _characters(prompt.messages)
            if refused is not None and size >= refused[0]:
                raise refused[1]  # the prompt can get no smaller than the one refused
            try:
                # The room kept for the answer caps it, so prompt + answer fit the window.
                with ctx.client.answer_limit(budget.reserve or None):
                    reply = ctx.client.complete(prompt.messages, ACTION_TOOLS)
            except ContextOverflowError as exc:
                overflows += 1
                if exc.requested:
                    counter.observe(prompt.messages, ACTION_TOOLS, exc.requested)
                recounted = counter.count(prompt.messages, ACTION_TOOLS)
                smaller = _shrunk_budget(config, ctx.client, budget, recounted, exc)
                if overflows > MAX_OVERFLOWS:
                    raise
                refused = (size, exc)
                note = (
                    f"the prompt ({prompt.tokens} tokens counted by {counter.method}"
                    + (f", {exc.requested} by the endpoint" if exc.requested else "")
                    + ") was longer than the model's context"
                    + (f" ({exc.limit} tokens)" if exc.limit else "")
                    + f"; asking again with fewer histories (budget {smaller.tokens} tokens)"
                )
                notes.append(note)
                LOG.warning("%s", note)
                _emit(ctx, pct, note)
                budget = smaller
                continue
            except LLMError:
                left = ctx.client.time_left()
                if actions and left is not None and left <= 0:
                    notes.append(
                        f"step_timeout ({config.step_timeout:g} s) ran out; proposing "
                        f"the {len(actions)} action(s) accepted so far"
                    )
                    break
                raise
            refused = None
            if reply.usage.prompt_tokens:
                counter.observe(prompt.messages, ACTION_TOOLS, reply.usage.prompt_tokens)
            _emit(ctx, pct, "validating the model's answer")
            trial += 1
            try:
                parsed = parse_reply(reply.message)
                if isinstance(parsed, Terminate):
                    terminated = True
                    break
                action = parsed.action
                if ctx.function and (action.kind, action.name) != ("revise_function", ctx.function):
                    raise ActionError(
                        f"only revise_function `{ctx.function}` is allowed in this step"
                    )
                problems = validate(action, incumbent.functions)
                if problems:
                    raise ActionError("; ".join(problems))
                changes = plan_actions(config, incumbent, [action])
            except (ActionError, RewriteError) as exc:
                feedback = _with_finish_reason(str(exc), reply)
                trials.append(feedback)
                continue
            for change in changes:
                overrides[change.file] = change.new_text
            incumbent = load_toolset(config, overrides=overrides)
            actions.append(action)
            answered.append(answered_by(ctx.client, reply))
            notes.extend(parsed.warnings)
            flagged = suspicious_unicode(action.code)
            if flagged:
                suspicious[action.name] = flagged
            if parsed.rationale:
                rationales.append(f"{action.summary()}: {parsed.rationale}")
            accepted = True
            break
        if terminated:
            break
        if not accepted and feedback is not None:
            # The paper's loop: an action that never validates is skipped, the step goes on.
            skipped.append(
                f"action {k + 1} skipped: no valid answer in {config.max_trials} trials "
                f"(last error: {feedback})"
            )
            notes.append(skipped[-1])
        elif not accepted:
            break
    usage_after = ctx.client.usage.to_dict()
    usage = {k: usage_after.get(k, 0) - usage_before.get(k, 0) for k in usage_after}
    if not actions:
        return StepResult(
            None, terminated, usage, trials, prompt_tokens, notes, budget.describe(), skipped
        )
    repeat = repeat_of_failure(state, _codes(incumbent))
    if repeat is not None:
        # A known answer: proposing it again would ask the user (or the trainer's tasks)
        # to judge a function set already rolled back or rejected (optimizer/policy.py).
        notes.append(repeat)
        return StepResult(
            None,
            terminated,
            usage,
            trials,
            prompt_tokens,
            notes,
            budget.describe(),
            skipped,
            repeat,
        )

    _emit(ctx, 88, "checking the proposal against logged calls")
    replay: dict[str, Any] | None
    if ctx.execute:
        from funcforge.optimizer.replay import replay_for_actions

        replay = replay_for_actions(config, ctx.store, ctx.toolset, actions)
    else:
        replay = {"summary": "replay check not run: execution of workspace code is not allowed"}
    touched = [a.name for a in actions]
    files: dict[str, str] = {}
    for action in actions:
        spec = ctx.toolset.functions.get(action.name) or incumbent.functions.get(action.name)
        if spec is not None and spec.location is not None:
            files[action.name] = spec.location.file
    base = measured_score(ctx.store, *version_aliases(ctx.version, ctx.toolset))
    if base is None:
        base = same_content_score(config, ctx.store, ctx.toolset)
    if (
        base is None
        and state.best_score is not None
        and state.best_functions == _codes(ctx.toolset)
    ):
        # HEAD is the best toolset under another commit (the revert of a roll-back): its
        # traces name the commit they ran with, the policy knows the score it judged.
        base = (state.best_score, state.best_n)
    proposal = Proposal(
        id=new_proposal_id(),
        actions=actions,
        rationale="\n".join(rationales),
        base_version=ctx.version,
        function_hashes={
            a.name: ctx.toolset.functions[a.name].code_hash()
            for a in actions
            if a.name in ctx.toolset.functions
        },
        files=files,
        replay=replay,
        base_score={"score": base[0], "n": base[1], "split": "train"} if base else None,
        evidence=evidence_for(ctx.store, touched),
        usage=usage,
        model=credit(answered),
        step=state.step,
        suspicious_unicode=suspicious,
        notes=list(notes),
    )
    _emit(ctx, 95, "saving the proposal")  # a cancelled step writes nothing
    proposal.save(config.proposals_path)
    _emit(ctx, 100, f"proposal {proposal.id}: {proposal.title}")
    return StepResult(
        proposal, terminated, usage, trials, prompt_tokens, notes, budget.describe(), skipped
    )
