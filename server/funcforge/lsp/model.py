"""Typed values at the seams between the core, the features and the client.

Features exchange these instead of dicts or sentences: a `Change` says what
was re-read, a `Decline` what the decline rule found, `ClientCaps` what the
client can do, `ActionData` what a resolvable code action refers to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lsprotocol import types


class ServerState(str, Enum):
    """What the server is doing (the `state` of `funcforge/status`)."""

    INDEXING = "indexing"
    IDLE = "idle"
    OPTIMIZING = "optimizing"
    CONVERGED = "converged"
    ERROR = "error"


class PathKind(str, Enum):
    """What a changed workspace path is to the server."""

    TOOL = "tool"
    TRACE = "trace"
    PROPOSAL = "proposal"
    STATE = "state"
    CONFIG = "config"


@dataclass(frozen=True)
class Change:
    """What changed on disk or in the editor, fanned out to every feature.

    `tool_names`: only these tools' statistics changed (a trace append), so
    only their files need new diagnostics; None means "any".
    """

    tools: bool = False
    traces: bool = False
    proposals: bool = False
    tool_names: frozenset[str] | None = None
    rescan: bool = True  # search for tool files again (False: only an editor buffer changed)

    @property
    def files_scope_limited(self) -> bool:
        return self.tool_names is not None and not self.tools


@dataclass(frozen=True)
class BestVersion:
    """The best committed version the decline rule compares against."""

    commit: str
    short: str
    score: float
    n: int


@dataclass(frozen=True)
class Decline:
    """The decline rule fired: `message` to show, `functions` changed since `best`."""

    message: str
    best: BestVersion
    functions: frozenset[str] = field(default_factory=frozenset)

    def rollback_title(self) -> str:
        b = self.best
        return f"Roll back to {b.short} ({b.score:.2f}, n={b.n})"


@dataclass(frozen=True)
class ClientCaps:
    """The client capabilities the features act on, read once at `initialize`."""

    pull_diagnostics: bool = False
    diagnostic_refresh: bool = False
    code_lens_refresh: bool = False
    resolve_actions: bool = False
    progress: bool = False
    versioned_edits: bool = True
    dynamic_watch: bool = False
    configuration: bool = False
    hover_markdown: bool = True  # the client renders Markdown hovers (else plain text)
    apply_edit: bool = False  # the client takes workspace/applyEdit
    # The client shows the `message` of command results itself (the VS Code extension,
    # which adds buttons): the server then sends no window/showMessage for them.
    shows_results: bool = False

    @classmethod
    def from_params(cls, caps: types.ClientCapabilities) -> ClientCaps:
        td, ws = caps.text_document, caps.workspace
        action = td.code_action if td else None
        resolve = action.resolve_support if action else None
        edit = ws.workspace_edit if ws else None
        watch = ws.did_change_watched_files if ws else None
        diag_ws = ws.diagnostics if ws else None
        lens_ws = ws.code_lens if ws else None
        return cls(
            pull_diagnostics=bool(td and td.diagnostic),
            diagnostic_refresh=bool(diag_ws and diag_ws.refresh_support),
            code_lens_refresh=bool(lens_ws and lens_ws.refresh_support),
            resolve_actions=bool(resolve and "edit" in (resolve.properties or [])),
            progress=bool(caps.window and caps.window.work_done_progress),
            versioned_edits=bool(edit and edit.document_changes),
            dynamic_watch=bool(watch and watch.dynamic_registration),
            configuration=bool(ws and ws.configuration),
            hover_markdown=_prefers_markdown(td.hover.content_format if td and td.hover else None),
            apply_edit=bool(ws and ws.apply_edit),
            shows_results=_shows_results(caps.experimental),
        )


def _shows_results(experimental: Any) -> bool:
    """`experimental.funcforge.showsResults: true` in the client's capabilities."""
    ours = experimental.get("funcforge") if isinstance(experimental, dict) else None
    return isinstance(ours, dict) and ours.get("showsResults") is True


def _prefers_markdown(formats: Sequence[types.MarkupKind] | None) -> bool:
    """Markdown unless the client lists its hover formats and plain text comes first
    (or Markdown is absent): the list is in order of preference."""
    if not formats:
        return True
    return formats[0] == types.MarkupKind.Markdown


@dataclass(frozen=True)
class ActionData:
    """What a code action returned without its edit refers to (`codeAction/resolve`)."""

    proposal: str
    uri: str
    rel: str
    version: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal,
            "uri": self.uri,
            "rel": self.rel,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Any) -> ActionData | None:
        """None for data that is not ours (another server's, or a client's mangling)."""
        if not isinstance(data, dict):
            return None
        proposal, uri, rel = data.get("proposal"), data.get("uri"), data.get("rel")
        version = data.get("version")
        if not all(isinstance(v, str) for v in (proposal, uri, rel)):
            return None
        if version is not None and not isinstance(version, int):
            return None
        return cls(str(proposal), str(uri), str(rel), version)


@dataclass(frozen=True)
class Pin:
    """A call whose old result a "Pin" code action records as the expected one."""

    function: str
    args: dict[str, Any]
    title: str
    expected: Any = None
    expected_error: str | None = None
    has_expected: bool = False

    def command_argument(self) -> dict[str, Any]:
        arg: dict[str, Any] = {"function": self.function, "args": self.args}
        if self.has_expected:
            arg["expected"] = self.expected
        else:
            arg["expectedError"] = self.expected_error
        return arg


@dataclass(frozen=True)
class HandFinding:
    """A hand-edit check result: the diagnostic and the pins it offers; `function` is the
    tool it is about (its range follows the function's name as the text changes)."""

    diagnostic: types.Diagnostic
    pins: tuple[Pin, ...] = ()
    function: str = ""
