"""Property tests: any annotation gives a valid parameters schema whose `$ref`s all resolve."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funcforge.toolset.extract import extract_functions
from funcforge.toolset.schema import schema_problems

PRELUDE = """from __future__ import annotations
import enum
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional, TypedDict, Union
from pydantic import BaseModel, Field
from vendor import Thing

Alias = Literal["a", "b"]
Loop = Union[dict[str, "Loop"], list["Loop"], int, None]
Self = Self


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class Point(TypedDict, total=False):
    x: float
    parent: Optional["Point"]


class Model(BaseModel):
    name: str = Field(description="n", min_length=1)
    child: Optional[Model] = None
    pts: list[Point] = Field(default_factory=list)


@dataclass
class Box:
    items: list[Model]
    tag: Alias = "a"
    other: "Box | None" = None


class Plain:
    pass
"""

LEAVES = [
    "int",
    "str",
    "float",
    "bool",
    "None",
    "Any",
    "Alias",
    "Loop",
    "Self",
    "Color",
    "Point",
    "Model",
    "Box",
    "Plain",
    "Thing",
    "Missing",
    "bytes",
    "complex",
    "'Model'",
    "Literal[1, 'x', None]",
    "Literal[Color]",
]


def annotations() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            inner.map(lambda a: f"list[{a}]"),
            inner.map(lambda a: f"Optional[{a}]"),
            st.tuples(inner, inner).map(lambda ab: f"{ab[0]} | {ab[1]}"),
            st.tuples(inner, inner).map(lambda ab: f"dict[{ab[0]}, {ab[1]}]"),
            st.tuples(inner, inner).map(lambda ab: f"tuple[{ab[0]}, {ab[1]}]"),
            inner.map(lambda a: f"Annotated[{a}, Field(ge=0, description='d')]"),
            inner.map(lambda a: f"Annotated[{a}, 'text']"),
            inner.map(lambda a: f"Union[{a}, int]"),
        )

    return st.recursive(st.sampled_from(LEAVES), extend, max_leaves=6)


def refs(schema: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                out.add(value)
            else:
                out |= refs(value)
    elif isinstance(schema, list):
        for value in schema:
            out |= refs(value)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(annotations(), min_size=1, max_size=3))
def test_any_annotation_gives_a_valid_self_contained_schema(anns: list[str]) -> None:
    args = ", ".join(f"p{i}: {a}" for i, a in enumerate(anns))
    source = PRELUDE + f"\n\ndef tool({args}) -> None:\n    pass\n"
    (spec,) = extract_functions(source, "tools/t.py")
    params = spec.parameters
    assert schema_problems(params) == []
    json.dumps(params, allow_nan=False)
    defs = params.get("$defs", {})
    for ref in refs(params):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs, ref
    for key, schema in defs.items():
        assert schema != {"$ref": f"#/$defs/{key}"}  # never a definition that is only itself
    assert list(params["properties"]) == [f"p{i}" for i in range(len(anns))]
