"""HEAD's commit read from the repository's files: no git process, no GitPython import.

Caches that hold "this version is unknown" (provenance) stay valid while HEAD
is the same commit; reading it must cost less than the git run it saves.
"""

from __future__ import annotations

from pathlib import Path


def read_head(start: Path) -> str | None:
    """The sha HEAD points at for the repository holding `start`, or None (no repository,
    a branch without commits, or files this reader does not understand)."""
    found = _dirs(start)
    if found is None:
        return None
    git_dir, common = found
    ref = "HEAD"
    for _ in range(5):  # symbolic refs, followed a few levels
        value = _ref_value(git_dir, common, ref)
        if value is None:
            return None
        if not value.startswith("ref:"):
            return value if len(value) >= 40 else None
        ref = value[4:].strip()
    return None


_DIRS: dict[Path, tuple[Path, Path] | None] = {}  # start -> (git dir, common dir)


def _dirs(start: Path) -> tuple[Path, Path] | None:
    """The git dir and common dir of `start`, found once per folder (a repository created
    later is seen when its HEAD is read and the folder had none: looked up again)."""
    found = _DIRS.get(start)
    if found is None or not (found[0] / "HEAD").is_file():
        git_dir = _git_dir(start)
        found = None if git_dir is None else (git_dir, _common_dir(git_dir))
        if len(_DIRS) > 64:
            _DIRS.clear()
        _DIRS[start] = found
    return found


def _git_dir(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():  # a linked worktree or submodule: "gitdir: <path>"
            try:
                text = dot.read_text(encoding="utf-8").strip()
            except OSError:
                return None
            if not text.startswith("gitdir:"):
                return None
            target = Path(text[7:].strip())
            return target if target.is_absolute() else (folder / target).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    try:
        rel = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    path = Path(rel)
    return path if path.is_absolute() else (git_dir / path).resolve()


def _ref_value(git_dir: Path, common: Path, ref: str) -> str | None:
    """A ref's file content (a sha or `ref: ...`), loose or packed."""
    for folder in (git_dir, common):
        try:
            return (folder / ref).read_text(encoding="utf-8").strip()
        except OSError:
            continue
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref:
            return sha
    return None
