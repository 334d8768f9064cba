"""Open documents with LSP's lines: only `\\r\\n`, `\\r` and `\\n` break a line.

pygls' `TextDocument` splits its text with `str.splitlines`, which also breaks
at a form feed (Emacs' page break, PEP 8's `^L`), `\\x0b`, `\\x1c`-`\\x1e`,
`\\x85`, U+2028 and U+2029. An incremental `didChange` after such a character
then lands lines away from where the editor made it, and the server's copy of
the buffer silently stops being the editor's text. These classes count lines
as LSP clients and Python do; columns are UTF-16 code units (the server pins
that encoding).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from funcforge.toolset.source import NEWLINE_RE, split_lines


def offset_at(text: str, pos: types.Position) -> int:
    """Offset in `text` of an LSP position (UTF-16 column). A line past the end means the
    end of the text; a column past its line's content means the end of that content
    (as the LSP specification says)."""
    start = line_start(text, pos.line)
    return len(text) if start is None else _column(text, start, pos.character)


def line_start(text: str, lines: int, start: int = 0) -> int | None:
    """Offset of the line `lines` lines after the one starting at `start` (None: past the
    end). One regex run in C skips them (a Python loop took ~0.4 s at 14 MB)."""
    if not lines:
        return start
    skip = _NO_CR_LINES if "\r" not in text else _LINES
    found = re.compile(skip % lines).match(text, start)
    return found.end() if found else None


def _column(text: str, start: int, character: int) -> int:
    """Offset of UTF-16 column `character` in the line starting at `start` (clamped)."""
    brk = NEWLINE_RE.search(text, start)
    end = brk.start() if brk else len(text)
    offset, units = start, 0
    while offset < end and units < character:
        units += 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


_NO_CR_LINES = r"(?:[^\n]*\n){%d}"
_LINES = r"(?:[^\r\n]*(?:\r\n|\r|\n)){%d}"


class LspTextDocument(TextDocument):
    """A pygls document whose lines and incremental changes follow LSP's line breaks."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(split_lines(self.source))

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        text = self.source
        first, last = sorted(
            (change.range.start, change.range.end), key=lambda p: (p.line, p.character)
        )
        begin = line_start(text, first.line)  # the end's line is found from the start's
        if begin is None:
            start = end = len(text)
        else:
            start = _column(text, begin, first.character)
            stop = line_start(text, last.line - first.line, begin)
            end = len(text) if stop is None else _column(text, stop, last.character)
        self._source = text[:start] + change.text + text[end:]


class LspWorkspace(Workspace):
    """pygls' workspace, making `LspTextDocument`s."""

    @classmethod
    def like(cls, other: Workspace) -> LspWorkspace:
        """A workspace with `other`'s root, sync kind, folders and encoding (no documents)."""
        return cls(
            other.root_uri,
            other._sync_kind,
            list(other.folders.values()),
            other.position_encoding,
        )

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self._position_codec,
        )
