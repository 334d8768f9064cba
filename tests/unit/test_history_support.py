"""Helpers for the history tests: a tool workspace in a real git repository, traces, proposals.

(No tests here; the module name keeps it inside the history tests' files.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from funcforge.config import Config, load_config
from funcforge.history.message import proposal_message
from funcforge.optimizer.proposal import Proposal
from funcforge.toolset.action import Action
from funcforge.toolset.toolset import load_toolset
from tests.conftest import git, init_repo

UNITS = '''\
"""Unit conversions."""


def convert_units(value: float, unit: str) -> float:
    """Convert a length to metres."""
    factors = {"km": 1000.0, "m": 1.0}
    return value * factors[unit]


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()
'''

OTHER = '''\
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''

NEW_CONVERT = '''\
def convert_units(value: float, unit: str) -> float:
    """Convert a length to metres."""
    factors = {"km": 1000.0, "m": 1.0, "mile": 1609.344}
    if unit not in factors:
        raise ValueError(f"unknown unit: {unit}")
    return value * factors[unit]
'''

NEW_FEET = '''\
def to_feet(metres: float) -> float:
    """Convert metres to feet."""
    return metres / 0.3048
'''


def make_workspace(path: Path, sub: str = "") -> Config:
    """A git repository with two tool files committed; the workspace may be a subfolder."""
    path.mkdir(parents=True, exist_ok=True)
    ws = path / sub if sub else path
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "units.py").write_text(UNITS, encoding="utf-8")
    (ws / "tools" / "other.py").write_text(OTHER, encoding="utf-8")
    (path / "README.md").write_text("demo\n", encoding="utf-8")
    (path / ".gitignore").write_text(".funcforge/\n", encoding="utf-8")
    init_repo(path)
    return load_config(ws)


def sha(root: Path, rev: str = "HEAD") -> str:
    return git(root, "rev-parse", rev).strip()


def revise(name: str = "convert_units", code: str = NEW_CONVERT) -> Action:
    return Action("revise_function", name, description="Convert a length to metres.", code=code)


def make_proposal(
    config: Config, actions: list[Action], pid: str = "2f1c9e", **kw: object
) -> Proposal:
    """A proposal as the optimizer would save it: hashes of the touched functions, files."""
    toolset = load_toolset(config)
    hashes = {
        a.name: toolset.functions[a.name].code_hash()
        for a in actions
        if a.kind != "add_function" and a.name in toolset.functions
    }
    files = {
        a.name: toolset.functions[a.name].location.file  # type: ignore[union-attr]
        for a in actions
        if a.name in toolset.functions
    }
    defaults: dict[str, object] = {
        "rationale": "convert_units fails on miles; add the factor and a clear error.",
        "base_version": sha(config.root)[:7] if (config.root / ".git").exists() else None,
        "function_hashes": hashes,
        "files": files,
        "replay": {"summary": "fixes 11/12 failing logged calls, changes 0/28 passing ones"},
        "base_score": {"score": 0.62, "n": 40},
        "evidence": {
            "convert_units": {
                "calls": 40,
                "errors": 12,
                "error_types": {"KeyError": 12},
                "examples": ["traces/run.jsonl:3"],
                "pass_rate": 0.7,
            }
        },
        "model": "gpt-4o",
        "step": 3,
    }
    defaults.update(kw)
    proposal = Proposal(id=pid, actions=actions, **defaults)  # type: ignore[arg-type]
    proposal.save(config.proposals_path)
    return proposal


def replace_function(text: str, old_code: str, new_code: str) -> str:
    assert old_code in text
    return text.replace(old_code, new_code)


OLD_CONVERT = UNITS[UNITS.index("def convert_units") : UNITS.index("\n\n\ndef shout")] + "\n"
OLD_SHOUT = UNITS[UNITS.index("def shout") :]


def optimizer_commit(root: Path, rel: str, text: str, proposal: Proposal) -> str:
    """Commit `text` to `rel` with a proposal's message (as apply does), return the sha."""
    (root / rel).write_text(text, encoding="utf-8")
    git(root, "add", "--", rel)
    git(root, "commit", "-q", "-m", proposal_message(proposal), "--", rel)
    return sha(root)


def user_commit(root: Path, rel: str, text: str, message: str = "user edit") -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")
    git(root, "add", "--", rel)
    git(root, "commit", "-q", "-m", message, "--", rel)
    return sha(root)


def write_traces(
    root: Path, version: str, scores: list[float], file: str = "traces/run.jsonl"
) -> None:
    """Append one native trace per score, recorded with `version`."""
    path = root / file
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for i, score in enumerate(scores):
            fh.write(
                json.dumps(
                    {
                        "id": f"{version}-{i}-{len(scores)}",
                        "messages": [{"role": "user", "content": "convert 3 mile"}],
                        "outcome": {"score": score, "passed": score >= 0.5},
                        "toolset_version": version,
                    }
                )
                + "\n"
            )


def scores(mean: float, n: int) -> list[float]:
    """n pass/fail scores with round(mean * n) passes."""
    k = round(mean * n)
    return [1.0] * k + [0.0] * (n - k)


def porcelain(root: Path) -> str:
    return git(root, "status", "--porcelain=v1", "--untracked-files=all")


def snapshot(root: Path, files: list[str]) -> dict[str, object]:
    """HEAD, status, index and file bytes: what 'left as it was' compares."""
    return {
        "head": sha(root),
        "status": porcelain(root),
        "index": git(root, "ls-files", "-s"),
        "files": {f: (root / f).read_bytes() if (root / f).exists() else None for f in files},
        # (funcforge's apply lock file stays: a flock file is never deleted, to avoid races)
        "git_dir": sorted(
            p.name
            for p in (root / ".git").iterdir()
            if p.name not in ("ORIG_HEAD", "funcforge-apply.lock")
        ),
    }


NEW_ADD = OTHER.replace("return a + b", "return int(a) + int(b)")
TOOL_FILES = ["tools/units.py", "tools/other.py"]


def trained(tmp_path: Path) -> tuple[Config, str, str, str]:
    """c0 (best, 0.80) -> o1 revises convert_units (0.70) -> o2 revises add (0.50)."""
    config = make_workspace(tmp_path / "ws")
    root = config.root
    c0 = sha(root)
    p1 = make_proposal(config, [revise()], pid="aaa111", step=1)
    o1 = optimizer_commit(root, "tools/units.py", UNITS.replace(OLD_CONVERT, NEW_CONVERT), p1)
    p2 = make_proposal(config, [revise("add", NEW_ADD)], pid="bbb222", step=2)
    o2 = optimizer_commit(root, "tools/other.py", NEW_ADD, p2)
    write_traces(root, c0[:7], scores(0.8, 30))
    write_traces(root, o1[:7], scores(0.7, 30))
    write_traces(root, o2[:7], scores(0.5, 30))
    return config, c0, o1, o2


def at(root: Path, rev: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, check=True
    ).stdout
