"""The server's view of one workspace: config, tools, traces, proposals, under a lock.

Everything the LSP features read comes from a `Session`; the heavy work
(indexing, trace refresh) runs in worker threads and swaps results in under
the lock, so requests are answered from the last good state while indexing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funcforge.config import Config, find_config_file, load_config
from funcforge.errors import UserError
from funcforge.optimizer.optimizer import OptimizerState
from funcforge.optimizer.proposal import Proposal, list_proposals
from funcforge.toolset.cache import ParseCache
from funcforge.toolset.disk_cache import FILE_NAME as PARSE_CACHE_FILE
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.toolset import Toolset, load_toolset, tool_files
from funcforge.traces.store import TraceStore

# LSP setting name -> Config field.
SETTING_KEYS = {
    "model": "model",
    "baseUrl": "base_url",
    "tools": "tools",
    "traces": "traces",
    "errorRateWarning": "error_rate_warning",
    "sandbox": "sandbox",
}


@dataclass
class Settings:
    """What the client told us (initializationOptions / workspace/configuration)."""

    allow_execution: bool = False
    llm: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_client(cls, data: Any) -> Settings:
        data = data if isinstance(data, dict) else {}
        if isinstance(data.get("funcforge"), dict):
            data = data["funcforge"]
        overrides = {
            SETTING_KEYS[k]: v
            for k, v in data.items()
            if k in SETTING_KEYS and v not in (None, "", [])
        }
        llm = data.get("llm") or None
        return cls(bool(data.get("allowExecution", False)), llm, overrides)


class Session:
    """Config, toolset and trace store of the workspace at `root`, shared by features."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root.resolve()
        self.settings = settings
        self.lock = threading.RLock()
        self.config: Config = Config(root=self.root)
        self.store: TraceStore | None = None
        self.toolset: Toolset = Toolset(functions={}, files={}, problems=[])
        self.buffers: dict[str, str] = {}  # rel path -> unsaved editor text
        self.parse_cache = ParseCache()  # an edit re-parses only the edited file
        self._reload_lock = threading.Lock()  # one tool reload at a time
        self._reload_asked = 0  # reload requests so far (a ticket each)
        self._last_reload: _Reload | None = None  # what the last finished reload read
        self._files: list[str] | None = None  # tool files found by the last search
        self.config_error: str | None = None
        self._stats: dict[str, Any] = {}  # tool statistics as of the last refresh
        self._pending: list[Proposal] | None = None  # pending proposals, until they change
        self._by_file: tuple[Toolset, dict[str, list[FunctionSpec]]] | None = None
        self.changed_tools: set[str] | None = (
            None  # tools whose statistics the last refresh changed
        )

    # -- loading ---------------------------------------------------------------

    def load_config(self) -> list[str]:
        """(Re)read the configuration; settings fill only keys the files leave unset."""
        messages: list[str] = []
        try:
            found = find_config_file(self.root)
            file_keys = set(found[1]) if found else set()
            overrides = {k: v for k, v in self.settings.overrides.items() if k not in file_keys}
            config = load_config(self.root, overrides)
            self.config_error = None
            messages.extend(config.warnings)
            messages.extend(self._untrusted_endpoint(config, file_keys, found))
        except UserError as exc:
            config = Config(root=self.root)
            self.config_error = str(exc)
            messages.append(f"{exc}; using defaults")
        with self.lock:
            old = self.config
            same_traces = (old.traces, old.formats, old.state_dir) == (
                config.traces,
                config.formats,
                config.state_dir,
            )
            self.config = config
            if self.store is None or not same_traces:
                self.store = TraceStore(config)  # read afresh by the next index()
        return messages

    def _untrusted_endpoint(self, config: Config, file_keys: set[str], found: Any) -> list[str]:
        """Where workspace code may not run, the workspace's files may not choose where
        the API key goes either: their endpoint settings are ignored."""
        if self.settings.allow_execution:
            return []
        dropped = []
        defaults = Config(root=self.root)
        for key in ("base_url", "api_key_env", "api_version"):
            if key in file_keys and key not in self.settings.overrides:
                setattr(config, key, getattr(defaults, key))
                dropped.append(key)
        if not dropped:
            return []
        where = found[0] if found else "the workspace configuration"
        return [
            f"{', '.join(dropped)} from {where} ignored: this workspace is not trusted "
            "(execution not allowed), so it may not choose where the API key is sent; "
            "set them in the editor's settings or trust the workspace"
        ]

    def index(self) -> list[str]:
        """Read the tools and all traces (slow the first time); returns files that changed."""
        changed = self.refresh_traces(force=True)
        self.reload_tools()
        self.proposals_changed()
        return changed

    def refresh_traces(self, force: bool = False) -> list[str]:
        """Read what the trace files gained; statistics are recomputed only then."""
        store = self.store
        if store is None:
            return []
        changed = store.refresh()
        if changed or force:
            stats = store.tool_stats("all")  # shown to the user; decisions read the store
            with self.lock:
                before, self._stats = self._stats, stats
                self.changed_tools = None if force else _changed_tools(before, stats)
        return changed

    def tool_stats(self) -> dict[str, Any]:
        """Per-tool statistics as of the last refresh (cheap: no recomputation)."""
        with self.lock:
            return self._stats

    def proposals_changed(self) -> None:
        with self.lock:
            self._pending = None

    def reload_tools(self, rescan: bool = True) -> Toolset:
        """Load the tools: only files whose text changed are parsed again; `rescan=False`
        (an editor buffer changed) also skips searching for tool files.

        One reload runs at a time (startup indexing and an opened file's refresh ask at
        once, and would parse every file twice side by side); a caller that waited reuses
        the reload that started after it asked when that one read the same inputs."""
        with self.lock:
            self._reload_asked += 1
            ticket = self._reload_asked
        with self._reload_lock:
            with self.lock:
                buffers = dict(self.buffers)
                config = self.config
                last = self._last_reload
                files = None if rescan or self._files is None else list(self._files)
            if last is not None and last.reusable(ticket, config, buffers, rescan):
                return last.toolset
            with self.lock:
                started = self._reload_asked  # requests made up to now are answered by this
            if files is None:
                files = tool_files(config)
            cache = self._cache_for(config)
            toolset = load_toolset(config, overrides=buffers, cache=cache, files=files)
            cache.save()
            with self.lock:
                self.toolset = toolset
                self._files = files
                self._last_reload = _Reload(started, config, buffers, rescan, toolset)
        return toolset

    def _cache_for(self, config: Config) -> ParseCache:
        """The parse cache, persisted in the state folder's cache (a new one when the
        state folder moved)."""
        path = config.state_path / "cache" / PARSE_CACHE_FILE
        with self.lock:
            if self.parse_cache.path != path:
                self.parse_cache = ParseCache(path)
            return self.parse_cache

    # -- queries ---------------------------------------------------------------

    def toolset_with(self, overrides: dict[str, str]) -> Toolset:
        """The tools as they would be with these texts (parses only what differs)."""
        with self.lock:
            files = list(self._files) if self._files is not None else None
        return load_toolset(self.config, overrides=overrides, cache=self.parse_cache, files=files)

    def rel(self, path: Path) -> str | None:
        """`path` relative to the workspace root (POSIX), or None when outside.

        The file's own symlink is not followed: a tool file `tools/x.py` linked to
        `lib/x.py` is the tool file the editor opened (its folders are resolved, so a
        workspace reached through a linked folder is still found)."""
        for candidate in (path.parent.resolve() / path.name, path.resolve()):
            try:
                return candidate.relative_to(self.root).as_posix()
            except ValueError:
                continue
        return None

    def functions_in(self, rel: str) -> list[FunctionSpec]:
        """The tools defined in `rel`, in source order (indexed once per toolset)."""
        with self.lock:
            toolset, index = self.toolset, self._by_file
            if index is None or index[0] is not toolset:
                by_file: dict[str, list[FunctionSpec]] = {}
                for spec in toolset.functions.values():
                    if spec.location is not None:
                        by_file.setdefault(spec.location.file, []).append(spec)
                for specs in by_file.values():
                    specs.sort(key=lambda s: s.location.start_line if s.location else 0)
                index = self._by_file = (toolset, by_file)
        return list(index[1].get(rel, []))

    def files_of(self, names: set[str]) -> set[str]:
        """The tool files that define any of `names`."""
        with self.lock:
            functions = self.toolset.functions
        return {
            spec.location.file
            for name in names
            if (spec := functions.get(name)) is not None and spec.location is not None
        }

    def tool_files(self) -> list[str]:
        with self.lock:
            return sorted(self.toolset.files)

    def diagnosed_files(self) -> set[str]:
        """Files that may carry diagnostics: tool files, open buffers, files with problems
        (an undecodable or unreadable tool file has no text but does have a problem)."""
        with self.lock:
            problems = {p.file for p in self.toolset.problems}
            return set(self.toolset.files) | set(self.buffers) | problems

    def text_of(self, rel: str) -> str | None:
        with self.lock:
            if rel in self.buffers:
                return self.buffers[rel]
            return self.toolset.files.get(rel)

    def pending_proposals(self) -> list[Proposal]:
        with self.lock:
            cached = self._pending
        if cached is None:
            cached = list_proposals(self.config.proposals_path, "pending")
            with self.lock:
                self._pending = cached
        return cached

    def proposals_for(self, name: str) -> list[Proposal]:
        return [p for p in self.pending_proposals() if any(a.name == name for a in p.actions)]

    def optimizer_state(self) -> OptimizerState:
        try:
            return OptimizerState.load(self.config.state_path)
        except UserError:
            return OptimizerState()

    def converged(self) -> bool:
        """Early stop, as the policy decides it now (its patience, not a flag saved with another)."""
        from funcforge.optimizer.policy import Policy

        return Policy.for_config(self.config, self.optimizer_state()).stop_reason() is not None

    def version(self) -> str:
        from funcforge.history.git import current_version

        with self.lock:
            toolset = self.toolset
        return current_version(self.config, toolset)  # a content hash outside git


@dataclass(frozen=True)
class _Reload:
    """A finished tool reload: the requests it answers and the inputs it read."""

    answers: int  # the reload tickets handed out before it started
    config: Config
    buffers: dict[str, str]
    rescanned: bool
    toolset: Toolset

    def reusable(self, ticket: int, config: Config, buffers: dict[str, str], rescan: bool) -> bool:
        """True when it started after request `ticket` and read what that request would."""
        return (
            ticket <= self.answers
            and config is self.config
            and buffers == self.buffers
            and (self.rescanned or not rescan)
        )


def _changed_tools(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Tools whose statistics differ, those that lost all their calls included (a
    truncated, rotated or deleted trace file)."""

    def key(s: Any) -> tuple[Any, ...]:
        return (s.calls, s.errors, s.passed, s.traces)

    return {
        name
        for name in set(before) | set(after)
        if name not in before or name not in after or key(before[name]) != key(after[name])
    }
