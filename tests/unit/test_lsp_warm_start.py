"""Warm start of the language server (issue 18): one tool reload at a time, a parse cache
on disk, and provenance's "unknown version" answer kept while HEAD is unchanged."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from funcforge.config import Config
from funcforge.lsp.provenance import CodeAtVersion
from funcforge.lsp.session import Session, Settings
from funcforge.toolset import toolset as toolset_module
from funcforge.toolset.toolset import Toolset, load_toolset

TOOL = '''def tool_{i}(x: int, unit: Unit = "m") -> int:
    """Add {i}.

    Args:
        x: The number.
        unit: The unit.
    """
    return x + {i}
'''


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def workspace(root: Path, files: int = 20) -> None:
    """Tool files that import a type from another file, one that does not parse, one with a
    class-based tool (a problem that is a warning)."""
    write(root, "tools/kinds.py", "from typing import Literal\nUnit = Literal['m', 'km']\n")
    for i in range(files):
        write(root, f"tools/t{i:03d}.py", "from tools.kinds import Unit\n\n" + TOOL.format(i=i))
    write(root, "tools/broken.py", "def broken(:\n    pass\n")
    write(
        root,
        "tools/classy.py",
        "from crewai.tools import BaseTool\n\nclass Search(BaseTool):\n    name: str = 's'\n",
    )


def session(root: Path) -> Session:
    s = Session(root, Settings())
    s.load_config()
    return s


def view(toolset: Toolset) -> tuple[Any, ...]:
    """What diagnostics are made of: every function spec and every problem."""
    return (
        {name: spec.to_dict() for name, spec in toolset.functions.items()},
        sorted(map(repr, toolset.problems)),
        toolset.files,
    )


def slow_extract(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each extraction takes 20 ms: two concurrent reloads overlap on every file."""
    real = toolset_module._extract

    def slow(*args: Any) -> Any:
        time.sleep(0.02)
        return real(*args)

    monkeypatch.setattr(toolset_module, "_extract", slow)


def test_two_concurrent_reloads_parse_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace(tmp_path, 10)
    slow_extract(monkeypatch)
    s = session(tmp_path)
    text = (tmp_path / "tools/t000.py").read_text()
    results: list[Toolset] = []
    start = threading.Barrier(2)

    def index() -> None:  # startup indexing
        start.wait()
        results.append(s.reload_tools())

    def opened() -> None:  # the refresh after didOpen of a tool file
        start.wait()
        with s.lock:
            s.buffers["tools/t000.py"] = text
        results.append(s.reload_tools(rescan=False))

    threads = [threading.Thread(target=index), threading.Thread(target=opened)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = len(s.toolset.files)
    assert files == 13
    assert s.parse_cache.parses == files  # each file once, not twice side by side
    assert view(results[0]) == view(results[1]) == view(load_toolset(s.config))


def test_a_waiting_reload_reuses_the_result_of_one_that_started_after_it_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace(tmp_path, 5)
    slow_extract(monkeypatch)
    s = session(tmp_path)
    results: list[Toolset] = []
    threads = [threading.Thread(target=lambda: results.append(s.reload_tools())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.parse_cache.parses == len(s.toolset.files)
    # the first runs; the two that waited asked before the second reload started: one
    # reload answers both (the same object), so at most two reloads ran
    assert len({id(r) for r in results}) <= 2


def test_second_session_start_parses_nothing_and_diagnoses_the_same(tmp_path: Path) -> None:
    workspace(tmp_path)
    first = session(tmp_path)
    cold = first.reload_tools()
    assert first.parse_cache.parses == len(cold.files)
    assert (tmp_path / ".funcforge/cache/toolset-parse.json").is_file()
    second = session(tmp_path)
    warm = second.reload_tools()
    assert second.parse_cache.parses == 0
    assert second.parse_cache.notices == []
    assert view(warm) == view(cold) == view(load_toolset(Config(root=tmp_path)))
    assert any("syntax error" in p.message for p in warm.problems)
    assert warm.functions["tool_3"].parameters["properties"]["unit"]["enum"] == ["m", "km"]


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    workspace(tmp_path)
    session(tmp_path).reload_tools()
    write(tmp_path, "tools/t004.py", "def tool_4(x: int) -> int:\n    return 4\n")
    s = session(tmp_path)
    toolset = s.reload_tools()
    assert s.parse_cache.parses == 1
    assert toolset.functions["tool_4"].code.endswith("return 4")
    assert view(toolset) == view(load_toolset(Config(root=tmp_path)))


def test_a_changed_import_reparses_its_users_across_starts(tmp_path: Path) -> None:
    workspace(tmp_path, 3)
    session(tmp_path).reload_tools()
    write(tmp_path, "tools/kinds.py", "from typing import Literal\nUnit = Literal['m', 'mile']\n")
    s = session(tmp_path)
    toolset = s.reload_tools()
    assert toolset.functions["tool_1"].parameters["properties"]["unit"]["enum"] == ["m", "mile"]
    assert view(toolset) == view(load_toolset(Config(root=tmp_path)))


def test_an_unsaved_buffer_is_not_what_the_next_start_reuses(tmp_path: Path) -> None:
    workspace(tmp_path, 3)
    s = session(tmp_path)
    s.reload_tools()
    s.buffers["tools/t001.py"] = "def tool_1(x: int) -> int:\n    return 111\n"
    s.reload_tools(rescan=False)
    again = session(tmp_path)
    toolset = again.reload_tools()
    assert again.parse_cache.parses == 0  # the file on disk is unchanged
    assert "return x + 1" in toolset.functions["tool_1"].code


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"format": 1, "code": 5}',
        b"\xff\xfe\x00garbage",
        b'{"format": 1}',
        b'{"format": 1, "code": "another", "entries": {}}',
    ],
)
def test_a_corrupt_cache_file_is_ignored_with_a_message(tmp_path: Path, content: bytes) -> None:
    workspace(tmp_path, 4)
    cold = session(tmp_path).reload_tools()
    path = tmp_path / ".funcforge/cache/toolset-parse.json"
    path.write_bytes(content)
    s = session(tmp_path)
    toolset = s.reload_tools()
    assert view(toolset) == view(cold)
    assert s.parse_cache.parses == len(toolset.files)
    notices = s.parse_cache.notices
    if b"another" in content:  # another funcforge's: re-parsed, no fault
        assert notices == []
    else:
        assert len(notices) == 1 and str(path) in notices[0] and "corrupt" in notices[0]
    assert session(tmp_path).reload_tools() is not None  # rewritten: the next start is warm
    third = session(tmp_path)
    third.reload_tools()
    assert third.parse_cache.parses == 0 and third.parse_cache.notices == []


