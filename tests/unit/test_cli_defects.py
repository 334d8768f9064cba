"""Regression tests for the command line's rough edges (issue 17, item 6).

Each test pins one defect: a traceback, an action that should have been
refused, a folder created by mistake, an exit code that differed between
commands, an error found too late, a hidden reason, a broken pipe.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from funcforge.cli import build_parser
from funcforge.cli import main as cli_main
from funcforge.errors import EXIT_BROKEN_PIPE, EXIT_ERROR
from funcforge.history.git import apply_proposal
from funcforge.optimizer.proposal import load_proposal
from tests.conftest import REPO_ROOT, SAMPLES, init_repo
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.test_history_support import make_proposal, make_workspace, revise

TIMEOUT = 120


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funcforge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("funcforge: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ reject


def test_reject_of_an_unknown_id_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    code, _, err = main(capsys, "reject", "nope42", str(config.root))
    assert code == EXIT_ERROR
    assert "no proposal 'nope42'" in one_line_error(err)


def test_reject_of_an_applied_proposal_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    proposal = make_proposal(config, [revise()], pid="2f1c9e")
    applied = apply_proposal(config, proposal)
    code, _, err = main(capsys, "reject", "2f1c9e", str(config.root))
    assert code == EXIT_ERROR
    line = one_line_error(err)
    assert "already applied as commit " + applied.commit[:7] in line and "rollback" in line
    assert load_proposal(config.proposals_path, "2f1c9e").status == "applied"
    # a pending one is rejected; rejecting it again says so and changes nothing
    make_proposal(config, [revise()], pid="3a3a3a")
    code, out, _ = main(capsys, "reject", "3a3a3a", str(config.root))
    assert code == 0 and "Rejected proposal 3a3a3a" in out
    code, out, _ = main(capsys, "reject", "3a3a3a", str(config.root))
    assert code == 0 and "already rejected" in out


# ------------------------------------------------------------------ missing paths


@pytest.mark.parametrize(
    "argv",
    [
        ["optimize", "{p}", "--no-execute"],
        ["proposals", "{p}"],
        ["reject", "abc", "{p}"],
        ["train", "{p}", "--tasks", "tasks.jsonl"],
        ["train", "--clean", "--", "{p}"],
        ["apply", "abc", "{p}"],
        ["log", "{p}"],
        ["rollback", "{p}", "--best"],
        ["check", "{p}"],
        ["stats", "{p}"],
        ["pin", "{p}", "--function", "f", "--args", "{{}}", "--expected", "1"],
    ],
)
def test_a_missing_workspace_is_the_same_clear_error_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    missing = tmp_path / "nope"
    args = [a.format(p=missing) for a in argv]
    code, _, err = main(capsys, *args)
    assert code == EXIT_ERROR, err
    line = one_line_error(err)
    assert f"{missing}: no such folder" in line
    assert not missing.exists()  # nothing created there (optimize used to make .funcforge/)


def test_a_file_given_as_workspace_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x\n")
    code, _, err = main(capsys, "proposals", str(f))
    assert code == EXIT_ERROR and "not a folder" in one_line_error(err)


# ------------------------------------------------------------------ train: key first


def _no_key_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["PYTHONPATH"] = str(REPO_ROOT / "server")
    return env


def test_train_checks_the_api_key_before_any_work(tmp_path: Path) -> None:
    import shutil

    ws = tmp_path / "math-tools"
    shutil.copytree(SAMPLES / "math-tools", ws, ignore=shutil.ignore_patterns(".funcforge"))
    init_repo(ws)
    # the function-calling agent needs the endpoint for every task
    proc = run(
        "train", ".", "--agent", "function-calling", "--epochs", "1", cwd=ws, env=_no_key_env()
    )
    assert proc.returncode == EXIT_ERROR, proc.stderr
    line = one_line_error(proc.stderr)
    assert "function-calling agent needs the model endpoint" in line and "OPENAI_API_KEY" in line
    assert not (ws / ".funcforge" / "train").exists()  # no worktree, no evaluation
    # the command agent needs no model, but the optimizer does unless answers are replayed
    proc = run("train", ".", "--epochs", "1", cwd=ws, env=_no_key_env())
    assert proc.returncode == EXIT_ERROR
    assert "--llm replay:FILE" in one_line_error(proc.stderr)
    assert not (ws / ".funcforge" / "train").exists()


# ------------------------------------------------------------------ optimize: rejected answers


def test_text_optimize_shows_why_answers_were_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_history_support import NEW_CONVERT, scores, sha, write_traces

    config = make_workspace(tmp_path / "ws")
    write_traces(config.root, sha(config.root)[:7], scores(0.5, 4))
    bad = {
        "tool_calls": [
            {
                "name": "revise_function",
                "arguments": {"name": "convert_units", "description": "x", "code": "def ("},
            }
        ]
    }
    good = {
        "tool_calls": [
            {
                "name": "revise_function",
                "arguments": {
                    "name": "convert_units",
                    "description": "Convert a length to metres.",
                    "arguments": {
                        "type": "object",
                        "properties": {"value": {"type": "number"}, "unit": {"type": "string"}},
                        "required": ["value", "unit"],
                    },
                    "code": NEW_CONVERT,
                },
            }
        ]
    }
    with FakeOpenAI(script=[bad, good, {"content": "TERMINATE"}]) as srv:
        (config.root / "funcforge.toml").write_text(
            f'base_url = "{srv.base_url}"\nmodel = "fake-model"\n', encoding="utf-8"
        )
        code, out, err = main(capsys, "optimize", str(config.root), "--no-execute")
    assert code == 0, err
    assert "Rejected answers (1, each fed back to the model):" in out
    reason = out.split("Rejected answers", 1)[1].splitlines()[1]
    assert reason.startswith("  - ") and "convert_units" in reason
    assert "Proposal " in out


# ------------------------------------------------------------------ broken pipes


@pytest.mark.parametrize("argv", [["--help"], ["log", "."], ["proposals", ".", "--all"]])
def test_a_closed_pipe_ends_quietly(tmp_path: Path, argv: list[str]) -> None:
    config = make_workspace(tmp_path / "ws")
    for i in range(3):
        make_proposal(config, [revise()], pid=f"{i}a{i}a{i}a")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as with `| head -0`
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "funcforge", *argv],
            cwd=config.root,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    # --help too: argparse used to swallow the failed write and exit 0 (docs/cli.md: 141)
    assert proc.returncode == EXIT_BROKEN_PIPE


# ------------------------------------------------------------------ help


def _parsers(parser: argparse.ArgumentParser, path: str = "funcforge"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without help: " + ", ".join(missing)


def test_proposals_json_lists_applied_and_rejected_with_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    make_proposal(config, [revise()], pid="aaaaaa")
    main(capsys, "reject", "aaaaaa", str(config.root))
    code, out, _ = main(capsys, "proposals", str(config.root), "--all", "--json")
    assert code == 0 and [p["status"] for p in json.loads(out)] == ["rejected"]
