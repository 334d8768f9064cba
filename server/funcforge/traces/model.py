"""The `Trace` model: one run of the agent on one task, with its tool calls and outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceRef:
    """Where a trace came from: file (workspace-relative when possible) and 1-based line."""

    file: str
    line: int
    offset: int = 0  # byte offset of the line's start, for lazy loading

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Task:
    id: str
    input: str = ""
    expected: str | None = None


@dataclass
class Outcome:
    score: float | None = None
    passed: bool | None = None


@dataclass
class ToolCall:
    """One call of a tool inside a trace, paired with its result."""

    id: str
    name: str
    arguments_raw: str
    arguments: dict[str, Any] | None  # None when `arguments_raw` is not a JSON object
    result: str | None = None
    is_error: bool = False
    error_type: str | None = None
    error_message: str | None = None


@dataclass
class Trace:
    """One run of the agent on one task (design.md's native format, parsed)."""

    id: str
    task: Task | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    toolset_version: str | None = None
    split: str | None = None
    time: str | None = None
    source: SourceRef | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final_answer(self) -> str | None:
        """The content of the last assistant message without tool calls."""
        for msg in reversed(self.messages):
            if msg.get("role") == "assistant" and not msg.get("tool_calls"):
                content = msg.get("content")
                if isinstance(content, str):
                    return content
        return None

    def to_native(self) -> dict[str, Any]:
        """The native JSON Lines object of design.md (unknown keys kept)."""
        out: dict[str, Any] = dict(self.extra)
        out["id"] = self.id
        if self.task is not None:
            out["task"] = {k: v for k, v in asdict(self.task).items() if v is not None}
        out["messages"] = self.messages
        out["outcome"] = {k: v for k, v in asdict(self.outcome).items() if v is not None}
        if self.toolset_version is not None:
            out["toolset_version"] = self.toolset_version
        if self.split is not None:
            out["split"] = self.split
        if self.time is not None:
            out["time"] = self.time
        return out


class MalformedTrace(Exception):
    """A trace record that cannot be read; carries the reason (location added by the store)."""
