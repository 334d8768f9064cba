"""The LSP edge: the core's positions (code points) to LSP's (UTF-16 units), paths to URIs.

Only the language server converts: the core counts code points and uses
paths. UTF-16 units and URIs come from pygls' own helpers (`PositionCodec`,
`pygls.uris`), so Windows drive letters, UNC paths and percent-encoding are
handled the way pygls' workspace handles them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lsprotocol import types
from pygls import uris
from pygls.workspace import PositionCodec

from funcforge.toolset.source import NEWLINE_RE
from funcforge.toolset.spec import Location

_CODEC = PositionCodec(types.PositionEncodingKind.Utf16)  # the server pins UTF-16


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units (what LSP clients count)."""
    return int(_CODEC.client_num_units(text))


def utf16_col(line_text: str, col: int) -> int:
    """UTF-16 column of code-point column `col` in `line_text`."""
    return utf16_len(line_text[:col])


@lru_cache(maxsize=16)
def _lines(text: str) -> list[str]:
    """The lines' contents; only `\\r\\n`, `\\r` and `\\n` break lines (as in LSP and Python)."""
    return NEWLINE_RE.split(text)


def line_of(text: str, line0: int) -> str:
    """Line `line0` (0-based) of `text`; the split is cached (a big file has many functions)."""
    lines = _lines(text)
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
    """The path of a `file:` URI (pygls' reading: percent-decoding, drive letters, UNC)."""
    path = uris.to_fs_path(uri)
    if path is None:
        raise ValueError(f"not a file URI: {uri}")
    return Path(path)


def path_to_uri(path: Path) -> str:
    """`file:` URI of an absolute path (no filesystem access: the root is already resolved)."""
    return _uri(str(path))


@lru_cache(maxsize=4096)
def _uri(path: str) -> str:
    uri = uris.from_fs_path(path)
    return uri if uri is not None else Path(path).as_uri()


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
