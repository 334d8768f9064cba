"""JSON Schema for tool parameters: from annotations, from docstrings, and checks.

Annotations are read from the syntax tree, never evaluated: tool files are
not imported into the funcforge process. A type funcforge does not know
becomes an unconstrained schema (`{}`), which every JSON value satisfies.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")

_SCALARS = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
}
_ARRAYS = {
    "list",
    "List",
    "Sequence",
    "MutableSequence",
    "Iterable",
    "Collection",
    "tuple",
    "Tuple",
    "set",
    "Set",
    "frozenset",
    "FrozenSet",
    "AbstractSet",
    "MutableSet",
}
_SETS = {"set", "Set", "frozenset", "FrozenSet", "AbstractSet", "MutableSet"}
_OBJECTS = {"dict", "Dict", "Mapping", "MutableMapping", "OrderedDict", "defaultdict"}
_ANY = {"Any", "object"}
_NONE = {"None", "NoneType"}

_EMPTY_MODULE = cst.Module(body=[])


def _code(node: cst.CSTNode) -> str:
    return _EMPTY_MODULE.code_for_node(node)


def _last_name(node: cst.BaseExpression) -> str | None:
    """`Optional` for `Optional`, `typing.Optional` and `t.Optional`."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _literal(node: cst.CSTNode) -> tuple[bool, Any]:
    """The JSON value of a literal expression, as (ok, value)."""
    try:
        value = ast.literal_eval(_code(node).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, value


def literal_value(node: cst.BaseExpression) -> tuple[bool, Any]:
    """(True, value) when `node` is a literal with a JSON value (for defaults)."""
    return _literal(node)


def _subscript_args(node: cst.Subscript) -> list[cst.BaseExpression]:
    out: list[cst.BaseExpression] = []
    for element in node.slice:
        if isinstance(element.slice, cst.Index):
            out.append(element.slice.value)
    return out


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` that also admits null (Optional[T], T | None)."""
    if not schema:
        return {}
    kind = schema.get("type")
    if "anyOf" not in schema and isinstance(kind, (str, list)):
        out = dict(schema)
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if "null" not in kinds:
            kinds.append("null")
        out["type"] = kinds
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [schema, {"type": "null"}]}


def union_schema(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The schema of a union: one schema, a list of plain types, or `anyOf`."""
    has_null = any(m == {"type": "null"} for m in members)
    rest: list[dict[str, Any]] = []
    for m in members:
        if m == {"type": "null"} or m in rest:
            continue
        if not m:
            return {}  # Any absorbs everything
        rest.append(m)
    if not rest:
        return {"type": "null"}
    if len(rest) == 1:
        out = rest[0]
    elif all(set(m) == {"type"} and isinstance(m["type"], str) for m in rest):
        out = {"type": [m["type"] for m in rest]}
    else:
        out = {"anyOf": rest}
    return nullable(out) if has_null else out


def _union_members(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


def annotation_schema(node: cst.BaseExpression | None) -> dict[str, Any]:
    """JSON Schema of an annotation expression (`{}` when missing or unknown)."""
    if node is None:
        return {}
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return union_schema([annotation_schema(m) for m in _union_members(node)])
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        ok, text = _literal(node)  # a string annotation: "list[int]"
        if not ok or not isinstance(text, str):
            return {}
        try:
            return annotation_schema(cst.parse_expression(text.strip()))
        except (cst.ParserSyntaxError, RecursionError):
            return {}
    name = _last_name(node)
    if name is not None:
        if name in _SCALARS:
            return {"type": _SCALARS[name]}
        if name in _NONE:
            return {"type": "null"}
        if name in _ARRAYS:
            return {"type": "array", **({"uniqueItems": True} if name in _SETS else {})}
        if name in _OBJECTS:
            return {"type": "object"}
        return {}
    if isinstance(node, cst.Subscript):
        return _generic_schema(node)
    return {}


def _generic_schema(node: cst.Subscript) -> dict[str, Any]:
    name = _last_name(node.value)
    args = _subscript_args(node)
    if name is None or not args:
        return {}
    if name == "Optional":
        return nullable(annotation_schema(args[0]))
    if name == "Union":
        return union_schema([annotation_schema(a) for a in args])
    if name == "Literal":
        return _literal_schema(args)
    schema: dict[str, Any]
    if name == "Annotated":
        schema = dict(annotation_schema(args[0]))
        for meta in args[1:]:
            ok, value = _literal(meta)
            if ok and isinstance(value, str) and value.strip():
                schema["description"] = value.strip()
                break
        return schema
    if name in _ARRAYS:
        schema = {"type": "array"}
        if name in _SETS:
            schema["uniqueItems"] = True
        if name in ("tuple", "Tuple"):
            variadic = len(args) == 2 and isinstance(args[1], cst.Ellipsis)
            items = (
                [annotation_schema(args[0])] if variadic else [annotation_schema(a) for a in args]
            )
            if not variadic:
                schema["minItems"] = schema["maxItems"] = len(args)
            item = union_schema(items)
        else:
            item = annotation_schema(args[0])
        if item:
            schema["items"] = item
        return schema
    if name in _OBJECTS:
        schema = {"type": "object"}
        if len(args) == 2:
            value = annotation_schema(args[1])
            if value:
                schema["additionalProperties"] = value
        return schema
    return {}


def _literal_schema(args: list[cst.BaseExpression]) -> dict[str, Any]:
    values: list[Any] = []
    for arg in args:
        ok, value = _literal(arg)
        if not ok:
            return {}
        if value not in values:
            values.append(value)
    kinds = {_json_type(v) for v in values}
    schema: dict[str, Any] = {}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    elif kinds <= {"integer", "number"}:
        schema["type"] = "number"
    schema["enum"] = values
    return schema


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- docstrings -------------------------------------------------------------


@dataclass
class DocInfo:
    """What a docstring says: its summary (first paragraph) and each parameter's text."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


_GOOGLE_HEADER = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Kwargs"
    r"|Other Parameters)\s*:\s*$"
)
_GOOGLE_ANY_HEADER = re.compile(r"^\s*[A-Z][A-Za-z ]{1,30}:\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_PARAM_TITLES = {"parameters", "other parameters", "keyword arguments", "arguments"}
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_SPHINX_FIELD = re.compile(r"^(\s*):(\w+)([^:]*):(.*)$")
_SPHINX_PARAM_KINDS = {"param", "parameter", "arg", "argument", "key", "keyword"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(parts: list[str]) -> str:
    return " ".join(" ".join(parts).split())


def _is_section_start(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _GOOGLE_ANY_HEADER.match(line) or _SPHINX_FIELD.match(line):
        return True
    return i + 1 < len(lines) and bool(_NUMPY_RULE.match(lines[i + 1])) and bool(line.strip())


def clean_docstring(doc: str) -> str:
    """`doc` without its indentation, like `inspect.cleandoc`, but keeping section structure.

    The indentation to remove is the closing quotes' line when it is blank
    (so `\"\"\"Args:\n        x: ...\n    \"\"\"` keeps `x` indented under
    `Args:`), else the smallest indentation after the first line.
    """
    lines = doc.expandtabs().split("\n")
    rest = [line for line in lines[1:] if line.strip()]
    margin = min((_indent(line) for line in rest), default=0)
    if len(lines) > 1 and not lines[-1].strip():
        margin = min(margin, len(lines[-1]))
    out = [lines[0].strip()] + [line[margin:].rstrip() for line in lines[1:]]
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out)


def parse_docstring(doc: str | None) -> DocInfo:
    """Summary and parameter descriptions of a Google, NumPy or Sphinx docstring."""
    if not doc:
        return DocInfo()
    lines = clean_docstring(doc).splitlines()
    summary: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip() or _is_section_start(lines, i):
            break
        summary.append(line.strip())
    info = DocInfo(summary=_join(summary))
    _google_params(lines, info.params)
    _numpy_params(lines, info.params)
    _sphinx_params(lines, info.params)
    return info


def _google_params(lines: list[str], out: dict[str, str]) -> None:
    i = 0
    while i < len(lines):
        header = _GOOGLE_HEADER.match(lines[i])
        i += 1
        if not header:
            continue
        base = len(header.group(1))
        entry_indent: int | None = None
        name: str | None = None
        parts: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and _indent(line) <= base:
                break
            i += 1
            if not line.strip():
                continue
            if entry_indent is None:
                entry_indent = _indent(line)
            m = _GOOGLE_ENTRY.match(line.strip()) if _indent(line) <= entry_indent else None
            if m:
                if name:
                    out.setdefault(name, _join(parts))
                name, parts = m.group(1), [m.group(3)]
            elif name:
                parts.append(line.strip())
        if name:
            out.setdefault(name, _join(parts))


def _numpy_params(lines: list[str], out: dict[str, str]) -> None:
    i = 0
    while i + 1 < len(lines):
        if lines[i].strip().lower() not in _NUMPY_PARAM_TITLES or not _NUMPY_RULE.match(
            lines[i + 1]
        ):
            i += 1
            continue
        base = _indent(lines[i])
        i += 2
        names: list[str] = []
        parts: list[str] = []
        while i < len(lines):
            line = lines[i]
            if i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]) and line.strip():
                break  # the next section's title
            i += 1
            if not line.strip():
                continue
            if _indent(line) <= base:
                m = _NUMPY_ENTRY.match(line.strip())
                if not m:
                    break
                for n in names:
                    out.setdefault(n, _join(parts))
                names = [n.strip().lstrip("*") for n in m.group(1).split(",")]
                parts = []
            elif names:
                parts.append(line.strip())
        for n in names:
            out.setdefault(n, _join(parts))


def _sphinx_params(lines: list[str], out: dict[str, str]) -> None:
    name: str | None = None
    indent = 0
    parts: list[str] = []
    for line in lines:
        m = _SPHINX_FIELD.match(line)
        if m:
            if name:
                out.setdefault(name, _join(parts))
                name = None
            words = m.group(3).split()
            if m.group(2) in _SPHINX_PARAM_KINDS and words:
                name, indent, parts = words[-1].lstrip("*"), len(m.group(1)), [m.group(4)]
            continue
        if name and line.strip() and _indent(line) > indent:
            parts.append(line.strip())
        elif name and line.strip():
            out.setdefault(name, _join(parts))
            name = None
    if name:
        out.setdefault(name, _join(parts))


# --- parameters object and checks -------------------------------------------


def parameters_schema(params: cst.Parameters, descriptions: dict[str, str]) -> dict[str, Any]:
    """The JSON Schema object of a function's parameters (`*args`/`**kwargs` left out)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        name = param.name.value
        schema = dict(annotation_schema(param.annotation.annotation if param.annotation else None))
        if descriptions.get(name):
            schema["description"] = descriptions[name]
        if param.default is None:
            required.append(name)
        else:
            ok, value = literal_value(param.default)
            if ok:
                schema["default"] = value
        properties[name] = schema
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def schema_problems(schema: Any) -> list[str]:
    """What keeps `schema` from being a parameters object funcforge supports (empty: fine)."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return [f"arguments must be a JSON object, got {type(schema).__name__}"]
    if schema.get("type") != "object":
        problems.append(f"arguments: 'type' must be 'object', got {schema.get('type')!r}")
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        problems.append("arguments.properties must be an object")
        props = {}
    for name, sub in props.items():
        if not (isinstance(name, str) and name.isidentifier()):
            problems.append(f"arguments.properties: {name!r} is not a Python parameter name")
        problems.extend(_subschema_problems(sub, f"arguments.properties.{name}"))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        problems.append("arguments.required must be a list of names")
    else:
        problems.extend(
            f"arguments.required: {r!r} is not in properties" for r in required if r not in props
        )
    return problems


def _subschema_problems(schema: Any, where: str) -> list[str]:
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [f"{where}: must be a JSON Schema object, got {type(schema).__name__}"]
    problems: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        for k in kinds:
            if k not in JSON_TYPES:
                problems.append(
                    f"{where}.type: unsupported type {k!r} (use one of {', '.join(JSON_TYPES)})"
                )
    if "description" in schema and not isinstance(schema["description"], str):
        problems.append(f"{where}.description must be a string")
    if "enum" in schema and not (isinstance(schema["enum"], list) and schema["enum"]):
        problems.append(f"{where}.enum must be a non-empty list")
    if "items" in schema:
        problems.extend(_subschema_problems(schema["items"], f"{where}.items"))
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            if not isinstance(schema[key], list) or not schema[key]:
                problems.append(f"{where}.{key} must be a non-empty list")
            else:
                for i, sub in enumerate(schema[key]):
                    problems.extend(_subschema_problems(sub, f"{where}.{key}[{i}]"))
    if "properties" in schema:
        if not isinstance(schema["properties"], dict):
            problems.append(f"{where}.properties must be an object")
        else:
            for name, sub in schema["properties"].items():
                problems.extend(_subschema_problems(sub, f"{where}.properties.{name}"))
    if "additionalProperties" in schema:
        problems.extend(
            _subschema_problems(schema["additionalProperties"], f"{where}.additionalProperties")
        )
    return problems
