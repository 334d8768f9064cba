"""Commit messages of funcforge commits (design.md "Git conventions") and their trailers.

A proposal commit reads:

    funcforge: revise convert_units

    <the model's rationale>

    Evidence:
    - `convert_units`: 12 of 40 logged calls failed (KeyError (9), ValueError (3))
    - replay check: fixes 11/12 failing logged calls, changes 0/28 passing ones
    - base version 3f2a9c1 scored 0.62 (n=40)

    Funcforge-Proposal: 2f1c9e
    Funcforge-Step: 3
    Funcforge-Base: 3f2a9c1
    Funcforge-Score: 0.62 (n=40)
    Co-authored-by: funcforge (gpt-4o) <funcforge@localhost>
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

from funcforge.optimizer.proposal import Proposal, clean_name

PROPOSAL = "Funcforge-Proposal"
STEP = "Funcforge-Step"
BASE = "Funcforge-Base"
SCORE = "Funcforge-Score"
ROLLBACK_TO = "Funcforge-Rollback-To"
REVERTS = "Funcforge-Reverts"
COAUTHOR_EMAIL = "funcforge@localhost"

_TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s*(.*?)\s*$")
_SCORE = re.compile(r"^\s*(-?[0-9.]+)\s*\(n=(\d+)(?:,\s*[A-Za-z_-]+)?\)\s*$")
WIDTH = 72


def format_score(score: float | None, n: int) -> str:
    """`0.62 (n=40)`, or `no traces` when nothing was measured."""
    if score is None or n <= 0:
        return "no traces"
    return f"{score:.2f} (n={n})"


def format_split_score(score: float | None, n: int, split: str | None) -> str:
    """`0.62 (n=40, train)`: a score labelled with the split its traces came from."""
    text = format_score(score, n)
    return f"{text[:-1]}, {split})" if split and text.endswith(")") else text


def parse_score(value: str) -> tuple[float, int] | None:
    """The inverse of `format_score` (and `format_split_score`); None when it does not parse."""
    m = _SCORE.match(value)
    if not m:
        return None
    try:
        return float(m.group(1)), int(m.group(2))
    except ValueError:
        return None


def _wrap(text: str) -> str:
    """Wrap prose paragraphs at 72 columns; leave lists, code and indented text as written."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = para.splitlines()
        prose = all(
            line.strip() and not line.startswith((" ", "\t", "-", "*", ">", "`", "#"))
            for line in lines
        )
        out.append(textwrap.fill(" ".join(lines), WIDTH) if prose else para.rstrip())
    return "\n\n".join(out)


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """One line per touched function from the optimizer's evidence (see optimizer.step)."""
    lines: list[str] = []
    for name, ev in evidence.items():
        if isinstance(ev, dict) and "calls" in ev:
            calls, errors = int(ev.get("calls") or 0), int(ev.get("errors") or 0)
            line = f"`{name}`: {errors} of {calls} logged calls failed"
            types = ev.get("error_types") or {}
            if isinstance(types, dict) and types:
                line += " (" + ", ".join(f"{t} ({c})" for t, c in types.items()) + ")"
            examples = ev.get("examples") or []
            if examples:
                line += "; e.g. " + ", ".join(str(e) for e in examples[:3])
            lines.append(line)
        elif isinstance(ev, (str, int, float)):
            lines.append(f"{name.replace('_', ' ')}: {ev}")
        elif isinstance(ev, list):
            lines.extend(str(item) for item in ev)
    return lines


def proposal_subject(proposal: Proposal) -> str:
    return f"funcforge: {proposal.title}"


def proposal_message(proposal: Proposal) -> str:
    """The full commit message of an accepted proposal: subject, rationale, evidence, trailers."""
    parts = [proposal_subject(proposal)]
    if proposal.rationale.strip():
        parts.append(_wrap(proposal.rationale))
    evidence = [f"- {line}" for line in _evidence_lines(proposal.evidence)]
    summary = (proposal.replay or {}).get("summary")
    if summary:
        evidence.append(f"- replay check: {summary}")
    score = proposal.base_score or {}
    base_desc = format_split_score(score.get("score"), int(score.get("n") or 0), score.get("split"))
    if proposal.base_version:
        evidence.append(f"- base version {proposal.base_version} scored {base_desc}")
    elif score:
        evidence.append(f"- base score {base_desc}")
    if evidence:
        parts.append("Evidence:\n" + "\n".join(evidence))
    trailers = [(PROPOSAL, proposal.id)]
    if proposal.step is not None:
        trailers.append((STEP, str(proposal.step)))
    if proposal.base_version:
        trailers.append((BASE, proposal.base_version))
    if score.get("score") is not None:
        trailers.append(
            (
                SCORE,
                format_split_score(score["score"], int(score.get("n") or 0), score.get("split")),
            )
        )
    name = clean_name(proposal.model) if proposal.model else ""  # a proposal file may be edited
    model = f" ({name})" if name else ""
    trailers.append(("Co-authored-by", f"funcforge{model} <{COAUTHOR_EMAIL}>"))
    parts.append("\n".join(f"{k}: {v}" for k, v in trailers))
    return "\n\n".join(parts) + "\n"


def wip_message(files: Sequence[str], proposal_id: str) -> str:
    """The user's own pending edits, committed before a proposal (apply --commit-dirty)."""
    return f"WIP: user's edits to {', '.join(files)} before funcforge proposal {proposal_id}\n"


def rollback_message(
    target: str,
    target_score: str,
    current_score: str,
    reverted: Sequence[tuple[str, str]],
    note: str = "",
) -> str:
    """A roll-back commit: subject with both scores, one `This reverts commit` line per commit."""
    subject = f"funcforge: roll back to {target[:7]} ({target_score}) from {current_score}"
    parts = [subject]
    listing = "\n".join(f"- {sha[:7]} {subj}" for sha, subj in reverted)
    parts.append(f"Reverts the funcforge commits after {target[:7]}, newest first:\n{listing}")
    if note:
        parts.append(_wrap(note))
    parts.append("\n".join(f"This reverts commit {sha}." for sha, _ in reverted))
    trailers = [(ROLLBACK_TO, target)] + [(REVERTS, sha) for sha, _ in reverted]
    parts.append("\n".join(f"{k}: {v}" for k, v in trailers))
    return "\n\n".join(parts) + "\n"


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """`Key: value` pairs of the message's last paragraph (git's trailer block), in order."""
    paragraphs = [p for p in re.split(r"\n\s*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return []
    out: list[tuple[str, str]] = []
    for line in paragraphs[-1].splitlines():
        m = _TRAILER.match(line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def trailer_values(trailers: Sequence[tuple[str, str]], key: str) -> list[str]:
    """Every value of `key` (case-insensitive, as git compares trailer keys)."""
    return [v for k, v in trailers if k.lower() == key.lower()]
