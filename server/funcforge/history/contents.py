"""The toolset content hash of each commit, read from git trees (no checkout), cached.

A trace may name its toolset by content (`Toolset.content_hash()`: 12 hex of
sha256 over the tool files' paths and bytes, optionally as `dirty-<hash>`)
instead of a commit. To match it to "the commits whose tools had that
content", this module computes the same hash for commits, from their trees:
the files the `tools` globs select under the workspace folder, outside the
state folder, with their blob bytes.

Only commits that change a tool file need their tree read (`git log
--full-history -- <tool pathspecs>` names them); every other commit has its
first parent's content. Results are cached per commit in
`.funcforge/cache/contents-<scope>.json`, where the scope is a hash of the
workspace folder and the `tools` globs (a change to either is a new cache).
Symlinked tool files are hashed by their link text, so they do not match a
checkout's content hash (documented in docs/history.md).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from git import Repo

from funcforge.config import Config
from funcforge.fsutil import ensure_state_dir, write_json_atomic
from funcforge.history.gitops import run_git, work_tree, workspace_prefix

SCAN = 5000  # commits looked at, newest first, on HEAD and local branches
CACHE_DIR = "cache"
_memory: dict[str, dict[str, str]] = {}  # cache file -> commit -> content hash
_memory_lock = threading.Lock()


def _scope(config: Config, prefix: str) -> str:
    key = json.dumps([prefix, sorted(config.tools), config.state_dir])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _pathspecs(config: Config, prefix: str) -> list[str]:
    return [f":(glob){prefix}{pattern}" for pattern in config.tools]


def _cache_path(config: Config, scope: str) -> Path:
    return config.state_path / CACHE_DIR / f"contents-{scope}.json"


def _load_cache(path: Path) -> dict[str, str]:
    with _memory_lock:
        if str(path) in _memory:
            return dict(_memory[str(path)])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _save_cache(config: Config, path: Path, data: dict[str, str]) -> None:
    with _memory_lock:
        _memory[str(path)] = dict(data)
    try:
        ensure_state_dir(config.state_path)
        write_json_atomic(path, data)
    except OSError:
        pass  # a read-only workspace still works, just slower next time


def content_hash_of(files: dict[str, bytes]) -> str:
    """`Toolset.content_hash()` over workspace-relative paths and bytes."""
    digest = hashlib.sha256()
    for path in sorted(files):
        raw = files[path]
        name = path.encode("utf-8")
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(raw).to_bytes(8, "big") + raw)
    return digest.hexdigest()[:12]


def tool_blobs(repo: Repo, config: Config, rev: str) -> dict[str, str]:
    """Workspace-relative tool file -> blob sha at `rev` (regular files the globs select)."""
    from funcforge.toolset.toolset import matches_tools

    prefix = workspace_prefix(repo, config)
    out = run_git(repo, "ls-tree", "-r", "-z", "--full-tree", rev, "--", prefix or ".")
    state = config.state_dir.strip("/") + "/"
    blobs: dict[str, str] = {}
    for record in out.split("\0"):
        if "\t" not in record:
            continue
        meta, path = record.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind != "blob" or not path.startswith(prefix) or mode == "160000":
            continue
        rel = path[len(prefix) :]
        if rel.startswith(state) or "__pycache__" in rel.split("/"):
            continue
        if matches_tools(config, rel):
            blobs[rel] = sha
    return blobs


def read_blobs(repo: Repo, shas: Iterable[str]) -> dict[str, bytes]:
    """The bytes of each blob, with one `git cat-file --batch`."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=work_tree(repo),
        input="".join(f"{s}\n" for s in wanted).encode(),
        capture_output=True,
        check=False,
    )
    data, pos, out = proc.stdout, 0, {}
    for sha in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        out[sha] = data[pos : pos + size]
        pos += size + 1
    return out


def files_at(repo: Repo, config: Config, rev: str) -> dict[str, bytes]:
    """The tool files (workspace-relative path -> bytes) as `rev` has them."""
    blobs = tool_blobs(repo, config, rev)
    data = read_blobs(repo, blobs.values())
    return {rel: data[sha] for rel, sha in blobs.items() if sha in data}


def commit_contents(repo: Repo, config: Config, revs: Iterable[str] = ("HEAD",)) -> dict[str, str]:
    """Full commit sha -> toolset content hash, for the last `SCAN` commits of `revs`.

    Also every local branch (training branches among them), so a version
    recorded there resolves; roll-back targets are still limited to HEAD's
    history by the caller.
    """
    prefix = workspace_prefix(repo, config)
    scope = _scope(config, prefix)
    cache_path = _cache_path(config, scope)
    cache = _load_cache(cache_path)
    listing = run_git(
        repo,
        "rev-list",
        "--topo-order",
        "--reverse",
        f"--max-count={SCAN}",
        "--parents",
        *revs,
        "--branches",
        "--",
        check=False,
    )
    order: list[tuple[str, list[str]]] = []
    for line in listing.splitlines():
        parts = line.split()
        if parts:
            order.append((parts[0], parts[1:]))
    missing = [sha for sha, _ in order if sha not in cache]
    if missing:
        touching = set(
            run_git(
                repo,
                "log",
                "--full-history",
                "--format=%H",
                f"--max-count={SCAN}",
                *revs,
                "--branches",
                "--",
                *_pathspecs(config, prefix),
                check=False,
            ).split()
        )
        blob_cache: dict[tuple[tuple[str, str], ...], str] = {}
        for sha, parents in order:
            if sha in cache:
                continue
            parent = parents[0] if parents else None
            if sha not in touching and parent is not None and parent in cache:
                cache[sha] = cache[parent]
                continue
            blobs = tool_blobs(repo, config, sha)
            key = tuple(sorted(blobs.items()))
            if key not in blob_cache:
                data = read_blobs(repo, blobs.values())
                blob_cache[key] = content_hash_of(
                    {rel: data.get(b, b"") for rel, b in blobs.items()}
                )
            cache[sha] = blob_cache[key]
        _save_cache(config, cache_path, cache)
    return {sha: cache[sha] for sha, _ in order if sha in cache}
