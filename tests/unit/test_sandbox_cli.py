"""The sandbox from the command line: refusal without bubblewrap, the process opt-in named, safe output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OLD = "def f(x):\n    return x\n"
NEW = 'def f(x):\n    return "a\\ud800" + str(x)\n'


def funcforge(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funcforge", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "old.py").write_text(OLD)
    (tmp_path / "new.py").write_text(NEW)
    # A logged call whose arguments hold a lone surrogate too (valid JSON).
    (tmp_path / "calls.jsonl").write_text('{"args": {"x": "\\ud83d"}, "result": "?"}\n')
    return tmp_path


def test_replay_check_json_survives_lone_surrogates(files: Path) -> None:
    done = funcforge(
        "replay-check",
        "--old",
        "old.py",
        "--new",
        "new.py",
        "--calls",
        "calls.jsonl",
        "--json",
        cwd=files,
    )
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    (entry,) = doc["entries"]
    assert entry["new"]["ok"] and entry["new"]["rendered"] == "a\\ud800\\ud83d"
    assert doc["isolation"] == "bwrap"
    text = funcforge(
        "replay-check",
        "--old",
        "old.py",
        "--new",
        "new.py",
        "--calls",
        "calls.jsonl",
        "--all",
        cwd=files,
    )
    assert text.returncode in (0, 1), text.stderr
    assert "\\ud800" in text.stdout


@pytest.mark.parametrize("how", ["FUNCFORGE_BWRAP", "PATH"])
def test_replay_check_refuses_without_bubblewrap(
    files: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = (
        {"FUNCFORGE_BWRAP": str(files / "missing" / "bwrap")}
        if how == "FUNCFORGE_BWRAP"
        else {"PATH": str(files / "empty-bin")}
    )
    if how == "PATH":
        monkeypatch.delenv("FUNCFORGE_BWRAP", raising=False)
    marker = files / "ran"
    (files / "new.py").write_text(f"def f(x):\n    open({str(marker)!r}, 'w')\n    return x\n")
    done = funcforge(
        "replay-check",
        "--old",
        "old.py",
        "--new",
        "new.py",
        "--calls",
        "calls.jsonl",
        cwd=files,
        env=env,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "will not run tool code without an OS sandbox" in done.stderr
    assert ("FUNCFORGE_BWRAP" if how == "FUNCFORGE_BWRAP" else "not on PATH") in done.stderr
    assert "apt-get install bubblewrap" in done.stderr and 'sandbox = "process"' in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()
    assert done.stdout == ""


def test_the_process_opt_in_runs_and_is_named_weaker(files: Path) -> None:
    done = funcforge(
        "replay-check",
        "--old",
        "old.py",
        "--new",
        "new.py",
        "--calls",
        "calls.jsonl",
        "--sandbox",
        "process",
        "--json",
        cwd=files,
        env={"FUNCFORGE_BWRAP": str(files / "missing")},
    )
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    assert doc["isolation"] == "process (weaker: no OS sandbox)"
    assert "[sandbox: process (weaker" in doc["summary"]


def test_workspace_config_opt_in_shows_in_stats_and_check(tmp_path: Path) -> None:
    ws = tmp_path
    (ws / "tools").mkdir()
    (ws / "tools" / "t.py").write_text(OLD)
    (ws / "pyproject.toml").write_text('[tool.funcforge]\nsandbox = "process"\n')
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["git", "-C", str(ws), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        check=True,
    )
    (ws / "tools" / "t.py").write_text("def f(x):\n    return x + 1\n")
    stats = funcforge("stats", str(ws), cwd=ws)
    assert stats.returncode == 0, stats.stderr
    assert "sandbox: process (weaker: no OS sandbox)" in stats.stdout
    as_json = json.loads(funcforge("stats", str(ws), "--json", cwd=ws).stdout)
    assert as_json["sandbox"] == "process (weaker: no OS sandbox)"
    check = funcforge("check", str(ws), "--function", "f", "--json", cwd=ws)
    assert check.returncode in (0, 1), check.stderr
    assert json.loads(check.stdout)["sandbox"] == "process (weaker: no OS sandbox)"
    # Back to the default: bubblewrap, or a refusal when it is missing.
    (ws / "pyproject.toml").write_text("[tool.funcforge]\n")
    refused = funcforge(
        "check", str(ws), "--function", "f", cwd=ws, env={"FUNCFORGE_BWRAP": "/nonexistent"}
    )
    assert refused.returncode == 3 and "without an OS sandbox" in refused.stderr


def test_optimize_refuses_before_asking_the_model(sample_copy) -> None:
    ws = sample_copy("math-tools")
    transcript = ws / "optimizer-transcript.jsonl"
    done = funcforge(
        "optimize",
        str(ws),
        "--llm",
        f"replay:{transcript}",
        cwd=ws,
        env={"FUNCFORGE_BWRAP": str(ws / "missing-bwrap")},
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "will not run tool code without an OS sandbox" in done.stderr
    assert not (ws / ".funcforge" / "proposals").exists() or not list(
        (ws / ".funcforge" / "proposals").iterdir()
    )
    # --no-execute runs no tool code, so it needs no sandbox.
    skipped = funcforge(
        "optimize",
        str(ws),
        "--llm",
        f"replay:{transcript}",
        "--no-execute",
        cwd=ws,
        env={"FUNCFORGE_BWRAP": str(ws / "missing-bwrap")},
    )
    assert skipped.returncode == 0, skipped.stderr
