"""The AgentOptimizer's state: best toolset and score, failure experience, patience.

Plain data, saved atomically in `.funcforge/state.json` (and in a training
run's `run.json`), so a restart resumes where it stopped. Every decision on it
is taken by `optimizer/policy.py` (one policy for the trainer, `optimize`, the
server and `log`); the LLM call lives in `step.py`, the prompt in `prompt.py`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from funcforge.errors import UserError
from funcforge.fsutil import ensure_state_dir, write_json_atomic


@dataclass
class FailureExperience:
    """A function set that was rolled back or rejected, with the score that condemned it."""

    version: str
    score: float
    n: int
    functions: dict[str, str]  # name -> code
    actions: list[str] = field(default_factory=list)  # e.g. ["revise convert_units"]
    reason: str = ""  # why: the roll-back rule's numbers, or the user's rejection


@dataclass
class ScoreRecord:
    step: int
    version: str
    score: float
    n: int
    decision: str
    split: str = "train"
    reason: str = ""


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
    notes: list[str] = field(default_factory=list)  # steps that changed nothing, and why
    # The patience the recording caller stops at (the trainer's --patience); None: the
    # workspace's `patience`. `log` reads it, so it says "early stop" when the trainer did.
    patience: int | None = None

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
            notes=[str(n) for n in data.get("notes", [])],
            patience=int(data["patience"]) if data.get("patience") is not None else None,
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
