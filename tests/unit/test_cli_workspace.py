"""Which workspace a command works on: found upward from the folder it is run in (or PATH).

A user who runs `funcforge stats` (or `check`, `pin`, `train`, ...) in a
subfolder of a workspace (`samples/math-tools/tools/`) got an unconfigured
workspace there: an empty toolset, and `.funcforge/` state in the wrong
folder. The workspace is now the nearest folder upward with `funcforge.toml`
or `[tool.funcforge]`, up to the repository root; paths typed on the command
line keep meaning what they meant from where the user is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from funcforge.cli import main as cli_main
from funcforge.errors import EXIT_ERROR
from funcforge.workspace import find_workspace, user_file, workspace_root
from tests.conftest import git, init_repo
from tests.unit.test_history_support import UNITS

MATH_CONFIG = """\
[project]
name = "agents"

[tool.funcforge]
tools = ["tools/**/*.py"]
traces = ["traces/**/*.jsonl"]
"""

NESTED_TOOL = '''\
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()
'''


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def trace_line(tool: str, args: dict[str, object], content: str) -> str:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": tool, "arguments": json.dumps(args)},
    }
    return json.dumps(
        {
            "id": f"{tool}-1",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": content},
                {"role": "assistant", "content": content},
            ],
            "outcome": {"score": 1.0, "passed": True},
        }
    )


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A repository whose root pyproject.toml has no [tool.funcforge]; two nested workspaces.

    repo/agents/math            [tool.funcforge] in pyproject.toml; tools/units.py
    repo/agents/math/lib        a pyproject.toml of a Python package, no [tool.funcforge]
    repo/agents/math/text       funcforge.toml (a workspace inside the workspace); tools/text.py
    """
    repo = tmp_path / "repo"
    math = repo / "agents" / "math"
    (math / "tools").mkdir(parents=True)
    (math / "traces").mkdir()
    (math / "lib" / "pkg").mkdir(parents=True)
    (math / "text" / "tools").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "monorepo"\n', encoding="utf-8")
    (repo / ".gitignore").write_text(".funcforge/\n", encoding="utf-8")
    (math / "pyproject.toml").write_text(MATH_CONFIG, encoding="utf-8")
    (math / "tools" / "units.py").write_text(UNITS, encoding="utf-8")
    (math / "traces" / "run.jsonl").write_text(
        trace_line("convert_units", {"value": 2, "unit": "km"}, "2000.0") + "\n",
        encoding="utf-8",
    )
    (math / "lib" / "pyproject.toml").write_text(
        '[project]\nname = "lib"\n# uses funcforge for its tools\n', encoding="utf-8"
    )
    (math / "text" / "funcforge.toml").write_text('tools = ["tools/*.py"]\n', encoding="utf-8")
    (math / "text" / "tools" / "text.py").write_text(NESTED_TOOL, encoding="utf-8")
    return init_repo(repo)


def stats_tools(out: str) -> list[str]:
    return [t["name"] for t in json.loads(out)["tools"]]


# ------------------------------------------------------------------ finding the workspace


def test_stats_from_a_subfolder_finds_the_workspace_and_says_so(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math / "tools")
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0, err
    # before: the unconfigured folder tools/ (no tools/**/*.py under it): an empty toolset
    assert stats_tools(out) == ["convert_units", "shout"]  # --json: stdout is the JSON only
    assert f"funcforge: workspace {math} (found from {math / 'tools'})" in err.splitlines()
    assert not (math / "tools" / ".funcforge").exists()  # the trace index went to the workspace
    assert (math / ".funcforge").is_dir()


def test_no_note_when_run_in_the_workspace_or_naming_it(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math)
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0 and "funcforge: workspace" not in err, err
    monkeypatch.chdir(monorepo)
    code, out, err = cli(capsys, "stats", "agents/math", "--json")
    assert code == 0 and "funcforge: workspace" not in err, err
    assert stats_tools(out) == ["convert_units", "shout"]


