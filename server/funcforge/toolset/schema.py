"""JSON Schema for tool parameters: from annotations, from docstrings, and checks.

Annotations are read from the syntax tree, never evaluated: tool files are
not imported into the funcforge process. Named types are resolved where they
are defined (`toolset.types`): type aliases, `Enum`, `TypedDict`, pydantic
models and dataclasses, in the same file or a workspace file it imports;
`Field(...)` and `Annotated[...]` metadata with literal arguments give
descriptions, defaults and constraints as pydantic would. A type funcforge
cannot resolve becomes an unconstrained schema (`{}`) and a hint that says
why, so the user sees what the model does not.
"""

from __future__ import annotations

import ast
import builtins
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst

from funcforge.toolset.docstring import DocInfo, clean_docstring, parse_docstring
from funcforge.toolset.types import ImportRef, ModuleLoader, ModuleTypes, py_name

__all__ = [
    "DocInfo",
    "FieldInfo",
    "SchemaBuilder",
    "annotation_schema",
    "clean_docstring",
    "parameters_schema",
    "parse_docstring",
    "schema_problems",
]

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
    if isinstance(value, bytes):  # `b"abc"`: pydantic sends bytes as UTF-8 text
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return False, None
    if isinstance(value, tuple):
        value = list(value)
    elif isinstance(value, (set, frozenset)):  # `tags: set[str] = {"a"}`: an array, as pydantic
        try:
            value = sorted(value)
        except TypeError:
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
    if schema == {"type": "null"}:  # Optional[None]
        return schema
    kind = schema.get("type")
    if set(schema) == {"anyOf"}:
        members = list(schema["anyOf"])
        return {"anyOf": members if {"type": "null"} in members else [*members, {"type": "null"}]}
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


# Types with a JSON form by convention (pydantic's): strings with a format.
_FORMATS: dict[str, dict[str, Any]] = {
    "datetime": {"type": "string", "format": "date-time"},
    "AwareDatetime": {"type": "string", "format": "date-time"},
    "NaiveDatetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "timedelta": {"type": "string", "format": "duration"},
    "UUID": {"type": "string", "format": "uuid"},
    "UUID4": {"type": "string", "format": "uuid"},
    "Path": {"type": "string", "format": "path"},
    "PurePath": {"type": "string", "format": "path"},
    "PosixPath": {"type": "string", "format": "path"},
    "FilePath": {"type": "string", "format": "file-path"},
    "DirectoryPath": {"type": "string", "format": "directory-path"},
    "EmailStr": {"type": "string", "format": "email"},
    "AnyUrl": {"type": "string", "format": "uri"},
    "HttpUrl": {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2083},
    "AnyHttpUrl": {"type": "string", "format": "uri", "minLength": 1},
    "bytes": {"type": "string", "format": "binary"},
    "Decimal": {"anyOf": [{"type": "number"}, {"type": "string"}]},
    "LiteralString": {"type": "string"},
    "SecretStr": {"type": "string", "format": "password", "writeOnly": True},
    "SecretBytes": {"type": "string", "format": "password", "writeOnly": True},
    # ipaddress, as pydantic writes them
    "IPv4Address": {"type": "string", "format": "ipv4"},
    "IPv6Address": {"type": "string", "format": "ipv6"},
    "IPvAnyAddress": {"type": "string", "format": "ipvanyaddress"},
    "IPv4Network": {"type": "string", "format": "ipv4network"},
    "IPv6Network": {"type": "string", "format": "ipv6network"},
    "IPvAnyNetwork": {"type": "string", "format": "ipvanynetwork"},
    "IPv4Interface": {"type": "string", "format": "ipv4interface"},
    "IPv6Interface": {"type": "string", "format": "ipv6interface"},
    "IPvAnyInterface": {"type": "string", "format": "ipvanyinterface"},
    # pydantic's constrained and strict types
    "PositiveInt": {"type": "integer", "exclusiveMinimum": 0},
    "NegativeInt": {"type": "integer", "exclusiveMaximum": 0},
    "NonNegativeInt": {"type": "integer", "minimum": 0},
    "NonPositiveInt": {"type": "integer", "maximum": 0},
    "PositiveFloat": {"type": "number", "exclusiveMinimum": 0},
    "NegativeFloat": {"type": "number", "exclusiveMaximum": 0},
    "NonNegativeFloat": {"type": "number", "minimum": 0},
    "NonPositiveFloat": {"type": "number", "maximum": 0},
    "FiniteFloat": {"type": "number"},
    "StrictStr": {"type": "string"},
    "StrictInt": {"type": "integer"},
    "StrictFloat": {"type": "number"},
    "StrictBool": {"type": "boolean"},
    "StrictBytes": {"type": "string", "format": "binary"},
    "PastDate": {"type": "string", "format": "date"},
    "FutureDate": {"type": "string", "format": "date"},
    "PastDatetime": {"type": "string", "format": "date-time"},
    "FutureDatetime": {"type": "string", "format": "date-time"},
    "NameEmail": {"type": "string", "format": "name-email"},
    "Base64Str": {"type": "string", "format": "base64"},
}
# pydantic's `conint(ge=1)`-style annotations: the base schema their keywords constrain.
_CON_TYPES: dict[str, dict[str, Any]] = {
    "conint": {"type": "integer"},
    "confloat": {"type": "number"},
    "condecimal": {"anyOf": [{"type": "number"}, {"type": "string"}]},
    "constr": {"type": "string"},
    "conbytes": {"type": "string", "format": "binary"},
    "condate": {"type": "string", "format": "date"},
    "conlist": {"type": "array"},
    "conset": {"type": "array", "uniqueItems": True},
    "confrozenset": {"type": "array", "uniqueItems": True},
}
# Wrappers that say something about a field, not about its values.
_WRAPPERS = {"Required", "NotRequired", "ReadOnly", "Final", "ClassVar", "InitVar"}
# Modules whose names funcforge knows by name (never "not in the workspace").
_KNOWN_MODULES = {
    "typing",
    "typing_extensions",
    "collections",
    "builtins",
    "datetime",
    "uuid",
    "decimal",
    "pathlib",
    "enum",
    "dataclasses",
    "pydantic",
    "annotated_types",
    "types",
    "ipaddress",
}
# First parameters the frameworks fill in themselves; the model never sees them.
CONTEXT_TYPES = {
    "RunContext",  # pydantic-ai
    "RunContextWrapper",  # openai-agents
    "ToolContext",  # openai-agents, google-adk
    "CallbackContext",  # google-adk
    "InvocationContext",  # google-adk
    "Context",  # MCP SDK (FastMCP)
    "AgentState",  # Letta
    "ToolRuntime",  # langchain
}
_INJECTED = {"InjectedToolArg", "InjectedState", "InjectedStore", "InjectedToolCallId"}
_ENUM_BASES = {"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "ReprEnum"}
_MODEL_BASES = {"BaseModel", "BaseSettings"}
_CONSTRAINTS: dict[str, str] = {
    "gt": "exclusiveMinimum",
    "ge": "minimum",
    "lt": "exclusiveMaximum",
    "le": "maximum",
    "multiple_of": "multipleOf",
    "pattern": "pattern",
    "regex": "pattern",
}
# Calls whose one string argument is the value pydantic sends for them (defaults).
_TEXT_VALUES = {"Path", "PurePath", "PosixPath", "Decimal", "UUID"}
# Empty collections made by a call, as pydantic sends them.
_EMPTY_VALUES: dict[str, Any] = {"list": [], "tuple": [], "set": [], "frozenset": [], "dict": {}}
_ANNOTATED_TYPES = {
    "Gt": "gt",
    "Ge": "ge",
    "Lt": "lt",
    "Le": "le",
    "MultipleOf": "multiple_of",
    "MinLen": "min_length",
    "MaxLen": "max_length",
}


@dataclass
class FieldInfo:
    """What `Field(...)` / `field(...)` with literal arguments says about one value."""

    has_default: bool = False
    default_ok: bool = False  # the default is a JSON literal
    default: Any = None
    factory: bool = False
    description: str | None = None
    title: str | None = None
    examples: list[Any] | None = None
    alias: str | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)  # arguments that are not values funcforge reads

    @property
    def required(self) -> bool:
        return not self.has_default and not self.factory


