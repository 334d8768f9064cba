#!/usr/bin/env python3
"""A deterministic scripted agent for TabMWP-like tasks, speaking funcforge's command agent protocol.

It stands in for an LLM agent so that the sample's traces are real executions
without a model: it reads one task as JSON on stdin, loads the tool functions of
the toolset named by FUNCFORGE_TOOL_FILES / FUNCFORGE_TOOLSET, picks a fixed plan
by matching the question's wording, calls the tools, and prints one trace in
funcforge's native format on stdout. It never computes an answer itself: the
answer is what the tools return, so a fixed tool changes the outcome and a
failing tool makes it give up.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import numbers
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # loading tools must not leave __pycache__ in the toolset

# --- runtime: tools, tool calls and the trace (the same in every sample agent) ---------------

Tool = Callable[..., Any]


class ToolFailed(Exception):
    """A tool call raised; the plan stops and the agent gives up on the task."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__(f"{name} failed ({error})")
        self.name = name
        self.error = error


def tool_files() -> list[Path]:
    """The tool files: FUNCFORGE_TOOL_FILES, else <FUNCFORGE_TOOLSET>/tools/**/*.py."""
    listed = [p for p in os.environ.get("FUNCFORGE_TOOL_FILES", "").split(os.pathsep) if p]
    if listed:
        return [Path(p) for p in listed]
    root = Path(os.environ.get("FUNCFORGE_TOOLSET") or Path(__file__).resolve().parent)
    return sorted((root / "tools").glob("**/*.py"))


