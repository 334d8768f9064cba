"""The paper's actions as tool calls: their schemas, parsing a reply, validation.

The optimizer asks for one action per request. A reply is either exactly one
tool call (`add_function`, `revise_function`, `remove_function`) or the text
`TERMINATE`; anything else is an `ActionError` whose message is fed back to the
model on the next trial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from funcforge.fsutil import clean_json, json_depth
from funcforge.toolset.action import ACTION_KINDS, Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.schema import schema_problems
from funcforge.toolset.spec import FunctionSpec

MAX_CODE_CHARS = 40_000
MAX_REPLY_CHARS = 100_000

_FUNCTION_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "description": "The function's name (a Python identifier)."},
    "description": {"type": "string", "description": "One-line description of the function."},
    "arguments": {
        "type": "object",
        "description": (
            'JSON Schema of the parameters: {"type": "object", "properties": {...}, '
            '"required": [...]}. Supported types: string, integer, number, boolean, '
            "array, object, enum."
        ),
    },
    "packages": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Third-party packages the code imports (empty for the standard library).",
    },
    "code": {
        "type": "string",
        "description": "The complete Python source of the function (imports it needs first).",
    },
    "rationale": {
        "type": "string",
        "description": "Why this change helps, citing the failing calls it addresses.",
    },
}


def _tool(name: str, description: str, props: list[str], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {p: _FUNCTION_FIELDS[p] for p in props},
                "required": required,
            },
        },
    }


ACTION_TOOLS: list[dict[str, Any]] = [
    _tool(
        "add_function",
        "Add a new function to the agent's function list.",
        ["name", "description", "arguments", "packages", "code", "rationale"],
        ["name", "description", "arguments", "code"],
    ),
    _tool(
        "revise_function",
        "Revise an existing function: replace its code, description and arguments.",
        ["name", "description", "arguments", "packages", "code", "rationale"],
        ["name", "description", "arguments", "code"],
    ),
    _tool(
        "remove_function",
        "Remove a function from the agent's function list.",
        ["name", "rationale"],
        ["name"],
    ),
]


class ActionError(Exception):
    """A reply that is not a valid action; the message is fed back to the model."""


@dataclass
class Terminate:
    """The model answered TERMINATE: no more actions this step."""

    text: str = ""


@dataclass
class ParsedAction:
    action: Action
    rationale: str
    # Problems worth a reviewer's eye that do not make the action invalid
    # (bidi controls or zero-width characters in the code, a normalised schema).
    warnings: list[str] = field(default_factory=list)


MAX_DEPTH = 32  # nesting of a tool call's arguments (and the schema inside them)

_PROPERTY_KEYS = frozenset(
    {"type", "description", "enum", "items", "anyOf", "oneOf", "allOf", "$ref", "default", "const"}
)


def _too_deep(what: str) -> ActionError:
    return ActionError(
        f"{what} is nested more than {MAX_DEPTH} levels deep; send a plain JSON Schema "
        '({"type": "object", "properties": {...}, "required": [...]})'
    )


def _is_property(value: Any) -> bool:
    """Whether `value` reads as one parameter's schema (a `type`, if any, is a name or a list)."""
    if not isinstance(value, dict) or not set(value) & _PROPERTY_KEYS:
        return False
    return "type" not in value or isinstance(value["type"], (str, list))


def is_properties_only(value: dict[str, Any]) -> bool:
    """Whether a schema is AG2's properties-only form: `{"x": {"type": "number"}}`.

    Every value is a parameter's schema; so a parameter may be named `type` or
    `properties` (a whole schema's `type` is a string, its `properties` holds no `type` name).
    """
    return bool(value) and all(_is_property(v) for v in value.values())


