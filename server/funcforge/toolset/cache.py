"""What `load_toolset` read and extracted last time, so an edit re-parses one file.

A file's bytes are reused while its stat (inode, size, mtime) is the same; its
functions while its text and the files its type imports resolved to are the
same. Each load gets its own copies of the cached `FunctionSpec`s. With a
`path` (the language server's), extractions also persist across starts
(`disk_cache`): a warm start parses no unchanged file.
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

    def __init__(self, path: Path | None = None) -> None:
        self.disk: dict[str, DiskEntry] = {}
        self.parsed: dict[str, ParsedEntry] = {}
        self.parses = 0  # extractions run (tests and benchmarks read it)
        self.lock = threading.Lock()
        self.path = path  # the on-disk cache, read at the first lookup
        self.notices: list[str] = []  # e.g. a corrupt cache file ignored
        self._stored: dict[str, ParsedEntry] | None = None  # key -> extraction, from disk
        self._saved: dict[str, str] = {}  # rel -> key of what the file on disk holds
        self._dirty = False  # an extraction ran since the last save

    def fresh(self, rel: str, text: str, stamp_of: Callable[[str], Stamp]) -> ParsedEntry | None:
        """The cached extraction of `rel` when nothing it depends on changed."""
        with self.lock:
            entry = self.parsed.get(rel)
        if entry is None or entry.text != text:
            entry = self._from_disk(rel, text)
            if entry is None:
                return None
        if any(stamp_of(dep) != stamp for dep, stamp in entry.deps.items()):
            return None
        with self.lock:
            self.parsed[rel] = entry
        return entry

    def _from_disk(self, rel: str, text: str) -> ParsedEntry | None:
        if self.path is None:
            return None
        from funcforge.toolset import disk_cache

        with self.lock:
            if self._stored is None:
                self._stored, notice = disk_cache.load(self.path)
                if notice is not None:
                    self.notices.append(notice)
                self._saved = {key.partition("\0")[0]: key for key in self._stored}
            key = disk_cache.text_key(rel, text)
            stored = self._stored.get(key)
        if stored is None:
            return None
        return ParsedEntry(text, stored.deps, stored.specs, stored.problems, stored.error)

    def store(self, rel: str, entry: ParsedEntry) -> None:
        with self.lock:
            self.parsed[rel] = entry
            self.parses += 1
            self._dirty = True

    def forget(self, keep: set[str]) -> None:
        """Drop files that are no longer tool files."""
        with self.lock:
            for table in (self.disk, self.parsed):
                for rel in [r for r in table if r not in keep]:
                    del table[rel]

    def save(self) -> None:
        """Write the current extractions to `path` when they differ from what it holds
        (those of unsaved editor buffers excepted); not writable: kept in memory only."""
        if self.path is None:
            return
        from funcforge.toolset import disk_cache

        with self.lock:
            before = {key.partition("\0")[0]: key for key in self._stored or {}}
            entries: dict[str, ParsedEntry] = {}
            for rel, e in self.parsed.items():
                on_disk = self.disk.get(rel)
                if on_disk is not None and on_disk.text == e.text and disk_cache.persistable(e):
                    entries[disk_cache.text_key(rel, e.text)] = e
                elif rel in before and self._stored is not None:  # an unsaved buffer's
                    entries[before[rel]] = self._stored[before[rel]]
            keys = {key.partition("\0")[0]: key for key in entries}
            if not self._dirty and keys == self._saved:
                return
            try:
                disk_cache.save(self.path, entries)
            except OSError:
                return
            self._stored, self._saved, self._dirty = entries, keys, False


def copy_specs(specs: list[FunctionSpec]) -> list[FunctionSpec]:
    """Copies a load may change (packages) without touching the cache."""
    return [copy.copy(s) for s in specs]
