"""Workspace paths and globs: one dialect for the toolset, the trace store, the watcher and git.

A glob is a workspace-relative POSIX pattern. `**` as a whole component is
any number of folders (none included); `*`, `?` and `[...]` match within one
component. A wildcard never matches a name starting with "." unless the
pattern's component starts with "." itself (so `tools/**/*.py` skips
`.venv/` and Emacs' `.#x.py`), and editor lock, backup and swap files
(`.#x.py`, `#x.py#`, `x.py~`, `.x.py.swp`, `4913`) are never matched at
all. `.git`, `__pycache__` and the state folder are not searched.

`FileSet` remembers what a set of globs matched and the folders it searched,
so a poller can stat those instead of searching again: it searches afresh
only when a folder's mtime changed, or at a slow beat.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from funcforge.errors import UserError

PRUNED_DIRS = frozenset({".git", "__pycache__", ".hg", ".svn"})

# Editor lock, backup, swap and temporary files (Emacs, Vim, JetBrains, Kate, LibreOffice).
_ARTIFACT = re.compile(
    r"""\A(?:
        \.\#.*                      # Emacs lock file  .#x.py
      | \#.*\#                      # Emacs auto-save  #x.py#
      | .*~                         # backup           x.py~
      | \..*\.sw[a-p]x?             # Vim swap         .x.py.swp .x.py.swo .x.py.swpx
      | 4913                        # Vim's write test
      | .*___jb_(?:tmp|old|bak)___  # JetBrains safe write
      | \.~lock\..*\#               # LibreOffice lock
      | .*\.(?:orig|rej|bak|tmp)    # merge and patch leftovers, temporaries
    )\Z""",
    re.VERBOSE | re.DOTALL,
)


def is_editor_artifact(name: str) -> bool:
    """True for an editor's lock, backup, swap or temporary file name (a base name)."""
    return _ARTIFACT.match(name) is not None


def check_glob(pattern: str, what: str) -> None:
    """Refuse an absolute or drive-letter glob: globs are relative to the workspace root."""
    if not pattern or PurePosixPath(pattern).is_absolute() or re.match(r"^[A-Za-z]:", pattern):
        raise UserError(
            f"{what} glob {pattern!r} must be a path relative to the workspace root, "
            f"like 'tools/**/*.py'"
        )


def _has_magic(part: str) -> bool:
    return any(c in part for c in "*?[")


@lru_cache(maxsize=1024)
def _component(part: str) -> re.Pattern[str]:
    """Regex for one path component: `*`, `?` and `[...]` never match `/`."""
    out = []
    i = 0
    while i < len(part):
        ch = part[i]
        close = part.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif close != -1:
            body = part[i + 1 : close]
            negate = body.startswith("!")
            body = re.sub(r"([\\^\[])", r"\\\1", body[1:] if negate else body)
            out.append("[" + ("^/" if negate else "") + body + "]")
            i = close
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _part_matches(part: str, name: str) -> bool:
    if name.startswith(".") and not part.startswith(".") and _has_magic(part):
        return False
    return _component(part).match(name) is not None


@lru_cache(maxsize=1024)
def _parts(pattern: str) -> tuple[str, ...]:
    return tuple(p for p in pattern.replace("\\", "/").split("/") if p not in ("", "."))


def _match(pat: tuple[str, ...], path: tuple[str, ...], prefix: bool) -> bool:
    """Does `path` match `pat` (or, with `prefix`, could a path below the folder `path`)?"""
    i = j = 0
    # Backtracking over `**` (the usual two-pointer wildcard match, on components).
    star_i, star_j = -1, 0
    while j < len(path):
        if i < len(pat) and pat[i] == "**":
            star_i, star_j = i, j
            i += 1
            continue
        if i < len(pat) and _part_matches(pat[i], path[j]):
            i += 1
            j += 1
            continue
        if star_i >= 0 and not path[star_j].startswith("."):
            star_j += 1
            i, j = star_i + 1, star_j
            continue
        return False
    if prefix:
        return i < len(pat) or (star_i >= 0)
    while i < len(pat) and pat[i] == "**":
        i += 1
    return i == len(pat)


def matches(patterns: Iterable[str], rel: str) -> bool:
    """Does the workspace-relative POSIX path `rel` match any of `patterns`?"""
    path = _parts(rel)
    if not path or is_editor_artifact(path[-1]) or any(p in PRUNED_DIRS for p in path[:-1]):
        return False
    return any(_match(_parts(p), path, prefix=False) for p in patterns)


def _may_hold(patterns: Sequence[tuple[str, ...]], folder: tuple[str, ...]) -> bool:
    return any(_match(p, folder, prefix=True) for p in patterns)


