"""The toolset: every tool function found by the configured `tools` globs.

A file that does not decode or parse becomes a `ToolsetProblem` and the other
files' tools stay usable; so does a function name defined twice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from funcforge import paths
from funcforge.errors import UserError
from funcforge.paths import check_glob
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.source import (
    SourceDecodeError,
    ToolsetSyntaxError,
    decode_source,
    encode_source,
)
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.types import workspace_loader

if TYPE_CHECKING:
    from funcforge.config import Config


@dataclass(frozen=True)
class ToolsetProblem:
    """Something wrong in a tool file: `line` is 1-based, `col` 0-based."""

    file: str
    line: int
    message: str
    col: int = 0
    # "error": the file's tools are not read; "warning": read, but not rewritable.
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Toolset:
    """Tool functions by name, tool file texts by relative path, and what went wrong."""

    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[ToolsetProblem] = field(default_factory=list)
    # The encoding each file is written back with (`utf-8-sig` keeps a BOM).
    encodings: dict[str, str] = field(default_factory=dict)
    # The exact bytes of each file (what the content hash covers).
    data: dict[str, bytes] = field(default_factory=dict, repr=False)

    def content_hash(self) -> str:
        """12 hex characters of sha256 over the tool files' paths and bytes, sorted by path."""
        digest = hashlib.sha256()
        for path in sorted(self.data):
            raw = self.data[path]
            name = path.encode("utf-8")
            digest.update(len(name).to_bytes(8, "big") + name)
            digest.update(len(raw).to_bytes(8, "big") + raw)
        return digest.hexdigest()[:12]

    def file_of(self, name: str) -> str | None:
        """The file that defines the tool `name`, if any."""
        spec = self.functions.get(name)
        return spec.location.file if spec and spec.location else None

    def functions_in(self, file: str) -> list[FunctionSpec]:
        """The tools defined in `file`, in file order."""
        return [
            f for f in self.functions.values() if f.location is not None and f.location.file == file
        ]


def tool_files(config: Config) -> list[str]:
    """Relative POSIX paths of the `.py` files the `tools` globs match, sorted (`funcforge.paths`)."""
    for pattern in config.tools:
        check_glob(pattern, "tools")
    found = paths.find_files(config.root, config.tools, exclude=[config.state_dir])
    return [rel for rel in found if rel.endswith(".py")]


def matches_tools(config: Config, rel: str) -> bool:
    """True when the relative path `rel` is one the `tools` globs select."""
    rel = PurePosixPath(rel).as_posix()
    state = config.state_dir.strip("/") + "/"
    return rel.endswith(".py") and not rel.startswith(state) and paths.matches(config.tools, rel)


def _relative(config: Config, path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        return Path(os.path.relpath(p, config.root)).as_posix()
    return PurePosixPath(path.replace("\\", "/")).as_posix()


def _local_modules(root: Path, files: list[str]) -> set[str]:
    """Module names importable from the workspace itself (not packages to install)."""
    names: set[str] = set()
    for folder in {root, *((root / f).parent for f in files)}:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.suffix == ".py":
                names.add(entry.stem)
            elif entry.is_dir() and (entry / "__init__.py").is_file():
                names.add(entry.name)
    return names


def load_toolset(config: Config, overrides: dict[str, str] | None = None) -> Toolset:
    """Read and extract every tool file; `overrides` (relative path -> text) are unsaved edits.

    An override for a path the globs select but that is not on disk yet counts
    as a tool file too.
    """
    overrides = {_relative(config, k): v for k, v in (overrides or {}).items()}
    files = tool_files(config)
    files = sorted(set(files) | {p for p in overrides if matches_tools(config, p)})
    toolset = Toolset()
    for rel in files:
        if rel in overrides:
            text = overrides[rel]
            encoding = _disk_encoding(config.root / rel)
            toolset.files[rel] = text
            toolset.encodings[rel] = encoding
            toolset.data[rel] = _encode_lenient(text, encoding)
            continue
        try:
            data = (config.root / rel).read_bytes()
        except OSError as exc:
            toolset.problems.append(ToolsetProblem(rel, 1, f"cannot read: {exc.strerror or exc}"))
            continue
        toolset.data[rel] = data
        try:
            text, encoding = decode_source(data, rel)
        except SourceDecodeError as exc:
            toolset.problems.append(ToolsetProblem(rel, exc.line, exc.message))
            continue
        toolset.files[rel] = text
        toolset.encodings[rel] = encoding
    local = _local_modules(config.root, files)
    loader = workspace_loader(config.root, overrides)
    for rel, text in toolset.files.items():
        unrewritable: list[ToolsetSyntaxError] = []
        try:
            specs = extract_functions(text, rel, loader, unrewritable)
        except ToolsetSyntaxError as exc:
            toolset.problems.append(
                ToolsetProblem(rel, exc.line, f"syntax error: {exc.message}", exc.col)
            )
            continue
        for problem in unrewritable:
            toolset.problems.append(
                ToolsetProblem(
                    rel,
                    problem.line,
                    f"funcforge reads this file's tools but cannot rewrite it: {problem.message}",
                    problem.col,
                    severity="warning",
                )
            )
        for spec in specs:
            spec.packages = [p for p in spec.packages if p not in local]
            _add(toolset, spec)
    return toolset


def _add(toolset: Toolset, spec: FunctionSpec) -> None:
    first = toolset.functions.get(spec.name)
    loc = spec.location
    assert loc is not None
    if first is None:
        toolset.functions[spec.name] = spec
        return
    where = f"{first.location.file}:{first.location.start_line}" if first.location else "?"
    toolset.problems.append(
        ToolsetProblem(
            loc.file,
            loc.start_line,
            f"function '{spec.name}' is also defined at {where}; "
            f"this definition at {loc.file}:{loc.start_line} is ignored",
        )
    )


def _disk_encoding(path: Path) -> str:
    """The encoding of the file on disk, so an unsaved edit is written back the same way."""
    try:
        return decode_source(path.read_bytes(), str(path))[1]
    except (OSError, UserError):
        return "utf-8"


def _encode_lenient(text: str, encoding: str) -> bytes:
    try:
        return encode_source(text, encoding)
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8", "surrogatepass")
