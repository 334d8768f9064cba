"""Which toolset versions a tool's failing calls were logged on, and whether its code changed since.

Evidence binds to what the agent ran. A warning "12 of 40 logged calls
failed" on a function the user has since fixed is history, not a current
failure: the diagnostics say on which version the failures were logged and,
when the function's code (the editor's text) differs from its code in that
commit, show them as such.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from funcforge.errors import UserError

if TYPE_CHECKING:
    from git import Repo

    from funcforge.config import Config
    from funcforge.traces.store import TraceStore


@dataclass
class FailureVersions:
    """The failing calls of one tool per version, in the order versions were last seen."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)  # versions with errors, oldest first

    @property
    def latest(self) -> str | None:
        return self.order[-1] if self.order else None

    def rate(self, version: str) -> float:
        calls = self.calls.get(version, 0)
        return self.errors.get(version, 0) / calls if calls else 0.0


def failure_versions(store: TraceStore) -> dict[str, FailureVersions]:
    """Per tool, calls and failed calls per toolset version (the store keeps them in its
    aggregates: no pass over the traces, which may number millions)."""
    out: dict[str, FailureVersions] = {}
    # all traces: what the editor shows (as Session.tool_stats)
    for name, (counts, order) in store.failures_by_version(which="all").items():
        fv = out[name] = FailureVersions(order=list(order))
        for version, (calls, errors) in counts.items():
            fv.calls[version] = calls
            if errors:
                fv.errors[version] = errors
    return out


class CodeAtVersion:
    """`code_hash()` of each tool function as committed in a version (cached per commit;
    a version that is neither a commit nor a recent content hash, while HEAD is unchanged)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], dict[str, str] | None] = {}
        self._unknown: dict[tuple[str, str, str], str] = {}  # (root, version, file) -> HEAD
        # (root, version) -> (HEAD when resolved, the commit it names)
        self._commits: dict[tuple[str, str], tuple[str | None, str]] = {}
        self.reads = 0  # lookups that ran git (tests read it)

    def hashes(self, config: Config, version: str, file: str) -> dict[str, str] | None:
        """name -> code hash of the functions in `file` at commit `version` (None: unknown)."""
        from funcforge.history.headref import read_head

        if not could_name_commit(version):
            return None  # e.g. "v0": neither a sha nor a content hash; no git to ask
        key = unknown_key = (str(config.root), version, file)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            was_unknown_at = self._unknown.get(unknown_key)
        head = read_head(config.root)
        if was_unknown_at is not None and was_unknown_at == head:
            return None  # asked git at this HEAD already: every hover would run it again
        with self._lock:
            self.reads += 1
        commit, found = self._read(config, version, file)
        with self._lock:
            if commit is not None:
                self._remember(config, version, head, commit)
            if found is None:  # unknown now; a new commit may resolve it (a content hash)
                if head is not None:
                    if len(self._unknown) > 4096:
                        self._unknown.clear()
                    self._unknown[unknown_key] = head
                return None
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _remember(self, config: Config, version: str, head: str | None, commit: str) -> None:
        if len(self._commits) > 4096:
            self._commits.clear()
        self._commits[(str(config.root), version)] = (head, commit)

    def label(self, config: Config, version: str, file: str) -> str:
        """How the user sees `version`: the short sha (7 characters, as `funcforge log`)
        of the commit a content hash (`dirty-` too) resolves to, the newest of HEAD's
        with that content as in `log`; a sha (prefix) or an unknown version as it is.

        Runs git only as `hashes` does (once per version and file), and once more per
        content hash when HEAD moved (a roll-back may have restored that content)."""
        from funcforge.history.headref import read_head

        if not could_name_commit(version):
            return version
        self.hashes(config, version, file)
        key = (str(config.root), version)
        with self._lock:
            known = self._commits.get(key)
        if known is None or _named_by_sha(version, known[1]):
            return version  # unknown, or named by its sha: as the trace says
        head = read_head(config.root)
        if known[0] != head:
            with self._lock:
                self.reads += 1
            commit = self._resolve(config, version)
            with self._lock:
                self._remember(config, version, head, commit or known[1])
            known = (head, commit or known[1])
        return known[1][:7]

    @staticmethod
    def _resolve(config: Config, version: str) -> str | None:
        from funcforge.history.git import open_repo

        try:
            with open_repo(config) as repo:
                return resolve_version(config, repo, version)
        except UserError:
            return None

    def hash_of(self, config: Config, version: str, file: str, name: str) -> str | None:
        """`name`'s code hash at `version`: looked up in `file`, then (the function was
        moved, or its file renamed) in every tool file of that version; "" when it was
        not there at all, None when the version is unknown."""
        here = self.hashes(config, version, file)
        if here is None:
            return None
        if name in here:
            return here[name]
        everywhere = self.hashes(config, version, ALL_FILES)
        if everywhere is None:
            return None
        return everywhere.get(name, "")

    @staticmethod
    def _read(config: Config, version: str, file: str) -> tuple[str | None, dict[str, str] | None]:
        """(the commit `version` names, name -> code hash in `file` there); None: unknown
        (the commit, or the file there when it no longer parses)."""
        from funcforge.history.git import open_repo
        from funcforge.history.gitops import blob_bytes, repo_path
        from funcforge.toolset.extract import extract_functions

        try:
            with open_repo(config) as repo:
                commit = resolve_version(config, repo, version)
                if commit is None:
                    return None, None
                if file == ALL_FILES:
                    texts = _tool_blobs(config, repo, commit)
                else:
                    data = blob_bytes(repo, commit, repo_path(repo, config, file))
                    texts = {} if data is None else {file: data}
        except UserError:
            return None, None
        out: dict[str, str] = {}
        for rel, data in texts.items():
            try:
                specs = extract_functions(data.decode("utf-8", "replace"), rel)
            except Exception:  # an old version that no longer parses: no evidence either way
                if file != ALL_FILES:
                    return commit, None
                continue
            out.update((s.name, s.code_hash()) for s in specs)
        return commit, out


ALL_FILES = "*"  # CodeAtVersion.hashes of every tool file of a version


def _tool_blobs(config: Config, repo: Repo, commit: str) -> dict[str, bytes]:
    """The tool files (workspace-relative path -> bytes) committed in `commit`."""
    from funcforge.history.gitops import run_git, workspace_prefix
    from funcforge.toolset.toolset import matches_tools

    prefix = workspace_prefix(repo, config)
    listing = run_git(repo, "ls-tree", "-r", "-z", commit, "--", prefix or ".")
    out: dict[str, bytes] = {}
    for record in listing.split("\0"):
        meta, _, path = record.partition("\t")
        if not path or not path.startswith(prefix) or meta.split()[1:2] != ["blob"]:
            continue
        rel = path[len(prefix) :]
        if matches_tools(config, rel):
            out[rel] = repo.odb.stream(bytes.fromhex(meta.split()[2])).read()
    return out


def _named_by_sha(version: str, commit: str) -> bool:
    return commit.startswith(version.removeprefix("dirty-").lower())


SCAN = 50  # commits searched for a toolset content hash
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")


def could_name_commit(version: str) -> bool:
    """True when `version` has the form of a sha (prefix) or a content hash (`dirty-` too)."""
    return _HEX.fullmatch(version.removeprefix("dirty-")) is not None


def resolve_version(config: Config, repo: Repo, version: str) -> str | None:
    """The commit a trace's toolset version names: a sha (prefix), or the content hash
    (`dirty-` or bare, as `Toolset.content_hash`) of the tool files of one of HEAD's last
    commits. None when unknown."""
    from funcforge.history.versions import resolve_versions

    bare = version.removeprefix("dirty-")
    commit = resolve_versions(repo, [bare]).get(bare)
    if commit is not None:
        return commit
    return _content_hashes(config, repo).get(bare)


_HASHES: dict[tuple[str, str], dict[str, str]] = {}  # (root, HEAD) -> content hash -> commit


def _content_hashes(config: Config, repo: Repo) -> dict[str, str]:
    """Content hash -> commit for HEAD's last `SCAN` commits (cached per HEAD)."""
    from funcforge.history.gitops import head_sha, run_git
    from funcforge.toolset.toolset import Toolset

    head = head_sha(repo)
    if head is None:
        return {}
    key = (str(config.root), head)
    if key in _HASHES:
        return _HASHES[key]
    out: dict[str, str] = {}
    for commit in run_git(repo, "rev-list", f"--max-count={SCAN}", head).split():
        out.setdefault(Toolset(data=_tool_blobs(config, repo, commit)).content_hash(), commit)
    if len(_HASHES) > 16:
        _HASHES.clear()
    _HASHES[key] = out
    return out


