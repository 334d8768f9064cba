"""Property tests for the rewrite engine's edge cases (issue 16).

PEP 614 decorators whose expression is not on the `@` line, mixed line
breaks inside one function, NFKC-equivalent identifiers, and valid Python
that libcst cannot parse (a parenthesised annotation target).
"""

from __future__ import annotations

import ast
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funcforge.toolset.action import Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.rewrite import apply_action
from funcforge.toolset.source import split_lines

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BREAKS = st.sampled_from(["\n", "\r\n"])


def revise_with_own_code(source: str, name: str) -> str:
    spec = next(s for s in extract_functions(source) if s.name == name)
    return apply_action(source, Action("revise_function", name, "", {}, [], spec.code))


def parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


# --- PEP 614 decorators ------------------------------------------------------------


@st.composite
def pep614_file(draw: st.DrawFn) -> tuple[str, str]:
    """A file whose tool has a decorator split over lines, and the decorator's text."""
    expr = draw(st.sampled_from(["functools.cache", "registry['tools'].add", "(lambda f: f)"]))
    inside = draw(
        st.lists(st.sampled_from(["", "    # a comment with @ in it", "   "]), max_size=2)
    )
    opener = draw(st.sampled_from(["@(", "@ (", "@(  # why"]))
    decorator = "\n".join([opener, *inside, f"    {expr}", ")"])
    if draw(st.booleans()):
        decorator = "@plain\n" + decorator
    head = "import functools\n\nregistry = {'tools': set()}\n\n\ndef plain(f):\n    return f\n"
    tail = draw(st.sampled_from(["", "\n\n# trailing comment\n", "\n\nX = 1\n"]))
    source = (
        f"{head}\n\n# about the tool\n{decorator}\ndef tool(x: int) -> int:\n    return x\n{tail}"
    )
    return source, decorator


@SETTINGS
@given(pep614_file())
def test_pep614_decorator_revise_is_a_no_op_and_remove_leaves_valid_python(
    case: tuple[str, str],
) -> None:
    source, decorator = case
    assert parses(source)
    spec = next(s for s in extract_functions(source) if s.name == "tool")
    assert spec.code.startswith(decorator)  # the code starts at the first `@`
    assert revise_with_own_code(source, "tool") == source
    removed = apply_action(source, Action("remove_function", "tool"))
    assert parses(removed)
    assert "def tool" not in removed and ")\n" not in removed.split("# about the tool")[-1][:2]
    assert [s.name for s in extract_functions(removed)] == ["plain"]


# --- mixed line breaks ---------------------------------------------------------------


@st.composite
def mixed_breaks_file(draw: st.DrawFn) -> str:
    lines = [
        "def tool(x: int) -> int:",
        '    """Double it."""',
        "    y = x * 2",
        "    # a comment",
        "    if y > 10:",
        "        y -= 1",
        "    return y",
    ]
    breaks = [draw(BREAKS) for _ in lines]
    function = "".join(line + nl for line, nl in zip(lines, breaks, strict=True))
    other = "def other():" + draw(BREAKS) + "    return 1" + draw(BREAKS)
    return "import os" + draw(BREAKS) * 3 + function + draw(BREAKS) * 2 + other


@SETTINGS
@given(mixed_breaks_file())
def test_mixed_line_breaks_survive_a_no_op_revise(source: str) -> None:
    assert revise_with_own_code(source, "tool") == source


@SETTINGS
@given(mixed_breaks_file())
def test_a_revise_keeps_the_breaks_of_the_lines_it_does_not_change(source: str) -> None:
    spec = next(s for s in extract_functions(source) if s.name == "tool")
    code = spec.code.replace("y -= 1", "y -= 2")
    out = apply_action(source, Action("revise_function", "tool", "", {}, [], code))
    old_lines, new_lines = split_lines(source), split_lines(out)
    assert len(old_lines) == len(new_lines)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert len(changed) == 1
    i = changed[0]
    assert new_lines[i] == old_lines[i].replace("y -= 1", "y -= 2")


# --- NFKC-equivalent identifiers --------------------------------------------------------

# Compatibility characters Python folds in identifiers: ligatures, full-width letters,
# mathematical letters.
ODD = {"f": ["ｆ", "𝐟"], "x": ["ｘ", "𝑥"], "i": ["ｉ", "ⅰ"]}


