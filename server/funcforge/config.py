"""Workspace configuration: `[tool.funcforge]` in pyproject.toml, or funcforge.toml.

Every key has a default, so a workspace without any configuration works; the
loader says where the configuration came from (or that defaults are in use),
warns about unknown keys and rejects values of the wrong type with file:line.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from funcforge.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(UserError):
    """A configuration file is unreadable or has a value of the wrong type."""


@dataclass
class TrainConfig:
    """Settings of `funcforge train` (the paper's offline training loop)."""

    tasks: str | None = None
    epochs: int = 10
    patience: int = 10
    agent: str = "function-calling"
    batch_size: int | None = None
    concurrency: int = 1
    judge: str = "normalized"
    tolerance: float = 1e-6
    turn_limit: int = 8
    agent_timeout: float = 60.0
    test_fraction: float = 0.3
    split_seed: int = 0
    rate_limit: float | None = None
    branch_prefix: str = "funcforge/train"
    executor: str = "thread"  # where task evaluations run: thread | ray


@dataclass
class Config:
    """Resolved configuration of one workspace. Paths are relative to `root`."""

    root: Path = field(default_factory=Path.cwd)
    tools: list[str] = field(default_factory=lambda: ["tools/**/*.py"])
    traces: list[str] = field(default_factory=lambda: ["traces/**/*.jsonl"])
    formats: dict[str, str] = field(default_factory=dict)
    state_dir: str = ".funcforge"
    add_file: str | None = None
    max_tool_file_kb: int = 256  # bigger tool files are not read as tools (a diagnostic says so)
    # The optimizer's model endpoint (any OpenAI-compatible server).
    model: str = "gpt-4o"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    api_version: str | None = None
    request_timeout: float = 120.0
    max_retries: int = 4
    # The AgentOptimizer's knobs (paper defaults).
    max_actions_per_step: int = 3
    max_trials: int = 3
    patience: int = 10
    tie_rule: Literal["not-improvement", "improvement"] = "not-improvement"
    # Prompt tokens; None: what fits context_window (set, or told by the endpoint)
    # with room for the answer, else 12,000.
    token_budget: int | None = None
    context_window: int | None = None  # the model's context in tokens; None: ask the endpoint
    step_timeout: float | None = 900.0  # wall-clock seconds per optimizer step
    seed: int = 0
    # The replay check and the sandbox.
    replay_budget: int = 200
    call_timeout: float = 5.0
    memory_mb: int = 512
    # "bwrap": the OS sandbox (required); "process": the weaker opt-in (docs/sandbox.md).
    sandbox: Literal["bwrap", "process"] = "bwrap"
    # Evidence in the editor and decline detection.
    error_rate_warning: float = 0.2
    min_traces: int = 20
    decline_alpha: float = 0.05  # false roll-back rate of the sequential decline rule
    train: TrainConfig = field(default_factory=TrainConfig)
    # Where the values came from, and what the loader had to say about them.
    source: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def state_path(self) -> Path:
        """Absolute path of the state folder (`.funcforge` by default)."""
        return self.root / self.state_dir

    @property
    def proposals_path(self) -> Path:
        return self.state_path / "proposals"

    def describe_source(self) -> str:
        """One line saying where the configuration came from."""
        if self.source is None:
            return f"no funcforge configuration in {self.root}; using defaults"
        return f"configuration from {self.source}"


_META_FIELDS = {"root", "source", "warnings"}


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None)) + (
            " (optional)" if type(None) in get_args(tp) else ""
        )
    if origin is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"table of {_type_name(get_args(tp)[1])}"
    if tp is float:
        return "number"
    if tp is int:
        return "integer"
    if tp is str:
        return "string"
    if tp is bool:
        return "boolean"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    origin = get_origin(tp)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(tp))
    if origin is list:
        return isinstance(value, list) and all(_matches(v, get_args(tp)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and _matches(v, get_args(tp)[1]) for k, v in value.items()
        )
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return False


def _line_of(text: str, key: str, section: str = "") -> int:
    """Best-effort 1-based line of `key = ...` in a TOML text (0 when unknown).

    The search starts at the funcforge table (`[tool.funcforge]`, or
    `[tool.funcforge.train]` / `[train]` for `section="train"`), so a key of
    the same name in another table (`[project]`) is not taken for ours.
    """
    headers = (
        [r"\[\s*tool\.funcforge\.train\s*\]", r"\[\s*train\s*\]"]
        if section == "train"
        else [r"\[\s*tool\.funcforge\s*\]"]
    )
    start = 0
    for header in headers:
        h = re.search(rf"^[ \t]*{header}", text, re.MULTILINE)
        if h:
            start = h.end()
            break
    pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.MULTILINE)
    m = pattern.search(text, start) or pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def _apply(
    target: Any, table: dict[str, Any], file: Path, text: str, prefix: str, warnings: list[str]
) -> None:
    hints = get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)} - _META_FIELDS
    for key, value in table.items():
        line = _line_of(text, key, prefix.rstrip("."))
        where = f"{file}:{line}" if line else str(file)
        if key not in names:
            warnings.append(f"{where}: unknown key '{prefix}{key}' ignored")
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{prefix}{key}' must be a table")
            _apply(getattr(target, key), value, file, text, f"{prefix}{key}.", warnings)
            continue
        if isinstance(value, str) and get_origin(tp) is list and _matches([value], tp):
            value = [value]  # a single glob is accepted where a list is expected
        if not _matches(value, tp):
            raise ConfigError(
                f"{where}: '{prefix}{key}' must be {_type_name(tp)}, "
                f"got {type(value).__name__} {value!r}"
            )
        if key == "decline_alpha" and not 0 < value < 1:
            raise ConfigError(
                f"{where}: '{prefix}{key}' must be between 0 and 1 (e.g. 0.05), got {value!r}"
            )
        setattr(target, key, value)