def _call_name(node: cst.BaseExpression) -> str | None:
    return _last_name(node.func) if isinstance(node, cst.Call) else None


def field_info(
    call: cst.Call, value_of: Callable[[cst.BaseExpression], tuple[bool, Any]] = _literal
) -> FieldInfo:
    """Read `Field(default, description=..., ge=...)` or `field(default=...)`.

    Arguments are read with `value_of` (literals; the builder's also reads
    module constants and enum members); a description it cannot read is
    noted in `unread`.
    """
    info = FieldInfo()
    is_pydantic = _call_name(call) == "Field"
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if is_pydantic and positional and not isinstance(positional[0].value, cst.Ellipsis):
        info.has_default = True
        info.default_ok, info.default = value_of(positional[0].value)
    for arg in call.args:
        if arg.keyword is None:
            continue
        key = arg.keyword.value
        if key == "default":
            if not isinstance(arg.value, cst.Ellipsis):
                info.has_default = True
                info.default_ok, info.default = value_of(arg.value)
            continue
        if key in ("default_factory", "factory"):
            info.factory = True
            continue
        ok, value = value_of(arg.value)
        if not ok:
            if key in ("description", *_CONSTRAINTS, "min_length", "max_length"):
                info.unread.append(key)
            continue
        if key == "description" and isinstance(value, str):
            info.description = value.strip()
        elif key == "title" and isinstance(value, str):
            info.title = value
        elif key == "examples" and isinstance(value, list):
            info.examples = value
        elif key in ("alias", "validation_alias") and isinstance(value, str):
            info.alias = info.alias or value
        elif key in _CONSTRAINTS or key in ("min_length", "max_length"):
            if value is not None:  # `ge=None` is no bound
                info.constraints[key] = value
        elif key == "json_schema_extra" and isinstance(value, dict):
            info.extra.update(value)
    return info


def _constrain(schema: dict[str, Any], constraints: dict[str, Any]) -> dict[str, Any]:
    """`schema` with pydantic-style constraints as JSON Schema keywords (on the non-null branch)."""
    if not constraints:
        return schema
    if "anyOf" in schema:
        members = list(schema["anyOf"])
        for i, m in enumerate(members):
            if m != {"type": "null"}:
                members[i] = _constrain(dict(m), constraints)
                break
        return {**schema, "anyOf": members}
    out = dict(schema)
    kinds = out.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    for key, value in constraints.items():
        if key in ("min_length", "max_length"):
            word = "min" if key == "min_length" else "max"
            if "array" in kinds:
                out[f"{word}Items"] = value
            elif "object" in kinds:
                out[f"{word}Properties"] = value
            else:
                out[f"{word}Length"] = value
        elif (keyword := _CONSTRAINTS.get(key)) is not None:
            out[keyword] = value
    return out


Resolved = tuple[str, Any, ModuleTypes]
_MAX_DEPTH = 60  # annotation levels (aliases, generics); classes are written without recursion
_MAX_BASES = 200  # classes looked at along one class's bases  # (kind, what, the module it is in)


