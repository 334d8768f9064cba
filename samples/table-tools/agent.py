#!/usr/bin/env python3
"""A deterministic scripted agent for TabMWP-like tasks, speaking funcforge's command agent protocol.

It stands in for an LLM agent so that the sample's traces are real executions
without a model: it reads one task as JSON on stdin, reaches the toolset through
the MCP server named by FUNCFORGE_MCP_COMMAND (tool code runs in funcforge's
sandbox, never in this process), picks a fixed plan
by matching the question's wording, calls the tools, and prints one trace in
funcforge's native format on stdout. It never computes an answer itself: the
answer is what the tools return, so a fixed tool changes the outcome and a
failing tool makes it give up.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

# --- runtime: tools over MCP, tool calls and the trace (the same in every sample agent) -------


class ToolFailed(Exception):
    """A tool call raised; the plan stops and the agent gives up on the task."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__(f"{name} failed ({error})")
        self.name = name
        self.error = error


class McpTools:
    """The toolset, reached through an MCP stdio server (never imported into this process).

    The server's command line is FUNCFORGE_MCP_COMMAND (a JSON list, set by
    `funcforge train` and generate_traces.py). This is a minimal MCP client in
    the standard library: initialize, tools/list, tools/call (JSON-RPC, one
    message per line).
    """

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )
        self._next = 0
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "funcforge-sample-agent", "version": "1"},
            },
        )
        self.notify("notifications/initialized")
        self.names = {tool["name"] for tool in self.request("tools/list", {})["tools"]}

    def notify(self, method: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._next += 1
        message = {"jsonrpc": "2.0", "id": self._next, "method": method, "params": params}
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            reply = json.loads(line)
            if reply.get("id") != self._next:
                continue  # a notification
            if "error" in reply:
                raise RuntimeError(f"MCP {method} failed: {reply['error'].get('message')}")
            return reply["result"]
        raise RuntimeError(f"the MCP server ended during {method}")

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[bool, Any, str]:
        """(ok, value, text): the JSON value when the server gives one, else the text."""
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        text = "".join(c.get("text", "") for c in result.get("content", []))
        structured = result.get("structuredContent")
        if isinstance(structured, dict) and "result" in structured:
            return not result.get("isError"), structured["result"], text
        return not result.get("isError"), text, text

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def mcp_command() -> list[str]:
    """FUNCFORGE_MCP_COMMAND, the MCP server serving the toolset."""
    raw = os.environ.get("FUNCFORGE_MCP_COMMAND")
    if not raw:
        raise SystemExit(
            "agent: FUNCFORGE_MCP_COMMAND is not set; run me through `funcforge train` or "
            "generate_traces.py (they serve the tools over MCP)"
        )
    command = json.loads(raw)
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise SystemExit("agent: FUNCFORGE_MCP_COMMAND must be a JSON list of strings")
    return command


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

    def __init__(self, task: dict[str, Any], tools: McpTools, system: str) -> None:
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
        if name not in self.tools.names:
            ok, value, text = (
                False,
                None,
                f"Error: NameError: no tool named {name!r} in the toolset",
            )
        else:
            ok, value, text = self.tools.call(name, json.loads(raw))
        if not ok:
            self.messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": text, "is_error": True}
            )
            raise ToolFailed(name, text.removeprefix("Error: "))
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
    tools = McpTools(mcp_command())
    try:
        session = Session(task, tools, system)
        try:
            answer = plan(session, str(task["input"]))
        except ToolFailed as failed:
            content = f"I could not compute it: {failed.name} failed ({failed.error})."
        else:
            content = phrase(answer) if answer is not None else "I don't know how to solve this."
    finally:
        tools.close()
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