def rel_posix(root: Path, path: Path) -> str | None:
    """`path` relative to `root`, POSIX, without resolving symlinks; None when outside."""
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    except ValueError:  # another drive
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return Path(rel).as_posix()


@dataclass
class Scan:
    """What one search found: matched files (rel -> stat key) and searched folders' mtimes."""

    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)  # searched folder (a path) -> mtime


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _split(pattern: str) -> tuple[str, tuple[str, ...]]:
    """A glob's literal leading folders (where to search from) and the rest."""
    posix = pattern.replace("\\", "/")
    absolute = posix.startswith("/")
    parts = _parts(posix)
    k = 0
    while k < len(parts) - 1 and not _has_magic(parts[k]):
        k += 1
    base = "/".join(parts[:k])
    return ("/" + base if absolute else base), parts[k:]


def scan(root: Path, patterns: Sequence[str], exclude: Iterable[str] = ()) -> Scan:
    """Search for the files `patterns` match under `root`, skipping the folders in
    `exclude` (workspace-relative) and folders no pattern can reach.

    A pattern may start with literal folders outside the workspace (`../shared/*.jsonl`,
    an absolute path): those are searched from there and keyed by that path.
    """
    by_base: dict[str, list[tuple[str, ...]]] = {}
    for pattern in patterns:
        base, rest = _split(pattern)
        if rest:
            by_base.setdefault(base, []).append(rest)
    skip = {_parts(e) for e in exclude}
    out = Scan()
    seen_real: set[str] = set()
    for base, parts in by_base.items():
        base_path = os.path.join(root, base) if base else str(root)
        base_key = _parts(base) if not base.startswith("/") else ()
        stack: list[tuple[str, ...]] = [()]
        while stack:
            folder = stack.pop()
            path = os.path.join(base_path, *folder)
            try:
                real = os.path.realpath(path)
                if real in seen_real:  # a symlink loop, or a folder two patterns share
                    continue
                seen_real.add(real)
                out.dirs[path] = os.stat(path).st_mtime_ns
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                name = entry.name
                child = (*folder, name)
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                if is_dir:
                    if name in PRUNED_DIRS or (*base_key, *child) in skip:
                        continue
                    if _may_hold(parts, child):
                        stack.append(child)
                    continue
                if is_editor_artifact(name):
                    continue
                if any(_match(p, child, prefix=False) for p in parts):
                    key = "/".join((base, *child)) if base else "/".join(child)
                    try:
                        out.files[key] = _stat_key(entry.stat())
                    except OSError:
                        continue
    return out


def find_files(root: Path, patterns: Sequence[str], exclude: Iterable[str] = ()) -> list[str]:
    """Workspace-relative POSIX paths of the files `patterns` match, sorted."""
    return sorted(scan(root, patterns, exclude).files)


class FileSet:
    """The files some globs match, kept up to date by stat instead of searching.

    `changed()` stats the known files (every call) and the searched folders (at
    most every `dirs_every` seconds); it searches again only when a folder's
    mtime moved (a file created, deleted or renamed) or every `rescan_every`
    seconds (a slow beat for what mtimes miss).
    """

    def __init__(
        self,
        root: Path,
        patterns: Sequence[str],
        exclude: Iterable[str] = (),
        rescan_every: float = 2.0,
        dirs_every: float = 0.2,
    ) -> None:
        self.root, self.patterns, self.exclude = root, list(patterns), list(exclude)
        self.rescan_every, self.dirs_every = rescan_every, dirs_every
        self._dirs_at = time.monotonic()
        self.current = scan(root, self.patterns, self.exclude)
        self._scanned_at = time.monotonic()
        self.scans = 1  # searches done (tests and benchmarks read it)

    @property
    def files(self) -> list[str]:
        return sorted(self.current.files)

    def _dirs_moved(self) -> bool:
        for folder, mtime in self.current.dirs.items():
            try:
                if os.stat(folder).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False

    def changed(self) -> set[str]:
        """Files created, deleted or modified since the last call (workspace-relative)."""
        now = time.monotonic()
        moved = False
        if now - self._dirs_at >= self.dirs_every:  # many folders: not on every call
            self._dirs_at = now
            moved = self._dirs_moved()
        if moved or now - self._scanned_at >= self.rescan_every:
            new = scan(self.root, self.patterns, self.exclude)
            self._scanned_at = now
            self.scans += 1
        else:
            new = Scan(dirs=self.current.dirs)
            for rel in self.current.files:
                try:
                    new.files[rel] = _stat_key(os.stat(os.path.join(self.root, rel)))
                except OSError:
                    continue
        old = self.current.files
        self.current = new
        return {r for r in set(old) | set(new.files) if old.get(r) != new.files.get(r)}
