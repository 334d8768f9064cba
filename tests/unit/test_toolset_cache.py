"""Incremental loading: an edit re-parses one file; huge tool files are refused with a problem."""

from __future__ import annotations

from pathlib import Path

from funcforge.config import Config
from funcforge.lsp.session import Session, Settings
from funcforge.toolset.cache import ParseCache
from funcforge.toolset.toolset import load_toolset


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def many_tools(root: Path, files: int) -> None:
    for i in range(files):
        write(root, f"tools/t{i:04d}.py", f"def tool_{i}(x: int) -> int:\n    return x + {i}\n")


def test_an_edit_reparses_only_the_edited_file(tmp_path: Path) -> None:
    many_tools(tmp_path, 2000)
    config = Config(root=tmp_path)
    cache = ParseCache()
    first = load_toolset(config, cache=cache)
    assert len(first.functions) == 2000 and cache.parses == 2000
    edited = {"tools/t0007.py": "def tool_7(x: int) -> int:\n    return x * 7\n"}
    second = load_toolset(config, overrides=edited, cache=cache)
    assert cache.parses == 2001
    assert second.functions["tool_7"].code.endswith("x * 7")
    assert first.functions["tool_7"].code.endswith("x + 7")  # earlier loads keep theirs
    write(tmp_path, "tools/t0008.py", "def tool_8(x: int) -> int:\n    return 8\n")
    third = load_toolset(config, overrides=edited, cache=cache)
    assert cache.parses == 2002 and third.functions["tool_8"].code.endswith("return 8")


def test_a_changed_import_reparses_the_files_that_use_it(tmp_path: Path) -> None:
    write(tmp_path, "tools/kinds.py", "from typing import Literal\nUnit = Literal['m', 'km']\n")
    write(
        tmp_path,
        "tools/convert.py",
        "from tools.kinds import Unit\n\ndef convert(value: float, unit: Unit) -> float:\n"
        "    return value\n",
    )
    config = Config(root=tmp_path)
    cache = ParseCache()
    before = load_toolset(config, cache=cache).functions["convert"]
    assert before.parameters["properties"]["unit"].get("enum") == ["m", "km"]
    edited = {"tools/kinds.py": "from typing import Literal\nUnit = Literal['m', 'km', 'mile']\n"}
    after = load_toolset(config, overrides=edited, cache=cache).functions["convert"]
    assert after.parameters["properties"]["unit"].get("enum") == ["m", "km", "mile"]


def test_cached_specs_are_not_changed_by_a_load(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py", "import helper\n\ndef a() -> int:\n    return helper.x\n")
    write(tmp_path, "tools/helper.py", "x = 1\n")
    config = Config(root=tmp_path)
    cache = ParseCache()
    one = load_toolset(config, cache=cache).functions["a"]
    two = load_toolset(config, cache=cache).functions["a"]
    assert one is not two and one.packages == two.packages


def test_a_huge_tool_file_is_refused_with_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "tools/ok.py", "def ok() -> int:\n    return 1\n")
    body = "".join(f"def f_{i}(x: int) -> int:\n    return x\n\n" for i in range(12000))
    write(tmp_path, "tools/generated.py", body)
    config = Config(root=tmp_path, max_tool_file_kb=256)
    toolset = load_toolset(config)
    assert sorted(toolset.functions) == ["ok"]
    (problem,) = [p for p in toolset.problems if p.file == "tools/generated.py"]
    assert "over the 256 KB limit" in problem.message and "max_tool_file_kb" in problem.message
    huge = {"tools/ok.py": body}  # an unsaved buffer too
    toolset = load_toolset(config, overrides=huge)
    assert "ok" not in toolset.functions
    assert any(p.file == "tools/ok.py" and "limit" in p.message for p in toolset.problems)


def test_session_buffer_edits_skip_the_search_and_reparse_one_file(tmp_path: Path) -> None:
    many_tools(tmp_path, 50)
    session = Session(tmp_path, Settings())
    session.load_config()
    session.reload_tools()
    parses = session.parse_cache.parses
    session.buffers["tools/t0003.py"] = "def tool_3(x: int) -> int:\n    return 3\n"
    write(tmp_path, "tools/unseen.py", "def unseen() -> None:\n    pass\n")
    toolset = session.reload_tools(rescan=False)
    assert session.parse_cache.parses == parses + 1
    assert "unseen" not in toolset.functions  # no search: only the buffer changed
    assert "unseen" in session.reload_tools().functions  # a rescan finds it
