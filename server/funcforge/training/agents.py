"""Agents that run tasks and produce traces: function-calling, ReAct, or a command.

Every agent returns a native-format `Trace`; a failure of the agent itself
(a crash, a hang, output that is not a trace, a model error) becomes a failed
trace with the reason in `extra["agent_error"]`, so training goes on.
Tool functions always run in the sandbox, never in this process.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from funcforge.optimizer.llm import ChatClient
from funcforge.sandbox import SandboxPool
from funcforge.toolset.spec import FunctionSpec
from funcforge.traces.formats.chat import tool_calls_from_messages
from funcforge.traces.model import Outcome, Task, Trace
from funcforge.training.mcp_host import McpHost


@dataclass
class TaskSpec:
    """One task of a task file."""

    id: str
    input: str
    expected: str | None = None
    split: str | None = None
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "input": self.input}
        if self.expected is not None:
            out["expected"] = self.expected
        return out


@dataclass
class Toolbox:
    """The toolset an agent runs with: its folder, files, specs and version."""

    root: Path  # the workspace folder holding the tool files
    files: dict[str, str]  # rel path -> source text
    specs: list[FunctionSpec]
    version: str


class Agent(Protocol):
    def run(self, task: TaskSpec, toolbox: Toolbox, split: str) -> Trace: ...


def failed_trace(
    task: TaskSpec, reason: str, messages: list[dict[str, Any]] | None = None
) -> Trace:
    """A trace for a task the agent could not complete, with the reason kept."""
    msgs = messages or [{"role": "user", "content": task.input}]
    return Trace(
        id=f"run-{uuid.uuid4().hex[:10]}",
        task=Task(task.id, task.input, task.expected),
        messages=msgs,
        tool_calls=tool_calls_from_messages(msgs),
        outcome=Outcome(score=0.0, passed=False),
        extra={"agent_error": reason},
    )


def trace_from_messages(task: TaskSpec, messages: list[dict[str, Any]]) -> Trace:
    return Trace(
        id=f"run-{uuid.uuid4().hex[:10]}",
        task=Task(task.id, task.input, task.expected),
        messages=messages,
        tool_calls=tool_calls_from_messages(messages),
    )


# -- the user's own agent as a program ------------------------------------------------


class CommandAgent:
    """Runs `command` once per task: task JSON on stdin, one native trace on stdout.

    With `mcp` (the trainer's `McpHost`), the command gets
    `FUNCFORGE_MCP_COMMAND`: the JSON list of an MCP stdio server serving the
    task's toolset, through which it calls the tools (in the sandbox).
    """

    def __init__(
        self, command: str, cwd: Path, timeout: float = 60.0, mcp: McpHost | None = None
    ) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("the agent command is empty")
        self.cwd, self.timeout, self.mcp = cwd, timeout, mcp

    def close(self) -> None:
        if self.mcp is not None:
            self.mcp.close()

    def run(self, task: TaskSpec, toolbox: Toolbox, split: str) -> Trace:
        env = dict(os.environ)
        if self.mcp is not None:
            env["FUNCFORGE_MCP_COMMAND"] = json.dumps(self.mcp.command(toolbox))
        env.update(
            FUNCFORGE_TOOLSET=str(toolbox.root),
            FUNCFORGE_TOOL_FILES=os.pathsep.join(
                str(toolbox.root / f) for f in sorted(toolbox.files)
            ),
            FUNCFORGE_TOOLSET_VERSION=toolbox.version,
            FUNCFORGE_SPLIT=split,
        )
        try:
            proc = subprocess.run(
                self.argv,
                input=json.dumps(task.to_json()),
                capture_output=True,
                text=True,
                cwd=self.cwd,
                env=env,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            return failed_trace(task, f"agent command timed out after {self.timeout:g} s")
        except OSError as exc:
            return failed_trace(task, f"agent command could not start: {exc}")
        if proc.returncode != 0:
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            return failed_trace(
                task, f"agent command exited with {proc.returncode}: {' | '.join(tail)}"
            )
        return parse_agent_output(task, proc.stdout)


def parse_agent_output(task: TaskSpec, stdout: str) -> Trace:
    """The one native trace an agent printed, or a failed trace saying what was wrong."""
    from funcforge.traces.formats.native import parse_record
    from funcforge.traces.model import SourceRef

    text = stdout.strip()
    if not text:
        return failed_trace(task, "agent printed nothing (expected one JSON trace)")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        try:
            obj = json.loads(lines[-1])
        except (json.JSONDecodeError, IndexError) as exc:
            return failed_trace(task, f"agent output is not a JSON trace: {exc}: {text[:120]!r}")
    if not isinstance(obj, dict) or "messages" not in obj:
        return failed_trace(task, "agent output is not a trace (no `messages`)")
    obj.setdefault("id", f"run-{uuid.uuid4().hex[:10]}")
    obj.setdefault("task", task.to_json())
    try:
        traces = parse_record(obj, SourceRef("<agent>", 1))
    except Exception as exc:  # MalformedTrace and friends
        return failed_trace(task, f"agent output is not a valid trace: {exc}")
    if not traces:
        return failed_trace(task, "agent output held no trace")
    return traces[0]


# -- model-driven agents -----------------------------------------------------------------

FC_SYSTEM = (
    "You solve the user's task. Use the provided functions to compute; do not compute "
    "by yourself. When you have the answer, reply with the final answer only."
)


class _ModelAgent:
    """An agent driven by a model: its client, a sandbox pool per task, a turn limit."""

    def __init__(
        self,
        client: ChatClient,
        make_pool: Callable[[Toolbox], SandboxPool],
        turn_limit: int = 8,
    ) -> None:
        self.client, self.make_pool, self.turn_limit = client, make_pool, turn_limit


class FunctionCallingAgent(_ModelAgent):
    """The OpenAI tools API with the toolset's schemas; tool calls run in the sandbox."""

    def run(self, task: TaskSpec, toolbox: Toolbox, split: str) -> Trace:
        tools = [s.to_openai_tool() for s in toolbox.specs]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": FC_SYSTEM},
            {"role": "user", "content": task.input},
        ]
        with self.make_pool(toolbox) as pool:
            for _ in range(self.turn_limit):
                reply = self.client.complete(messages, tools or None)  # LLMError stops training
                message = dict(reply.message)
                message.setdefault("role", "assistant")
                messages.append(message)
                calls = message.get("tool_calls") or []
                if not calls:
                    return trace_from_messages(task, messages)
                for call in calls:
                    messages.append(_run_tool_call(pool, call))
        messages.append({"role": "assistant", "content": ""})
        trace = trace_from_messages(task, messages)
        trace.extra["agent_error"] = f"turn limit ({self.turn_limit}) reached"
        return trace


