"""Shared pytest fixtures: a real git repository in a temp dir, sample copies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # so tests can import tests.fakes


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` with a fixed identity; returns stdout."""
    out = subprocess.run(
        ["git", "-c", "user.name=Test User", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def log_label(root: Path, version: str) -> str:
    """How `funcforge log --json` names the toolset version a trace logged as `version`
    (a content hash, `dirty-` too, or a sha): the short sha of the newest commit on HEAD
    with that content, else the label of a version not on HEAD's history."""
    out = subprocess.run(
        [sys.executable, "-m", "funcforge", "log", "--json", str(root)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    log = json.loads(out)
    content = version.removeprefix("dirty-")
    points = [
        p for p in log["versions"] if p["content"] == content or p["commit"].startswith(version)
    ]
    if points:
        return str(points[-1]["short"])
    other = [v for v in log["other_versions"] if version in v["aliases"]]
    assert len(other) == 1, f"{version} not in funcforge log --json: {out}"
    return str(other[0]["label"])


def init_repo(path: Path) -> Path:
    """Make `path` a git repository with everything in it committed."""
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", "initial")
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository in a temp dir."""
    repo = tmp_path / "repo"
    repo.mkdir()
    return init_repo(repo)


@pytest.fixture
def sample_copy(tmp_path: Path):
    """Copy a sample workspace into a temp dir as a fresh git repository."""

    def make(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(SAMPLES / name, dest, ignore=shutil.ignore_patterns(".funcforge"))
        return init_repo(dest)

    return make
