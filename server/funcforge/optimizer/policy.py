"""The AgentOptimizer's policy: what to keep, what to remember, when to stop.

One object owns the best toolset and its score, the failure experience, the
patience counter and every decision (improve / tie / roll back / stop), for the
trainer, `funcforge optimize`, the language server and `log`. A step only
*proposes*; whoever measured a toolset hands the measurement in (`judge`).

Two ways of measuring, one policy:

- **paired** (the trainer, the paper's offline loop): the proposed toolset and
  the best one are scored once on the *same* train tasks; a lower score is a
  roll-back, an equal one a tie, a higher one an improvement (Algorithm 1);
- **live** (optimize, server, log): traces arrive over time and are re-checked
  as they do, so a decline needs the sequential test of `history/decline.py`
  (valid under repeated checking); `observe_live` records its verdict.

Failure experience is recognised by content (the function set), so a proposal
that reproduces a rolled-back toolset is skipped with that reason instead of
being run again. Rejected proposals (CLI `reject`, the editor's Reject) enter
it too, with the user's reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from funcforge.errors import UserError
from funcforge.optimizer.optimizer import FailureExperience, OptimizerState, ScoreRecord

if TYPE_CHECKING:
    from funcforge.config import Config
    from funcforge.history.decline import Decline
    from funcforge.optimizer.proposal import Proposal
    from funcforge.toolset.toolset import Toolset
    from funcforge.traces.store import TraceStore

Decision = Literal["initial", "improved", "tie", "rollback"]
TieRule = Literal["not-improvement", "improvement"]


def functions_key(functions: dict[str, str]) -> str:
    """A content key of a function set (name -> code), independent of order."""
    blob = json.dumps(sorted(functions.items()), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class Measurement:
    """A toolset as measured by the caller: mean score over n traces of the train split."""

    version: str
    functions: dict[str, str]
    score: float
    n: int
    actions: list[str] | None = None  # what produced it (for failure experience)
    split: str = "train"


@dataclass
class Verdict:
    """What the policy decided about one measurement, and why."""

    decision: Decision
    reason: str
    best_version: str | None
    best_score: float | None
    rollback_to: str | None = None


class Policy:
    """The decisions of Algorithm 1 over an `OptimizerState` (persisted by the caller)."""

    def __init__(
        self,
        state: OptimizerState | None = None,
        *,
        patience: int = 10,
        tie_rule: str = "not-improvement",
    ) -> None:
        self.state = state if state is not None else OptimizerState()
        self.patience = patience
        self.tie_rule = tie_rule

    @classmethod
    def for_config(cls, config: Config, state: OptimizerState | None = None) -> Policy:
        """The workspace's policy; a state saved with its own patience (the trainer's) keeps it."""
        patience = state.patience if state is not None and state.patience else config.patience
        return cls(state, patience=patience, tie_rule=config.tie_rule)

    @classmethod
    def load(cls, config: Config) -> Policy:
        return cls.for_config(config, OptimizerState.load(config.state_path))

    def save(self, state_dir: Path) -> None:
        self.state.save(state_dir)

    # -- what it knows ---------------------------------------------------------

    @property
    def best_version(self) -> str | None:
        return self.state.best_version

    @property
    def best_score(self) -> float | None:
        return self.state.best_score

    def is_best(self, functions: dict[str, str]) -> bool:
        """Whether `functions` is the best toolset's content."""
        return bool(self.state.best_functions) and functions_key(functions) == functions_key(
            self.state.best_functions
        )

    def known_failure(self, functions: dict[str, str]) -> FailureExperience | None:
        """The failure experience with exactly this function set, if any."""
        key = functions_key(functions)
        for f in self.state.failure_experience:
            if functions_key(f.functions) == key:
                return f
        return None

    def stop_reason(self) -> str | None:
        """Early stop: `patience` steps in a row without improvement. Checked before proposing."""
        if self.state.no_improvement >= self.patience:
            return (
                f"early stop: {self.state.no_improvement} steps without improvement "
                f"(patience {self.patience})"
            )
        return None

    # -- decisions ---------------------------------------------------------------

    def judge(self, m: Measurement, best_now: tuple[float, int] | None = None) -> Verdict:
        """The paired rule on a caller's measurement of a toolset.

        `best_now` is the best toolset's score on the same tasks (batch mode
        re-runs the best on each batch); without it the best's recorded score.
        """
        state = self.state
        if state.best_score is None:
            self._make_best(m)
            return self._record(m, "initial", f"first measured score {m.score:.3f} (n={m.n})")
        ref, ref_n = best_now if best_now is not None else (state.best_score, state.best_n)
        where = "on the same tasks" if best_now is not None else "(the best's recorded score)"
        compared = f"{m.split} score {m.score:.3f} (n={m.n}) vs best {ref:.3f} (n={ref_n}) {where}"
        if m.score > ref:
            self._make_best(m)
            state.failure_experience.clear()
            state.no_improvement = 0
            return self._record(m, "improved", f"{compared}: higher, kept as the new best")
        if m.score == ref:
            self._make_best(m)
            if self.tie_rule == "improvement":
                state.no_improvement = 0
            else:
                state.no_improvement += 1
            return self._record(m, "tie", f"{compared}: equal, kept (tie_rule {self.tie_rule})")
        rollback_to = state.best_version
        self.remember_failure(m, f"{compared}: lower (the paper's rule: roll back)")
        state.no_improvement += 1
        return self._record(
            m, "rollback", f"{compared}: lower, rolled back (the paper's rule)", rollback_to
        )

    def no_change(self, reason: str) -> None:
        """A step that changed nothing (TERMINATE, no valid action, a repeat): no improvement."""
        self.state.no_improvement += 1
        self.state.step += 1
        self.state.converged = self.state.no_improvement >= self.patience
        self.state.notes.append(reason)

    def remember_failure(
        self, m: Measurement, reason: str, *, score: float | None = None
    ) -> FailureExperience:
        """Add (or refresh) failure experience for a function set; lowest score first."""
        known = self.known_failure(m.functions)
        if known is not None:
            self.state.failure_experience.remove(known)
        f = FailureExperience(
            m.version,
            m.score if score is None else score,
            m.n,
            dict(m.functions),
            list(m.actions or []),
            reason,
        )
        self.state.failure_experience.append(f)
        self.state.failure_experience.sort(key=lambda x: (x.score, x.version))
        return f

    def reject(self, proposal: Proposal, functions: dict[str, str], reason: str) -> None:
        """A proposal the user rejected: its function set becomes failure experience."""
        base = self.state.best_score
        self.remember_failure(
            Measurement(
                f"proposal {proposal.id}",
                functions,
                base if base is not None else 0.0,
                0,
                [a.summary() for a in proposal.actions],
            ),
            f"rejected by the user: {reason}",
        )

    def observe_live(self, decline: Decline, m: Measurement | None, min_traces: int) -> str:
        """Record the live verdict (the sequential rule) for the current toolset.

        Each version is judged once it has `min_traces` train traces: a decline
        puts its function set into failure experience; a mean above the best's
        makes it the best (failure experience cleared, patience reset); anything
        else is a step without improvement. A version judged before is not
        counted again, but a decline found later is still remembered. Returns a
        one-line summary. The server and `log` show the same `decline`,
        computed by the same function on the same traces.
        """
        if m is None or m.n < min_traces:
            return decline.reason
        state = self.state
        seen = any(r.version == m.version for r in state.history)
        if decline.declined:
            if self.known_failure(m.functions) is None:
                self.remember_failure(m, f"declined: {decline.reason}")
            if not seen:
                state.no_improvement += 1
                self._record(m, "rollback", f"declined: {decline.reason}", state.best_version)
            return f"declined: {decline.message()} ({decline.reason})"
        if seen:
            return decline.reason
        if state.best_score is None:
            self._make_best(m)
            self._record(m, "initial", decline.reason)
        elif m.score > state.best_score:
            self._make_best(m)
            state.failure_experience.clear()
            state.no_improvement = 0
            self._record(m, "improved", decline.reason)
        else:
            state.no_improvement += 1
            self._record(m, "tie", f"no decline and no improvement: {decline.reason}")
        return decline.reason

    # -- internals ---------------------------------------------------------------

    def _make_best(self, m: Measurement) -> None:
        s = self.state
        s.best_version, s.best_score, s.best_n = m.version, m.score, m.n
        s.best_functions = dict(m.functions)

    def _record(
        self, m: Measurement, decision: Decision, reason: str, rollback_to: str | None = None
    ) -> Verdict:
        s = self.state
        s.history.append(ScoreRecord(s.step, m.version, m.score, m.n, decision, m.split, reason))
        s.step += 1
        s.converged = s.no_improvement >= self.patience
        return Verdict(decision, reason, s.best_version, s.best_score, rollback_to)


