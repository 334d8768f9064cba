"""Loading a workspace's toolset: globs, decoding, problems, overrides, content hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.paths import matches
from funcforge.toolset.source import decode_source, encode_source
from funcforge.toolset.toolset import load_toolset, matches_tools, tool_files


def write(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


def test_double_star_glob_finds_nested_files_and_only_python(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py", "def a(): pass\n")
    write(tmp_path, "tools/sub/deeper/b.py", "def b(): pass\n")
    write(tmp_path, "tools/notes.txt", "def c(): pass\n")
    write(tmp_path, "tools/__pycache__/a.cpython-311.py", "def stale(): pass\n")
    write(tmp_path, "other/d.py", "def d(): pass\n")
    config = Config(root=tmp_path)
    assert tool_files(config) == ["tools/a.py", "tools/sub/deeper/b.py"]
    toolset = load_toolset(config)
    assert sorted(toolset.functions) == ["a", "b"]
    assert toolset.functions["b"].location is not None
    assert toolset.functions["b"].location.file == "tools/sub/deeper/b.py"
    assert toolset.problems == []


def test_several_globs_and_state_dir_excluded(tmp_path: Path) -> None:
    write(tmp_path, "agent_tools.py", "def a(): pass\n")
    write(tmp_path, "lib/x.py", "def x(): pass\n")
    write(tmp_path, ".funcforge/proposals/p.py", "def p(): pass\n")
    config = Config(root=tmp_path, tools=["*_tools.py", "lib/*.py", "**/*.py"])
    assert tool_files(config) == ["agent_tools.py", "lib/x.py"]


def test_absolute_glob_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="relative to the workspace root"):
        tool_files(Config(root=tmp_path, tools=["/etc/*.py"]))


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("tools/**/*.py", "tools/a.py", True),
        ("tools/**/*.py", "tools/x/y/a.py", True),
        ("tools/**/*.py", "toolsx/a.py", False),
        ("tools/*.py", "tools/x/a.py", False),
        ("**/*.py", "a.py", True),
        ("t/[ab].py", "t/b.py", True),
        ("t/[!ab].py", "t/a.py", False),
        ("t/?.py", "t/ab.py", False),
    ],
)
def test_glob_regex_agrees_with_pathlib(
    tmp_path: Path, pattern: str, path: str, expected: bool
) -> None:
    assert matches([pattern], path) is expected
    write(tmp_path, path, "")
    assert (tmp_path / path in set(tmp_path.glob(pattern))) is expected


def test_syntax_error_in_one_file_leaves_the_others_usable(tmp_path: Path) -> None:
    write(tmp_path, "tools/good.py", "def good(x: int) -> int:\n    return x\n")
    write(tmp_path, "tools/bad.py", "def fine(): pass\n\ndef broken(:\n    pass\n")
    toolset = load_toolset(Config(root=tmp_path))
    assert sorted(toolset.functions) == ["good"]
    (problem,) = toolset.problems
    assert problem.file == "tools/bad.py"
    assert problem.line == 3
    assert str(problem).startswith("tools/bad.py:3: syntax error")
    assert "tools/bad.py" in toolset.files  # kept, so the editor can show it


def test_duplicate_names_across_files_name_both_locations(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py", "def same(): pass\n")
    write(tmp_path, "tools/b.py", "\n\ndef same(): return 2\n")
    toolset = load_toolset(Config(root=tmp_path))
    assert toolset.file_of("same") == "tools/a.py"
    (problem,) = toolset.problems
    assert (problem.file, problem.line) == ("tools/b.py", 3)
    assert "tools/a.py:1" in problem.message and "tools/b.py:3" in problem.message


def test_files_keep_exact_text_crlf_and_encoding_declaration(tmp_path: Path) -> None:
    latin = "# -*- coding: latin-1 -*-\r\ndef caf\u00e9():\r\n    return 'd\u00e9j\u00e0'\r\n"
    write(tmp_path, "tools/latin.py", latin.encode("latin-1"))
    write(tmp_path, "tools/bom.py", b"\xef\xbb\xbfdef bom():\n    return 1\n")
    toolset = load_toolset(Config(root=tmp_path))
    assert toolset.files["tools/latin.py"] == latin
    assert toolset.encodings["tools/latin.py"] == "iso-8859-1"
    assert toolset.files["tools/bom.py"].startswith("def bom")
    assert toolset.encodings["tools/bom.py"] == "utf-8-sig"
    for rel, text in toolset.files.items():
        assert encode_source(text, toolset.encodings[rel]) == (tmp_path / rel).read_bytes()
    assert sorted(toolset.functions) == ["bom", "caf\u00e9"]


def test_undecodable_file_is_a_problem_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py", "def a(): pass\n")
    write(tmp_path, "tools/bad.py", b"def b():\n    return '\xff'\n")
    toolset = load_toolset(Config(root=tmp_path))
    assert sorted(toolset.functions) == ["a"]
    (problem,) = toolset.problems
    assert (problem.file, problem.line) == ("tools/bad.py", 2)
    assert "utf-8" in problem.message


def test_decode_source_reports_bad_coding_declaration() -> None:
    with pytest.raises(UserError, match=r"t\.py:1"):
        decode_source(b"# coding: no-such-codec\nx = 1\n", "t.py")


def test_overrides_replace_disk_text_and_add_unsaved_files(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py", "def a(): pass\n")
    config = Config(root=tmp_path)
    toolset = load_toolset(
        config,
        overrides={
            "tools/a.py": "def a_edited(): pass\n",
            str(tmp_path / "tools" / "new.py"): "def fresh(): pass\n",
            "elsewhere/x.py": "def ignored(): pass\n",
        },
    )
    assert sorted(toolset.functions) == ["a_edited", "fresh"]
    assert toolset.files["tools/new.py"] == "def fresh(): pass\n"
    assert matches_tools(config, "tools/new.py") and not matches_tools(config, "elsewhere/x.py")


def test_content_hash_is_stable_and_tracks_bytes_and_paths(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py", "def a(): pass\n")
    write(tmp_path, "tools/b.py", "def b(): pass\n")
    config = Config(root=tmp_path)
    first = load_toolset(config).content_hash()
    assert len(first) == 12 and int(first, 16) >= 0
    assert load_toolset(config).content_hash() == first
    # A line-break-only change is a change.
    write(tmp_path, "tools/b.py", "def b(): pass\r\n")
    changed = load_toolset(config).content_hash()
    assert changed != first
    # An unsaved edit is part of the hash; the same text as on disk is not a change.
    assert load_toolset(config, {"tools/b.py": "def b(): pass\r\n"}).content_hash() == changed
    assert load_toolset(config, {"tools/b.py": "def b(): pass\n"}).content_hash() == first
    # Renaming a file changes the hash even with the same bytes.
    (tmp_path / "tools/b.py").rename(tmp_path / "tools/c.py")
    assert load_toolset(config).content_hash() != changed


def test_local_modules_are_not_packages(tmp_path: Path) -> None:
    write(tmp_path, "tools/helpers.py", "def _h(): pass\n")
    write(tmp_path, "mylib/__init__.py", "")
    write(
        tmp_path,
        "tools/a.py",
        "import helpers\nimport mylib\nimport numpy\n\ndef a():\n    return helpers, mylib, numpy\n",
    )
    toolset = load_toolset(Config(root=tmp_path))
    assert toolset.functions["a"].packages == ["numpy"]
