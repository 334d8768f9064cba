"""Python source text as funcforge handles it: bytes <-> text, line breaks, parsing.

Tool files are edited byte-exactly, so text is never read with universal
newlines: `\\r\\n`, `\\r` and `\\n` stay as they are, and every position is
computed against the exact text.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from bisect import bisect_right
from typing import TYPE_CHECKING

from funcforge.errors import UserError

if TYPE_CHECKING:  # libcst is imported when a file is parsed: a warm start parses none
    import libcst as cst

# The line breaks of Python source and of LSP documents.
NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class ToolsetSyntaxError(UserError):
    """A tool file (or proposed code) that does not parse.

    `line` is 1-based and `col` 0-based (like `Location`); the message prints
    `file:line:col: message` with the column counted from 1, as editors do.
    """

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        self.file = file
        self.line = line
        self.col = col
        self.message = message
        super().__init__(f"{file}:{line}:{col + 1}: {message}")


class SourceDecodeError(UserError):
    """A tool file whose bytes do not decode with its declared encoding."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}")


def split_lines(text: str) -> list[str]:
    """The lines of `text` with their line breaks (only `\\r\\n`, `\\r`, `\\n` break lines)."""
    return _LINE_RE.findall(text)


def strip_newline(line: str) -> str:
    """`line` without its trailing line break."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def newline_of(text: str, default: str = "\n") -> str:
    """The first line break used in `text` (the file's style), or `default`."""
    m = NEWLINE_RE.search(text)
    return m.group(0) if m else default


def to_newline(text: str, newline: str) -> str:
    """`text` with every line break replaced by `newline`."""
    return NEWLINE_RE.sub(newline, text)


def is_blank(line: str) -> bool:
    """True for a line holding only whitespace (spaces, tabs, form feeds)."""
    return not line.strip(" \t\f\r\n")


class LineIndex:
    """Converts between offsets in a text and (line, column) positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for m in NEWLINE_RE.finditer(text):
            self.starts.append(m.end())

    def offset(self, line: int, col: int) -> int:
        """Offset of a 1-based `line` and 0-based code-point `col`."""
        return self.starts[line - 1] + col

    def line_of(self, offset: int) -> int:
        """0-based line holding `offset`."""
        return bisect_right(self.starts, offset) - 1

    def line_end(self, line: int) -> int:
        """Offset of the end of the 1-based `line`'s content (before its line break)."""
        start = self.starts[line - 1]
        end = self.starts[line] if line < len(self.starts) else len(self.text)
        return start + len(strip_newline(self.text[start:end]))


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units (how LSP clients count columns)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def decode_source(data: bytes, file: str = "<bytes>") -> tuple[str, str]:
    """Decode a Python file's bytes as Python does (BOM, PEP 263 coding declaration).

    Returns the exact text (line breaks untouched; a UTF-8 BOM is dropped and
    remembered as the encoding `utf-8-sig`) and the encoding to write it back with.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceDecodeError(file, exc.lineno or 1, str(exc.msg or exc)) from exc
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceDecodeError(
            file, line, f"not valid {encoding} (byte {exc.start}): {exc.reason}"
        ) from exc
    except LookupError as exc:
        raise SourceDecodeError(file, 1, f"unknown encoding {encoding!r}") from exc


def encode_source(text: str, encoding: str = "utf-8") -> bytes:
    """The bytes to write `text` back with (`decode_source`'s inverse)."""
    return text.encode(encoding)


def _bom_check(source: str, file: str) -> None:
    if source.startswith("\ufeff"):
        raise ToolsetSyntaxError(file, 1, 0, "text starts with a byte order mark; decode it first")


def parse_python(source: str, file: str) -> ast.Module:
    """Python's own syntax tree of `source`, after a full compile check (nothing is run).

    Compiling catches more than parsing (duplicate arguments, `return` outside
    a function) and gives Python's clear messages. The tree gives positions
    and, with `symtable`, scopes: both far faster than libcst's metadata.
    """
    _bom_check(source, file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, file)
            compile(tree, file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = max((exc.offset or 1) - 1, 0)
        raise ToolsetSyntaxError(file, line, col, exc.msg or "invalid syntax") from None
    except ValueError as exc:  # null bytes on older Pythons
        pos = max(source.find("\0"), 0)
        index = LineIndex(source)
        line = index.line_of(pos)
        raise ToolsetSyntaxError(file, line + 1, pos - index.starts[line], str(exc)) from None
    except (RecursionError, MemoryError):
        raise ToolsetSyntaxError(file, 1, 0, "too deeply nested to compile") from None
    return tree


_CST_AT = re.compile(r"error at (\d+):(\d+)")
_PAREN_TARGET = re.compile(r"^[ \t\f]*\([^)]*\)[ \t\f]*:[^=]*(=|$)")


def _cst_position(exc: cst.ParserSyntaxError) -> tuple[int, int]:
    """(1-based line, 0-based column) of a libcst error: its message's own position.

    libcst's `raw_line` can be one past the statement at fault (it counts the
    line its parser stopped on); the message says where the error is.
    """
    m = _CST_AT.search(exc.message)
    if m:
        return int(m.group(1)), max(int(m.group(2)) - 1, 0)
    return exc.raw_line, exc.raw_column


def _cst_reason(source: str, line: int, message: str) -> str:
    """Why libcst refuses a file Python accepts, in words a user can act on."""
    lines = split_lines(source)
    text = strip_newline(lines[line - 1]) if 0 < line <= len(lines) else ""
    if _PAREN_TARGET.match(text):
        return (
            f"libcst cannot parse the parenthesised annotation target {text.strip()!r} "
            "(valid Python); write it without the parentheses"
        )
    short = message.split("\n")[0].removeprefix("parser error: ")
    short = re.sub(r"^error at \d+:\d+: ", "", short)
    if len(short) > 120:
        short = short[:117] + "..."
    return f"libcst cannot parse this line ({short})"


def parse_cst(source: str, file: str) -> cst.Module:
    """libcst's concrete syntax tree of `source` (call `parse_python` first for its checks).

    libcst does not keep lone `\r` line breaks exactly, so it parses a copy
    where they are `\n`: the same length, so every position matches `source`.
    """
    import libcst as cst

    _bom_check(source, file)
    try:
        return cst.parse_module(re.sub(r"\r(?!\n)", "\n", source))
    except cst.ParserSyntaxError as exc:
        line, col = _cst_position(exc)
        raise ToolsetSyntaxError(file, line, col, _cst_reason(source, line, exc.message)) from None
    except (RecursionError, MemoryError):
        raise ToolsetSyntaxError(file, 1, 0, "too deeply nested to parse") from None
    except Exception as exc:  # libcst's native parser has other failure modes
        raise ToolsetSyntaxError(file, 1, 0, f"libcst cannot parse this file: {exc}") from None
