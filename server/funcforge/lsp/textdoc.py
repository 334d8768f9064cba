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

from collections.abc import Sequence

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from funcforge.toolset.source import NEWLINE_RE, split_lines


def offset_at(text: str, pos: types.Position) -> int:
    """Offset in `text` of an LSP position (UTF-16 column). A line past the end means the
    end of the text; a column past its line's content means the end of that content
    (as the LSP specification says)."""
    start = 0
    if "\r" not in text:  # the usual case: `find` is far cheaper than the regex
        for _ in range(pos.line):
            start = text.find("\n", start) + 1
            if start == 0:
                return len(text)
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
    else:
        for _ in range(pos.line):
            found = NEWLINE_RE.search(text, start)
            if found is None:
                return len(text)
            start = found.end()
        found = NEWLINE_RE.search(text, start)
        end = found.start() if found else len(text)
    offset, units = start, 0
    while offset < end and units < pos.character:
        units += 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


class LspTextDocument(TextDocument):
    """A pygls document whose lines and incremental changes follow LSP's line breaks."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(split_lines(self.source))

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        text = self.source
        start, end = offset_at(text, change.range.start), offset_at(text, change.range.end)
        if end < start:
            start, end = end, start
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