@st.composite
def nfkc_file(draw: st.DrawFn) -> tuple[str, str, str]:
    """A file with a tool (public or private) spelled with compatibility characters."""
    plain = draw(st.sampled_from(["file_size", "fix_it", "index_of"]))
    written = plain.replace("fi", draw(st.sampled_from(["fi", "ﬁ"])))  # a ligature
    written = "".join(
        draw(st.sampled_from([ch, *ODD.get(ch, [])])) if ch in ODD else ch for ch in written
    )
    private = draw(st.booleans())
    if private:
        written, plain = "_" + written, "_" + plain
    source = (
        f"def {written}(path: str) -> int:\n    return len(path)\n\n\n"
        f"def caller(path: str) -> int:\n    return {written}(path)\n"
    )
    return source, written, plain


@SETTINGS
@given(nfkc_file())
def test_compatibility_identifiers_are_named_as_python_names_them(
    case: tuple[str, str, str],
) -> None:
    source, written, plain = case
    assert unicodedata.normalize("NFKC", written) == plain
    specs = {s.name: s for s in extract_functions(source)}
    assert "caller" in specs
    if plain.startswith("_"):
        assert set(specs) == {"caller"}
        return
    spec = specs[plain]
    assert spec.location is not None
    line = source.splitlines()[spec.location.name_line - 1]
    assert line[spec.location.name_col :].startswith(written)
    assert revise_with_own_code(source, plain) == source
    # The model may name it as written: Python's name is the NFKC form.
    again = Action("revise_function", written, "", {}, [], spec.code)
    assert apply_action(source, again) == source
    removed = apply_action(source, Action("remove_function", plain))
    assert parses(removed) and written not in removed.split("def caller")[0]


# --- valid Python that libcst cannot parse ------------------------------------------------


@st.composite
def paren_target_file(draw: st.DrawFn) -> tuple[str, int]:
    """A file with `(y): int = 0` somewhere, and its 1-based line."""
    where = draw(st.sampled_from(["module", "other_function", "tool"]))
    lines = ["from typing import Literal", "", 'Unit = Literal["km", "m"]', ""]
    if where == "module":
        lines += ["(y): int = 0", ""]
    lines += [
        "",
        "def convert(value: float, unit: Unit = 'km') -> float:",
        '    """Convert a distance.',
        "",
        "    Args:",
        "        value: The distance.",
        '    """',
    ]
    if where == "tool":
        lines += ["    (scale): float = 1.0"]
    lines += ["    return value", "", ""]
    lines += ["def helper() -> int:"]
    if where == "other_function":
        lines += ["    (y): int = 0"]
    lines += ["    return 1", ""]
    source = "\n".join(lines)
    line = next(i for i, text in enumerate(lines, start=1) if text.lstrip().startswith("("))
    return source, line


@SETTINGS
@given(paren_target_file())
def test_a_file_libcst_cannot_parse_is_read_and_rewritten(case: tuple[str, int]) -> None:
    source, line = case
    assert parses(source)
    problems: list = []
    specs = {s.name: s for s in extract_functions(source, "tools/t.py", None, problems)}
    assert set(specs) == {"convert", "helper"}
    convert = specs["convert"].parameters["properties"]
    assert convert["unit"] == {"type": "string", "enum": ["km", "m"], "default": "km"}
    assert convert["value"]["description"] == "The distance."
    assert [p.line for p in problems] == [line]
    assert "parenthesised annotation target" in problems[0].message
    helper = specs["helper"]
    new_helper = "def helper() -> int:\n    return 2"
    for action, expected in (
        (Action("revise_function", "helper", code=helper.code), source),
        (
            Action("revise_function", "helper", code=new_helper + "\n"),
            source.replace(helper.code, new_helper),
        ),
        (Action("remove_function", "helper"), source[: source.index("\n\n\ndef helper")] + "\n"),
    ):
        out = apply_action(source, action, "tools/t.py")
        assert out == expected
        assert parses(out)
        after = {s.name: s.code for s in extract_functions(out, "tools/t.py", None, [])}
        assert after["convert"] == specs["convert"].code
