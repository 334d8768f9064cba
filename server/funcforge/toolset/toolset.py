"""The toolset: every tool function found by the configured `tools` globs.

A file that does not decode or parse becomes a `ToolsetProblem` and the other
files' tools stay usable; so does a function name defined twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from funcforge import paths
from funcforge.paths import check_glob
from funcforge.toolset.cache import (
    DiskEntry,
    ParseCache,
    ParsedEntry,
    Stamp,
    copy_specs,
    disk_stamp,
)
from funcforge.toolset.source import (
    SourceDecodeError,
    ToolsetSyntaxError,
    decode_source,
    encode_source,
)
from funcforge.toolset.spec import FunctionSpec

if TYPE_CHECKING:
    from funcforge.config import Config


@dataclass(frozen=True)
class ToolsetProblem:
    """Something wrong in a tool file: `line` is 1-based, `col` 0-based."""

    file: str
    line: int
    message: str
    col: int = 0
    # "error": the file's tools are not read (or one is ignored); "warning": read, with a caveat.
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


def load_toolset(
    config: Config,
    overrides: dict[str, str] | None = None,
    cache: ParseCache | None = None,
    files: list[str] | None = None,
) -> Toolset:
    """Read and extract every tool file; `overrides` (relative path -> text) are unsaved edits.

    An override for a path the globs select but that is not on disk yet counts
    as a tool file too. With a `cache` (the language server's), only files whose
    text or imported files changed are read and extracted again; `files` skips
    the search for tool files (the caller knows they did not change). A file
    over `max_tool_file_kb` is not read as tools: it gets a problem instead.
    """
    overrides = {_relative(config, k): v for k, v in (overrides or {}).items()}
    found = tool_files(config) if files is None else files
    files = sorted(set(found) | {p for p in overrides if matches_tools(config, p)})
    cache = cache if cache is not None else ParseCache()
    limit = max(1, config.max_tool_file_kb) * 1024
    toolset = Toolset()
    for rel in files:
        entry = _read(config, cache, rel)
        if rel in overrides:
            text = overrides[rel]
            encoding = entry.encoding if entry is not None else "utf-8"
            data = _encode_lenient(text, encoding)
        elif entry is None:
            toolset.problems.append(ToolsetProblem(rel, 1, "cannot read: no such file"))
            continue
        elif entry.problem is not None:
            toolset.data[rel] = entry.data
            toolset.problems.append(ToolsetProblem(rel, *entry.problem))
            continue
        else:
            assert entry.text is not None
            text, encoding, data = entry.text, entry.encoding, entry.data
        if len(data) > limit:
            toolset.problems.append(_too_big(rel, len(data), config.max_tool_file_kb))
            continue
        toolset.files[rel] = text
        toolset.encodings[rel] = encoding
        toolset.data[rel] = data
    cache.forget(set(files))
    local = _local_modules(config.root, files)
    loader: Any = None  # made at the first file to parse (it needs libcst)

    def stamp_of(dep: str) -> Stamp:
        if dep in overrides:
            return ("buffer", overrides[dep])
        return disk_stamp(config.root / dep)

    for rel, text in toolset.files.items():
        parsed = cache.fresh(rel, text, stamp_of)
        if parsed is None:
            if loader is None:
                from funcforge.toolset.types import workspace_loader

                loader = workspace_loader(config.root, overrides)
            parsed = _extract(rel, text, loader, stamp_of)
            cache.store(rel, parsed)
        toolset.problems.extend(parsed.problems)
        if parsed.error is not None:
            continue
        for spec in copy_specs(parsed.specs):
            spec.packages = [p for p in spec.packages if p not in local]
            _add(toolset, spec)
    return toolset


def _too_big(rel: str, size: int, limit_kb: int) -> ToolsetProblem:
    mb = size / (1024 * 1024)
    return ToolsetProblem(
        rel,
        1,
        f"{rel} is {mb:.1f} MB, over the {limit_kb} KB limit for tool files "
        "(max_tool_file_kb): its functions are not read as tools. Split it, exclude it "
        "from the `tools` globs, or raise max_tool_file_kb",
        severity="warning",
    )


def _read(config: Config, cache: ParseCache, rel: str) -> DiskEntry | None:
    """The file's bytes and text from disk, reread only when its stat changed."""
    path = config.root / rel
    stamp = disk_stamp(path)
    if stamp is None:
        return None
    entry = cache.disk.get(rel)
    if entry is not None and entry.stamp == stamp:
        return entry
    try:
        data = path.read_bytes()
    except OSError as exc:
        return DiskEntry(stamp, b"", None, "utf-8", (1, f"cannot read: {exc.strerror or exc}"))
    try:
        text, encoding = decode_source(data, rel)
        entry = DiskEntry(stamp, data, text, encoding)
    except SourceDecodeError as exc:
        entry = DiskEntry(stamp, data, None, "utf-8", (exc.line, exc.message))
    cache.disk[rel] = entry
    return entry


def _extract(rel: str, text: str, loader: Any, stamp_of: Callable[[str], Stamp]) -> ParsedEntry:
    """Extract one file's functions, recording which files its type imports read."""
    from funcforge.toolset.decorators import tool_classes
    from funcforge.toolset.extract import extract_functions
    from funcforge.toolset.types import candidate_paths

    deps: dict[str, Stamp] = {}

    def recording(importer: str, ref: Any) -> Any:
        for dep in candidate_paths(importer, ref):
            deps.setdefault(dep, stamp_of(dep))
        return loader(importer, ref)

    unrewritable: list[ToolsetSyntaxError] = []
    try:
        specs = extract_functions(text, rel, recording, unrewritable)
    except ToolsetSyntaxError as exc:
        problem = ToolsetProblem(rel, exc.line, f"syntax error: {exc.message}", exc.col)
        return ParsedEntry(text, deps, [], [problem], error=exc)
    problems = [
        ToolsetProblem(
            rel,
            problem.line,
            f"{problem.message}; funcforge reads and rewrites this file statement by "
            "statement (a type defined in that statement is not seen)",
            problem.col,
            severity="warning",
        )
        for problem in unrewritable
    ]
    problems.extend(
        ToolsetProblem(
            rel,
            line,
            f"class '{name}' is a class-based tool (CrewAI / langchain BaseTool): funcforge "
            "reads tool functions only, so the model's view of it is not shown and it is not "
            "optimized; a function with the @tool decorator is",
            col,
            severity="warning",
        )
        for line, col, name in tool_classes(text)
    )
    return ParsedEntry(text, deps, specs, problems)


def _add(toolset: Toolset, spec: FunctionSpec) -> None:
    first = toolset.functions.get(spec.name)
    loc = spec.location
    assert loc is not None
    if first is None:
        toolset.functions[spec.name] = spec
        return
    if first.location is not None and first.location.file == loc.file:
        # Redefined in the same file: Python binds the last one, so that is the tool.
        toolset.functions[spec.name] = spec
        toolset.problems.append(
            ToolsetProblem(
                loc.file,
                first.location.start_line,
                f"function '{spec.name}' is defined again at {loc.file}:{loc.start_line}; "
                "this earlier definition is never called (the later one is the tool)",
                severity="warning",
            )
        )
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


def _encode_lenient(text: str, encoding: str) -> bytes:
    try:
        return encode_source(text, encoding)
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8", "surrogatepass")
