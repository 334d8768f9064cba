"""What an agent framework's tool decorator says about a tool, read statically.

`@function_tool(description_override=...)` (openai-agents), `@tool("name",
description=..., args_schema=Model)` (langchain, CrewAI, Haystack),
`@mcp.tool(name=..., description=...)` (the MCP SDK), `@kernel_function(
description=...)` (Semantic Kernel), `@agent.register_for_llm(description=
...)` (AG2) and `@agent.tool(...)` (pydantic-ai) replace what the model is
told: the decorator's description wins over the docstring, and langchain's
`args_schema` model is the parameters object. A name given by the decorator
is reported as a hint: funcforge knows the tool by its function's name.

Registration calls at module level say the same for a function defined in
the file: AG2's `register_function(fn, ..., description=...)`, LlamaIndex's
`FunctionTool.from_defaults(fn=fn, description=...)`, langchain's
`StructuredTool.from_function(func=fn, description=...)` and `Tool(...)`,
Haystack's `create_tool_from_function(fn, description=...)`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst

from funcforge.toolset.types import code_of

# Last names of module-level calls that register a function as a tool.
REGISTRATIONS = {
    "register_function",  # AG2 / autogen 0.2
    "from_defaults",  # LlamaIndex FunctionTool
    "from_function",  # langchain StructuredTool / Tool
    "FunctionTool",  # LlamaIndex, google-adk
    "StructuredTool",
    "Tool",  # langchain, Haystack
    "create_tool_from_function",  # Haystack
}
_FUNCTION_KEYS = ("fn", "func", "function", "f")

# Last names of decorators that turn a function into a tool.
TOOL_DECORATORS = {
    "tool",  # langchain, CrewAI, Haystack, smolagents, MCP's `mcp.tool`, pydantic-ai's `agent.tool`
    "tool_plain",  # pydantic-ai
    "function_tool",  # openai-agents
    "kernel_function",  # Semantic Kernel
    "register_for_llm",  # AG2 / autogen 0.2
}
_NAME_KEYS = ("name", "name_override")
_DESCRIPTION_KEYS = ("description", "description_override")


@dataclass
class DecoratorInfo:
    """A tool decorator's literal arguments: name, description, langchain's `args_schema`."""

    decorator: str = ""
    name: str | None = None
    description: str | None = None
    args_schema: cst.BaseExpression | None = None
    hints: list[str] = field(default_factory=list)


def _last(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _text(node: cst.BaseExpression) -> str | None:
    if not isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        return None
    try:
        value = ast.literal_eval(code_of(node).strip())
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def tool_decorator(node: cst.FunctionDef) -> DecoratorInfo:
    """What the function's tool decorator (the outermost one that is a call) says."""
    info = DecoratorInfo()
    for dec in node.decorators:
        call = dec.decorator
        if not isinstance(call, cst.Call) or _last(call.func) not in TOOL_DECORATORS:
            continue
        info.decorator = code_of(call.func)
        for i, arg in enumerate(call.args):
            key = arg.keyword.value if arg.keyword is not None else None
            if key is None and i == 0 and not arg.star:
                key = "name"  # `@tool("search")`: langchain's and CrewAI's name
            if key in _NAME_KEYS:
                info.name = _text(arg.value) if info.name is None else info.name
            elif key in _DESCRIPTION_KEYS:
                text = _text(arg.value)
                if text is not None and text.strip():
                    info.description = text.strip()
                elif text is None:
                    info.hints.append(
                        f"@{info.decorator}: its {key} is not a literal string; funcforge "
                        "shows the docstring instead, which may not be what the model sees"
                    )
            elif key == "args_schema":
                info.args_schema = arg.value
        break
    return info


# Base classes of class-based tools (CrewAI, langchain): funcforge reads functions only.
TOOL_CLASS_BASES = {"BaseTool", "StructuredTool"}


def tool_classes(text: str) -> list[tuple[int, int, str]]:
    """(line, column, name) of each top-level class-based tool (`class Search(BaseTool)`)."""
    if not any(base in text for base in TOOL_CLASS_BASES):
        return []
    try:
        tree = ast.parse(text.lstrip("\ufeff"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out: list[tuple[int, int, str]] = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.ClassDef):
            continue
        for base in stmt.bases:
            target = base.value if isinstance(base, ast.Subscript) else base
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if name in TOOL_CLASS_BASES:
                out.append((stmt.lineno, stmt.col_offset, stmt.name))
                break
    return out


def registrations(tree: ast.Module) -> dict[str, DecoratorInfo]:
    """Function name -> what a module-level registration call says about it (literals only)."""
    out: dict[str, DecoratorInfo] = {}
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
        if not isinstance(value, ast.Call):
            continue
        func = value.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if called not in REGISTRATIONS:
            continue
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        target = next((keywords[k] for k in _FUNCTION_KEYS if k in keywords), None)
        if target is None and value.args and called != "Tool":
            target = value.args[0]
        if not isinstance(target, ast.Name):
            continue
        info = DecoratorInfo(decorator=ast.unparse(func))
        for key, node in keywords.items():
            text = node.value if isinstance(node, ast.Constant) else None
            if key in _NAME_KEYS and isinstance(text, str):
                info.name = text
            elif key in _DESCRIPTION_KEYS:
                if isinstance(text, str) and text.strip():
                    info.description = text.strip()
                elif not isinstance(text, str):
                    info.hints.append(
                        f"{info.decorator}(...) at line {stmt.lineno}: its {key} is not a literal "
                        "string; funcforge shows the docstring instead, which may not be what "
                        "the model sees"
                    )
        out.setdefault(target.id, info)
    return out