class SchemaBuilder:
    """Turns annotations into JSON Schema, resolving named types statically.

    Classes (Enum, TypedDict, pydantic models, dataclasses) go into `defs`
    (the parameters object's `$defs`) and are referred to with `$ref`, so a
    nested or recursive type is written once; aliases are inlined (a
    recursive alias gets a `$defs` entry too). What cannot be resolved
    becomes `{}` and a line in `hints`, saying why.
    """

    def __init__(self, module: ModuleTypes | None = None, loader: ModuleLoader | None = None):
        self.module = module or ModuleTypes("<string>")
        self.loader = loader
        self.defs: dict[str, dict[str, Any]] = {}
        self.hints: list[str] = []
        self.where = ""
        self._keys: dict[tuple[str, str], str] = {}
        self._active_aliases: dict[tuple[str, str], bool] = {}
        self._depth = 0
        # classes whose `$defs` entry is still to be written: (key, class, module, where)
        self._pending: list[tuple[str, cst.ClassDef, ModuleTypes, str]] = []
        # classes defined in a class's body: id -> (the class, its qualified name `Order.Status`)
        self._nested: dict[int, tuple[cst.ClassDef, str]] = {}
        self._writing = False

    # -- hints and lookup

    def hint(self, text: str) -> None:
        line = f"{self.where}: {text}" if self.where else text
        if line not in self.hints:
            self.hints.append(line)

    def _load(self, module: ModuleTypes, ref: ImportRef) -> ModuleTypes | None:
        return self.loader(module.file, ref) if self.loader is not None else None

    def lookup(self, name: str, module: ModuleTypes, depth: int = 0) -> Resolved:
        """('class', ClassDef) / ('alias', expr) / ('known', name) / ('external', module) / ('unknown', name)."""
        name = py_name(name)
        if name in module.classes:
            return ("class", module.classes[name], module)
        if name in module.aliases:
            return ("alias", module.aliases[name], module)
        if name in module.constants:
            return ("constant", module.constants[name], module)
        ref = module.imports.get(name)
        if ref is None:
            if _known_name(name):
                return ("known", name, module)
            return self._star_lookup(name, module, depth)
        if ref.name is None:
            return ("module", ref, module)
        if ref.level == 0 and ref.module.split(".")[0] in _KNOWN_MODULES:
            return ("known", ref.name, module)
        target = self._load(module, ImportRef(ref.module, None, ref.level)) if depth < 8 else None
        if target is not None:
            found = self.lookup(ref.name, target, depth + 1)
            if found[0] != "unknown":
                return found
        # `from tools import models`: a submodule (of a namespace package, too)
        sub_ref = ImportRef(f"{ref.module}.{ref.name}".strip("."), None, ref.level)
        sub = self._load(module, sub_ref) if depth < 8 else None
        if sub is not None:
            return ("module", sub_ref, module)
        if target is not None:
            return ("unknown", f"{ref.name} (in {target.file})", module)
        return ("external", ref.dotted, module)

    def _star_lookup(self, name: str, module: ModuleTypes, depth: int) -> Resolved:
        """`name` from the module's star imports (`from .models import *`), in order."""
        for star in module.stars:
            if star.level == 0 and star.module.split(".")[0] in _KNOWN_MODULES:
                if star.module.split(".")[0] in ("typing", "typing_extensions", "pydantic"):
                    return ("known", name, module)  # `from typing import *`: a typing name
                continue
            target = self._load(module, star) if depth < 8 else None
            if target is not None:
                found = self.lookup(name, target, depth + 1)
                if found[0] != "unknown":
                    return found
        return ("unknown", name, module)

    def resolve(self, node: cst.BaseExpression, module: ModuleTypes) -> Resolved:
        if isinstance(node, cst.Name):
            return self.lookup(node.value, module)
        if isinstance(node, cst.Attribute):
            base = self.resolve(node.value, module) if self._depth < 50 else None
            name = py_name(node.attr.value)
            if base is not None and base[0] == "module":
                target, importer = base[1], base[2]  # relative imports read from the importer
                if isinstance(target, ImportRef):
                    if target.level == 0 and target.module.split(".")[0] in _KNOWN_MODULES:
                        return ("known", name, module)
                    loaded = self._load(importer, target)
                    if loaded is not None:
                        found = self.lookup(name, loaded)
                        if found[0] != "unknown":
                            return found
                    # `import tools.shop.models` then `tools.shop.models.Order`: a submodule
                    # (a namespace package's own folder has no file to load).
                    sub = ImportRef(f"{target.module}.{name}", None, target.level)
                    return ("module", sub, importer)
                return self.lookup(name, target)
            if base is not None and base[0] == "external":
                return base
            if base is not None and base[0] == "class":  # `Order.Status`: a class in a class
                inner = self._inner_classes(base[1]).get(name)
                if inner is not None:
                    return ("class", inner, base[2])
                return ("unknown", _code(node), module)
            return ("known", name, module)
        return ("unknown", _code(node), module)

    # -- annotations

    def annotation(
        self, node: cst.BaseExpression | None, module: ModuleTypes | None = None
    ) -> dict[str, Any]:
        """JSON Schema of an annotation expression (`{}` when missing or unknown)."""
        if node is None:
            return {}
        module = module or self.module
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                self.hint(
                    f"annotation nested more than {_MAX_DEPTH} levels deep: the model sees "
                    f"no type for '{_short(node)}'"
                )
                return {}
            return self._annotation(node, module)
        finally:
            self._depth -= 1

    def _annotation(self, node: cst.BaseExpression, module: ModuleTypes) -> dict[str, Any]:
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            return union_schema([self.annotation(m, module) for m in _union_members(node)])
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            ok, text = _literal(node)  # a string annotation: "list[int]"
            if not ok or not isinstance(text, str):
                return {}
            try:
                return self.annotation(cst.parse_expression(text.strip()), module)
            except (cst.ParserSyntaxError, RecursionError):
                return {}
        if isinstance(node, cst.Subscript):
            return self._generic(node, module)
        if isinstance(node, (cst.Name, cst.Attribute)):
            return self._named(node, module)
        if isinstance(node, cst.Call):
            return self._con_type(node, module)
        self.hint(f"annotation '{_short(node)}' is not a type: the model sees no type for it")
        return {}

    def _con_type(self, call: cst.Call, module: ModuleTypes) -> dict[str, Any]:
        """pydantic's `conint(ge=1)`, `constr(pattern=...)`, `conlist(int, min_length=1)`."""
        name = _call_name(call)
        base = _CON_TYPES.get(name or "")
        if base is None or self.resolve(call.func, module)[0] not in ("known", "unknown"):
            self.hint(
                f"annotation '{_short(call)}' is a call funcforge cannot read statically: "
                "the model sees no type for it"
            )
            return {}
        schema: dict[str, Any] = {
            k: [dict(m) for m in v] if isinstance(v, list) else v for k, v in base.items()
        }
        positional = [a for a in call.args if a.keyword is None and not a.star]
        item = next(
            (a.value for a in call.args if a.keyword and a.keyword.value == "item_type"), None
        )
        if item is None and name in ("conlist", "conset", "confrozenset") and positional:
            item = positional[0].value
        if item is not None:
            item_schema = self.annotation(item, module)
            if item_schema:
                schema["items"] = item_schema
        constraints: dict[str, Any] = {}
        for arg in call.args:
            if arg.keyword is None:
                continue
            key = arg.keyword.value
            key = {"min_items": "min_length", "max_items": "max_length", "regex": "pattern"}.get(
                key, key
            )
            if key in _CONSTRAINTS or key in ("min_length", "max_length"):
                ok, value = _literal(arg.value)
                if ok and value is not None:
                    constraints[key] = value
        return _constrain(schema, constraints)

    def _named(self, node: cst.BaseExpression, module: ModuleTypes) -> dict[str, Any]:
        kind, value, where = self.resolve(node, module)
        text = _code(node)
        if kind == "class":
            return self._class_ref(value, where)
        if kind == "alias":
            return self._alias(text, value, where)
        if kind == "known":
            return self._known(value, text)
        if kind == "constant":
            self.hint(f"'{text}' is a value, not a type: the model sees no type for it")
            return {}
        if kind == "module" and isinstance(value, ImportRef):
            if self._load(where, value) is not None:
                self.hint(f"'{text}' is a module, not a type: the model sees no type for it")
                return {}
            kind, value = "external", value.dotted.rsplit(".", 1)[0]
        if kind == "external":
            self.hint(
                f"type '{text}' is imported from '{value}', which is not in the workspace: "
                "the model sees no type for it (define it in a workspace file, or annotate "
                "with a JSON-compatible type)"
            )
            return {}
        if kind == "unknown":
            if text in _BUILTIN_NAMES:
                return self._known(text, text)
            self.hint(f"type '{text}' is not defined in this file or a workspace file it imports")
        return {}

    def _known(self, name: str, text: str) -> dict[str, Any]:
        """A type known by name; one with no JSON form (`Callable`, `complex`) gets a hint."""
        schema = _known_schema(name)
        if not schema and name not in _ANY and name not in _GENERICS:
            self.hint(f"type '{text}' has no JSON Schema form: the model sees no type for it")
        return schema

    def _alias(self, name: str, expr: cst.BaseExpression, module: ModuleTypes) -> dict[str, Any]:
        if isinstance(expr, cst.Call):
            return self._call_type(name, expr, module)
        key = (module.file, name)
        if key in self._active_aliases:
            self._active_aliases[key] = True  # recursive: it needs a $defs entry
            return {"$ref": f"#/$defs/{self._def_key(module.file, name)}"}
        self._active_aliases[key] = False
        try:
            schema = self.annotation(expr, module)
        finally:
            recursive = self._active_aliases.pop(key)
        if recursive:
            def_key = self._def_key(module.file, name)
            ref = {"$ref": f"#/$defs/{def_key}"}
            if schema == ref:  # `A = A`, or aliases that only name each other
                self.hint(f"type alias '{name}' only refers to itself")
                return {}
            self.defs[def_key] = schema
            return ref
        return schema

    def _call_type(self, name: str, call: cst.Call, module: ModuleTypes) -> dict[str, Any]:
        """`NewType("X", int)` and `TypedDict("Movie", {...}, total=False)`."""
        kind = _call_name(call)
        args = [a for a in call.args if a.keyword is None]
        if kind == "NewType" and len(args) == 2:
            return self.annotation(args[1].value, module)
        if kind == "TypedDict" and len(args) >= 2 and isinstance(args[1].value, cst.Dict):
            total = _keyword(call, "total", True)
            props: dict[str, Any] = {}
            required: list[str] = []
            for element in args[1].value.elements:
                if not isinstance(element, cst.DictElement):
                    continue
                ok, key = _literal(element.key)
                if not ok or not isinstance(key, str):
                    continue
                inner, req = _unwrap_required(element.value, bool(total))
                props[key] = self.annotation(inner, module)
                if req:
                    required.append(key)
            out: dict[str, Any] = {"title": name, "type": "object", "properties": props}
            if required:
                out["required"] = required
            return out
        if kind == "TypeVar":
            bound = next(
                (a.value for a in call.args if a.keyword and a.keyword.value == "bound"), None
            )
            if bound is not None:
                return self.annotation(bound, module)
            self.hint(
                f"type variable '{name}' has no bound (a generic's parameters are not "
                "applied): the model sees no type for it"
            )
            return {}
        self.hint(f"type '{name}' is made by a call funcforge cannot read statically")
        return {}

    def _generic(self, node: cst.Subscript, module: ModuleTypes) -> dict[str, Any]:
        args = _subscript_args(node)
        kind, value, _ = self.resolve(node.value, module)
        if kind in ("alias", "class"):
            return self._named(node.value, module)  # a generic alias or class: parameters ignored
        name = value if kind == "known" else None
        if name is None or not args:
            if kind in ("external", "unknown", "module", "constant"):
                return self._named(node.value, module)
            return {}
        if name == "Optional":
            return nullable(self.annotation(args[0], module))
        if name == "Union":
            return union_schema([self.annotation(a, module) for a in args])
        if name == "Literal":
            return self._literal(args, module)
        if name == "Type":
            self.hint(f"type '{_short(node)}' is a class, which has no JSON form")
            return {}
        if name in _WRAPPERS:
            return self.annotation(args[0], module)
        schema: dict[str, Any]
        if name == "Annotated":
            schema = dict(self.annotation(args[0], module))
            meta = self.annotated_meta(args[1:], module)
            return _with_meta(schema, meta)
        if name in _ARRAYS:
            schema = {"type": "array"}
            if name in _SETS:
                schema["uniqueItems"] = True
            if name in ("tuple", "Tuple"):
                variadic = len(args) == 2 and isinstance(args[1], cst.Ellipsis)
                if variadic:
                    item = self.annotation(args[0], module)
                elif len(args) == 1 and isinstance(args[0], cst.Tuple) and not args[0].elements:
                    schema["minItems"] = schema["maxItems"] = 0  # tuple[()]: the empty tuple
                    return schema
                else:  # as pydantic writes a fixed tuple: one schema per position
                    schema["prefixItems"] = [self.annotation(a, module) for a in args]
                    schema["minItems"] = schema["maxItems"] = len(args)
                    return schema
            else:
                item = self.annotation(args[0], module)
            if item:
                schema["items"] = item
            return schema
        if name in _OBJECTS:
            schema = {"type": "object"}
            if len(args) == 2:
                value_schema = self.annotation(args[1], module)
                if value_schema:
                    schema["additionalProperties"] = value_schema
            return schema
        return self._known(name, _code(node.value))

    def value(
        self, node: cst.BaseExpression, module: ModuleTypes | None = None, depth: int = 0
    ) -> tuple[bool, Any]:
        """(True, JSON value) of a default or a `Field` argument, as pydantic would send it.

        A literal; an enum member (`Color.RED`); a module constant
        (`LIMIT = 10`, `MODEL: str = "x"`, here or imported from a workspace
        file); `Path("/tmp")`, `Decimal("1.5")`, `UUID("...")` as their text.
        """
        module = module or self.module
        ok, value = _literal(node)
        if ok:
            return ok, value
        ok, value = self._enum_member(node, module)
        if ok or depth > 8:
            return ok, value
        if isinstance(node, (cst.Name, cst.Attribute)):
            kind, found, where = self.resolve(node, module)
            if kind in ("alias", "constant") and not isinstance(found, cst.Subscript):
                return self.value(found, where, depth + 1)
        if (
            isinstance(node, cst.Call)
            and not node.args
            and _call_name(node) in _EMPTY_VALUES
            and self.resolve(node.func, module)[0] in ("known", "unknown")
        ):
            empty = _EMPTY_VALUES[_call_name(node) or ""]  # `frozenset()` is sent as []
            return True, [] if isinstance(empty, list) else {}
        if isinstance(node, cst.Call) and _call_name(node) in _TEXT_VALUES and len(node.args) == 1:
            ok, text = _literal(node.args[0].value)
            if (
                ok
                and isinstance(text, str)
                and node.args[0].keyword is None
                and self.resolve(node.func, module)[0] in ("known", "unknown")
            ):
                return True, text
        return False, None

    def _literal(self, args: list[cst.BaseExpression], module: ModuleTypes) -> dict[str, Any]:
        """`Literal[...]`: literal values, enum members (`Literal[Color.RED]`), constants."""
        values: list[Any] = []
        for arg in args:
            ok, value = self.value(arg, module)
            if not ok:
                self.hint(
                    f"'{_short(arg)}' in Literal[...] is not a literal funcforge can read: "
                    "the model is not told the allowed values"
                )
                return {}
            values.append(value)
        return _literal_schema(values)

    def annotated_meta(
        self, metas: list[cst.BaseExpression], module: ModuleTypes | None = None
    ) -> FieldInfo:
        """What `Annotated[T, ...]`'s metadata says: a description, `Field(...)`, constraints."""
        module = module or self.module
        info = FieldInfo()

        def value_of(node: cst.BaseExpression) -> tuple[bool, Any]:
            return self.value(node, module)

        for meta in metas:
            ok, value = _literal(meta)
            if ok and isinstance(value, str) and value.strip():
                info.description = info.description or value.strip()
                continue
            if not isinstance(meta, cst.Call):
                continue
            called = _call_name(meta)
            if called in ("Field", "field"):
                found = field_info(meta, value_of)
                self._unread(found)
                info.description = info.description or found.description
                info.title = info.title or found.title
                info.examples = info.examples or found.examples
                info.constraints.update(found.constraints)
                info.extra.update(found.extra)
                if found.has_default:
                    info.has_default, info.default_ok, info.default = (
                        True,
                        found.default_ok,
                        found.default,
                    )
                info.factory = info.factory or found.factory
                info.alias = info.alias or found.alias
            elif called == "Doc" and meta.args:
                ok, text = _literal(meta.args[0].value)
                if ok and isinstance(text, str):
                    info.description = info.description or text.strip()
            elif called == "StringConstraints":
                for arg in meta.args:
                    key = arg.keyword.value if arg.keyword else ""
                    if key in ("min_length", "max_length", "pattern"):
                        ok, found_value = value_of(arg.value)
                        if ok and found_value is not None:
                            info.constraints[key] = found_value
            elif called in _ANNOTATED_TYPES and meta.args:
                ok, number = value_of(meta.args[0].value)
                if ok:
                    info.constraints[_ANNOTATED_TYPES[called]] = number
            elif called in ("Len", "Interval"):
                for i, arg in enumerate(meta.args):
                    ok, number = value_of(arg.value)
                    key = (
                        arg.keyword.value
                        if arg.keyword
                        else ("min_length", "max_length")[min(i, 1)]
                    )
                    if ok and number is not None:
                        info.constraints[key] = number
        return info

    # -- classes

    def _def_key(self, file: str, name: str) -> str:
        """The `$defs` name of `name` (a qualified `Order.Status` is keyed by its last part)."""
        key = self._keys.get((file, name))
        if key is None:
            key = name.rsplit(".", 1)[-1]
            taken = set(self._keys.values())
            n = 2
            while key in taken:
                key, n = f"{name.rsplit('.', 1)[-1]}{n}", n + 1
            self._keys[(file, name)] = key
        return key

    def _class_ref(self, node: cst.ClassDef, module: ModuleTypes) -> dict[str, Any]:
        """A `$ref` to the class's `$defs` entry; the entry is written once, without recursion.

        A class met while another is being written is queued, not descended
        into, so a chain of 200 nested models (or a cycle) costs no stack.
        """
        name = self._nested.get(id(node), (node, py_name(node.name.value)))[1]
        known = (module.file, name) in self._keys
        key = self._def_key(module.file, name)
        ref = {"$ref": f"#/$defs/{key}"}
        if known:
            return ref if key in self.defs else {}
        if self.class_kind(node, module) is None:
            self.hint(
                f"class '{name}' is not an Enum, TypedDict, pydantic model or dataclass: "
                "the model sees no type for it"
            )
            return {}
        self.defs[key] = {}  # a placeholder: a recursive reference finds it
        self._pending.append((key, node, module, self.where))
        if not self._writing:
            self._writing = True
            outer = self.where
            try:
                while self._pending:
                    pending_key, pending, pending_module, self.where = self._pending.pop(0)
                    self.defs[pending_key] = self._class_schema(pending, pending_module) or {}
            finally:
                self._writing, self.where = False, outer
        return ref

    def class_kind(self, node: cst.ClassDef, module: ModuleTypes) -> str | None:
        """enum / typeddict / namedtuple / model / dataclass, from the class or its bases (any depth)."""
        todo: list[tuple[cst.ClassDef, ModuleTypes]] = [(node, module)]
        seen: set[int] = set()
        while todo:
            current, where = todo.pop()
            if id(current) in seen or len(seen) > _MAX_BASES:
                continue  # a cycle of bases (`class A(B)`, `class B(A)`)
            seen.add(id(current))
            for dec in current.decorators:
                target = dec.decorator
                target = target.func if isinstance(target, cst.Call) else target
                if _last_name(target) == "dataclass":
                    return "dataclass"
            bases: list[tuple[cst.ClassDef, ModuleTypes]] = []
            for arg in current.bases:
                base = arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value
                last = _last_name(base)
                if last in _ENUM_BASES:
                    return "enum"
                if last == "TypedDict":
                    return "typeddict"
                if last == "NamedTuple":
                    return "namedtuple"
                if last in _MODEL_BASES:
                    return "model"
                found = self.resolve(base, where)
                if found[0] == "class":
                    bases.append((found[1], found[2]))
            todo.extend(reversed(bases))  # the first base is looked at first
        return None

    def _class_schema(self, node: cst.ClassDef, module: ModuleTypes) -> dict[str, Any] | None:
        kind = self.class_kind(node, module)
        if kind is None:
            return None
        name = py_name(node.name.value)
        out: dict[str, Any] = {"title": name}
        doc = node.get_docstring()
        if doc:
            from funcforge.toolset.docstring import parse_docstring

            description = parse_docstring(doc).description
            if description:
                out["description"] = description
        if kind == "enum":
            return self._enum_schema(node, out)
        props: dict[str, Any] = {}
        required: list[str] = []
        outer = self.where
        for fname, ann, value, fmodule, total in self._fields(node, module, kind):
            self.where = f"{outer} ({name}.{fname})" if outer else f"{name}.{fname}"
            try:
                prop, is_required, key = self.field_schema(ann, value, fmodule, kind, total)
            finally:
                self.where = outer
            props[key or fname] = prop
            if is_required:
                required.append(key or fname)
        if kind == "namedtuple":  # sent as a JSON array, one item per field
            out["type"] = "array"
            out["prefixItems"] = list(props.values())
            out["minItems"] = len(required)
            out["maxItems"] = len(props)
            return out
        out["type"] = "object"
        out["properties"] = props
        if required:
            out["required"] = required
        if kind == "model" and _forbids_extra(node):
            out["additionalProperties"] = False
        return out

    def field_schema(
        self,
        ann: cst.BaseExpression | None,
        value: cst.BaseExpression | None,
        module: ModuleTypes,
        kind: str = "model",
        total: bool = True,
    ) -> tuple[dict[str, Any], bool, str | None]:
        """(schema, required, alias) of a class field or a parameter: `name: ann = value`."""
        inner, typed_required = _unwrap_required(ann, total) if ann is not None else (None, True)
        schema = dict(self.annotation(inner, module))
        meta = (
            self.annotated_meta(_annotated_metas(inner), module)
            if inner is not None
            else FieldInfo()
        )
        info = FieldInfo()
        if value is not None and _call_name(value) in ("Field", "field"):
            assert isinstance(value, cst.Call)
            info = field_info(value, lambda node: self.value(node, module))
            self._unread(info)
        elif value is not None:
            info.has_default = True
            info.default_ok, info.default = self.value(value, module)
        if kind == "typeddict":
            required = typed_required
        else:
            required = info.required and meta.required
        if info.description:
            schema["description"] = info.description
        schema = _with_meta(schema, info)
        default = info if info.has_default else meta if meta.has_default else None
        if default is not None and default.default_ok:
            schema["default"] = default.default
        return schema, required, info.alias or meta.alias

    def _inner_classes(self, node: cst.ClassDef) -> dict[str, cst.ClassDef]:
        """Classes defined in `node`'s body, by name (registered with their qualified names)."""
        outer = self._nested.get(id(node), (node, py_name(node.name.value)))[1]
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else []
        out: dict[str, cst.ClassDef] = {}
        for stmt in body:
            if isinstance(stmt, cst.ClassDef):
                inner = py_name(stmt.name.value)
                out.setdefault(inner, stmt)
                self._nested.setdefault(id(stmt), (stmt, f"{outer}.{inner}"))
        return out

    def _class_scope(self, node: cst.ClassDef, module: ModuleTypes) -> ModuleTypes:
        """`module` as seen from `node`'s body: its own nested classes come first."""
        inner = self._inner_classes(node)
        if not inner:
            return module
        return replace(module, classes={**module.classes, **inner})

    def _fields(
        self, node: cst.ClassDef, module: ModuleTypes, kind: str, seen: set[int] | None = None
    ) -> list[tuple[str, cst.BaseExpression | None, cst.BaseExpression | None, ModuleTypes, bool]]:
        """A class's fields, its bases' first (a redefined field keeps its first place)."""
        out: dict[str, tuple[str, Any, Any, ModuleTypes, bool]] = {}
        seen = set() if seen is None else seen
        seen.add(id(node))
        for arg in node.bases:
            base = arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value
            found: Resolved = self.resolve(base, module)
            if (
                found[0] == "class"
                and id(found[1]) not in seen
                and len(seen) <= _MAX_BASES
                and self.class_kind(found[1], found[2]) == kind
            ):
                for f in self._fields(found[1], found[2], kind, seen):
                    out[f[0]] = f
        total = bool(_keyword_of(node.keywords, "total", True))
        scope = self._class_scope(node, module)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else []
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if not isinstance(small, cst.AnnAssign) or not isinstance(small.target, cst.Name):
                    continue
                fname = py_name(small.target.value)
                ann = small.annotation.annotation
                head = _head_name(ann)
                if head in ("ClassVar", "KW_ONLY") or fname == "model_config":
                    continue
                if kind != "typeddict" and fname.startswith("_"):
                    continue
                out[fname] = (fname, ann, small.value, scope, total)
        return list(out.values())

    def _enum_values(self, node: cst.ClassDef) -> dict[str, Any] | None:
        """Member name -> value of an enum class (None when a value is not a literal)."""
        values: dict[str, Any] = {}
        str_enum = any(_last_name(a.value) == "StrEnum" for a in node.bases)
        # `class Mode(str, Enum)`: auto() numbers, as text ("1", "2")
        str_mixin = any(_last_name(a.value) == "str" for a in node.bases)
        counter = 0
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else []
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if not isinstance(small, cst.Assign) or len(small.targets) != 1:
                    continue
                target = small.targets[0].target
                if not isinstance(target, cst.Name) or target.value.startswith("_"):
                    continue
                member = py_name(target.value)
                if _call_name(small.value) == "auto":
                    counter += 1
                    values[member] = (
                        member.lower() if str_enum else str(counter) if str_mixin else counter
                    )
                    continue
                ok, value = _literal(small.value)
                if not ok:
                    self.hint(
                        f"enum '{node.name.value}': the value of {target.value} is not a literal"
                    )
                    return None
                if isinstance(value, int) and not isinstance(value, bool):
                    counter = value
                values[member] = value
        return values

    def _enum_schema(self, node: cst.ClassDef, out: dict[str, Any]) -> dict[str, Any] | None:
        members = self._enum_values(node)
        if members is None:
            return {}
        values: list[Any] = []
        for value in members.values():
            if value not in values:  # Python's equality: `A = 1` then `B = True` is an alias of A
                values.append(value)
        if not values:
            return None
        kinds = {_json_type(v) for v in values}
        if len(kinds) == 1:
            out["type"] = kinds.pop()
        out["enum"] = values
        return out

    def _enum_member(self, node: cst.BaseExpression, module: ModuleTypes) -> tuple[bool, Any]:
        """The value of `Color.RED` when `Color` is an enum funcforge can read."""
        if not isinstance(node, cst.Attribute):
            return False, None
        found = self.resolve(node.value, module)
        if found[0] != "class" or self.class_kind(found[1], found[2]) != "enum":
            return False, None
        members = self._enum_values(found[1])
        member = py_name(node.attr.value)
        if members is None or member not in members:
            return False, None
        return True, members[member]

    def _unread(self, info: FieldInfo) -> None:
        for key in info.unread:
            self.hint(
                f"its Field {key}= is not a value funcforge can read statically "
                "(a literal or a module constant): the model is not told it"
            )

    def is_context(self, node: cst.BaseExpression | None) -> bool:
        """True for a parameter the framework fills in (a run context, an injected argument)."""
        if node is None:
            return False
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            ok, text = _literal(node)
            try:
                node = cst.parse_expression(text.strip()) if ok and isinstance(text, str) else node
            except (cst.ParserSyntaxError, RecursionError):
                return False
        if isinstance(node, cst.Subscript) and _last_name(node.value) == "Annotated":
            metas = _subscript_args(node)[1:]
            if any(
                _last_name(m.func if isinstance(m, cst.Call) else m) in _INJECTED for m in metas
            ):
                return True
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            return any(self.is_context(m) for m in _union_members(node))
        if isinstance(node, cst.Subscript) and _last_name(node.value) in ("Optional", "Union"):
            return any(self.is_context(m) for m in _subscript_args(node))
        head = node.value if isinstance(node, cst.Subscript) else node
        if not isinstance(head, (cst.Name, cst.Attribute)):
            return False
        if _last_name(head) not in CONTEXT_TYPES:
            return False
        return self.resolve(head, self.module)[0] not in ("class", "alias")


