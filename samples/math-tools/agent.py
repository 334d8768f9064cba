#!/usr/bin/env python3
"""A deterministic scripted agent for MATH-like tasks, speaking funcforge's command agent protocol.

It stands in for an LLM agent so that the sample's traces are real executions
without a model: it reads one task as JSON on stdin, reaches the toolset through
the MCP server named by FUNCFORGE_MCP_COMMAND (tool code runs in funcforge's
sandbox, never in this process), picks a fixed plan
by matching the task's wording, calls the tools, and prints one trace in
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
    "You solve math problems. Use the tools for every calculation and give the final "
    "answer in \\boxed{}."
)

UNITS = {
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "kilometer": "km",
    "inch": "inch",
    "inche": "inch",
    "foot": "ft",
    "feet": "ft",
    "yard": "yard",
    "mile": "mile",
    "gram": "g",
    "kilogram": "kg",
    "pound": "lb",
    "ounce": "oz",
}
ROUNDING = {"whole number": 0, "tenth": 1, "hundredth": 2, "thousandth": 3}

FRAC = r"(-?)\\frac\{(\d+)\}\{(\d+)\}"
TERM = rf"(?:{FRAC}|(\d+))"
RE_FRACTION_SUM = re.compile(rf"^What is \${TERM} ([+-]) {TERM}\$\?")
RE_SIMPLIFY = re.compile(rf"^(?:Simplify|Reduce) \${FRAC}\$")
RE_PERCENT = re.compile(r"^What is \$([\d.]+)\\%\$ of \$([\d.]+)\$\?")
RE_LINEAR = re.compile(r"^Solve for \$x\$: \$(.+)\$\.$")
RE_CONVERT = re.compile(r"^Convert ([\d.]+) ([a-z]+) to ([a-z]+)\.")
RE_LCM = re.compile(r"^What is the least common multiple of (.+)\?$")
RE_ARITHMETIC = re.compile(r"^(?:Compute|Evaluate|What is) \$(.+)\$[.?]")
RE_ROUND = re.compile(r"Round your answer to the nearest (whole number|tenth|hundredth|thousandth)")


def fraction_text(match: re.Match[str], start: int) -> str:
    """The TERM at group `start` (sign, numerator, denominator, integer) as "n/d" or "n"."""
    sign, num, den, whole = match.group(start, start + 1, start + 2, start + 3)
    return f"{sign}{num}/{den}" if num is not None else whole


def python_expression(latex: str) -> str:
    """Translate the problem's LaTeX into the tool's expression syntax (operators as written)."""
    text = latex.replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    text = text.replace("{", "(").replace("}", ")")
    return re.sub(r"\s+", " ", text).strip()


def unit_symbol(word: str) -> str:
    """'miles' -> 'mile', 'feet' -> 'ft': the unit names the tool documents."""
    singular = word[:-1] if word.endswith("s") else word
    return UNITS.get(singular, UNITS.get(word, word))


def rounding(text: str) -> int | None:
    match = RE_ROUND.search(text)
    return ROUNDING[match.group(1)] if match else None


def formatted(session: Session, value: Any, text: str) -> str:
    """Format a computed value for the answer, rounded as the problem asks."""
    decimals = rounding(text)
    if decimals is None:
        return answer_text(session.call("format_number", value=value))
    return answer_text(session.call("format_number", value=value, decimals=decimals))


def plan(session: Session, text: str) -> str | None:
    """Pick a plan by the problem's wording and run it; the answer is the last tool result."""
    if m := RE_FRACTION_SUM.match(text):
        first, op, second = fraction_text(m, 1), m.group(5), fraction_text(m, 6)
        if op == "-":
            second = second[1:] if second.startswith("-") else f"-{second}"
        return answer_text(session.call("add_fractions", a=first, b=second))
    if m := RE_SIMPLIFY.match(text):
        fraction = f"{m.group(1)}{m.group(2)}/{m.group(3)}"
        return answer_text(session.call("simplify_fraction", fraction=fraction))
    if m := RE_PERCENT.match(text):
        value = session.call("evaluate_expression", expression=f"{m.group(1)}/100 * {m.group(2)}")
        return formatted(session, value, text)
    if m := RE_LINEAR.match(text):
        return answer_text(session.call("solve_linear", equation=m.group(1)))
    if m := RE_CONVERT.match(text):
        value = session.call(
            "convert_units",
            value=float(m.group(1)),
            from_unit=unit_symbol(m.group(2)),
            to_unit=unit_symbol(m.group(3)),
        )
        return formatted(session, value, text)
    if m := RE_LCM.match(text):
        numbers_ = [int(n) for n in re.findall(r"\d+", m.group(1))]
        result: Any = numbers_[0]
        for n in numbers_[1:]:
            result = session.call("lcm", a=result, b=n)
        return answer_text(result)
    if m := RE_ARITHMETIC.match(text):
        value = session.call("evaluate_expression", expression=python_expression(m.group(1)))
        return formatted(session, value, text)
    return None


if __name__ == "__main__":
    sys.exit(run(plan, SYSTEM, lambda answer: f"The answer is $\\boxed{{{answer}}}$."))
