"""funcforge's static schemas against pydantic's runtime ones, on hostile but realistic tools (issue 16).

`tests/schema_corpus/tools/adversary/hostile.py` is run here through the MCP
SDK (pydantic underneath: what openai-agents and langchain build on too) and
every tool's parameters must say the same as funcforge's, read without
importing the file: types, required, enum values, defaults, constraints,
descriptions. `$defs` are inlined before comparing, titles dropped, `const`
read as a one-value `enum`, a type list (`["integer", "null"]`) read as the
`anyOf` it means. The differences funcforge keeps on purpose are listed in
`KEPT`, each with its reason; one that disappears fails, so the list stays
true.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import docstring_parser
import pytest

from funcforge.toolset.docstring import parse_docstring
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.types import workspace_loader

CORPUS = Path(__file__).resolve().parent.parent / "schema_corpus"
HOSTILE = CORPUS / "tools" / "adversary" / "hostile.py"

# tool -> why funcforge's schema differs from pydantic's, on purpose
KEPT = {
    "call_api": "*args/**kwargs are not shown (pydantic lists them as required properties)",
    "store": "a default computed at import time (os.environ.get) is not shown; the rest match",
    "walk": "an enum alias's value is listed once (pydantic repeats 'red')",
    "handle": "a discriminated union is anyOf (pydantic: oneOf + discriminator; same values)",
    "first_page": "a generic model's parameters are not applied (a hint says so)",
    "numbers": "a computed default (10**6) is not shown",
}


def _inline(schema: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(schema, list):
        return [_inline(s, defs, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        key = schema["$ref"].rsplit("/", 1)[-1]
        if key in seen:
            return {"recursive": key}
        out = dict(_inline(defs[key], defs, (*seen, key)))
        out.update(_inline({k: v for k, v in schema.items() if k != "$ref"}, defs, seen))
        return out
    out = {k: _inline(v, defs, seen) for k, v in schema.items() if k not in ("title", "$defs")}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    kinds = out.get("type")
    if isinstance(kinds, list):  # {"type": ["integer", "null"], ...} is anyOf integer | null
        keep = {k: out.pop(k) for k in list(out) if k not in ("default", "description")}
        keep.pop("type")
        values = keep.pop("enum", None)
        branches = []
        for kind in kinds:
            branch: dict[str, Any] = {"type": kind}
            if kind != "null":
                branch.update(keep)
                if values is not None:
                    branch["enum"] = [v for v in values if v is not None]
            branches.append(branch)
        out["anyOf"] = branches
    if "anyOf" in out:
        out["anyOf"] = sorted(out["anyOf"], key=lambda b: json.dumps(b, sort_keys=True))
    return out


def semantic(schema: dict[str, Any]) -> Any:
    return _inline(schema, schema.get("$defs", {}))


@pytest.fixture(scope="module")
def ours() -> dict[str, FunctionSpec]:
    text = HOSTILE.read_text(encoding="utf-8")
    specs = extract_functions(text, "tools/adversary/hostile.py", workspace_loader(CORPUS))
    return {s.name: s for s in specs}


@pytest.fixture(scope="module")
def theirs() -> dict[str, dict[str, Any]]:
    from mcp.server.mcpserver import MCPServer

    spec = importlib.util.spec_from_file_location("ff_hostile_corpus", HOSTILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pydantic look their module up
    try:
        spec.loader.exec_module(module)
        server = MCPServer("oracle")
        for fn in list(vars(module).values()):
            if inspect.isfunction(fn) and fn.__module__ == spec.name:
                server.tool()(fn)
        tools = asyncio.run(server.list_tools())
    finally:
        del sys.modules[spec.name]
    return {t.name: t.input_schema for t in tools}


def test_every_tool_is_compared(ours: dict[str, FunctionSpec], theirs: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(theirs)
    assert len(ours) >= 36


@pytest.mark.parametrize("name", sorted(n for n in KEPT))
def test_the_kept_differences_still_differ(
    name: str, ours: dict[str, FunctionSpec], theirs: dict[str, Any]
) -> None:
    assert semantic(ours[name].parameters) != semantic(theirs[name]), KEPT[name]


def test_every_other_tool_says_what_pydantic_says(
    ours: dict[str, FunctionSpec], theirs: dict[str, Any]
) -> None:
    differ = []
    for name in sorted(set(ours) - set(KEPT)):
        mine, runtime = semantic(ours[name].parameters), semantic(theirs[name])
        for param, text in parse_docstring(ours[name].docstring).params.items():
            # the MCP SDK does not read docstrings; openai-agents (griffe) would
            if mine["properties"].get(param, {}).get("description") == text:
                del mine["properties"][param]["description"]
        if mine != runtime:
            differ.append(
                f"{name}:\n  funcforge {json.dumps(mine)}\n  pydantic  {json.dumps(runtime)}"
            )
    assert not differ, "\n".join(differ)


def test_the_kept_differences_are_otherwise_equal(
    ours: dict[str, FunctionSpec], theirs: dict[str, Any]
) -> None:
    """Outside the one difference each is kept for, the rest of the schema matches."""
    store_ours = semantic(ours["store"].parameters)
    store_theirs = semantic(theirs["store"])
    store_theirs["properties"]["home"].pop("default")
    assert store_ours == store_theirs
    numbers_theirs = semantic(theirs["numbers"])
    numbers_theirs["properties"]["c"].pop("default")
    assert semantic(ours["numbers"].parameters) == numbers_theirs
    walk_theirs = semantic(theirs["walk"])
    walk_theirs["properties"]["color"]["enum"] = ["red", "green"]
    assert semantic(ours["walk"].parameters) == walk_theirs
    assert any("type variable 'T' has no bound" in h for h in ours["first_page"].schema_hints)


def test_what_used_to_be_wrong(ours: dict[str, FunctionSpec]) -> None:
    """Each of these was lost or wrong before (found by comparing with pydantic)."""
    props = {name: spec.parameters["properties"] for name, spec in ours.items()}
    assert props["pick"]["choice"]["enum"] == ["auto", 0, 1, True, None]  # True == 1 in Python
    assert props["code_lookup"]["code"] == {
        "type": "string",
        "minLength": 2,
        "maxLength": 3,
        "pattern": "^[A-Z]+$",
    }  # StringConstraints
    assert props["list_items"]["limit"]["default"] == 20  # DEFAULT_LIMIT
    assert props["list_items"]["model"]["default"] == "small"
    assert props["list_items"]["page"]["maximum"] == 100  # Field(le=MAX_PAGE), MAX_PAGE: int
    assert props["list_items"]["mode"]["default"] == "small"
    assert props["store"]["blob"]["default"] == "abc"  # b"abc"
    assert props["store"]["path"]["default"] == "/tmp"  # Path("/tmp")
    assert props["store"]["amount"]["default"] == "1.50"  # Decimal("1.50")
    assert props["close_task"]["status"] == {"$ref": "#/$defs/Status", "default": "done"}
    assert props["login"]["token"]["format"] == "password"
    assert props["walk"]["shade"]["default"] == "2"  # (str, Enum) numbers auto() as text
    assert "e" in props["numbers"] and "minimum" not in props["numbers"]["e"]  # ge=None
    assert list(props["read_file"]) == ["file", "mode"]  # NFKC, as Python binds them
    assert props["read_file"]["file"]["description"] == "Path of the file."
    defs = ours["configure"].parameters["$defs"]
    assert defs["Query"]["properties"]["page"]["maximum"] == 100


def test_description_keeps_a_note_before_args_as_docstring_parser_does(
    ours: dict[str, FunctionSpec],
) -> None:
    import ast

    tree = ast.parse(HOSTILE.read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "create_ticket")
    parsed = docstring_parser.parse(ast.get_docstring(fn) or "")
    theirs = "\n\n".join(x for x in (parsed.short_description, parsed.long_description) if x)
    assert ours["create_ticket"].description == theirs
    assert "refuses exact duplicates" in ours["create_ticket"].description
    assert {p.arg_name: p.description for p in parsed.params} == {
        k: v["description"] for k, v in ours["create_ticket"].parameters["properties"].items()
    }


def test_imports_that_fall_back_keep_the_main_branch() -> None:
    text = (CORPUS / "tools/adversary/deep.py").read_text(encoding="utf-8")
    specs = {
        s.name: s
        for s in extract_functions(text, "tools/adversary/deep.py", workspace_loader(CORPUS))
    }
    pay = specs["pay"].parameters
    assert pay["properties"]["money"] == {"$ref": "#/$defs/Money"}  # not `Money = dict`
    assert pay["properties"]["invoice"] == {"$ref": "#/$defs/Invoice"}  # not `Invoice = object`
    assert pay["$defs"]["Money"]["properties"]["amount"]["maximum"] == 10000  # imported constant
    assert specs["pay"].schema_hints == []


# --- sizes and depths: no recursion error, no silent {} ---------------------------------


def _one(source: str, name: str = "tool") -> FunctionSpec:
    return next(s for s in extract_functions(source, "tools/t.py") if s.name == name)


def _chain(n: int) -> str:
    classes = "".join(
        f"class M{i}(BaseModel):\n    next: Optional[M{i + 1}] = None\n    v{i}: int = {i}\n\n"
        for i in range(n)
    )
    return (
        "from __future__ import annotations\nfrom typing import Optional\n"
        "from pydantic import BaseModel\n\n"
        f"{classes}class M{n}(BaseModel):\n    leaf: str\n\n"
        "def tool(m: M0) -> str:\n    return ''\n"
    )


@pytest.mark.parametrize("n", [200, 1500])
def test_a_deep_chain_of_models_is_written_whole(n: int) -> None:
    spec = _one(_chain(n))
    defs = spec.parameters["$defs"]
    assert len(defs) == n + 1 and spec.schema_hints == []
    assert defs[f"M{n - 1}"]["properties"]["next"]["anyOf"][0] == {"$ref": f"#/$defs/M{n}"}
    assert defs[f"M{n}"]["required"] == ["leaf"]


def test_a_deep_chain_in_a_thread_with_a_small_stack_budget() -> None:
    """The language server extracts in worker threads: the chain must not need a deep stack."""
    out: list[Any] = []
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        worker = threading.Thread(target=lambda: out.append(_one(_chain(300))))
        worker.start()
        worker.join()
    finally:
        sys.setrecursionlimit(old)
    assert out and len(out[0].parameters["$defs"]) == 301


def test_a_huge_literal_and_a_huge_enum() -> None:
    members = ", ".join(f'"v{i}"' for i in range(1000))
    values = "".join(f"    M{i} = {i}\n" for i in range(2000))
    spec = _one(
        "from typing import Literal\nfrom enum import Enum\n"
        f"Big = Literal[{members}]\nclass E(Enum):\n{values}\n"
        "def tool(x: Big = 'v999', e: E = E.M1999) -> str:\n    return ''\n"
    )
    assert len(spec.parameters["properties"]["x"]["enum"]) == 1000
    assert spec.parameters["properties"]["e"]["default"] == 1999
    assert len(spec.parameters["$defs"]["E"]["enum"]) == 2000


def test_too_deep_an_annotation_is_a_hint_not_a_silent_empty_schema() -> None:
    aliases = "".join(f"A{i} = A{i + 1}\n" for i in range(300)) + "A300 = int\n"
    spec = _one(aliases + "def tool(x: A0) -> str:\n    return ''\n")
    assert spec.parameters["properties"]["x"] == {}
    assert any("nested more than 60 levels" in h for h in spec.schema_hints)
    nested = "list[" * 90 + "int" + "]" * 90
    spec = _one(f"def tool(x: {nested}) -> str:\n    return ''\n")
    assert any("nested more than 60 levels" in h for h in spec.schema_hints)


def test_alias_cycles_and_base_cycles_end_with_a_hint() -> None:
    spec = _one("A = B\nB = A\ndef tool(x: A, y: 'B' = None) -> str:\n    return ''\n")
    assert spec.parameters["properties"] == {"x": {}, "y": {"default": None}}
    assert len(spec.schema_hints) == 2
    spec = _one(
        "class A(B):\n    x: int\nclass B(A):\n    y: int\ndef tool(a: A) -> str:\n    return ''\n"
    )
    assert any("class 'A' is not an Enum" in h for h in spec.schema_hints)


def test_a_typeddict_deep_in_inheritance_keeps_every_field() -> None:
    chain = "".join(f"class T{i}(T{i - 1}):\n    a{i}: int\n" for i in range(1, 120))
    spec = _one(
        "from typing import TypedDict\nclass T0(TypedDict):\n    a0: int\n"
        + chain
        + "def tool(t: T119) -> str:\n    return ''\n"
    )
    assert len(spec.parameters["$defs"]["T119"]["required"]) == 120


def test_a_constant_used_as_a_type_says_so() -> None:
    spec = _one("LIMIT: int = 3\ndef tool(x: LIMIT) -> str:\n    return ''\n")
    assert spec.parameters["properties"]["x"] == {}
    assert any("'LIMIT' is a value, not a type" in h for h in spec.schema_hints)


def test_a_field_argument_that_is_not_a_value_is_a_hint() -> None:
    spec = _one(
        textwrap.dedent(
            """\
            from pydantic import Field
            def tool(n: int = Field(1, description=f"up to {2}", le=int("3"))) -> str:
                return ''
            """
        )
    )
    assert spec.parameters["properties"]["n"] == {"type": "integer", "default": 1}
    assert any("Field description=" in h for h in spec.schema_hints)
    assert any("Field le=" in h for h in spec.schema_hints)
