"""The server's open documents: incremental changes land where LSP's lines and UTF-16
columns say (pygls' documents also broke lines at form feeds and U+2028)."""

from __future__ import annotations

import pytest
from lsprotocol import types

from funcforge.lsp.textdoc import LspTextDocument, offset_at


def pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


@pytest.mark.parametrize(
    ("text", "start", "end", "new", "want"),
    [
        ("a()\n\x0c\ndef b():\n", pos(2, 0), pos(2, 0), "# hi\n", "a()\n\x0c\n# hi\ndef b():\n"),
        ("# x\u2028y\ndef b():\n", pos(1, 4), pos(1, 5), "c", "# x\u2028y\ndef c():\n"),
        ("a🙂b\nc", pos(0, 3), pos(1, 9), "X", "a🙂X"),  # a column past the line: its end
        ("ab\r\ncd\ref\n", pos(1, 1), pos(2, 1), "Z", "ab\r\ncZf\n"),
        ("ab\ncd", pos(1, 1), pos(0, 1), "", "ad"),  # a reversed range
        ("ab\n", pos(5, 0), pos(6, 0), "tail", "ab\ntail"),  # past the end: appended
        ("", pos(0, 0), pos(0, 0), "x", "x"),
    ],
)
def test_incremental_changes(
    text: str, start: types.Position, end: types.Position, new: str, want: str
) -> None:
    doc = LspTextDocument("file:///t.py", text, sync_kind=types.TextDocumentSyncKind.Incremental)
    doc.apply_change(
        types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end), text=new)
    )
    assert doc.source == want
    assert len(doc.lines) == want.count("\n") + want.count("\r") - want.count("\r\n") + (
        0 if want.endswith(("\n", "\r")) or not want else 1
    )


def test_offsets_count_utf16_units() -> None:
    text = "x = '🙂é'\nnext"
    assert offset_at(text, pos(0, 5)) == 5  # after the quote
    assert offset_at(text, pos(0, 7)) == 6  # the emoji is two units
    assert offset_at(text, pos(1, 2)) == text.index("next") + 2
    assert offset_at(text, pos(9, 0)) == len(text)
