"""A workspace opened for work: configuration, toolset, traces and version together.

The CLI, the language server and the trainer all start here, so they see the
same files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funcforge.config import Config, load_config
from funcforge.errors import UserError
from funcforge.toolset.toolset import Toolset, load_toolset
from funcforge.traces.store import TraceStore


def workspace_root(path: Path | str) -> Path:
    """`path` when it is an existing folder; a clear error otherwise (nothing is created)."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root}: no such folder (PATH is the workspace root)")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder (PATH is the workspace root)")
    return root


def open_config(path: Path | str) -> Config:
    """The configuration of the workspace at `path`, which must be an existing folder."""
    return load_config(workspace_root(path))


@dataclass
class Workspace:
    config: Config
    toolset: Toolset
    store: TraceStore
    notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path | str, overrides: dict[str, Any] | None = None) -> Workspace:
        """Load config, tools and traces of the workspace at `root`."""
        config = load_config(workspace_root(root), overrides)
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
