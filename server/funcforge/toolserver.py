"""A workspace's toolset as callable tools: definitions, sandboxed calls, and evidence.

`ToolServer` is what `funcforge mcp` (and the trainer's MCP host) serve: each
tool's name, description and JSON Schema from its `FunctionSpec`; each call
run in the sandbox (never in this process); each call appended to the
workspace's traces as one native trace line (the tool call and its result or
error, `latency_ms`, `toolset_version`, `source: "mcp"`), so any agent that
uses the tools produces evidence without a logger of its own.

The toolset is re-read when its files change (checked before listing and
before each call), and the sandbox pool is replaced with it.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from funcforge.config import Config
from funcforge.fsutil import dumps
from funcforge.sandbox import CallResult, SandboxPool, describe_mode, require_sandbox, resolve_mode
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.toolset import Toolset, load_toolset

DEFAULT_TRACE_FILE = "traces/mcp-calls.jsonl"
WALK_INTERVAL = 2.0  # seconds between walks of the workspace for new tool files


@dataclass
class ToolCallOutcome:
    """One served call: the sandbox's result, the wall time it took, the version it ran."""

    result: CallResult
    latency_ms: float
    version: str


class ToolServer:
    """The toolset of one workspace, served: thread-safe, reloaded when its files change.

    `files`: serve these (relative path -> text) instead of reading the
    workspace (the trainer passes its toolbox); `trace_file`: where calls are
    logged (None: not logged); `version`: the toolset version to record
    (default: `history.git.current_version`).
    """

    def __init__(
        self,
        config: Config,
        *,
        trace_file: Path | None = None,
        files: dict[str, str] | None = None,
        version: str | None = None,
        workers: int = 2,
    ) -> None:
        self.config = config
        self.mode = resolve_mode(config.sandbox)
        require_sandbox(self.mode)  # refuse at start, not at the first call
        self.trace_file = trace_file
        self.workers = workers
        self._fixed_files = files
        self._fixed_version = version
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pool: SandboxPool | None = None
        self._toolset: Toolset | None = None
        self._version = ""
        self._stamp: tuple[Any, ...] | None = None
        self._known: list[str] | None = None  # tool files found by the last walk
        self._walked = 0.0
        self.refresh()

    @property
    def sandbox(self) -> str:
        return describe_mode(self.mode)

    # -- the toolset -------------------------------------------------------------------

    def _disk_stamp(self) -> tuple[Any, ...]:
        """Sizes and mtimes of the tool files (cheap); a change means reload.

        The files of the last load are stat'ed on every call (an edit shows at
        once); the folder walk that finds new tool files runs at most every
        `WALK_INTERVAL` seconds, so a big workspace does not slow every call.
        """
        if self._fixed_files is not None:
            return ("fixed",)
        root = self.config.root
        now = time.monotonic()
        if self._known is None or now - self._walked >= WALK_INTERVAL:
            from funcforge.paths import matches

            found = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in filenames:
                    if name.endswith(".py"):
                        rel = (Path(dirpath) / name).relative_to(root).as_posix()
                        if matches(self.config.tools, rel):
                            found.append(rel)
            self._known, self._walked = sorted(found), now
        stamp = []
        for rel in self._known:
            try:
                st = (root / rel).stat()
            except OSError:
                stamp.append((rel, -1, -1))  # removed since the walk
                continue
            stamp.append((rel, st.st_size, st.st_mtime_ns))
        return tuple(stamp)

    def refresh(self) -> bool:
        """Re-read the toolset when its files changed; True when it did."""
        stamp = self._disk_stamp()
        with self._lock:
            if stamp == self._stamp and self._toolset is not None:
                return False
            if self._fixed_files is not None:
                toolset = Toolset(files=dict(self._fixed_files))
                from funcforge.toolset.extract import extract_functions
                from funcforge.toolset.types import workspace_loader

                # Types imported from other files of this version resolve as in load_toolset.
                loader = workspace_loader(self.config.root, self._fixed_files)
                for rel, text in sorted(self._fixed_files.items()):
                    try:
                        for spec in extract_functions(text, rel, loader):
                            toolset.functions.setdefault(spec.name, spec)
                    except Exception:  # a broken file leaves its tools out, as load_toolset does
                        continue
                version = self._fixed_version or toolset.content_hash()
            else:
                toolset = load_toolset(self.config)
                version = self._fixed_version or _version(self.config, toolset)
            old = self._pool
            self._pool = SandboxPool(
                {str(self.config.root / rel): text for rel, text in toolset.files.items()},
                timeout=self.config.call_timeout,
                memory_mb=self.config.memory_mb,
                workers=self.workers,
                isolation=self.mode,
            )
            self._toolset, self._version, self._stamp = toolset, version, stamp
        if old is not None:
            old.close()
        return True

    def specs(self) -> list[FunctionSpec]:
        """The served tools, in name order."""
        self.refresh()
        assert self._toolset is not None
        return [self._toolset.functions[n] for n in sorted(self._toolset.functions)]

    @property
    def version(self) -> str:
        return self._version

    # -- calls -------------------------------------------------------------------------

    def call(self, name: str, arguments: dict[str, Any] | None) -> ToolCallOutcome:
        """Run one tool call in the sandbox and log it; never raises for the tool's faults."""
        self.refresh()
        with self._lock:
            pool, toolset, version = self._pool, self._toolset, self._version
        assert pool is not None and toolset is not None
        args = arguments if arguments is not None else {}
        start = time.perf_counter()
        if name not in toolset.functions:
            known = ", ".join(sorted(toolset.functions)) or "none"
            result = CallResult.failure("NameError", f"no tool named {name!r} (tools: {known})")
        else:
            result = pool.call(name, args)
        latency = (time.perf_counter() - start) * 1000.0
        outcome = ToolCallOutcome(result, round(latency, 3), version)
        if self.trace_file is not None:
            self._log(name, args, outcome)
        return outcome

    def _log(self, name: str, args: dict[str, Any], outcome: ToolCallOutcome) -> None:
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        tool_message: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": call_id,
            "content": outcome.result.tool_content(),
        }
        if not outcome.result.ok:
            tool_message["is_error"] = True
        record = {
            "id": f"mcp-{uuid.uuid4().hex[:12]}",
            "messages": [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": dumps(args)},
                        }
                    ],
                },
                tool_message,
            ],
            "toolset_version": outcome.version,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "source": "mcp",
            "latency_ms": outcome.latency_ms,
            "sandbox": self.sandbox,
        }
        line = (dumps(record) + "\n").encode("utf-8")
        assert self.trace_file is not None
        with self._write_lock:
            self.trace_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.trace_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)  # one write: readers never see half a line from us
            finally:
                os.close(fd)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _version(config: Config, toolset: Toolset) -> str:
    try:
        from funcforge.history.git import current_version

        return current_version(config, toolset)
    except Exception:  # not a git repository, git missing: the content hash names it
        return toolset.content_hash()


def tool_definition(spec: FunctionSpec) -> dict[str, Any]:
    """An MCP tool definition (name, description, inputSchema) from a FunctionSpec."""
    schema = dict(spec.parameters) if isinstance(spec.parameters, dict) else {}
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return {"name": spec.name, "description": spec.description or "", "inputSchema": schema}


def result_payload(result: CallResult) -> dict[str, Any]:
    """An MCP `tools/call` result: the tool message text, the JSON value, the error flag."""
    payload: dict[str, Any] = {
        "content": [{"type": "text", "text": result.tool_content()}],
        "isError": not result.ok,
    }
    if result.ok and result.is_json:
        payload["structuredContent"] = {"result": result.value_json}
    return payload


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool arguments as a dict (a JSON string is decoded); ValueError otherwise."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        raise ValueError("arguments must be a JSON object")
    return raw
