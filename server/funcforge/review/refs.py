"""Toolsets at git revisions: what `check --head REF` and `review` compare, without a checkout.

The tool files of a commit are read from its tree (history/contents.py) into a
temporary folder and loaded as the working tree's would be, so the same
extraction, problems and content hash apply. Nothing in the user's work tree
or index is touched.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from funcforge.config import Config
from funcforge.history.contents import files_at
from funcforge.optimizer.handcheck import resolve_commit
from funcforge.toolset.toolset import Toolset, load_toolset


def toolset_at(config: Config, rev: str) -> Toolset:
    """The toolset as commit `rev` has it (file paths relative to the workspace, as usual)."""
    from funcforge.history.git import open_repo

    with open_repo(config) as repo:
        commit = resolve_commit(repo, rev)
        files = files_at(repo, config, commit.hexsha)
    with tempfile.TemporaryDirectory(prefix="funcforge-ref-") as tmp:
        root = Path(tmp)
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return load_toolset(dataclasses.replace(config, root=root))