def _forbids_extra(node: cst.ClassDef) -> bool:
    """`model_config = ConfigDict(extra="forbid")` (or a dict literal) in a pydantic model."""
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else []
    for stmt in body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            target = value = None
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target, value = small.targets[0].target, small.value
            elif isinstance(small, cst.AnnAssign):
                target, value = small.target, small.value
            if not (isinstance(target, cst.Name) and target.value == "model_config"):
                continue
            if isinstance(value, cst.Call):
                return _keyword(value, "extra", None) == "forbid"
            ok, config = _literal(value) if value is not None else (False, None)
            return ok and isinstance(config, dict) and config.get("extra") == "forbid"
    return False


def _keyword(call: cst.Call, name: str, default: Any) -> Any:
    return _keyword_of(call.args, name, default)


def _keyword_of(args: Any, name: str, default: Any) -> Any:
    for arg in args:
        if arg.keyword is not None and arg.keyword.value == name:
            ok, value = _literal(arg.value)
            return value if ok else default
    return default


def _head_name(node: cst.BaseExpression) -> str | None:
    return _last_name(node.value if isinstance(node, cst.Subscript) else node)


def _unwrap_required(node: cst.BaseExpression, total: bool) -> tuple[cst.BaseExpression, bool]:
    """`Required[T]` / `NotRequired[T]` / `ReadOnly[T]` (also inside `Annotated`) -> (T, required)."""
    required = total
    for _ in range(8):
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            ok, text = _literal(node)
            if not ok or not isinstance(text, str):
                break
            try:
                node = cst.parse_expression(text.strip())
            except (cst.ParserSyntaxError, RecursionError):
                break
            continue
        if not isinstance(node, cst.Subscript):
            break
        head = _last_name(node.value)
        args = _subscript_args(node)
        if head in ("Required", "NotRequired", "ReadOnly") and args:
            if head != "ReadOnly":
                required = head == "Required"
            node = args[0]
        elif head == "Annotated" and args:
            inner, required = _unwrap_required(args[0], required)
            if inner is args[0]:
                break
            node = node.with_changes(
                slice=[node.slice[0].with_changes(slice=cst.Index(inner)), *node.slice[1:]]
            )
            break
        else:
            break
    return node, required


