"""funcforge.paths: one glob dialect, editor artifacts skipped, a FileSet that stats instead of searching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from funcforge.paths import FileSet, find_files, is_editor_artifact, matches


def write(root: Path, rel: str, text: str = "x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("pattern", "rel", "expected"),
    [
        ("tools/**/*.py", "tools/a.py", True),
        ("tools/**/*.py", "tools/x/y/a.py", True),
        ("tools/*.py", "tools/x/a.py", False),
        ("**/*.jsonl", "c.jsonl", True),
        ("**/*.jsonl", "a/b/c.jsonl", True),
        ("traces/**", "traces/a/b.jsonl", True),
        ("tools/[!ab].py", "tools/a.py", False),
        # hidden names need a pattern that names them
        ("tools/**/*.py", "tools/.venv/a.py", False),
        ("**/*.jsonl", ".funcforge/t.jsonl", False),
        ("tools/.hidden/*.py", "tools/.hidden/a.py", True),
        # editor lock, backup and swap files never match
        ("tools/**/*.py", "tools/.#arithmetic.py", False),
        ("tools/*", "tools/#arithmetic.py#", False),
        ("tools/*", "tools/arithmetic.py~", False),
        ("tools/*", "tools/.arithmetic.py.swp", False),
        ("tools/**/*.py", "tools/__pycache__/a.py", False),
    ],
)
def test_one_dialect(pattern: str, rel: str, expected: bool) -> None:
    assert matches([pattern], rel) is expected


@pytest.mark.parametrize(
    "name", [".#x.py", "#x.py#", "x.py~", ".x.py.swp", ".x.py.swo", ".x.py.swpx", "4913"]
)
def test_editor_artifacts(name: str) -> None:
    assert is_editor_artifact(name)


def test_plain_names_are_not_artifacts() -> None:
    assert not any(is_editor_artifact(n) for n in ("x.py", "run.jsonl", "swap.py", "a#b.py"))


def test_search_agrees_with_matches_and_skips_what_it_should(tmp_path: Path) -> None:
    for rel in [
        "tools/a.py",
        "tools/sub/b.py",
        "tools/.#a.py",
        "tools/#a.py#",
        "tools/a.py~",
        "tools/.venv/c.py",
        "tools/__pycache__/d.py",
        ".funcforge/x.py",
        "other/z.py",
    ]:
        write(tmp_path, rel)
    assert find_files(tmp_path, ["tools/**/*.py"]) == ["tools/a.py", "tools/sub/b.py"]
    assert find_files(tmp_path, ["**/*.py"], exclude=["tools"]) == ["other/z.py"]


def test_patterns_outside_the_workspace(tmp_path: Path) -> None:
    write(tmp_path, "shared/t.jsonl")
    root = tmp_path / "ws"
    root.mkdir()
    assert find_files(root, ["../shared/*.jsonl"]) == ["../shared/t.jsonl"]


def test_symlink_loop_ends(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py")
    os.symlink(tmp_path / "tools", tmp_path / "tools" / "loop")
    assert find_files(tmp_path, ["tools/**/*.py"]) == ["tools/a.py"]


def test_file_set_stats_instead_of_searching(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py")
    files = FileSet(tmp_path, ["tools/**/*.py"], rescan_every=3600)
    assert files.files == ["tools/a.py"]
    for _ in range(20):
        assert files.changed() == set()
    assert files.scans == 1  # nothing changed: no search again
    write(tmp_path, "tools/a.py", "longer text")
    assert files.changed() == {"tools/a.py"}
    assert files.scans == 1  # a modified file is seen by its stat


def test_file_set_sees_created_deleted_renamed(tmp_path: Path) -> None:
    write(tmp_path, "tools/sub/a.py")
    files = FileSet(tmp_path, ["tools/**/*.py"], rescan_every=3600, dirs_every=0)
    new = write(tmp_path, "tools/sub/new.py")
    os.utime(new.parent, ns=(0, 0))  # a folder mtime change, however coarse the clock
    assert files.changed() == {"tools/sub/new.py"}
    os.rename(new, tmp_path / "tools" / "sub" / "renamed.py")
    os.utime(new.parent, ns=(1, 1))
    assert files.changed() == {"tools/sub/new.py", "tools/sub/renamed.py"}
    assert files.files == ["tools/sub/a.py", "tools/sub/renamed.py"]


def test_file_set_slow_beat_searches_again(tmp_path: Path) -> None:
    write(tmp_path, "tools/a.py")
    files = FileSet(tmp_path, ["tools/**/*.py"], rescan_every=0.0)
    assert files.changed() == set()
    assert files.scans == 2


def test_the_lsp_edge_converts_uris_and_utf16_with_pygls() -> None:
    from funcforge.lsp.positions import path_to_uri, uri_to_path, utf16_len

    for raw in ["/tmp/a b/x.py", "/tmp/ä/#x.py", "/tmp/100%/x.py"]:
        uri = path_to_uri(Path(raw))
        assert uri.startswith("file:///") and " " not in uri and "#" not in uri
        assert uri_to_path(uri) == Path(raw)
    assert utf16_len("a😀é") == 4
    with pytest.raises(ValueError, match="not a file URI"):
        uri_to_path("untitled:Untitled-1")