def read_config_text(path: Path) -> str:
    """A configuration file's text; unreadable or not UTF-8 (as TOML must be): a clear error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); TOML files are UTF-8"
        ) from None


def _toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """`FILE:LINE: not valid TOML: WHAT (at line L, column C)`, the line where editors jump."""
    m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    where = f"{path}:{m.group(1)}" if m else str(path)
    return f"{where}: not valid TOML: {exc}"


def find_config_file(root: Path) -> tuple[Path, dict[str, Any], str] | None:
    """The file that configures `root`: funcforge.toml first, then pyproject.toml."""
    for name in ("funcforge.toml", "pyproject.toml"):
        path = root / name
        if not path.is_file():
            continue
        text = read_config_text(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_toml_error(path, exc)) from exc
        if name == "funcforge.toml":
            return path, data.get("tool", {}).get("funcforge", data), text
        section = data.get("tool", {}).get("funcforge")
        if section is not None:
            return path, section, text
    return None


def load_config(root: Path | str, overrides: dict[str, Any] | None = None) -> Config:
    """Load the configuration of the workspace at `root`.

    `overrides` (for example from the editor's settings) are applied last,
    with the same type checks, and do not replace values set in the files
    unless they are given explicitly.
    """
    root = Path(root).resolve()
    config = Config(root=root)
    found = find_config_file(root)
    if found is not None:
        path, table, text = found
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.funcforge] must be a table")
        config.source = path
        _apply(config, table, path, text, "", config.warnings)
    if overrides:
        _apply(config, overrides, Path("<settings>"), "", "", config.warnings)
    return config


# How a run is carried out, as opposed to what it trains (the tools and where they and
# their traces live): `funcforge train` takes these from the user's checkout, since its
# worktree holds the committed configuration, which may be older than what the user set.
RUN_SETTINGS = (
    "model",
    "base_url",
    "api_key_env",
    "api_version",
    "request_timeout",
    "max_retries",
    "max_actions_per_step",
    "max_trials",
    "tie_rule",
    "token_budget",
    "context_window",
    "step_timeout",
    "seed",
    "replay_budget",
    "call_timeout",
    "memory_mb",
    "sandbox",
    "min_traces",
    "decline_alpha",
)


def adopt_run_settings(target: Config, source: Config) -> list[str]:
    """Copy `source`'s run settings onto `target`; the names of those that differed."""
    changed = []
    for name in RUN_SETTINGS:
        value = getattr(source, name)
        if getattr(target, name) != value:
            changed.append(name)
            setattr(target, name, value)
    target.train = dataclasses.replace(source.train)
    return changed


def config_schema() -> dict[str, str]:
    """Each key with its expected type, for documentation and error messages."""
    out: dict[str, str] = {}
    for cls, prefix in ((Config, ""), (TrainConfig, "train.")):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in _META_FIELDS or f.name == "train":
                continue
            out[prefix + f.name] = _type_name(hints[f.name])
    return out