def _annotated_metas(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.Subscript) and _last_name(node.value) == "Annotated":
        return _subscript_args(node)[1:]
    return []


def _with_meta(schema: dict[str, Any], info: FieldInfo) -> dict[str, Any]:
    out = _constrain(dict(schema), info.constraints)
    if info.description and "description" not in out:
        out["description"] = info.description
    if info.title:
        out["title"] = info.title
    if info.examples:
        out["examples"] = info.examples
    out.update(info.extra)
    return out


_BUILTIN_NAMES = set(dir(builtins))
_GENERICS = {"Optional", "Union", "Literal", "Annotated", "Type", *_WRAPPERS}


def _known_name(name: str) -> bool:
    return (
        name in _GENERICS
        or name in _SCALARS
        or name in _NONE
        or name in _ARRAYS
        or name in _OBJECTS
        or name in _ANY
        or name in _FORMATS
    )


def _known_schema(name: str) -> dict[str, Any]:
    if name in _SCALARS:
        return {"type": _SCALARS[name]}
    if name in _NONE:
        return {"type": "null"}
    if name in _ARRAYS:
        return {"type": "array", **({"uniqueItems": True} if name in _SETS else {})}
    if name in _OBJECTS:
        return {"type": "object"}
    if name in _FORMATS:
        return dict(_FORMATS[name])
    return {}


