"""Named types resolved statically, `Field` metadata, context parameters, and honest hints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from funcforge.toolset.extract import extract_functions
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.types import workspace_loader


def one(source: str, name: str = "tool") -> FunctionSpec:
    return next(s for s in extract_functions(source) if s.name == name)


def params(source: str) -> dict[str, Any]:
    return one(source).parameters


def test_typeddict_totality_required_notrequired_and_inheritance() -> None:
    p = params(
        "from typing import TypedDict, Required, NotRequired\n"
        "class Base(TypedDict, total=False):\n    tag: str\n    must: Required[int]\n"
        "class Movie(Base):\n    title: str\n    year: NotRequired[int]\n"
        "def tool(m: Movie): pass\n"
    )
    movie = p["$defs"]["Movie"]
    assert list(movie["properties"]) == ["tag", "must", "title", "year"]
    assert movie["required"] == ["must", "title"]


def test_functional_typeddict_newtype_and_typevar_bound() -> None:
    p = params(
        "from typing import NewType, TypedDict, TypeVar\n"
        "UserId = NewType('UserId', int)\n"
        "Point = TypedDict('Point', {'x': float, 'y': float}, total=False)\n"
        "N = TypeVar('N', bound=float)\n"
        "def tool(u: UserId, p: Point, n: N): pass\n"
    )["properties"]
    assert p["u"] == {"type": "integer"}
    assert p["p"] == {
        "title": "Point",
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
    }
    assert p["n"] == {"type": "number"}


def test_enums_auto_strenum_and_member_defaults() -> None:
    p = params(
        "import enum\n"
        "class Mode(enum.StrEnum):\n    FAST = enum.auto()\n    SAFE = enum.auto()\n"
        "class Size(enum.IntEnum):\n    S = 1\n    M = 2\n    ALSO_M = 2\n"
        "def tool(mode: Mode = Mode.SAFE, size: Size = Size.M): pass\n"
    )
    assert p["$defs"]["Mode"]["enum"] == ["fast", "safe"]
    assert p["$defs"]["Size"] == {"title": "Size", "type": "integer", "enum": [1, 2]}
    assert p["properties"]["mode"]["default"] == "safe"
    assert p["properties"]["size"]["default"] == 2
    assert "required" not in p


def test_models_inherit_fields_alias_and_constraints() -> None:
    p = params(
        "from typing import Annotated, ClassVar, Optional\n"
        "from pydantic import BaseModel, Field\n"
        "from annotated_types import Ge, Len\n"
        "class Base(BaseModel):\n    id: int\n    registry: ClassVar[dict] = {}\n    _secret: str = 'x'\n"
        "class Query(Base):\n"
        "    '''A search.'''\n"
        "    text: str = Field(alias='q', min_length=1)\n"
        "    tags: Annotated[list[str], Len(1, 5)]\n"
        "    page: Annotated[int, Ge(1)] = 1\n"
        "    limit: Optional[int] = Field(None, ge=0, le=100)\n"
        "    extra: dict = Field(default_factory=dict, json_schema_extra={'x-note': 'free'})\n"
        "def tool(q: Query): pass\n"
    )
    query = p["$defs"]["Query"]
    assert query["description"] == "A search."
    assert list(query["properties"]) == ["id", "q", "tags", "page", "limit", "extra"]
    assert query["required"] == ["id", "q", "tags"]
    assert query["properties"]["q"] == {"type": "string", "minLength": 1}
    assert query["properties"]["tags"]["minItems"] == 1
    assert query["properties"]["tags"]["maxItems"] == 5
    assert query["properties"]["page"] == {"type": "integer", "minimum": 1, "default": 1}
    assert query["properties"]["limit"] == {
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": 100,
        "default": None,
    }
    assert query["properties"]["extra"] == {"type": "object", "x-note": "free"}


def test_dataclass_fields_and_a_recursive_reference() -> None:
    p = params(
        "from __future__ import annotations\n"
        "import dataclasses\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Node:\n    name: str\n    children: list[Node] = dataclasses.field(default_factory=list)\n"
        "    weight: float = dataclasses.field(default=1.0)\n"
        "def tool(root: Node): pass\n"
    )
    node = p["$defs"]["Node"]
    assert node["required"] == ["name"]
    assert node["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    assert node["properties"]["weight"] == {"type": "number", "default": 1.0}


def test_field_as_parameter_default_and_in_annotated() -> None:
    p = params(
        "from typing import Annotated\n"
        "from pydantic import Field\n"
        "from typing_extensions import Doc\n"
        "def tool(\n"
        "    a: str = Field(description='needed'),\n"
        "    b: int = Field(..., gt=0),\n"
        "    c: Annotated[str, Field(description='has a default')] = 'x',\n"
        "    d: Annotated[int, Doc('documented')] = 3,\n"
        "    e: list[int] = Field(default_factory=list),\n"
        "    f=Field(7, description='unannotated'),\n"
        "):\n"
        "    '''Tool.\n\n    Args:\n        a: from the docstring (Field wins).\n        e: from the docstring.\n    '''\n"
    )
    props = p["properties"]
    assert p["required"] == ["a", "b"]
    assert props["a"] == {"type": "string", "description": "needed"}
    assert props["b"] == {"type": "integer", "exclusiveMinimum": 0}
    assert props["c"] == {"type": "string", "description": "has a default", "default": "x"}
    assert props["d"] == {"type": "integer", "description": "documented", "default": 3}
    assert props["e"] == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "from the docstring.",
    }
    assert props["f"] == {"description": "unannotated", "default": 7}


def test_context_parameters_are_hidden_unless_the_type_is_the_files_own() -> None:
    spec = one(
        "from pydantic_ai import RunContext\n"
        "def tool(ctx: 'RunContext[int]', x: int): pass\n"
        "class Context(dict):\n    pass\n"
    )
    assert list(spec.parameters["properties"]) == ["x"]
    own = one(
        "from typing import TypedDict\n"
        "class Context(TypedDict):\n    user: str\n"
        "def tool(ctx: Context, x: int): pass\n"
    )
    assert list(own.parameters["properties"]) == ["ctx", "x"]


def test_what_cannot_be_resolved_is_said_not_silent() -> None:
    spec = one(
        "from typing import Callable\n"
        "import vendor.types as vt\n"
        "from vendor import Widget\n"
        "A = A\n"
        "def tool(a: A, c: Callable[[int], str], w: Widget, v: vt.Thing, m: 'Missing', z: complex): pass\n"
    )
    assert all(s == {} for s in spec.parameters["properties"].values())
    hints = "\n".join(spec.schema_hints)
    assert "parameter 'a': type alias 'A' only refers to itself" in hints
    assert "parameter 'c': type 'Callable' has no JSON Schema form" in hints
    assert "parameter 'w': type 'Widget' is imported from 'vendor'" in hints
    assert "parameter 'v': type 'vt.Thing' is imported from 'vendor.types'" in hints
    assert "parameter 'm': type 'Missing' is not defined" in hints
    assert "parameter 'z': type 'complex' has no JSON Schema form" in hints


def test_imports_from_workspace_files_never_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "tools" / "sub").mkdir(parents=True)
    (tmp_path / "outside.py").write_text("from typing import Literal\nX = Literal['no']\n")
    (root / "tools" / "common.py").write_text(
        "from enum import Enum\nclass Color(Enum):\n    RED = 'red'\n"
    )
    (root / "tools" / "sub" / "more.py").write_text("from ..common import Color as Colour\n")
    source = (
        "from ..common import Color\n"
        "from .more import Colour\n"
        "from ....outside import X\n"
        "def tool(a: Color, b: Colour, x: X): pass\n"
    )
    spec = extract_functions(source, "tools/sub/t.py", workspace_loader(root))[0]
    props = spec.parameters["properties"]
    assert props["a"] == props["b"] == {"$ref": "#/$defs/Color"}
    assert spec.parameters["$defs"]["Color"]["enum"] == ["red"]
    assert props["x"] == {}
    assert any("'X' is imported from '....outside'" in h for h in spec.schema_hints)


def test_a_model_that_forbids_extra_fields_says_so() -> None:
    p = params(
        "from pydantic import BaseModel, ConfigDict\n"
        "class Strict(BaseModel):\n    model_config = ConfigDict(extra='forbid')\n    a: int\n"
        "class Loose(BaseModel):\n    model_config = {'extra': 'allow'}\n    a: int\n"
        "def tool(s: Strict, l: Loose): pass\n"
    )
    assert p["$defs"]["Strict"]["additionalProperties"] is False
    assert list(p["$defs"]["Strict"]["properties"]) == ["a"]
    assert "additionalProperties" not in p["$defs"]["Loose"]


def test_the_mcp_tool_server_resolves_types_across_a_versions_files(tmp_path: Path) -> None:
    from funcforge.config import load_config
    from funcforge.toolserver import ToolServer

    files = {
        "tools/models.py": "from typing import Literal\nUnit = Literal['km', 'm']\n",
        "tools/convert.py": "from .models import Unit\n\ndef convert(x: float, unit: Unit) -> float:\n"
        "    return x\n",
    }
    server = ToolServer(load_config(tmp_path), files=files, version="abc1234", workers=1)
    try:
        (spec,) = server.specs()
        assert spec.parameters["properties"]["unit"] == {"type": "string", "enum": ["km", "m"]}
    finally:
        server.close()


def test_a_namedtuple_is_an_array_of_its_fields() -> None:
    p = params(
        "from typing import NamedTuple\n"
        "class Pair(NamedTuple):\n    left: int\n    right: str = 'r'\n"
        "def tool(pair: Pair): pass\n"
    )
    assert p["$defs"]["Pair"] == {
        "title": "Pair",
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string", "default": "r"}],
        "minItems": 1,
        "maxItems": 2,
    }
