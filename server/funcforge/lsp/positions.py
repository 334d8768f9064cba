"""Conversions between the core's positions (code points) and LSP's (UTF-16 units)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types

from funcforge.toolset.spec import Location


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units (what LSP clients count)."""
    return len(text.encode("utf-16-le")) // 2


def utf16_col(line_text: str, col: int) -> int:
    """UTF-16 column of code-point column `col` in `line_text`."""
    return utf16_len(line_text[:col])


def line_of(text: str, line0: int) -> str:
    lines = text.split("\n")
    return lines[line0] if 0 <= line0 < len(lines) else ""


def name_range(loc: Location, text: str, name: str) -> types.Range:
    """The range of a function's name token, in UTF-16 positions of `text`."""
    line0 = max(0, (loc.name_line or loc.start_line) - 1)
    line = line_of(text, line0)
    col = loc.name_col
    if not loc.name_line:
        idx = line.find(name)
        col = idx if idx >= 0 else 0
    start = utf16_col(line, col)
    return types.Range(
        start=types.Position(line=line0, character=start),
        end=types.Position(line=line0, character=start + utf16_len(name)),
    )


def def_range(loc: Location, text: str) -> types.Range:
    """The whole function (decorators to last line), in UTF-16 positions."""
    start_line0, end_line0 = loc.start_line - 1, loc.end_line - 1
    return types.Range(
        start=types.Position(
            line=start_line0, character=utf16_col(line_of(text, start_line0), loc.start_col)
        ),
        end=types.Position(
            line=end_line0, character=utf16_col(line_of(text, end_line0), loc.end_col)
        ),
    )


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path))


def path_to_uri(path: Path) -> str:
    """`file:` URI of an absolute path (no filesystem access: the root is already resolved)."""
    return _uri(str(path))


@lru_cache(maxsize=4096)
def _uri(path: str) -> str:
    return Path(path).as_uri()


def contains(outer: types.Range, pos: types.Position) -> bool:
    start, end = outer.start, outer.end
    after_start = (pos.line, pos.character) >= (start.line, start.character)
    before_end = (pos.line, pos.character) <= (end.line, end.character)
    return after_start and before_end


def overlaps(a: types.Range, b: types.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and (
        b.start.line,
        b.start.character,
    ) <= (a.end.line, a.end.character)
