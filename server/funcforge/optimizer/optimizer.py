"""The AgentOptimizer's policy: best toolset and score, roll-back, early stop.

This module decides only *what to keep*; the LLM call lives in `step.py` and
the prompt text in `prompt.py`. The rules are the paper's:

- a measured score above the best's makes the measured toolset the new best,
  clears the failure experience and resets the patience counter;
- a score below the best's is a decline: roll back to the best and remember the
  rejected function set with its score as failure experience;
- a tie is, by default (`tie_rule = "not-improvement"`), kept (it is no
  decline) but counts as a step without improvement;
- `patience` steps in a row without improvement stop training early.

State lives in `.funcforge/state.json`, written atomically, so a restart
resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from funcforge.errors import UserError
from funcforge.fsutil import ensure_state_dir, write_json_atomic

Decision = Literal["initial", "improved", "tie", "rollback", "unchanged"]


@dataclass
class FailureExperience:
    """A function set that was rolled back, with the score that condemned it."""

    version: str
    score: float
    n: int
    functions: dict[str, str]  # name -> code
    actions: list[str] = field(default_factory=list)  # e.g. ["revise convert_units"]


@dataclass
class ScoreRecord:
    step: int
    version: str
    score: float
    n: int
    decision: Decision


@dataclass
class StepOutcome:
    """What `record_score` decided, and whether training should stop."""

    decision: Decision
    best_version: str | None
    best_score: float | None
    early_stop: bool
    rollback_to: str | None = None


@dataclass
class OptimizerState:
    best_version: str | None = None
    best_score: float | None = None
    best_n: int = 0
    best_functions: dict[str, str] = field(default_factory=dict)
    failure_experience: list[FailureExperience] = field(default_factory=list)
    no_improvement: int = 0
    step: int = 0
    history: list[ScoreRecord] = field(default_factory=list)
    converged: bool = False

    # -- the paper's rules -------------------------------------------------

    def record_score(
        self,
        version: str,
        score: float,
        n: int,
        functions: dict[str, str],
        *,
        patience: int,
        tie_rule: str = "not-improvement",
        actions: list[str] | None = None,
    ) -> StepOutcome:
        """Take the measured score of toolset `version` and decide keep or roll back."""
        if version == self.best_version:
            # The best version measured again (more traces): refresh its score only.
            self.best_score, self.best_n = score, n
            return StepOutcome("unchanged", version, score, self.converged)
        if any(r.version == version for r in self.history):
            # A version already judged (e.g. rolled back) is not judged twice.
            return StepOutcome("unchanged", self.best_version, self.best_score, self.converged)
        decision: Decision
        rollback_to: str | None = None
        if self.best_score is None:
            decision = "initial"
            self._make_best(version, score, n, functions)
            self.no_improvement = 0
        elif score > self.best_score:
            decision = "improved"
            self._make_best(version, score, n, functions)
            self.failure_experience.clear()
            self.no_improvement = 0
        elif score == self.best_score:
            decision = "tie"
            self._make_best(version, score, n, functions)
            if tie_rule == "improvement":
                self.no_improvement = 0
            else:
                self.no_improvement += 1
        else:
            decision = "rollback"
            rollback_to = self.best_version
            self.failure_experience.append(
                FailureExperience(version, score, n, dict(functions), list(actions or []))
            )
            self.failure_experience.sort(key=lambda f: f.score)
            self.no_improvement += 1
        self.history.append(ScoreRecord(self.step, version, score, n, decision))
        self.step += 1
        self.converged = self.no_improvement >= patience
        return StepOutcome(
            decision, self.best_version, self.best_score, self.converged, rollback_to
        )

    def _make_best(self, version: str, score: float, n: int, functions: dict[str, str]) -> None:
        self.best_version, self.best_score, self.best_n = version, score, n
        self.best_functions = dict(functions)

    # -- persistence ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizerState:
        return cls(
            best_version=data.get("best_version"),
            best_score=data.get("best_score"),
            best_n=int(data.get("best_n", 0)),
            best_functions=dict(data.get("best_functions") or {}),
            failure_experience=[FailureExperience(**f) for f in data.get("failure_experience", [])],
            no_improvement=int(data.get("no_improvement", 0)),
            step=int(data.get("step", 0)),
            history=[ScoreRecord(**r) for r in data.get("history", [])],
            converged=bool(data.get("converged", False)),
        )

    def save(self, state_dir: Path) -> None:
        write_json_atomic(ensure_state_dir(state_dir) / "state.json", self.to_dict())

    @classmethod
    def load(cls, state_dir: Path) -> OptimizerState:
        """The saved state, or a fresh one when none exists."""
        path = state_dir / "state.json"
        if not path.is_file():
            return cls()
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise UserError(
                f"{path}: unreadable optimizer state ({exc}); move it away to start afresh"
            ) from exc