def test_a_cache_entry_with_wrong_shapes_is_ignored_with_a_message(tmp_path: Path) -> None:
    workspace(tmp_path, 2)
    session(tmp_path).reload_tools()
    path = tmp_path / ".funcforge/cache/toolset-parse.json"
    import json

    data = json.loads(path.read_text())
    key = next(iter(data["entries"]))
    data["entries"][key]["specs"] = [{"no": "name"}]
    path.write_text(json.dumps(data))
    s = session(tmp_path)
    s.reload_tools()
    assert s.parse_cache.notices and "corrupt" in s.parse_cache.notices[0]


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "-C", str(root), *args],
        check=True,
        capture_output=True,
    )


def test_an_unknown_version_runs_git_once_while_head_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "tools/a.py", "def a(x: int) -> int:\n    return x\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "tools")
    git(tmp_path, "commit", "-q", "-m", "one")
    config = Config(root=tmp_path)
    runs: list[str] = []
    real = CodeAtVersion._read

    def counting(config: Config, version: str, file: str) -> Any:
        runs.append(version)
        return real(config, version, file)

    monkeypatch.setattr(CodeAtVersion, "_read", staticmethod(counting))
    code = CodeAtVersion()
    for _ in range(3):  # "v0" names no commit and no content hash: git is never asked
        assert code.hash_of(config, "v0", "tools/a.py", "a") is None
    assert runs == []
    for _ in range(5):  # five hovers / diagnostic publishes
        assert code.hash_of(config, "0123456789ab", "tools/a.py", "a") is None
    assert runs == ["0123456789ab"]
    # a new commit may make the version known (a content hash of a recent commit): asked again
    write(tmp_path, "tools/a.py", "def a(x: int) -> int:\n    return x + 1\n")
    git(tmp_path, "commit", "-q", "-am", "two")
    assert code.hash_of(config, "0123456789ab", "tools/a.py", "a") is None
    assert runs == ["0123456789ab"] * 2
    # a known commit is found (and cached as before)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert code.hash_of(config, head, "tools/a.py", "a")
    assert code.hash_of(config, head, "tools/a.py", "a")
    assert runs.count(head) == 1


def test_head_is_read_from_a_linked_worktree_and_packed_refs(tmp_path: Path) -> None:
    from funcforge.history.headref import read_head

    repo = tmp_path / "repo"
    write(repo, "f.txt", "x\n")
    git(repo, "init", "-q")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "one")

    def rev(root: Path) -> str:
        return subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()

    assert read_head(repo / "sub") == rev(repo)
    git(repo, "pack-refs", "--all")
    assert read_head(repo) == rev(repo)
    git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"))
    write(tmp_path / "wt", "g.txt", "y\n")
    git(tmp_path / "wt", "add", "g.txt")
    git(tmp_path / "wt", "commit", "-q", "-m", "two")
    assert read_head(tmp_path / "wt") == rev(tmp_path / "wt") != rev(repo)