def annotation_schema(node: cst.BaseExpression | None) -> dict[str, Any]:
    """JSON Schema of an annotation expression on its own (no module to resolve names in)."""
    return SchemaBuilder().annotation(node)


def _unique(found: Iterable[Any]) -> list[Any]:
    """`found` without repeats, in order; `True` and `1` (equal in Python) are different values."""
    seen: set[tuple[str, str]] = set()
    out: list[Any] = []
    for value in found:
        key = (_json_type(value), json.dumps(value, sort_keys=True))
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _literal_schema(found: list[Any]) -> dict[str, Any]:
    values = _unique(found)
    kinds = {_json_type(v) for v in values}
    schema: dict[str, Any] = {}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    elif kinds <= {"integer", "number"}:
        schema["type"] = "number"
    schema["enum"] = values
    return schema


def _short(node: cst.CSTNode) -> str:
    """A node's source on one line, cut to a readable length (for hints)."""
    text = " ".join(_code(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


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


# --- parameters object and checks -------------------------------------------


def parameters_schema(
    params: cst.Parameters,
    descriptions: dict[str, str],
    builder: SchemaBuilder | None = None,
) -> dict[str, Any]:
    """The JSON Schema object of a function's parameters.

    `*args`/`**kwargs` are left out, and so are parameters the agent framework
    fills in itself (a first `self`, a run context, an injected argument).
    A parameter's description comes from `Field`/`Annotated`, else the docstring.
    """
    builder = builder or SchemaBuilder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    ordered = (*params.posonly_params, *params.params, *params.kwonly_params)
    for i, param in enumerate(ordered):
        name = py_name(param.name.value)  # the keyword Python accepts for `ﬁle` is `file`
        annotation = param.annotation.annotation if param.annotation else None
        if (i == 0 and name == "self") or builder.is_context(annotation):
            continue
        builder.where = f"parameter '{name}'"
        try:
            schema, is_required, alias = builder.field_schema(
                annotation, param.default, builder.module
            )
            if alias and alias != name:
                builder.hint(
                    f"its alias {alias!r} is what pydantic-based frameworks send; funcforge "
                    "shows the parameter's own name (actions and traces use it)"
                )
        finally:
            builder.where = ""
        if descriptions.get(name) and "description" not in schema:
            schema["description"] = descriptions[name]
        if is_required:
            required.append(name)
        properties[name] = schema
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if builder.defs:
        out["$defs"] = builder.defs
    return out


def model_parameters(node: cst.BaseExpression, builder: SchemaBuilder) -> dict[str, Any] | None:
    """The parameters object of langchain's `args_schema=Model`: the model's own schema.

    None (and a hint) when `node` is not a model funcforge can read; the
    function's signature is used then.
    """
    builder.where = f"args_schema {_short(node)}"
    try:
        ref = builder.annotation(node)
    finally:
        builder.where = ""
    key = str(ref.get("$ref", "")).removeprefix("#/$defs/")
    model = builder.defs.get(key) if set(ref) == {"$ref"} else None
    if not model or model.get("type") != "object":
        builder.hint(
            f"args_schema '{_short(node)}' is not a model funcforge can read: "
            "the parameters shown are the function's, which may not be what the model sees"
        )
        return None
    out: dict[str, Any] = {"type": "object", "properties": model.get("properties", {})}
    for extra in ("required", "additionalProperties"):
        if extra in model:
            out[extra] = model[extra]
    others = {k: v for k, v in builder.defs.items() if k != key}
    if f'"#/$defs/{key}"' not in json.dumps([others, out]):
        del builder.defs[key]  # only the parameters object itself was the model
    if builder.defs:
        out["$defs"] = builder.defs
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
