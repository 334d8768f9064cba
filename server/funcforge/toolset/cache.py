"""What `load_toolset` read and extracted last time, so an edit re-parses one file.

A file's bytes are reused while its stat (inode, size, mtime) is the same; its
functions while its text and the files its type imports resolved to are the
same. Each load gets its own copies of the cached `FunctionSpec`s.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funcforge.toolset.spec import FunctionSpec

Stamp = tuple[Any, ...] | None


def disk_stamp(path: Path) -> Stamp:
    """What identifies a file's content on disk without reading it (None: missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class DiskEntry:
    """One file as read from disk: its stamp, bytes, and text or decode problem."""

    stamp: Stamp
    data: bytes
    text: str | None
    encoding: str
    problem: tuple[int, str] | None = None  # (line, message) when it cannot be decoded


@dataclass
class ParsedEntry:
    """One file's extraction: the text it was run on and the imports it read."""

    text: str
    deps: dict[str, Stamp]
    specs: list[FunctionSpec]
    problems: list[Any] = field(default_factory=list)  # ToolsetProblem-like, per file
    error: Any = None  # the ToolsetSyntaxError when the file does not parse


class ParseCache:
    """Per-file reads and extractions, shared by successive loads of one workspace."""

    def __init__(self) -> None:
        self.disk: dict[str, DiskEntry] = {}
        self.parsed: dict[str, ParsedEntry] = {}
        self.parses = 0  # extractions run (tests and benchmarks read it)
        self.lock = threading.Lock()

    def fresh(self, rel: str, text: str, stamp_of: Callable[[str], Stamp]) -> ParsedEntry | None:
        """The cached extraction of `rel` when nothing it depends on changed."""
        with self.lock:
            entry = self.parsed.get(rel)
        if entry is None or entry.text != text:
            return None
        if any(stamp_of(dep) != stamp for dep, stamp in entry.deps.items()):
            return None
        return entry

    def store(self, rel: str, entry: ParsedEntry) -> None:
        with self.lock:
            self.parsed[rel] = entry
            self.parses += 1

    def forget(self, keep: set[str]) -> None:
        """Drop files that are no longer tool files."""
        with self.lock:
            for table in (self.disk, self.parsed):
                for rel in [r for r in table if r not in keep]:
                    del table[rel]


def copy_specs(specs: list[FunctionSpec]) -> list[FunctionSpec]:
    """Copies a load may change (packages) without touching the cache."""
    return [copy.copy(s) for s in specs]
