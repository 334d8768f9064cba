"""`Proposal`: the validated actions of one optimizer step, persisted as JSON.

A proposal lives in `.funcforge/proposals/<id>.json` so that the CLI and the
editor see the same proposals; its base version and the hash of each touched
function let `apply` detect staleness.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from funcforge.errors import UserError
from funcforge.fsutil import clean_json, ensure_state_dir, write_json_atomic
from funcforge.toolset.action import Action

ProposalStatus = Literal["pending", "applied", "rejected"]


MAX_NAME = 100


def clean_name(name: str) -> str:
    """A model name fit for one line of a commit trailer: `funcforge (NAME) <email>`.

    The name comes from the endpoint's response, which funcforge does not
    control: a newline in it started trailers of its own (a forged
    `Funcforge-Rollback-To`), and `(`, `)`, `<`, `>` broke the trailer's
    shape. Control characters and those four become spaces, runs of spaces
    one, and a name past 100 characters is cut with "...".
    """
    kept = "".join(" " if (not ch.isprintable() or ch in "()<>") else ch for ch in name)
    kept = " ".join(kept.split())
    return kept if len(kept) <= MAX_NAME else kept[: MAX_NAME - 3].rstrip() + "..."


class ProposalError(UserError):
    """A proposal file is missing or unreadable (a user error: no traceback)."""


def new_proposal_id() -> str:
    return secrets.token_hex(3)


@dataclass
class Proposal:
    """One optimizer step's actions, rationale, evidence and replay-check result."""

    id: str
    actions: list[Action]
    rationale: str = ""
    base_version: str | None = None
    # name -> code_hash() of the function in the base toolset (absent for adds).
    function_hashes: dict[str, str] = field(default_factory=dict)
    # name -> workspace-relative file the action touches.
    files: dict[str, str] = field(default_factory=dict)
    replay: dict[str, Any] | None = None
    base_score: dict[str, Any] | None = None  # {"score": float, "n": int}
    evidence: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    step: int | None = None
    status: ProposalStatus = "pending"
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    commit: str | None = None
    # name -> where its new code holds bidi controls or invisible characters
    # ("line 3, column 9: U+202E RIGHT-TO-LEFT OVERRIDE"): for the reviewer and the code action.
    suspicious_unicode: dict[str, list[str]] = field(default_factory=dict)
    # What the step worked around or normalised (context overflow, AG2-form arguments, ...).
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """`revise convert_units` or `revise a, add b` for subjects and titles."""
        return ", ".join(a.summary() for a in self.actions) or "no actions"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "created": self.created,
            "model": self.model,
            "step": self.step,
            "base_version": self.base_version,
            "base_score": self.base_score,
            "rationale": self.rationale,
            "actions": [a.to_dict() for a in self.actions],
            "function_hashes": self.function_hashes,
            "files": self.files,
            "replay": self.replay,
            "evidence": self.evidence,
            "usage": self.usage,
            "commit": self.commit,
            "suspicious_unicode": self.suspicious_unicode,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Proposal:
        return cls(
            id=data["id"],
            actions=[Action.from_dict(a) for a in data.get("actions", [])],
            rationale=data.get("rationale", ""),
            base_version=data.get("base_version"),
            function_hashes=dict(data.get("function_hashes") or {}),
            files=dict(data.get("files") or {}),
            replay=data.get("replay"),
            base_score=data.get("base_score"),
            evidence=dict(data.get("evidence") or {}),
            usage=dict(data.get("usage") or {}),
            model=data.get("model"),
            step=data.get("step"),
            status=data.get("status", "pending"),
            created=data.get("created", ""),
            commit=data.get("commit"),
            suspicious_unicode={
                str(k): [str(x) for x in v]
                for k, v in (data.get("suspicious_unicode") or {}).items()
                if isinstance(v, list)
            },
            notes=[str(n) for n in data.get("notes") or []],
        )

    def save(self, proposals_dir: Path) -> Path:
        ensure_state_dir(proposals_dir.parent)
        path = proposals_dir / f"{self.id}.json"
        write_json_atomic(path, self.to_dict())
        return path


def load_proposal(proposals_dir: Path, proposal_id: str) -> Proposal:
    """Load one proposal by id (a unique prefix is enough)."""
    path = proposals_dir / f"{proposal_id}.json"
    if not path.is_file():
        matches = sorted(proposals_dir.glob(f"{proposal_id}*.json")) if proposal_id else []
        if len(matches) != 1:
            raise ProposalError(
                f"no proposal '{proposal_id}' in {proposals_dir}"
                + (" (ambiguous prefix)" if len(matches) > 1 else "")
            )
        path = matches[0]
    try:
        return _read(path)
    except _UNREADABLE as exc:
        raise ProposalError(f"{path}: unreadable proposal: {exc or type(exc).__name__}") from None


# What a damaged or hand-edited proposal file raises when read (RecursionError: nested too deep).
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError)


def _read(path: Path) -> Proposal:
    """A proposal file with its strings cleaned.

    A JSON escape may decode to a lone surrogate, which would end `apply` when
    written into the commit message.
    """
    return Proposal.from_dict(clean_json(json.loads(path.read_text(encoding="utf-8"))))


def list_proposals(proposals_dir: Path, status: str | None = None) -> list[Proposal]:
    """All readable proposals, oldest first; unreadable files are skipped."""
    out: list[Proposal] = []
    if not proposals_dir.is_dir():
        return out
    for path in sorted(proposals_dir.glob("*.json")):
        try:
            p = _read(path)
        except _UNREADABLE:
            continue
        if status is None or p.status == status:
            out.append(p)
    out.sort(key=lambda p: (p.created, p.id))
    return out
