"""Extraction of tool functions (libcst -> FunctionSpec): schemas, docstrings, packages, spans."""

from __future__ import annotations

import textwrap

import pytest

from funcforge.errors import UserError
from funcforge.toolset.extract import ToolsetSyntaxError, extract_functions
from funcforge.toolset.schema import parse_docstring, schema_problems


def one(source: str, name: str | None = None):
    specs = extract_functions(textwrap.dedent(source), "tools/t.py")
    if name is None:
        assert len(specs) == 1, [s.name for s in specs]
        return specs[0]
    return next(s for s in specs if s.name == name)


def prop(source: str, param: str) -> dict:
    return one(source).parameters["properties"][param]


# --- which functions ---------------------------------------------------------


def test_public_top_level_sync_and_async_functions_only() -> None:
    specs = extract_functions(
        textwrap.dedent(
            """
            def a(): pass
            async def b(): pass
            def _private(): pass
            class C:
                def method(self): pass
            if True:
                def in_if(): pass
            def outer():
                def nested(): pass
            """
        ),
        "t.py",
    )
    assert [s.name for s in specs] == ["a", "b", "outer"]
    assert [s.is_async for s in specs] == [False, True, False]


# --- annotations -> JSON Schema -------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        ("str", {"type": "string"}),
        ("int", {"type": "integer"}),
        ("float", {"type": "number"}),
        ("bool", {"type": "boolean"}),
        ("list", {"type": "array"}),
        ("list[int]", {"type": "array", "items": {"type": "integer"}}),
        ("List[str]", {"type": "array", "items": {"type": "string"}}),
        ("typing.List[float]", {"type": "array", "items": {"type": "number"}}),
        (
            "list[list[str]]",
            {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        ),
        ("dict", {"type": "object"}),
        ("dict[str, int]", {"type": "object", "additionalProperties": {"type": "integer"}}),
        ("Dict[str, float]", {"type": "object", "additionalProperties": {"type": "number"}}),
        ("dict[str, Any]", {"type": "object"}),
        ("Optional[int]", {"type": ["integer", "null"]}),
        ("int | None", {"type": ["integer", "null"]}),
        ("None | str", {"type": ["string", "null"]}),
        ("Union[int, str]", {"type": ["integer", "string"]}),
        ("Union[int, str, None]", {"type": ["integer", "string", "null"]}),
        ("Literal['km', 'mile']", {"type": "string", "enum": ["km", "mile"]}),
        ("Literal[1, 2, -3]", {"type": "integer", "enum": [1, 2, -3]}),
        ("Literal[1, 'a']", {"enum": [1, "a"]}),
        (
            "Optional[Literal['a', 'b']]",
            {"type": ["string", "null"], "enum": ["a", "b", None]},
        ),
        ("Optional[list[int]]", {"type": ["array", "null"], "items": {"type": "integer"}}),
        (
            "list[int] | dict[str, int]",
            {
                "anyOf": [
                    {"type": "array", "items": {"type": "integer"}},
                    {"type": "object", "additionalProperties": {"type": "integer"}},
                ]
            },
        ),
        ("tuple[int, ...]", {"type": "array", "items": {"type": "integer"}}),
        (
            "tuple[int, str]",
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        ("set[str]", {"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
        ("Sequence[str]", {"type": "array", "items": {"type": "string"}}),
        ("Mapping[str, str]", {"type": "object", "additionalProperties": {"type": "string"}}),
        ("Annotated[str, 'the city name']", {"type": "string", "description": "the city name"}),
        ("'list[int]'", {"type": "array", "items": {"type": "integer"}}),
        ("Any", {}),
        ("typing.Any", {}),
        ("MyClass", {}),
        ("int | Any", {}),
    ],
)
def test_annotation_schema(annotation: str, schema: dict) -> None:
    assert prop(f"def f(x: {annotation}): pass\n", "x") == schema


def test_missing_annotation_has_no_type_constraint() -> None:
    assert prop("def f(x): pass\n", "x") == {}


def test_defaults_are_not_required_and_recorded_when_literal() -> None:
    spec = one(
        """
        def f(a: int, b: str = "km", c: float = 1.5, d: list[int] = [1, 2], e=None,
              g: object = object(), *args, h: bool, i: int = 3, **kwargs):
            pass
        """
    )
    params = spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["a", "h"]
    assert list(params["properties"]) == ["a", "b", "c", "d", "e", "g", "h", "i"]
    assert params["properties"]["b"] == {"type": "string", "default": "km"}
    assert params["properties"]["c"]["default"] == 1.5
    assert params["properties"]["d"]["default"] == [1, 2]
    assert params["properties"]["e"] == {"default": None}
    assert "default" not in params["properties"]["g"]  # not a literal
    assert "args" not in params["properties"] and "kwargs" not in params["properties"]


def test_no_parameters_gives_empty_object_without_required() -> None:
    assert one("def f() -> str: return 'x'\n").parameters == {"type": "object", "properties": {}}


def test_positional_only_and_keyword_only_parameters() -> None:
    params = one("def f(a: int, /, b: str, *, c: bool = True): pass\n").parameters
    assert list(params["properties"]) == ["a", "b", "c"]
    assert params["required"] == ["a", "b"]


# --- docstrings ----------------------------------------------------------------

GOOGLE = '''
def convert(value: float, unit: str = "km") -> float:
    """Convert a distance to metres.

    Works for metric and imperial units.

    Args:
        value (float): The distance, in the
            given unit.
        unit: Unit name, e.g. "km" or "mile".

    Returns:
        The distance in metres.
    """
'''

NUMPY = '''
def convert(value, unit="km"):
    """
    Convert a distance
    to metres.

    Parameters
    ----------
    value : float
        The distance, in the
        given unit.
    unit : str, optional
        Unit name.

    Returns
    -------
    float
        Metres.
    """
'''

SPHINX = '''
def convert(value, unit="km"):
    """Convert a distance to metres.

    :param float value: The distance, in the
        given unit.
    :param unit: Unit name.
    :type unit: str
    :returns: Metres.
    """
'''


@pytest.mark.parametrize("source", [GOOGLE, NUMPY, SPHINX], ids=["google", "numpy", "sphinx"])
def test_docstring_styles_give_summary_and_parameter_descriptions(source: str) -> None:
    spec = one(source)
    # All the prose before the first section, line breaks kept.
    assert " ".join(spec.description.split()).startswith("Convert a distance to metres.")
    assert "Args" not in spec.description and "Parameters" not in spec.description
    assert ":param" not in spec.description
    props = spec.parameters["properties"]
    assert props["value"]["description"] == "The distance, in the given unit."
    assert props["unit"]["description"].startswith("Unit name")
    assert "Returns" not in props["unit"]["description"]
    assert "Metres" not in props["unit"]["description"]
    assert spec.docstring is not None and spec.docstring.startswith("Convert a distance")


def test_description_keeps_every_paragraph_before_the_first_section() -> None:
    assert one(GOOGLE).description == (
        "Convert a distance to metres.\n\nWorks for metric and imperial units."
    )
    assert one(NUMPY).description == "Convert a distance\nto metres."


def test_docstring_that_starts_with_a_section_has_empty_summary() -> None:
    info = parse_docstring("Args:\n    x: the x\n")
    assert info.summary == ""
    assert info.params == {"x": "the x"}


def test_google_multiple_entries_and_other_sections() -> None:
    info = parse_docstring(
        """Summary line.

        Args:
            a: first.
            b (int, optional): second,
                continued.
            *args: extra.

        Raises:
            ValueError: never a parameter.
        """
    )
    assert info.summary == "Summary line."
    assert info.params == {"a": "first.", "b": "second, continued.", "args": "extra."}


def test_numpy_shared_entry_and_next_section_title() -> None:
    info = parse_docstring(
        """Sum.

        Parameters
        ----------
        x, y : int
            The numbers.

        Raises
        ------
        ValueError
            Never.
        """
    )
    assert info.params == {"x": "The numbers.", "y": "The numbers."}


def test_no_docstring() -> None:
    spec = one("def f(x: int):\n    return x\n")
    assert spec.description == "" and spec.docstring is None
    assert spec.parameters["properties"]["x"] == {"type": "integer"}


def test_to_openai_tool_uses_extracted_schema() -> None:
    tool = one(GOOGLE).to_openai_tool()
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "convert"
    assert tool["function"]["parameters"]["required"] == ["value"]


# --- code and location -----------------------------------------------------------


def test_code_includes_decorators_and_body_comments_not_leading_comments() -> None:
    source = (
        "import functools\n"
        "\n"
        "# a leading comment: not part of the function\n"
        "@functools.lru_cache(maxsize=None)\n"
        "# between decorators\n"
        "@other\n"
        "def f(x: int) -> int:  # trailing\n"
        "    y = x\n"
        "    # an indented comment at the end belongs to f\n"
        "\n"
        "# a top-level comment after f does not\n"
        "def g(): return 1\n"
    )
    f, g = extract_functions(source, "tools/t.py")
    assert f.code == (
        "@functools.lru_cache(maxsize=None)\n"
        "# between decorators\n"
        "@other\n"
        "def f(x: int) -> int:  # trailing\n"
        "    y = x\n"
        "    # an indented comment at the end belongs to f"
    )
    assert f.location is not None
    assert (f.location.file, f.location.start_line, f.location.start_col) == ("tools/t.py", 4, 0)
    assert (f.location.end_line, f.location.end_col) == (
        9,
        len("    # an indented comment at the end belongs to f"),
    )
    assert (f.location.name_line, f.location.name_col) == (7, 4)
    assert g.code == "def g(): return 1"
    assert g.location is not None and (g.location.start_line, g.location.end_line) == (12, 12)


def test_code_is_exact_with_crlf_tabs_and_unicode() -> None:
    source = (
        'x = 1\r\n\r\nasync def grüße(name: str) -> str:\r\n\t"""Grüß 👋."""\r\n\treturn name\r\n'
    )
    (spec,) = extract_functions(source, "t.py")
    assert spec.code == 'async def grüße(name: str) -> str:\r\n\t"""Grüß 👋."""\r\n\treturn name'
    assert spec.description == "Grüß 👋."
    assert spec.location is not None
    assert (spec.location.name_line, spec.location.name_col) == (3, 10)
    # Columns count code points: the end of line 5 is after "\treturn name".
    assert (spec.location.end_line, spec.location.end_col) == (5, 12)


def test_code_slice_matches_location() -> None:
    source = "'''Doc.'''\n\n\n@d\ndef é(a):\n    return a\n"
    (spec,) = extract_functions(source, "t.py")
    loc = spec.location
    assert loc is not None
    lines = source.split("\n")
    assert lines[loc.start_line - 1][loc.start_col :].startswith("@d")
    assert lines[loc.end_line - 1][: loc.end_col] == "    return a"


def test_lone_carriage_return_line_breaks() -> None:
    source = "import os\rdef f():\r    return os.sep\r"
    (spec,) = extract_functions(source, "t.py")
    assert spec.code == "def f():\r    return os.sep"
    assert spec.location is not None and spec.location.start_line == 2


def test_byte_order_mark_shifts_first_line_columns() -> None:
    (spec,) = extract_functions("\ufeffdef f(): pass\n", "t.py")
    assert spec.code == "def f(): pass"
    assert spec.location is not None and spec.location.name_col == 5


# --- packages ---------------------------------------------------------------------


def test_packages_are_third_party_modules_the_function_uses() -> None:
    source = textwrap.dedent(
        """
        import os
        import json as j
        import numpy as np
        import requests.adapters
        from pandas import DataFrame
        from . import sibling
        from .helpers import helper
        from yaml import safe_load as load

        def uses_all(x: "np.ndarray"):
            import scipy.stats
            from collections import Counter
            from .local import thing
            return DataFrame(requests.adapters.HTTPAdapter(), os.sep, j.dumps(x), sibling, helper)

        def shadows(np, load):
            return np.array(load)

        def stdlib_only():
            import math
            return math.pi

        @load
        def decorated():
            return 1

        @functools.cache
        async def decorated_body():
            return [np.zeros(n) for n in range(3)]

        def nested_shadow(np=None):
            def inner():
                return np
            return inner
        """
    )
    specs = {s.name: s for s in extract_functions(source, "t.py")}
    assert specs["uses_all"].packages == ["numpy", "pandas", "requests", "scipy"]
    assert specs["shadows"].packages == []
    assert specs["stdlib_only"].packages == []
    assert specs["decorated"].packages == ["yaml"]
    assert specs["decorated_body"].packages == ["numpy"]
    assert specs["nested_shadow"].packages == []


def test_packages_from_module_level_try_import() -> None:
    source = "try:\n    import orjson as json\nexcept ImportError:\n    import json\n\ndef f(x):\n    return json.dumps(x)\n"
    (spec,) = extract_functions(source, "t.py")
    assert spec.packages == ["orjson"]


# --- syntax errors ------------------------------------------------------------------


def test_syntax_error_has_file_line_and_column() -> None:
    with pytest.raises(ToolsetSyntaxError) as info:
        extract_functions("def ok(): pass\n\ndef broken(x:\n    return x\n", "tools/bad.py")
    err = info.value
    assert isinstance(err, UserError)
    assert err.file == "tools/bad.py"
    assert err.line in (3, 4)
    assert str(err).startswith(f"tools/bad.py:{err.line}:{err.col + 1}: ")


def test_compile_time_errors_are_syntax_errors_too() -> None:
    with pytest.raises(ToolsetSyntaxError) as info:
        extract_functions("x = 1\ndef f(a, a):\n    pass\n", "t.py")
    assert info.value.line == 2
    assert "duplicate argument" in info.value.message


# --- schema_problems ------------------------------------------------------------------


def test_schema_problems_accepts_extracted_schemas() -> None:
    spec = one(
        "def f(a: int, b: list[str] | None = None, c: Literal['x'] = 'x', d: dict[str, float] = {}): pass\n"
    )
    assert schema_problems(spec.parameters) == []


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ("not a dict", "must be a JSON object"),
        ({"type": "array"}, "'type' must be 'object'"),
        ({"type": "object", "properties": []}, "properties must be an object"),
        ({"type": "object", "properties": {"x": {"type": "float"}}}, "unsupported type 'float'"),
        ({"type": "object", "properties": {"bad name": {}}}, "not a Python parameter name"),
        ({"type": "object", "properties": {}, "required": ["x"]}, "'x' is not in properties"),
        (
            {"type": "object", "properties": {"x": {"type": "array", "items": {"type": "tuple"}}}},
            "properties.x.items.type",
        ),
        ({"type": "object", "properties": {"x": {"enum": []}}}, "enum must be a non-empty list"),
        ({"type": "object", "properties": {"x": {"anyOf": [{"type": "str"}]}}}, "anyOf[0].type"),
        (
            {"type": "object", "properties": {"x": {"description": 3}}},
            "description must be a string",
        ),
    ],
)
def test_schema_problems_names_what_is_wrong(schema: object, fragment: str) -> None:
    problems = schema_problems(schema)
    assert any(fragment in p for p in problems), problems
