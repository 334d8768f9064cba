"""`funcforge apply | rollback | log` as real subprocesses, plus the log's text and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from funcforge.cli import main as cli_main
from funcforge.errors import UserError
from funcforge.history.log import history_log, render_log
from funcforge.history.plot import plot_log
from tests.conftest import git
from tests.unit.test_history_support import (
    UNITS,
    make_proposal,
    make_workspace,
    revise,
    scores,
    sha,
    trained,
    write_traces,
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "funcforge", *args], cwd=cwd, capture_output=True, text=True
    )


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same entry point in-process (each subprocess pays seconds of imports)."""
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_commits_and_reports(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    make_proposal(config, [revise()], pid="2f1c9e")
    proc = run("apply", "2f1c", "ws", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    head = sha(config.root)
    assert proc.stdout == f"committed {head[:7]} funcforge: revise convert_units (tools/units.py)\n"
    assert git(config.root, "log", "-1", "--format=%s") == "funcforge: revise convert_units\n"


def test_apply_refusals_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    make_proposal(config, [revise()], pid="2f1c9e")
    mine = UNITS.replace('"m": 1.0}', '"m": 1.0, "cm": 0.01}')  # the proposal's lines
    (config.root / "tools" / "units.py").write_text(mine, encoding="utf-8")
    proc = run("apply", "2f1c9e", str(config.root), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "funcforge: error: tools/units.py:6: proposal 2f1c9e's lines conflict with your "
        "uncommitted edits"
    )
    assert "Propose again" in proc.stderr and len(proc.stderr.splitlines()) == 1
    code, out, err = main(capsys, "apply", "2f1c9e", str(config.root), "--commit-dirty")
    assert code == 2 and "--commit-dirty would commit your version of it" in err
    assert git(config.root, "rev-list", "--count", "HEAD") == "1\n"  # nothing committed
    (config.root / "tools" / "units.py").write_text(UNITS + "# mine\n", encoding="utf-8")
    code, out, err = main(capsys, "apply", "2f1c9e", str(config.root), "--commit-dirty", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["commit"] == sha(config.root) and data["wip_commit"] == sha(config.root, "HEAD~1")
    code, _, err = main(capsys, "apply", "zzz", str(config.root))
    assert code == 2 and "no proposal 'zzz'" in err
    assert "`funcforge proposals --all` lists them" in err  # what to do, as reject says
    code, _, err = main(capsys, "apply", "2f1c9e", str(tmp_path / "missing"))
    assert code == 2 and "no such folder" in err


def test_rollback_and_log_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, c0, o1, o2 = trained(tmp_path)
    root = config.root
    write_traces(root, o1[:7], scores(0.7, 90), "traces/more.jsonl")
    write_traces(root, o2[:7], scores(0.5, 90), "traces/more.jsonl")
    code, out, err = main(capsys, "log", str(root))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("scores are of the train split; test (held out) scores are shown")
    assert lines[1] == f"best version: {c0[:7]} train 0.80 (n=30)"
    assert lines[2] == f"HEAD: {o2[:7]} train 0.50 (n=120)"
    assert lines[3].startswith(f"decline: score fell from 0.70 (n=120, {o1[:7]}) to 0.50 (n=120)")
    assert f"{o2[:7]}  step 2  revise add  base 0.62 (n=40)  measured 0.50 (n=120)" in lines
    assert (
        f"{o1[:7]}  step 1  revise convert_units  base 0.62 (n=40)  measured 0.70 (n=120)" in lines
    )

    with pytest.raises(SystemExit) as exit_info:  # --best or --to is required
        main(capsys, "rollback", str(root))
    assert exit_info.value.code == 2
    proc = run("rollback", str(root), "--best", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rb = sha(root)
    assert proc.stdout.splitlines() == [
        f"committed {rb[:7]} funcforge: roll back to {c0[:7]} (0.80, n=30) from 0.50 (n=120)",
        f"reverted {o2[:7]}, {o1[:7]}",
    ]
    proc = run("log", str(root), "--json", cwd=tmp_path)
    data = json.loads(proc.stdout)
    assert [c["commit"] for c in data["commits"]] == [rb, o2, o1]
    assert data["commits"][0]["kind"] == "rollback" and data["commits"][1]["reverted_by"] == rb
    # the roll-back commit has c0's tools: one version, named by its newest commit on HEAD
    assert data["best"]["version"] == rb and data["best"]["commits"] == [c0, rb]
    assert data["decline"]["declined"] is False
    assert [v["short"] for v in data["versions"]] == [c0[:7], o1[:7], o2[:7], rb[:7]]

    plot = tmp_path / "out" / "scores.png"
    code, out, err = main(capsys, "log", str(root), "--plot", str(plot))
    assert code == 0, err
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 5000
    assert out.endswith(f"plot written to {plot}\n")


def test_log_without_funcforge_commits_and_without_git(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    text = render_log(history_log(config))
    assert "best version: none yet" in text and "no funcforge commits on this branch yet" in text
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = main(capsys, "log", str(plain))
    assert code == 2
    assert "is not a git repository: everything but commits works; run git init" in err


def test_plot_explains_a_missing_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, *_ = trained(tmp_path)
    log = history_log(config)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(
        UserError, match=r"--plot needs matplotlib.*pip install 'funcforge\[plot\]'"
    ):
        plot_log(log, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_needs_scores(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    with pytest.raises(UserError, match="nothing to plot"):
        plot_log(history_log(config), tmp_path / "x.png")