def _run_tool_call(pool: SandboxPool, call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    name, raw = fn.get("name", ""), fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except (json.JSONDecodeError, ValueError) as exc:
        content, is_error = f"Error: ValueError: invalid arguments: {exc}", True
    else:
        result = pool.call(name, args)
        content, is_error = result.tool_content(), not result.ok
    msg: dict[str, Any] = {"role": "tool", "tool_call_id": call.get("id", ""), "content": content}
    if is_error:
        msg["is_error"] = True
    return msg


REACT_SYSTEM = """\
Solve the task with the tools below. Use this format:

Thought: what to do next
Action: the tool name, one of [{names}]
Action Input: the arguments as a JSON object
Observation: (the tool's result, given to you)
... (repeat Thought/Action/Action Input/Observation as needed)
Thought: I know the final answer
Final Answer: the answer only

Tools:
{tools}"""

_ACTION = re.compile(r"^\s*Action\s*\d*\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_INPUT = re.compile(r"^\s*Action\s*\d*\s*Input\s*\d*\s*:\s*", re.IGNORECASE | re.MULTILINE)
_FINAL = re.compile(r"^\s*Final\s*Answer\s*:\s*(.*)", re.IGNORECASE | re.MULTILINE | re.DOTALL)


def parse_react(text: str) -> tuple[str, dict[str, Any] | str] | str | None:
    """(tool, args) for an action, the final answer string, or None when neither parses.

    Tolerant: code fences, single-quoted dicts, trailing text after the input,
    tool names in backticks or with parentheses.
    """
    action = _ACTION.search(text)
    final = _FINAL.search(text)
    if final and (not action or final.start() < action.start()):
        return final.group(1).strip().split("\nObservation")[0].strip()
    if not action:
        return None
    name = action.group(1).strip().strip("`").split("(")[0].strip()
    inp = _INPUT.search(text, action.end() - len(action.group(0)))
    raw = text[inp.end() :] if inp else ""
    raw = raw.split("\nObservation")[0].strip().strip("`")
    if raw.lower().startswith("json"):
        raw = raw[4:].strip()
    start = raw.find("{")
    if start >= 0:
        depth = 0
        for i in range(start, len(raw)):
            depth += raw[i] == "{"
            depth -= raw[i] == "}"
            if depth == 0:
                raw = raw[start : i + 1]
                break
    for loader in (json.loads, ast.literal_eval):
        try:
            value = loader(raw)
            if isinstance(value, dict):
                return name, value
        except (ValueError, SyntaxError):
            continue
    return name, raw


class ReActAgent(_ModelAgent):
    """A text loop (Thought / Action / Action Input / Observation) parsed from replies."""

    def run(self, task: TaskSpec, toolbox: Toolbox, split: str) -> Trace:
        tools_text = "\n".join(
            f"- {s.name}: {s.description} Parameters: {json.dumps(s.parameters)}"
            for s in toolbox.specs
        )
        system = REACT_SYSTEM.format(
            names=", ".join(s.name for s in toolbox.specs), tools=tools_text
        )
        convo: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": task.input},
        ]
        record: list[dict[str, Any]] = [{"role": "user", "content": task.input}]
        with self.make_pool(toolbox) as pool:
            for turn in range(self.turn_limit):
                reply = self.client.complete(convo)  # LLMError stops training
                text = reply.content or ""
                convo.append({"role": "assistant", "content": text})
                parsed = parse_react(text)
                if isinstance(parsed, str):
                    record.append({"role": "assistant", "content": parsed})
                    return trace_from_messages(task, record)
                if parsed is None:
                    note = (
                        "Observation: could not parse an Action or a Final Answer; use the format."
                    )
                    convo.append({"role": "user", "content": note})
                    continue
                name, args = parsed
                call_id = f"react-{turn}"
                call = {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(args) if isinstance(args, dict) else str(args),
                    },
                }
                record.append({"role": "assistant", "content": text, "tool_calls": [call]})
                result = _run_tool_call(pool, call)
                record.append(result)
                convo.append({"role": "user", "content": f"Observation: {result['content']}"})
        trace = trace_from_messages(task, record)
        trace.extra["agent_error"] = f"turn limit ({self.turn_limit}) reached"
        return trace
