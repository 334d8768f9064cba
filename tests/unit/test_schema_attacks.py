"""Schemas attacked with what real tool files write, checked against the MCP SDK where it can say.

The MCP SDK (`MCPServer`, pydantic underneath) is a peer the frameworks
share: for annotations both can read, funcforge's static schema must say what
the SDK's runtime schema says (titles aside, `const` read as a one-value
`enum`). What the SDK cannot say statically-equal is pinned by hand, and a
type funcforge cannot read must come with a hint, never a silent `{}`.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from funcforge.toolset.extract import extract_functions
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.types import workspace_loader

PRELUDE = textwrap.dedent(
    """\
    from enum import Enum
    from ipaddress import IPv4Address, IPv6Address
    from typing import Literal, Optional
    from pydantic import (
        NonNegativeInt, PositiveFloat, PositiveInt, StrictStr,
        conint, confloat, conlist, conset, constr,
    )

    LIMIT = 3

    class Color(Enum):
        RED = "red"
        BLUE = "blue"
    """
)


def one(source: str, name: str = "tool") -> FunctionSpec:
    return next(s for s in extract_functions(source, "tools/t.py") if s.name == name)


def _normal(schema: Any) -> Any:
    """A schema without titles, `const` as a one-value `enum` (pydantic writes both forms)."""
    if isinstance(schema, list):
        return [_normal(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _normal(v) for k, v in schema.items() if k != "title"}
    if "const" in out:
        out.setdefault("enum", [out.pop("const")])
        out.pop("const", None)
    return out


def mcp_schema(source: str, name: str = "tool") -> dict[str, Any]:
    """The input schema the MCP SDK gives the function `name` of `source` (run here, in the test)."""
    from mcp.server.mcpserver import MCPServer

    namespace: dict[str, Any] = {}
    exec(compile(source, "<tool>", "exec"), namespace)
    server = MCPServer("attack")
    server.tool()(namespace[name])
    (tool,) = asyncio.run(server.list_tools())
    return _normal(tool.input_schema)


@pytest.mark.parametrize(
    "annotation",
    [
        "conint(ge=1)",
        "conint(gt=0, le=10, multiple_of=2)",
        "confloat(ge=0.0, lt=1.0)",
        "constr(min_length=2, max_length=5)",
        "constr(pattern=r'^[a-z]+$')",
        "conlist(int, min_length=1, max_length=3)",
        "conset(str)",
        "PositiveInt",
        "NonNegativeInt",
        "PositiveFloat",
        "StrictStr",
        "IPv4Address",
        "IPv6Address",
        "tuple[int, str]",
        "tuple[int, str, bool]",
        "tuple[()]",
        "tuple[int, ...]",
        "Literal[Color.RED]",
        "Literal[Color.RED, Color.BLUE]",
        "Optional[None]",
    ],
)
def test_annotation_schema_matches_the_mcp_sdk(annotation: str) -> None:
    source = PRELUDE + f"\n\ndef tool(x: {annotation}) -> None:\n    pass\n"
    spec = one(source)
    assert spec.schema_hints == []
    ours = _normal(spec.parameters)
    theirs = mcp_schema(source)
    assert ours["properties"]["x"] == theirs["properties"]["x"]
    assert ours.get("required") == theirs.get("required")


def test_a_literal_of_a_module_constant_is_its_value() -> None:
    spec = one(PRELUDE + "\ndef tool(n: Literal[LIMIT, 5] = 5) -> None:\n    pass\n")
    assert spec.parameters["properties"]["n"] == {"type": "integer", "enum": [3, 5], "default": 5}
    assert spec.schema_hints == []


@pytest.mark.parametrize(
    ("annotation", "says"),
    [
        ("Literal[make()]", "'make()' in Literal[...] is not a literal"),
        ("Literal[Color]", "'Color' in Literal[...] is not a literal"),
        ("[int]", "annotation '[int]' is not a type"),
        ("(int, str)", "annotation '(int, str)' is not a type"),
        ("...", "annotation '...' is not a type"),
        ("make_type()", "annotation 'make_type()' is a call funcforge cannot read"),
        ("Type[int]", "type 'Type[int]' is a class"),
    ],
)
def test_what_cannot_be_read_says_so(annotation: str, says: str) -> None:
    source = (
        PRELUDE + f"\nfrom typing import Type\n\ndef tool(x: {annotation}) -> None:\n    pass\n"
    )
    spec = one(source)
    assert spec.parameters["properties"]["x"] == {}
    assert any(says in hint and "parameter 'x'" in hint for hint in spec.schema_hints), (
        spec.schema_hints
    )


def test_a_decorators_description_wins_like_the_mcp_sdk() -> None:
    source = textwrap.dedent(
        '''\
        from mcp.server.mcpserver import MCPServer

        mcp = MCPServer("x")

        @mcp.tool(description="Add two numbers, exactly.")
        def add(a: int, b: int = 1) -> int:
            """What the model is not shown."""
            return a + b
        '''
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<tool>", "exec"), namespace)
    (tool,) = asyncio.run(namespace["mcp"].list_tools())
    spec = one(source, "add")
    assert spec.description == tool.description == "Add two numbers, exactly."
    assert _normal(spec.parameters) == _normal(tool.input_schema)
    assert spec.schema_hints == []


@pytest.mark.parametrize(
    ("decorator", "description"),
    [
        ('@function_tool(description_override="Fetch a page.")', "Fetch a page."),
        ('@kernel_function(description="Fetch a page.")', "Fetch a page."),
        ('@assistant.register_for_llm(description="Fetch a page.")', "Fetch a page."),
        ('@agent.tool_plain(description="Fetch a page.")', "Fetch a page."),
        ('@tool(description="Fetch a page.")', "Fetch a page."),
        ("@tool", "The docstring."),
        ('@app.get("/x", description="Not a tool decorator.")', "The docstring."),
    ],
)
def test_tool_decorator_descriptions(decorator: str, description: str) -> None:
    source = f'{decorator}\ndef fetch(url: str) -> str:\n    """The docstring."""\n'
    assert one(source, "fetch").description == description


def test_a_name_given_by_the_decorator_is_a_hint() -> None:
    for decorator in (
        '@tool("web_search")',
        '@function_tool(name_override="web_search")',
        '@mcp.tool(name="web_search")',
        '@kernel_function(name="web_search")',
    ):
        spec = one(f"{decorator}\ndef search(q: str) -> str:\n    pass\n", "search")
        assert spec.name == "search"
        assert any("names this tool 'web_search'" in h for h in spec.schema_hints), decorator
    same = one('@tool("search")\ndef search(q: str) -> str:\n    pass\n', "search")
    assert same.schema_hints == []


def test_a_description_that_is_not_a_literal_is_a_hint() -> None:
    spec = one(
        'DESC = "x"\n@mcp.tool(description=DESC)\ndef add(a: int) -> int:\n    """Doc."""\n', "add"
    )
    assert spec.description == "Doc."
    assert any("description is not a literal string" in h for h in spec.schema_hints)


def test_langchain_args_schema_is_the_parameters_object() -> None:
    source = textwrap.dedent(
        '''\
        from langchain_core.tools import tool
        from pydantic import BaseModel, Field
        from typing import Literal

        class Filters(BaseModel):
            site: str | None = None

        class SearchInput(BaseModel):
            """Search input."""

            query: str = Field(description="What to search for")
            k: int = Field(5, ge=1, le=50)
            mode: Literal["web", "news"] = "web"
            filters: Filters | None = None

        @tool("search", args_schema=SearchInput)
        def search(query: str, k: int = 5, mode: str = "web", filters=None) -> str:
            """Search the web."""
            return ""
        '''
    )
    spec = one(source, "search")
    assert spec.description == "Search the web."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to search for"},
            "k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
            "mode": {"type": "string", "enum": ["web", "news"], "default": "web"},
            "filters": {"anyOf": [{"$ref": "#/$defs/Filters"}, {"type": "null"}], "default": None},
        },
        "required": ["query"],
        "$defs": {
            "Filters": {
                "title": "Filters",
                "type": "object",
                "properties": {"site": {"type": ["string", "null"], "default": None}},
            }
        },
    }
    assert spec.schema_hints == []


def test_an_args_schema_funcforge_cannot_read_falls_back_with_a_hint() -> None:
    spec = one(
        "from vendor import Model\n@tool(args_schema=Model)\ndef f(x: int) -> int:\n    pass\n",
        "f",
    )
    assert spec.parameters["properties"] == {"x": {"type": "integer"}}
    assert any("args_schema 'Model' is not a model" in h for h in spec.schema_hints)


def test_a_recursive_args_schema_keeps_its_definition() -> None:
    source = (
        "from pydantic import BaseModel\n"
        "class Node(BaseModel):\n    value: int\n    children: list['Node'] = []\n"
        "@tool(args_schema=Node)\ndef f(value: int) -> None:\n    pass\n"
    )
    params = one(source, "f").parameters
    assert params["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "Node" in params["$defs"]


def _workspace(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_types_through_star_imports_and_dotted_submodules(tmp_path: Path) -> None:
    _workspace(
        tmp_path,
        {
            "tools/shop/__init__.py": "from .models import *\n",
            "tools/shop/models.py": """\
                from enum import Enum
                from pydantic import BaseModel

                class Status(str, Enum):
                    OPEN = "open"
                    DONE = "done"

                class Order(BaseModel):
                    id: int
                """,
            "tools/shop/tools.py": """\
                import tools.shop.models
                import tools.shop
                from .models import *

                def act(a: Status, b: tools.shop.models.Order, c: tools.shop.Status) -> None:
                    pass
                """,
        },
    )
    text = (tmp_path / "tools/shop/tools.py").read_text(encoding="utf-8")
    (spec,) = extract_functions(text, "tools/shop/tools.py", workspace_loader(tmp_path))
    assert spec.schema_hints == []
    assert spec.parameters["properties"] == {
        "a": {"$ref": "#/$defs/Status"},
        "b": {"$ref": "#/$defs/Order"},
        "c": {"$ref": "#/$defs/Status"},
    }
    assert spec.parameters["$defs"]["Status"]["enum"] == ["open", "done"]


@pytest.mark.parametrize(
    ("annotation", "says"),
    [
        ("np.ndarray", "imported from 'numpy', which is not in the workspace"),
        ("np.ndarray[int]", "imported from 'numpy', which is not in the workspace"),
        ("vendor.sub.Widget", "imported from 'vendor.sub', which is not in the workspace"),
        ("np", "imported from 'numpy', which is not in the workspace"),
        ("models", "'models' is a module, not a type"),
        ("Callable", "type 'Callable' has no JSON Schema form"),
    ],
)
def test_a_module_path_funcforge_cannot_follow_says_where(
    tmp_path: Path, annotation: str, says: str
) -> None:
    _workspace(tmp_path, {"tools/models.py": "X = 1\n"})
    source = (
        "import numpy as np\nimport vendor.sub\nfrom typing import *\nfrom tools import models\n"
        f"def tool(x: {annotation}) -> None:\n    pass\n"
    )
    (spec,) = extract_functions(source, "tools/t.py", workspace_loader(tmp_path))
    assert spec.parameters["properties"]["x"] == {}
    assert any(says in h for h in spec.schema_hints), spec.schema_hints


@pytest.mark.parametrize(
    "signature",
    [
        "x: set[int] = {2, 1}",
        "x: Optional[int] = Field(default=None, description='the x')",
        "x: int = Field(3, ge=0, description='the x')",
        "x: list[int] = Field(default_factory=list)",
        "x: Annotated[int, Field(description='the x')] = 5",
        "x: Annotated[int, Field(default=2, description='d')]",
        "x: str = Field(..., examples=['a', 'b'], title='XX')",
        "x: dict[str, int] = {'a': 1}",
        "x: tuple[int, int] = (1, 2)",
        "x: Color = Color.RED",
        "x: Union[Literal['a'], int] = 'a'",
        "*, x: int = 1",
        "x: int, /",
        "x: Annotated[str, Field(pattern=r'^a+$', max_length=5)]",
    ],
)
def test_defaults_and_field_match_the_mcp_sdk(signature: str) -> None:
    source = (
        "from typing import Annotated, Literal, Optional, Union\n"
        "from pydantic import Field\nfrom enum import Enum\n"
        "class Color(Enum):\n    RED = 'red'\n    BLUE = 'blue'\n"
        f"def tool({signature}) -> None:\n    pass\n"
    )
    spec = one(source)
    assert spec.schema_hints == []
    ours, theirs = _normal(spec.parameters), mcp_schema(source)
    ours.pop("$defs", None)
    theirs.pop("$defs", None)
    # funcforge writes `Optional[int]` as a type list, pydantic as anyOf: the same values.
    if ours["properties"]["x"].get("type") == ["integer", "null"]:
        ours["properties"]["x"].pop("type")
        theirs["properties"]["x"].pop("anyOf")
    assert ours == theirs


def test_a_parameter_alias_is_a_hint() -> None:
    spec = one(
        "from typing import Annotated\nfrom pydantic import Field\n"
        "def tool(x: Annotated[str, Field(alias='from')]) -> None:\n    pass\n"
    )
    assert list(spec.parameters["properties"]) == ["x"]
    assert any("alias 'from'" in h and "parameter 'x'" in h for h in spec.schema_hints)


@pytest.mark.parametrize(
    ("call", "description", "name_hint"),
    [
        (
            'register_function(calc, caller=a, executor=b, name="calculator", '
            'description="A simple calculator.")',
            "A simple calculator.",
            "register_function names this tool 'calculator'",
        ),
        ('tool = FunctionTool.from_defaults(fn=calc, description="Add.")', "Add.", None),
        (
            'tool = StructuredTool.from_function(func=calc, name="add", description="Add.")',
            "Add.",
            "StructuredTool.from_function names this tool 'add'",
        ),
        ('Tool(name="calc", func=calc, description="Add.")', "Add.", None),
        ('t = create_tool_from_function(calc, description="Add.")', "Add.", None),
        ('t = FunctionTool.from_defaults(fn=other, description="Not calc.")', "Doc calc.", None),
        ('print(calc, description="not a registration")', "Doc calc.", None),
    ],
)
def test_a_registration_call_says_what_the_model_sees(
    call: str, description: str, name_hint: str | None
) -> None:
    source = (
        'def calc(a: int, b: int) -> int:\n    """Doc calc."""\n    return a + b\n\n'
        'def other() -> None:\n    """Doc other."""\n\n' + call + "\n"
    )
    spec = one(source, "calc")
    assert spec.description == description
    if name_hint is None:
        assert spec.schema_hints == []
    else:
        assert any(name_hint in h for h in spec.schema_hints), spec.schema_hints


def test_a_decorator_wins_over_a_registration() -> None:
    source = (
        '@tool(description="From the decorator.")\ndef calc(a: int) -> int:\n    """Doc."""\n\n'
        'FunctionTool.from_defaults(fn=calc, description="From the call.")\n'
    )
    assert one(source, "calc").description == "From the decorator."