def _as_schema(value: Any) -> tuple[dict[str, Any], bool]:
    """The `arguments` schema, and whether it came in AG2's properties-only form."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ActionError(f"`arguments` is not valid JSON: {exc}") from exc
        except RecursionError:
            raise _too_deep("`arguments`") from None
        value = clean_json(value)
    if not isinstance(value, dict):
        raise ActionError("`arguments` must be a JSON Schema object")
    if json_depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise _too_deep("`arguments`")
    if is_properties_only(value):
        # The paper's own AG2 code writes the properties alone: read them as what they are.
        return {"type": "object", "properties": value}, True
    if "properties" in value and "type" not in value:
        return {"type": "object", **value}, False
    return value, False


def _required_from_code(code: str, name: str) -> list[str]:
    """The parameters without defaults of function `name` in `code` (empty if it does not parse)."""
    try:
        defined = extract_functions(code, f"<{name}>")
    except Exception:  # validate() reports the syntax error with its position
        return []
    for spec in defined:
        if spec.name == name:
            return list(spec.parameters.get("required") or [])
    return []


# Characters that make code read differently from how it runs (Trojan Source,
# CVE-2021-42574) or hide text: bidirectional controls and zero-width characters.
SUSPICIOUS_CHARACTERS: dict[str, str] = {
    "\u061c": "ARABIC LETTER MARK",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
    "\u200b": "ZERO WIDTH SPACE",
    "\u200c": "ZERO WIDTH NON-JOINER",
    "\u200d": "ZERO WIDTH JOINER",
    "\u2060": "WORD JOINER",
    "\u2061": "FUNCTION APPLICATION",
    "\u2062": "INVISIBLE TIMES",
    "\u2063": "INVISIBLE SEPARATOR",
    "\u2064": "INVISIBLE PLUS",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE",
    "\u00ad": "SOFT HYPHEN",
    "\u180e": "MONGOLIAN VOWEL SEPARATOR",
}


def suspicious_unicode(code: str, limit: int = 20) -> list[str]:
    """Where `code` holds bidi controls or invisible characters: "line 3, column 9: U+202E ..."."""
    found: list[str] = []
    for number, line in enumerate(code.splitlines(), start=1):
        for column, char in enumerate(line, start=1):
            name = SUSPICIOUS_CHARACTERS.get(char)
            if name is not None:
                found.append(f"line {number}, column {column}: U+{ord(char):04X} {name}")
                if len(found) >= limit:
                    return found
    return found


def _as_packages(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p for p in value.replace(",", " ").split() if p]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return list(value)
    raise ActionError("`packages` must be a list of package names")


def parse_reply(message: dict[str, Any]) -> ParsedAction | Terminate:
    """Turn one assistant message into an action or TERMINATE, or raise ActionError."""
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content)
    calls = message.get("tool_calls") or []
    if len(content) + sum(len(json.dumps(c)) for c in calls) > MAX_REPLY_CHARS:
        raise ActionError(
            f"the reply is too long (over {MAX_REPLY_CHARS} characters); send one concise action"
        )
    if not calls:
        if content.strip().rstrip(".").upper().endswith("TERMINATE"):
            return Terminate(content)
        if not content.strip():
            raise ActionError(
                "the reply was empty; call one of add_function, revise_function, "
                "remove_function, or reply TERMINATE"
            )
        raise ActionError(
            "the reply has no tool call and is not TERMINATE; call exactly one of "
            "add_function, revise_function, remove_function, or reply TERMINATE"
        )
    if len(calls) > 1:
        raise ActionError(
            f"the reply has {len(calls)} tool calls; send exactly one action per reply"
        )
    fn = calls[0].get("function") or {}
    kind = fn.get("name")
    if not kind:
        raise ActionError(
            "the tool call has no function name; call add_function, revise_function or "
            "remove_function by name"
        )
    if kind not in ACTION_KINDS:
        raise ActionError(
            f"unknown action `{kind}`; use add_function, revise_function or remove_function"
        )
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ActionError(f"the arguments of {kind} are not valid JSON: {exc}") from exc
    except RecursionError:
        raise _too_deep(f"the arguments of {kind}") from None
    if not isinstance(args, dict):
        raise ActionError(f"the arguments of {kind} must be a JSON object")
    if json_depth(args, MAX_DEPTH + 1) > MAX_DEPTH + 1:  # one level for the call's own object
        raise _too_deep(f"the arguments of {kind}")
    args = clean_json(args)  # JSON escapes may decode to lone surrogates
    name = args.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ActionError(f"{kind} needs `name`, a Python identifier; got {name!r}")
    rationale = args.get("rationale") or content
    if kind == "remove_function":
        return ParsedAction(Action(kind="remove_function", name=name), str(rationale).strip())
    code = args.get("code")
    if not isinstance(code, str) or not code.strip():
        raise ActionError(f"{kind} `{name}` needs `code`, the function's full source")
    if len(code) > MAX_CODE_CHARS:
        raise ActionError(f"the code of `{name}` is over {MAX_CODE_CHARS} characters")
    schema, properties_only = _as_schema(args.get("arguments", {}))
    warnings = [f"`{name}` code: {where}" for where in suspicious_unicode(code)]
    if properties_only:
        required = _required_from_code(code, name)
        if required:
            schema["required"] = required
        warnings.append(
            f"`{name}`: `arguments` held the properties alone (AG2's form); read as an object "
            "schema" + (f" with required {required}" if required else "")
        )
    action = Action(
        kind=kind,  # type: ignore[arg-type]
        name=name,
        description=str(args.get("description") or ""),
        arguments=schema,
        packages=_as_packages(args.get("packages")),
        code=code,
    )
    return ParsedAction(action, str(rationale).strip(), warnings)


def validate(action: Action, functions: dict[str, FunctionSpec]) -> list[str]:
    """Problems with `action` against the incumbent function list (empty when valid)."""
    problems: list[str] = []
    exists = action.name in functions
    if action.kind == "add_function" and exists:
        problems.append(f"`{action.name}` already exists; use revise_function to change it")
    if action.kind in ("revise_function", "remove_function") and not exists:
        known = ", ".join(sorted(functions)) or "none"
        problems.append(f"`{action.name}` does not exist (functions: {known})")
    if action.kind == "remove_function":
        return problems
    problems.extend(schema_problems(action.arguments))
    try:
        defined = extract_functions(action.code, f"<{action.name}>")
    except Exception as exc:  # ToolsetSyntaxError carries line and column
        problems.append(f"the code does not parse: {exc}")
        return problems
    names = [f.name for f in defined]
    if names != [action.name]:
        problems.append(
            f"the code must define exactly one top-level function `{action.name}`; "
            f"it defines {', '.join(names) or 'none'}"
        )
        return problems
    code_params = set((defined[0].parameters.get("properties") or {}).keys())
    schema_params = set((action.arguments.get("properties") or {}).keys())
    if action.arguments and code_params != schema_params:
        problems.append(
            "`arguments` does not match the code's parameters: "
            f"schema has {sorted(schema_params)}, code has {sorted(code_params)}"
        )
    required = set(action.arguments.get("required") or [])
    code_required = set(defined[0].parameters.get("required") or [])
    if action.arguments and not required <= code_params:
        problems.append(f"`required` names unknown parameters: {sorted(required - code_params)}")
    if action.arguments and code_required - required:
        problems.append(
            f"parameters without defaults must be in `required`: {sorted(code_required - required)}"
        )
    return problems