@dataclass(frozen=True)
class Provenance:
    """Where a tool's failures come from: `version` (the latest one with failures),
    the error rate there, and whether the function changed since (`before_change`)."""

    version: str
    rate: float
    versions: int  # how many versions had failures
    before_change: bool
    calls: int = 0  # logged calls on `version` (the rate's denominator)
    errors: int = 0  # of them, failed
    label: str | None = None  # `version` as shown (CodeAtVersion.label); None: as it is

    @property
    def shown(self) -> str:
        """The version's name in messages: the commit a content hash resolved to, as `log`."""
        return self.label or self.version


def provenance(
    config: Config,
    name: str,
    file: str,
    current_hash: str,
    fv: FailureVersions | None,
    code: CodeAtVersion,
) -> Provenance | None:
    """The provenance of `name`'s failures; before_change when no failing version has its code."""
    if fv is None or fv.latest is None:
        return None
    changed = True
    for version in fv.order:
        then = code.hash_of(config, version, file, name)
        if then is None or then == current_hash:
            changed = False  # unknown version, or the same code: the failures are current
            break
    latest = fv.latest
    return Provenance(
        latest,
        fv.rate(latest),
        len(fv.order),
        changed,
        fv.calls.get(latest, 0),
        fv.errors.get(latest, 0),
        code.label(config, latest, file),
    )


class FailureIndex:
    """`failure_versions` of a store, recomputed only when the store gained or lost traces."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._value: dict[str, FailureVersions] = {}

    def get(self, store: TraceStore | None) -> dict[str, FailureVersions]:
        if store is None:
            return {}
        key = (id(store), len(store), sum(f.size for f in store.files()))
        with self._lock:
            if key == self._key:
                return self._value
        value = failure_versions(store)
        with self._lock:
            self._key, self._value = key, value
        return value
