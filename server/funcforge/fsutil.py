"""Small file helpers shared by the core: atomic writes, and text that can always be written.

Model replies and traces may carry lone surrogates (``"\\ud800"``: valid in a
Python `str` and in JSON's ``\\uXXXX`` escapes, not encodable as UTF-8) and
absurdly nested JSON. Everything funcforge writes — proposals, state,
transcripts, reports, JSON output — goes through `clean_text` / `clean_json`
/ `dumps`, so such text is escaped (a lone surrogate becomes the six
characters ``\\ud800``) instead of ending the run with UnicodeEncodeError or
RecursionError.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

# Deeper JSON than this is replaced by a marker when written (json's C encoder
# and decoder give up near 1000 levels; nothing funcforge writes is that deep).
MAX_WRITE_DEPTH = 200
TOO_DEEP = "[nested too deep]"
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether `text` holds a lone surrogate (which UTF-8 cannot encode)."""
    return _SURROGATE.search(text) is not None


def clean_text(text: str) -> str:
    """`text` with each lone surrogate escaped as ``\\udXXX`` (always UTF-8 encodable)."""
    if not has_surrogates(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def clean_json(value: Any, max_depth: int = MAX_WRITE_DEPTH) -> Any:
    """A copy of a JSON-like value whose strings (keys too) are `clean_text`-ed.

    Containers deeper than `max_depth` are replaced by the string
    ``"[nested too deep]"``, so the result can always be serialised.
    """

    def walk(item: Any, depth: int) -> Any:
        if isinstance(item, str):
            return clean_text(item)
        if isinstance(item, dict):
            if depth >= max_depth:
                return TOO_DEEP
            return {
                (clean_text(k) if isinstance(k, str) else k): walk(v, depth + 1)
                for k, v in item.items()
            }
        if isinstance(item, (list, tuple)):
            if depth >= max_depth:
                return TOO_DEEP
            return [walk(v, depth + 1) for v in item]
        return item

    return walk(value, 0)


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` of `clean_json(obj)`: never fails on surrogates or depth.

    Defaults to ``ensure_ascii=False``; other keyword arguments go to `json.dumps`.
    """
    kwargs.setdefault("ensure_ascii", False)
    return json.dumps(clean_json(obj), **kwargs)


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON-like value, counted without recursion, up to `limit` + 1."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` so readers see the old or the new content, never half.

    Text is encoded as UTF-8 with lone surrogates escaped (`clean_text`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = clean_text(data).encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(path: Path, data: str | bytes) -> None:
    """Write a file the user asked for (`--output`, `--out`) atomically, readable by others.

    `write_atomic` leaves new files at mkstemp's 0600, right for state but not
    for a report a CI step uploads or a trace file an agent's team shares: an
    existing file keeps its mode, a new one gets 0644 (as git checks files out).
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o644
    write_atomic(path, data)
    os.chmod(path, mode)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically (strings cleaned, see `dumps`)."""
    write_atomic(path, dumps(obj, indent=2, sort_keys=False) + "\n")


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state folder with a `.gitignore` of `*`, so git never sees it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ignore = state_dir / ".gitignore"
    if not ignore.exists():
        write_atomic(ignore, "# funcforge's state: proposals, optimizer state, training runs\n*\n")
    return state_dir
