"""Finding the workspace from awkward places (docs/cli.md "Which workspace").

A shell whose folder was deleted, git's own folder, a state folder, a training
worktree under `.funcforge/train/`, a git submodule, a folder named
`funcforge.toml`, and configuration files that cannot be read: each gives the
right workspace or one clear line (exit 2), never a traceback, and never
state written where it does not belong.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from funcforge.cli import main as cli_main
from funcforge.errors import EXIT_ERROR
from funcforge.workspace import workspace_root
from tests.conftest import git, init_repo
from tests.unit.test_cli_workspace import monorepo  # noqa: F401 (a fixture)

TOOL = '''\
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()
'''


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def repo_with_tools(path: Path, config: str | None = 'tools = ["tools/*.py"]\n') -> Path:
    (path / "tools").mkdir(parents=True)
    (path / "tools" / "text.py").write_text(TOOL, encoding="utf-8")
    (path / ".gitignore").write_text(".funcforge/\n", encoding="utf-8")
    if config is not None:
        (path / "funcforge.toml").write_text(config, encoding="utf-8")
    return init_repo(path)


def test_a_deleted_current_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repo_with_tools(tmp_path / "repo")
    gone = repo / "tools" / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # as `rm -r` from another shell
    for command in (["stats", "--json"], ["check", "--format", "sarif"], ["log"]):
        code, out, err = cli(capsys, *command)
        # before: FileNotFoundError from resolve(), a traceback and exit 1
        assert code == EXIT_ERROR, (command, err)
        assert out == ""
        assert err.startswith("funcforge: error: the current folder no longer exists"), err
    # a workspace named by its absolute path still works from there
    code, out, err = cli(capsys, "stats", str(repo), "--json")
    assert code == 0, err


def test_inside_git_s_folder_the_repository_is_the_workspace_not_dot_git(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repo_with_tools(tmp_path / "repo", config=None)  # an unconfigured workspace
    monkeypatch.chdir(repo / ".git" / "refs")
    code, _, err = cli(capsys, "stats", "--json")
    assert code == 0, err
    # before: `.git/refs` was taken as an unconfigured workspace and its state written there
    assert not (repo / ".git" / "refs" / ".funcforge").exists()
    assert not any(p.name == ".funcforge" for p in (repo / ".git").rglob("*"))
    assert f"funcforge: workspace {repo} (found from {repo / '.git' / 'refs'})" in err


def test_inside_a_state_folder_its_workspace_is_used(tmp_path: Path) -> None:
    repo = repo_with_tools(tmp_path / "repo", config=None)
    cache = repo / "tools" / ".funcforge" / "cache"
    cache.mkdir(parents=True)
    heard: list[str] = []
    assert workspace_root(cache, heard.append) == repo / "tools"
    assert heard == [f"funcforge: workspace {repo / 'tools'} (found from {cache})"]
    # a configured workspace is found from its state folder by the search itself
    configured = repo_with_tools(tmp_path / "other")
    (configured / ".funcforge" / "cache").mkdir(parents=True)
    assert workspace_root(configured / ".funcforge" / "cache", heard.append) == configured


@pytest.mark.parametrize("configured", [True, False])
def test_a_training_worktree_is_its_own_workspace(tmp_path: Path, configured: bool) -> None:
    repo = repo_with_tools(tmp_path / "repo", 'tools = ["tools/*.py"]\n' if configured else None)
    worktree = repo / ".funcforge" / "train" / "20260101-000000" / "worktree"
    git(repo, "worktree", "add", "-q", "-b", "funcforge/train/r", str(worktree))
    heard: list[str] = []
    # from its tools folder: the worktree's own configuration (configured), else the
    # folder itself, as in any repository; never the checkout that holds .funcforge/
    want = worktree if configured else worktree / "tools"
    assert workspace_root(worktree / "tools", heard.append) == want
    assert workspace_root(worktree, heard.append) == worktree


def test_a_submodule_ends_the_search(tmp_path: Path) -> None:
    lib = repo_with_tools(tmp_path / "lib", config=None)
    outer = repo_with_tools(tmp_path / "outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "-q", "add", str(lib), "lib")
    # the superproject's funcforge.toml configures the superproject, not the submodule
    heard: list[str] = []
    assert workspace_root(outer / "lib", heard.append) == outer / "lib"


def test_a_folder_named_funcforge_toml_is_not_configuration(tmp_path: Path) -> None:
    repo = repo_with_tools(tmp_path / "repo", config=None)
    (repo / "funcforge.toml").mkdir()
    heard: list[str] = []
    assert workspace_root(repo / "tools", heard.append) == repo / "tools"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("funcforge.toml", b'tools = ["tools/*.py"\nx = 1\n', "funcforge.toml:2: not valid TOML"),
        (
            "pyproject.toml",
            b'[project]\nname = "a"\n[tool.funcforge\n',
            "pyproject.toml:3: not valid TOML",
        ),
        ("funcforge.toml", b'# ok\ntools = ["t\xff.py"]\n', "funcforge.toml:2: not UTF-8 text"),
        ("pyproject.toml", b'[tool.funcforge]\nmodel = "\xe9"\n', "pyproject.toml:2: not UTF-8"),
    ],
)
def test_a_broken_configuration_above_the_folder_is_named_with_its_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    data: bytes,
    expected: str,
) -> None:
    repo = repo_with_tools(tmp_path / "repo", config=None)
    (repo / name).write_bytes(data)
    monkeypatch.chdir(repo / "tools")
    code, out, err = cli(capsys, "stats", "--json")
    # before (not UTF-8): UnicodeDecodeError, a traceback and exit 1
    assert code == EXIT_ERROR and out == "", err
    assert f"funcforge: error: {repo / name}" in err and expected in err, err
    assert "Traceback" not in err


def test_an_unreadable_configuration_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repo_with_tools(tmp_path / "repo")
    config = repo / "funcforge.toml"
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == config:
            raise PermissionError(13, os.strerror(13))  # tests may run as root: chmod is moot
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code, out, err = cli(capsys, "stats", str(repo / "tools"), "--json")
    assert code == EXIT_ERROR and out == "", err
    assert f"{config}: cannot read the configuration: Permission denied" in err


def test_check_at_an_unconfigured_root_refuses_changes_in_nested_workspaces(
    monorepo: Path,  # noqa: F811 (the fixture imported above)
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pre-commit hook runs `funcforge check` at the repository root (docs/ci.md)."""
    math = monorepo / "agents" / "math"
    units = math / "tools" / "units.py"
    units.write_text(units.read_text(encoding="utf-8").replace("value *", "2 * value *"))
    git(monorepo, "add", "-A")  # staged, as pre-commit sees it
    monkeypatch.chdir(monorepo)
    code, out, err = cli(capsys, "check", "--format", "sarif")
    # before: the root, no workspace, had no tool files: "no tool function changed", exit 0,
    # and the hook let the regression of convert_units(value=2, unit='km') through
    assert code == EXIT_ERROR and out == "", err
    assert "is not a funcforge workspace" in err and "args: [agents/math]" in err, err
    code, out, err = cli(capsys, "check", "agents/math")  # as the docs' `args:` line runs it
    assert code == 1 and "convert_units(value=2, unit='km')" in out, err
    # pre-push: the pushed range, named by pre-commit
    git(monorepo, "commit", "-qm", "double")
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", "HEAD~1")
    monkeypatch.setenv("PRE_COMMIT_TO_REF", "HEAD")
    code, _, err = cli(capsys, "check")
    assert code == EXIT_ERROR and "changed between HEAD~1 and HEAD" in err, err
    # changes outside any workspace leave the root's check as it was
    monkeypatch.delenv("PRE_COMMIT_FROM_REF")
    monkeypatch.delenv("PRE_COMMIT_TO_REF")
    (monorepo / "README.md").write_text("docs\n", encoding="utf-8")
    git(monorepo, "add", "README.md")
    code, out, err = cli(capsys, "check")
    assert code == 0 and "no tool function changed" in out, err
