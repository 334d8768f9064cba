"""A workspace opened for work: configuration, toolset, traces and version together.

The CLI, the language server and the trainer all start here, so they see the
same files the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from funcforge.config import Config, find_config_file, load_config
from funcforge.errors import UserError
from funcforge.toolset.toolset import Toolset, load_toolset
from funcforge.traces.store import TraceStore

# An unconfigured workspace's state folder (the default of `state_dir`).
DEFAULT_STATE_DIR = str(next(f.default for f in fields(Config) if f.name == "state_dir"))


def find_workspace(start: Path) -> Path | None:
    """The nearest folder from `start` upward whose configuration names funcforge, or None.

    A folder is a workspace when it holds a `funcforge.toml`, or a
    `pyproject.toml` with a `[tool.funcforge]` table (a pyproject.toml without
    one does not stop the search). Nearest wins, so a monorepo's nested
    workspaces each answer for their own subfolders. The search ends after the
    repository root (a folder with `.git`, a folder or a worktree's file: a
    workspace lives in a repository, and a training worktree is a repository of
    its own), at the filesystem root, and before `$HOME` (a configuration in
    the home folder is nobody's workspace), whichever comes first.
    """
    home = _home()
    folder = start
    while True:
        if _configures(folder):
            return folder
        if (folder / ".git").exists():
            return None
        parent = folder.parent
        if parent in (folder, home):
            return None
        folder = parent


def _home() -> Path | None:
    try:
        home = Path.home().resolve()
    except (RuntimeError, OSError):  # no HOME and no passwd entry
        return None
    return None if home == Path(home.anchor) else home


def _configures(folder: Path) -> bool:
    """Does `folder` hold funcforge configuration (funcforge.toml, [tool.funcforge])?

    A pyproject.toml that does not mention funcforge is not parsed: an
    unrelated, broken one above the workspace does not stop every command.
    """
    if (folder / "funcforge.toml").is_file():
        return True
    pyproject = folder / "pyproject.toml"
    try:
        data = pyproject.read_bytes()
    except OSError:  # none, or unreadable: nothing says it is funcforge's
        return False
    # one that names funcforge is read: not valid TOML or not UTF-8, a clear error (file:line)
    return b"funcforge" in data and find_config_file(folder) is not None


def workspace_root(path: Path | str, say: Callable[[str], None] | None = None) -> Path:
    """The workspace for `path` (absolute): the nearest configured folder from it upward.

    `path` must be an existing folder (a clear error otherwise; nothing is
    created). When no folder up to the repository root is configured, `path`
    itself is the workspace, as before. `say` (default: a line on stderr)
    hears which workspace was chosen when it is not `path`, and that `path` is
    taken as an unconfigured workspace in a subfolder of a repository that
    has no state folder yet (said on every run until it has one). Calling it again with the
    root it returned says nothing.
    """
    start = existing_folder(path).resolve()
    say = say or _stderr
    root = find_workspace(start)
    if root is not None:
        if root != start:
            say(f"funcforge: workspace {root} (found from {start})")
        return root
    top = _repository_root(start)
    holder = _holder_of_internal_folder(start, top)
    if holder is not None:
        say(f"funcforge: workspace {holder} (found from {start})")
        return holder
    if top is not None and top != start and not (start / DEFAULT_STATE_DIR).exists():
        say(
            f"funcforge: note: no funcforge.toml or [tool.funcforge] in {start} or above it "
            f"up to the repository root {top}; using {start} as an unconfigured workspace "
            f"(its state, once it has any, goes in {DEFAULT_STATE_DIR}/ there)"
        )
    return start


def _holder_of_internal_folder(start: Path, top: Path | None) -> Path | None:
    """The folder holding the `.git` or `.funcforge` folder `start` is in (below `top`), or None.

    Run inside git's folder (`.git/refs`) or a state folder (`.funcforge/cache`)
    of an unconfigured workspace, the folder itself is nobody's workspace:
    taking it as one wrote `.funcforge/` state into `.git/refs`. The folder
    holding it is (a training worktree under `.funcforge/train/` is a
    repository of its own, so `top` is the worktree and nothing here applies).
    """
    base = top if top is not None else Path(start.anchor)
    folder = base
    for part in start.relative_to(base).parts:
        if part in (".git", DEFAULT_STATE_DIR):
            return folder
        folder = folder / part
    return None


def current_folder() -> Path:
    """The folder the command runs in; a clear error when it was deleted under the shell."""
    try:
        return Path.cwd()
    except FileNotFoundError:
        raise UserError(
            "the current folder no longer exists (deleted or moved since the shell entered it): "
            "cd to the workspace, or name it as PATH"
        ) from None


def existing_folder(path: Path | str) -> Path:
    """`path` when it is an existing folder; a clear error otherwise (nothing is created)."""
    given = Path(path)
    if not given.is_absolute():
        current_folder()  # `.` in a deleted folder still stats, but resolves nowhere
    if not given.exists():
        raise UserError(f"{given}: no such folder (PATH is the workspace root)")
    if not given.is_dir():
        raise UserError(f"{given}: not a folder (PATH is the workspace root)")
    return given


def _repository_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def user_file(name: str | Path, root: Path) -> Path:
    """A file named on the command line, absolute: as typed, from the current folder;
    when no such file is there, the workspace root's (how the configuration names it).

    The current folder wins, so a name means what the user typed even when the
    workspace was found above it; neither existing: the current folder's path,
    for the error message.
    """
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    here = current_folder() / path
    if here.exists() or not (root / path).exists():
        return here
    return root / path


def open_config(path: Path | str) -> Config:
    """The configuration of the workspace for `path` (see `workspace_root`)."""
    return load_config(workspace_root(path))


@dataclass
class Workspace:
    config: Config
    toolset: Toolset
    store: TraceStore
    notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path | str, overrides: dict[str, Any] | None = None) -> Workspace:
        """Load config, tools and traces of the workspace at `root` (as `workspace_root`
        found it: nothing is searched here)."""
        config = load_config(existing_folder(root), overrides)
        store = TraceStore(config)
        store.refresh()
        return cls(config, load_toolset(config), store, list(config.warnings))

    def reload_toolset(self, overrides: dict[str, str] | None = None) -> Toolset:
        self.toolset = load_toolset(self.config, overrides=overrides)
        return self.toolset

    def version(self) -> str:
        """The toolset's version: HEAD's short sha when clean, else a content hash
        (also outside git)."""
        from funcforge.history.git import current_version

        return current_version(self.config, self.toolset)
