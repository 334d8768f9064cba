"""The parse cache on disk: a warm start of the language server parses no unchanged tool file.

`<state folder>/cache/toolset-parse.json` holds each tool file's extraction
(functions, problems, syntax error, the imported files it read with their
stat) keyed by the file's path and the sha256 of its text. The whole file is
valid only for the funcforge version and extractor code that wrote it (a
stamp of `funcforge.toolset`'s sources), so an upgrade or an edit of the
extractor re-parses everything. A file that cannot be read or decoded is
ignored with a notice and rewritten at the next save. Plain JSON, never
pickle: the folder belongs to the workspace, which may not be trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from funcforge import __version__
from funcforge.toolset.cache import ParsedEntry, Stamp
from funcforge.toolset.spec import FunctionSpec

FORMAT = 1
FILE_NAME = "toolset-parse.json"


def text_key(rel: str, text: str) -> str:
    """The key of one file's extraction: its path and the sha256 of its text."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{rel}\0{digest}"


def code_stamp() -> str:
    """funcforge's version and the size and mtime of the extractor's sources."""
    folder = Path(__file__).parent
    parts = [__version__, str(FORMAT)]
    for path in sorted(folder.glob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def load(path: Path) -> tuple[dict[str, ParsedEntry], str | None]:
    """The stored extractions, and a notice when the file was there but unusable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"parse cache {path} not read ({exc.strerror or exc}); parsing the tool files"
    try:
        data = _loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("unknown format")
        if not isinstance(data.get("code"), str) or not isinstance(data.get("entries"), dict):
            raise ValueError("no code stamp or entries")
        if data.get("code") != code_stamp():
            return {}, None  # another funcforge wrote it: re-parse, no fault
        entries = {key: _entry(value) for key, value in data["entries"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return {}, (
            f"parse cache {path} is corrupt ({type(exc).__name__}: {exc}); ignored, "
            "the tool files are parsed again and the cache rewritten"
        )
    return entries, None


def _loads(raw: bytes) -> Any:
    """orjson where it is installed (twice as fast on a 1 MB cache), else the standard one."""
    try:
        import orjson
    except ImportError:
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # e.g. an escaped lone surrogate: json keeps it
        return json.loads(raw)


def save(path: Path, entries: dict[str, ParsedEntry]) -> None:
    """Write `entries` (key -> extraction) atomically; raises OSError when not writable."""
    body = {
        "format": FORMAT,
        "code": code_stamp(),
        "entries": {key: _plain(entry) for key, entry in entries.items()},
    }
    data = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    from funcforge.fsutil import ensure_state_dir

    ensure_state_dir(path.parent.parent)  # <state>/cache/<file>: git ignores the state folder
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def persistable(entry: ParsedEntry) -> bool:
    """Only extractions that read files on disk (not an editor's unsaved buffer)."""
    return all(not (isinstance(s, tuple) and s[:1] == ("buffer",)) for s in entry.deps.values())


def _plain(entry: ParsedEntry) -> dict[str, Any]:
    error = entry.error
    return {
        "deps": {
            dep: list(stamp) if stamp is not None else None for dep, stamp in entry.deps.items()
        },
        "specs": [spec.to_dict() for spec in entry.specs],
        "problems": [asdict(p) for p in entry.problems],
        "error": None if error is None else [error.file, error.line, error.col, error.message],
    }


def _entry(value: dict[str, Any]) -> ParsedEntry:
    from funcforge.toolset.source import ToolsetSyntaxError
    from funcforge.toolset.toolset import ToolsetProblem

    deps: dict[str, Stamp] = {
        str(dep): tuple(stamp) if stamp is not None else None
        for dep, stamp in value["deps"].items()
    }
    error = value["error"]
    return ParsedEntry(
        text="",  # set by the caller, who looked it up by the text's hash
        deps=deps,
        specs=[FunctionSpec.from_dict(s) for s in value["specs"]],
        problems=[ToolsetProblem(**p) for p in value["problems"]],
        error=None if error is None else ToolsetSyntaxError(*error),
    )