def test_a_folder_given_as_path_inside_a_workspace_finds_it(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(monorepo)
    code, out, err = cli(capsys, "stats", "agents/math/traces", "--json")
    assert code == 0, err
    assert stats_tools(out) == ["convert_units", "shout"]
    assert "funcforge: workspace " in err


def test_stats_of_one_trace_file_uses_the_workspace_the_file_is_in(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(monorepo)  # before: the current folder's configuration (no tools)
    code, out, err = cli(capsys, "stats", "agents/math/traces/run.jsonl", "--json")
    assert code == 0, err
    assert stats_tools(out) == ["convert_units", "shout"]
    assert f"funcforge: workspace {math} (found from {math / 'traces'})" in err


def test_the_nearest_of_nested_workspaces_wins(monorepo: Path) -> None:
    math = monorepo / "agents" / "math"
    assert find_workspace(math / "text" / "tools") == math / "text"
    assert find_workspace(math / "text") == math / "text"
    assert find_workspace(math / "tools") == math
    # a pyproject.toml without [tool.funcforge] (even one naming funcforge) does not stop it
    assert find_workspace(math / "lib" / "pkg") == math
    assert find_workspace(math / "lib") == math
    # the repository root's pyproject.toml has no [tool.funcforge]: no workspace
    assert find_workspace(monorepo) is None
    assert find_workspace(monorepo / "agents") is None


def test_stats_in_a_nested_workspace_reads_its_own_tools(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = monorepo / "agents" / "math" / "text"
    monkeypatch.chdir(text / "tools")
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0, err
    assert stats_tools(out) == ["shout"]
    assert f"funcforge: workspace {text} (found from {text / 'tools'})" in err


def test_the_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    """A configuration above the repository belongs to another project."""
    (tmp_path / "funcforge.toml").write_text("", encoding="utf-8")
    repo = tmp_path / "inner"
    (repo / "sub").mkdir(parents=True)
    init_repo(repo)
    assert find_workspace(repo / "sub") is None
    assert find_workspace(tmp_path) == tmp_path  # outside it, the file is the workspace's
    # a training worktree (`.git` is a file there) is a repository of its own, too
    wt = tmp_path / "wt"
    (wt / "sub").mkdir(parents=True)
    (wt / ".git").write_text("gitdir: /nowhere\n", encoding="utf-8")
    assert find_workspace(wt / "sub") is None


def test_the_search_does_not_enter_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "project" / "sub").mkdir(parents=True)
    (home / "funcforge.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    assert find_workspace(home / "project" / "sub") is None  # not in a repository
    assert find_workspace(home) == home  # run in the home folder itself: it is asked


def test_a_broken_pyproject_that_does_not_name_funcforge_is_passed_over(monorepo: Path) -> None:
    math = monorepo / "agents" / "math"
    (math / "lib" / "pyproject.toml").write_text("[project\nname = ", encoding="utf-8")
    assert find_workspace(math / "lib" / "pkg") == math


# ------------------------------------------------------------------ no configuration anywhere


def test_without_configuration_the_folder_itself_is_the_workspace_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "plain"
    (repo / "tools").mkdir(parents=True)
    (repo / "tools" / "units.py").write_text(UNITS, encoding="utf-8")
    init_repo(repo)
    monkeypatch.chdir(repo)
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0, err
    assert stats_tools(out) == ["convert_units", "shout"] and err == ""
    # in a subfolder: that folder, as before, but not silently (state is made there)
    monkeypatch.chdir(repo / "tools")
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0, err
    assert stats_tools(out) == []
    assert f"using {repo / 'tools'} as an unconfigured workspace" in err
    assert f"up to the repository root {repo}" in err
    # `stats` made no state there (no trace file): still no workspace, so said again
    assert not (repo / "tools" / ".funcforge").exists()
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0 and "as an unconfigured workspace" in err, err
    (repo / "tools" / ".funcforge").mkdir()  # once it has state: silent
    code, out, err = cli(capsys, "stats", "--json")
    assert code == 0 and err == "", err


@pytest.mark.parametrize("command", ["stats", "log", "check", "proposals", "optimize", "train"])
def test_a_path_that_does_not_exist_is_still_an_error(
    monorepo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math / "tools")
    argv = [command, "nope"] + (["--tasks", "t.jsonl"] if command == "train" else [])
    code, _out, err = cli(capsys, *argv)
    assert code == EXIT_ERROR
    assert err.strip().splitlines()[-1].startswith("funcforge: error: nope: no such folder")
    assert not (math / "tools" / "nope").exists()


# ------------------------------------------------------------------ state goes to the workspace


def test_pin_from_a_subfolder_writes_the_workspace_state(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math / "tools")
    code, out, err = cli(
        capsys, "pin", "--function", "shout", "--args", '{"text": "a"}', "--expected", '"A"'
    )
    assert code == 0, err
    assert "at .funcforge/expectations.jsonl:1" in out
    assert (math / ".funcforge" / "expectations.jsonl").is_file()
    assert not (math / "tools" / ".funcforge").exists()


def test_proposals_and_log_from_a_subfolder_use_the_workspace(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math / "traces")
    code, out, err = cli(capsys, "proposals", "--json")
    assert code == 0 and json.loads(out) == [], err
    code, out, err = cli(capsys, "log", "--json")
    assert code == 0, err
    json.loads(out)  # stdout is the JSON alone; the note is on stderr
    assert f"funcforge: workspace {math}" in err
    assert not (math / "traces" / ".funcforge").exists()


# ------------------------------------------------------------------ machine output stays clean


def test_check_json_and_sarif_from_a_subfolder_keep_stdout_clean(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math / "tools")
    code, out, err = cli(capsys, "check", "--json")
    assert code == 0, err
    assert json.loads(out)["has_regression"] is False
    assert "funcforge: workspace" in err
    code, out, err = cli(capsys, "check", "--format", "sarif")
    assert code == 0, err
    assert json.loads(out)["version"] == "2.1.0"


# ------------------------------------------------------------------ paths typed stay cwd-relative


def test_output_files_are_written_where_the_user_is(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    here = math / "tools"
    monkeypatch.chdir(here)
    code, _, err = cli(capsys, "check", "--format", "junit", "--output", "junit.xml")
    assert code == 0, err
    assert (here / "junit.xml").is_file() and not (math / "junit.xml").exists()
    code, _, err = cli(capsys, "review", "HEAD~0..HEAD", "--output", "review.md")
    assert code == 0, err
    assert (here / "review.md").is_file() and not (math / "review.md").exists()


def test_import_reads_and_writes_files_where_the_user_is(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    monkeypatch.chdir(math / "traces")
    code, _out, err = cli(capsys, "import", "run.jsonl", "--out", "native.jsonl")
    assert code == 0, err
    assert (math / "traces" / "native.jsonl").is_file()
    assert "traces/run.jsonl: native, 1 trace(s)" in err  # named as the workspace's file


def _tasks(path: Path, split: str) -> None:
    rows = [{"id": f"t{i}", "input": "q", "expected": "1", "split": split} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_train_tasks_mean_the_file_where_the_user_is(
    monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    math = monorepo / "agents" / "math"
    _tasks(math / "tasks.jsonl", "train")
    _tasks(math / "tools" / "tasks.jsonl", "test")  # a different file of the same name here
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(math / "tools")
    argv = ["train", "--tasks", "tasks.jsonl", "--agent", "command:true"]
    code, _, err = cli(capsys, *argv)
    # before: the workspace's tasks.jsonl was read (it was looked up there first)
    assert code == EXIT_ERROR
    assert f"{math / 'tools' / 'tasks.jsonl'}: no train tasks" in err
    # not here: the workspace's file (how the configuration names it); the run then
    # goes on to the next check, the transcript
    (math / "tools" / "tasks.jsonl").unlink()
    code, _, err = cli(capsys, *argv, "--llm", "replay:missing.jsonl")
    assert code == EXIT_ERROR and "missing.jsonl not found" in err, err
    assert not (math / "tools" / ".funcforge").exists()


def test_user_file_prefers_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, here = tmp_path / "ws", tmp_path / "ws" / "sub"
    here.mkdir(parents=True)
    (root / "a.txt").write_text("root", encoding="utf-8")
    monkeypatch.chdir(here)
    assert user_file("a.txt", root) == root / "a.txt"  # only in the workspace
    (here / "a.txt").write_text("here", encoding="utf-8")
    assert user_file("a.txt", root) == here / "a.txt"
    assert user_file("missing.txt", root) == here / "missing.txt"  # the error names it here
    assert user_file(str(root / "a.txt"), here) == root / "a.txt"


def test_workspace_root_is_idempotent_and_quiet_on_its_own_answer(monorepo: Path) -> None:
    heard: list[str] = []
    math = monorepo / "agents" / "math"
    assert workspace_root(math / "tools", say=heard.append) == math
    assert workspace_root(math, say=heard.append) == math
    assert heard == [f"funcforge: workspace {math} (found from {math / 'tools'})"]


# ------------------------------------------------------------------ the real CLI, as a process


def test_the_cli_process_finds_the_sample_workspace_from_its_tools_folder(
    monorepo: Path,
) -> None:
    math = monorepo / "agents" / "math"
    proc = subprocess.run(
        [sys.executable, "-m", "funcforge", "stats", "--json"],
        cwd=math / "tools",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert stats_tools(proc.stdout) == ["convert_units", "shout"]
    assert (
        proc.stderr.splitlines()[0] == f"funcforge: workspace {math} (found from {math / 'tools'})"
    )
    assert git(monorepo, "status", "--porcelain") == ""  # nothing made outside .funcforge/


def test_a_folder_that_is_no_workspace_keeps_no_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`funcforge stats` in /tmp or $HOME made .funcforge/cache/traces.sqlite there."""
    plain = tmp_path / "downloads"
    plain.mkdir()
    monkeypatch.chdir(plain)
    code, out, _ = cli(capsys, "stats")
    assert code == 0, out
    assert not (plain / ".funcforge").exists()
    # with a trace file it is a workspace (default globs): its index persists
    (plain / "traces").mkdir()
    (plain / "traces" / "runs.jsonl").write_text(
        trace_line("shout", {"text": "a"}, "A") + "\n", encoding="utf-8"
    )
    code, out, _ = cli(capsys, "stats")
    assert code == 0 and "shout" in out
    assert (plain / ".funcforge" / "cache" / "traces.sqlite").is_file()
    # a configured folder keeps its state even before any trace
    configured = tmp_path / "configured"
    configured.mkdir()
    (configured / "funcforge.toml").write_text('tools = ["tools/*.py"]\n', encoding="utf-8")
    monkeypatch.chdir(configured)
    code, _, _ = cli(capsys, "stats")
    assert code == 0 and (configured / ".funcforge" / "cache" / "traces.sqlite").is_file()
