"""design.md's native JSON Lines format: one trace object per line, unknown keys kept.

Required: `id` (string or integer) and `messages` (OpenAI chat messages).
Optional: `task` {id, input, expected}, `outcome` {score 0..1, passed},
`toolset_version`, `split`, `time`. Any other key lands in `Trace.extra`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from funcforge.traces.formats import (
    INCOMPLETE,
    JSONL_SUFFIXES,
    TraceFormat,
    TraceSummary,
    error_digests,
    first_record,
    kind_of,
)
from funcforge.traces.formats.chat import call_digests, tool_calls_from_messages
from funcforge.traces.model import MalformedTrace, Outcome, SourceRef, Task, Trace

intern = sys.intern
KNOWN_KEYS = frozenset({"id", "task", "messages", "outcome", "toolset_version", "split", "time"})


def _opt_str(obj: dict[str, Any], key: str, where: str = "") -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise MalformedTrace(f"'{where}{key}' must be a string, got {kind_of(value)}")


def split_of(obj: dict[str, Any]) -> str | None:
    """The trace's `split`, else its task's (a task file line copied into the trace keeps it).

    Held-out semantics depend on it (`funcforge.traces.splits`): a test task whose
    split sits only in `task` must not be read as learnable.
    """
    split = _opt_str(obj, "split")
    if split is None and type(obj.get("task")) is dict:
        split = _opt_str(obj["task"], "split", "task.")
    return split


def _ident(value: Any, name: str) -> str:
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    if value is None:
        raise MalformedTrace(f"missing field '{name}'")
    raise MalformedTrace(f"'{name}' must be a string, got {kind_of(value)}")


def parse_task(value: Any) -> Task | None:
    """The `task` object (None when absent); raises `MalformedTrace` on wrong types."""
    if value is None:
        return None
    if type(value) is not dict:
        raise MalformedTrace(f"'task' must be an object, got {kind_of(value)}")
    task_input = value.get("input", "")
    if task_input is None:
        task_input = ""
    elif type(task_input) is not str:
        raise MalformedTrace(f"'task.input' must be a string, got {kind_of(task_input)}")
    expected = value.get("expected")
    if expected is not None and type(expected) is not str:
        expected = json.dumps(expected, ensure_ascii=False)  # 7, 0.875, [1, 2] -> text
    return Task(_ident(value.get("id"), "task.id"), task_input, expected)


def parse_outcome(value: Any) -> Outcome:
    """The `outcome` object; a score must be a number in 0..1, `passed` a boolean."""
    if value is None:
        return Outcome()
    if type(value) is not dict:
        raise MalformedTrace(f"'outcome' must be an object, got {kind_of(value)}")
    score = value.get("score")
    if score is not None:
        if type(score) not in (int, float):
            raise MalformedTrace(f"'outcome.score' must be a number, got {kind_of(score)}")
        if not 0 <= score <= 1:
            raise MalformedTrace(f"'outcome.score' must be between 0 and 1, got {score!r}")
        score = float(score)
    passed = value.get("passed")
    if passed is not None and type(passed) is not bool:
        raise MalformedTrace(f"'outcome.passed' must be a boolean, got {kind_of(passed)}")
    return Outcome(score, passed)


def parse_record(obj: Any, ref: SourceRef) -> list[Trace]:
    """One native line -> one trace."""
    if type(obj) is not dict:
        raise MalformedTrace(f"expected a JSON object, got {kind_of(obj)}")
    trace_id = _ident(obj.get("id"), "id")
    messages = obj.get("messages")
    if messages is None:
        raise MalformedTrace("missing field 'messages'")
    if type(messages) is not list:
        raise MalformedTrace(f"'messages' must be an array, got {kind_of(messages)}")
    calls = tool_calls_from_messages(messages)
    extra = {k: v for k, v in obj.items() if k not in KNOWN_KEYS}
    return [
        Trace(
            id=trace_id,
            task=parse_task(obj.get("task")),
            messages=messages,
            tool_calls=calls,
            outcome=parse_outcome(obj.get("outcome")),
            toolset_version=_opt_str(obj, "toolset_version"),
            split=split_of(obj),
            time=_opt_str(obj, "time"),
            source=ref,
            extra=extra,
        )
    ]


def index_record(obj: Any, file: str, line: int, offset: int) -> list[TraceSummary]:
    """The indexing fast path: `summarize(parse_record(...))` without building a `Trace`.

    Well-formed values are taken directly; anything else goes through the same
    validators as `parse_record`, so both raise the same `MalformedTrace`.
    """
    if type(obj) is not dict:
        raise MalformedTrace(f"expected a JSON object, got {kind_of(obj)}")
    trace_id = obj.get("id")
    if type(trace_id) is not str:
        trace_id = _ident(trace_id, "id")
    messages = obj.get("messages")
    if type(messages) is not list:
        if messages is None:
            raise MalformedTrace("missing field 'messages'")
        raise MalformedTrace(f"'messages' must be an array, got {kind_of(messages)}")
    tool_names, errors = call_digests(messages)
    task = obj.get("task")
    if task is None:
        task_id, has_expected = None, False
    elif type(task) is dict and type(task.get("id")) is str and type(task.get("input", "")) is str:
        task_id, has_expected = intern(task["id"]), task.get("expected") is not None
    else:
        parsed = parse_task(task)
        task_id = parsed.id if parsed else None
        has_expected = parsed is not None and parsed.expected is not None
    outcome = obj.get("outcome")
    score = passed = None
    if outcome is not None:
        if type(outcome) is dict:
            score, passed = outcome.get("score"), outcome.get("passed")
        if not (
            type(outcome) is dict
            and (score is None or (type(score) is float and 0.0 <= score <= 1.0))
            and (passed is None or type(passed) is bool)
        ):
            checked = parse_outcome(outcome)
            score, passed = checked.score, checked.passed
    version, split, time = obj.get("toolset_version"), obj.get("split"), obj.get("time")
    if not (
        (version is None or type(version) is str)
        and (split is None or type(split) is str)
        and (time is None or type(time) is str)
    ):
        for key in ("toolset_version", "split"):
            _opt_str(obj, key)
    if split is None and type(task) is dict and "split" in task:
        split = split_of(obj)
    # `time` after the task's split, in `parse_record`'s order: a line with several
    # faults reports the same one on both paths.
    if time is not None and type(time) is not str:
        _opt_str(obj, "time")
    return [
        TraceSummary(
            trace_id,
            file,
            line,
            offset,
            0,
            task_id,
            has_expected,
            score,
            passed,
            intern(version) if version else None,
            intern(split) if split else None,
            time,
            tuple(tool_names),
            error_digests(errors) if errors else (),
        )
    ]


def sniff(path: Path, head: bytes) -> bool:
    """A JSON Lines file whose first line is an object (or cannot be judged yet)."""
    if not path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    first = first_record(head)
    return first is INCOMPLETE or first is None or isinstance(first, dict)


FORMAT = TraceFormat(
    name="native",
    description="funcforge native JSON Lines (design.md): one trace object per line",
    sniff=sniff,
    parse_record=parse_record,
    index_record=index_record,
    priority=90,  # the fallback for JSON Lines: more specific formats sniff first
)