def load_tools(files: list[Path]) -> dict[str, Tool]:
    """Import each tool file by path (fresh, under a private name) and collect its functions."""
    tools: dict[str, Tool] = {}
    for index, path in enumerate(files):
        module_name = f"_sample_tools_{index}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            print(f"agent: cannot load {path}", file=sys.stderr)
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with contextlib.redirect_stdout(sys.stderr):
                spec.loader.exec_module(module)
        except Exception as exc:  # a broken tool file leaves its tools missing
            print(f"agent: {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        for name, value in vars(module).items():
            if (
                not name.startswith("_")
                and inspect.isfunction(value)
                and value.__module__ == module_name
            ):
                tools[name] = value
    return tools


def render_result(value: Any) -> str:
    """A tool message's content: a str as is, else JSON when possible, else repr."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def answer_text(value: Any) -> str:
    """The text of a tool result used as an answer (str() for numbers, e.g. Fraction(7, 8))."""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return str(value)
    return render_result(value)


class Session:
    """One run of the agent on one task: executes tool calls and records the chat."""

    def __init__(self, task: dict[str, Any], tools: dict[str, Tool], system: str) -> None:
        self.task = task
        self.tools = tools
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": task["input"]},
        ]
        self._calls = 0

    def call(self, name: str, **arguments: Any) -> Any:
        """Call a tool the way a model would: JSON arguments in, a tool message out."""
        self._calls += 1
        call_id = f"call_{self._calls}"
        raw = json.dumps(arguments, default=str)
        self.messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": raw},
                    }
                ],
            }
        )
        try:
            func = self.tools.get(name)
            if func is None:
                raise NameError(f"no tool named {name!r} in the toolset")
            with contextlib.redirect_stdout(sys.stderr):
                value = func(**json.loads(raw))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": f"Error: {error}",
                    "is_error": True,
                }
            )
            raise ToolFailed(name, error) from exc
        self.messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": render_result(value)}
        )
        return value

    def finish(self, content: str) -> dict[str, Any]:
        """Add the final assistant message and return the trace (outcome left to the caller)."""
        self.messages.append({"role": "assistant", "content": content})
        trace: dict[str, Any] = {
            "id": f"trace-{self.task['id']}",
            "task": self.task,
            "messages": self.messages,
        }
        if os.environ.get("FUNCFORGE_TOOLSET_VERSION"):
            trace["toolset_version"] = os.environ["FUNCFORGE_TOOLSET_VERSION"]
        if os.environ.get("FUNCFORGE_SPLIT"):
            trace["split"] = os.environ["FUNCFORGE_SPLIT"]
        return trace


Plan = Callable[[Session, str], "str | None"]


def run(plan: Plan, system: str, phrase: Callable[[str], str]) -> int:
    """The protocol: task JSON on stdin, one native trace JSON object on stdout."""
    try:
        task = json.loads(sys.stdin.read())
        if not isinstance(task, dict) or "id" not in task or "input" not in task:
            raise ValueError("expected an object with 'id' and 'input'")
    except ValueError as exc:
        print(f"agent: stdin is not a task: {exc}", file=sys.stderr)
        return 2
    task = {k: task[k] for k in ("id", "input", "expected") if k in task}
    session = Session(task, load_tools(tool_files()), system)
    try:
        answer = plan(session, str(task["input"]))
    except ToolFailed as failed:
        content = f"I could not compute it: {failed.name} failed ({failed.error})."
    else:
        content = phrase(answer) if answer is not None else "I don't know how to solve this."
    print(json.dumps(session.finish(content)))
    return 0


# --- the plans for this sample's tasks -------------------------------------------------------

SYSTEM = (
    "You answer questions about a table. Parse the table with parse_table, use the tools "
    "for every lookup and calculation, and reply with the answer only."
)

COMPARISONS = {
    "more than": ">",
    "at least": ">=",
    "fewer than": "<",
    "less than": "<",
    "at most": "<=",
    "exactly": "==",
}
CMP = "|".join(COMPARISONS)

Q_BUY = re.compile(r"^How much money does (?P<who>.+?) need to buy (?P<items>.+)\?$")
Q_COST_MORE = re.compile(r"^How much more does (?P<a>.+?) cost than (?P<b>.+)\?$")
Q_IS_MORE = re.compile(r"^How much more is the (?P<column>.+?) in (?P<a>.+?) than in (?P<b>.+)\?$")
Q_MORE = re.compile(r"^How many more (?P<what>.+?) did (?P<a>.+?) \w+ than (?P<b>.+)\?$")
Q_IN_ALL = re.compile(r"^How many (?P<what>.+?) in all\?$")
Q_TOTAL = re.compile(r"^What is the total (?P<column>.+)\?$")
Q_MEAN = re.compile(r"^What is the mean of the numbers\?$")
Q_AVERAGE = re.compile(r"^What is the average (?P<column>.+)\?$")
Q_COUNT = re.compile(
    rf"^For how many (?P<what>.+?) was the (?P<column>.+?) (?P<cmp>{CMP}) (?P<value>[\d,.]+)\?$"
)
Q_RATE = re.compile(
    r"^What was the rate of change in (?:the )?(?P<column>.+?) between (?P<a>.+?) and (?P<b>.+)\?$"
)
Q_CLUB = re.compile(r"^How many students attended the (?P<row>.+?) club on (?P<column>.+)\?$")
Q_IN_YEAR = re.compile(r"^What was the (?P<what>.+?) of (?P<row>.+?) in (?P<column>.+)\?$")
Q_HAVE = re.compile(r"^How many (?P<what>.+?) (?:does|did) (?P<row>.+?) \w+\?$")
Q_VALUE = re.compile(r"^What is the (?P<column>.+) (?:of|for|in) (?P<row>.+?)\?$")


def item(text: str) -> str:
    """'a pound of cherries' -> 'cherries': the row label an item phrase names."""
    return re.sub(r"^(?:a|an|one|the)\s+(?:pound of\s+)?", "", text.strip())


def split_task(text: str) -> tuple[str, str]:
    """The table (its pipe lines) and the question of a task."""
    table = "\n".join(line for line in text.splitlines() if line.strip().startswith("|"))
    question = text.rsplit("Question:", 1)[-1].strip()
    return table, question


def last_header(rows: Any) -> str | None:
    """The table's last column (the numbers in TabMWP tables), read from parse_table's result."""
    if isinstance(rows, list) and rows and isinstance(rows[0], dict) and rows[0]:
        return str(list(rows[0])[-1])
    return None


def plan(session: Session, text: str) -> str | None:
    """Parse the table, pick a plan by the question's wording, answer with the last result."""
    table, question = split_task(text)
    if not table:
        return None
    rows = session.call("parse_table", text=table)
    numbers_column = last_header(rows)
    if m := Q_BUY.match(question):
        labels = [item(part) for part in re.split(r",\s*|\s+and\s+", m["items"]) if part]
        result = session.call("sum_column", rows=rows, column=numbers_column, row_labels=labels)
    elif m := Q_COST_MORE.match(question):
        result = session.call(
            "difference",
            rows=rows,
            column=numbers_column,
            from_label=item(m["b"]),
            to_label=item(m["a"]),
        )
    elif m := Q_IS_MORE.match(question):
        result = session.call(
            "difference", rows=rows, column=m["column"], from_label=m["b"], to_label=m["a"]
        )
    elif m := Q_MORE.match(question):
        result = session.call(
            "difference", rows=rows, column=numbers_column, from_label=m["b"], to_label=m["a"]
        )
    elif m := Q_IN_ALL.match(question):
        result = session.call("sum_column", rows=rows, column=numbers_column)
    elif m := Q_TOTAL.match(question):
        result = session.call("sum_column", rows=rows, column=m["column"])
    elif m := Q_MEAN.match(question):
        result = session.call("column_mean", rows=rows, column=numbers_column)
    elif m := Q_AVERAGE.match(question):
        result = session.call("column_mean", rows=rows, column=m["column"])
    elif m := Q_COUNT.match(question):
        result = session.call(
            "count_rows_where",
            rows=rows,
            column=m["column"],
            op=COMPARISONS[m["cmp"]],
            value=float(m["value"].replace(",", "")),
        )
    elif m := Q_RATE.match(question):
        result = session.call(
            "difference", rows=rows, column=m["column"], from_label=m["a"], to_label=m["b"]
        )
    elif (m := Q_CLUB.match(question)) or (m := Q_IN_YEAR.match(question)):
        result = session.call("lookup_value", rows=rows, row_label=m["row"], column=m["column"])
    elif m := Q_HAVE.match(question):
        result = session.call("lookup_value", rows=rows, row_label=m["row"], column=numbers_column)
    elif m := Q_VALUE.match(question):
        result = session.call(
            "lookup_value", rows=rows, row_label=item(m["row"]), column=m["column"]
        )
    else:
        return None
    return answer_text(result)


if __name__ == "__main__":
    sys.exit(run(plan, SYSTEM, lambda answer: answer))