def live_verdict(
    config: Config, store: TraceStore, toolset: Toolset, version: str
) -> tuple[Decline | None, Measurement | None]:
    """The sequential rule on the current toolset, exactly as the server and `log` compute it.

    Train-split traces only (`store.version_stats()`); `(None, None)` outside git.
    """
    from funcforge.history.log import history_log

    try:
        decline = history_log(config, store.version_stats(), version).decline
    except UserError:
        return None, None
    if decline is None:
        return None, None
    current = decline.current
    if current is None or current.mean_score is None:
        return decline, None
    codes = {name: spec.code for name, spec in toolset.functions.items()}
    return decline, Measurement(version, codes, current.mean_score, current.scored)


def reject_proposal(config: Config, proposal: Proposal, reason: str) -> None:
    """Mark a proposal rejected and remember its function set as failure experience.

    The function set is the current tools with the proposal's actions applied
    (as apply would write them); when that cannot be planned any more (the
    tools moved on), the actions' own code is remembered.
    """
    from funcforge.toolset.rewrite import RewriteError, plan_actions
    from funcforge.toolset.toolset import load_toolset

    functions: dict[str, str]
    try:
        toolset = load_toolset(config)
        overrides = {c.file: c.new_text for c in plan_actions(config, toolset, proposal.actions)}
        proposed = load_toolset(config, overrides=overrides)
        functions = {name: spec.code for name, spec in proposed.functions.items()}
    except (RewriteError, UserError, OSError):
        functions = {a.name: a.code or "" for a in proposal.actions}
    proposal.status = "rejected"
    proposal.save(config.proposals_path)
    policy = Policy.load(config)
    policy.reject(proposal, functions, reason)
    policy.save(config.state_path)
