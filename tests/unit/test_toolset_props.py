"""Property tests: rewriting leaves every byte outside the change as it was; edits are exact."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from funcforge.toolset.action import Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.rewrite import apply_action, apply_edits, minimal_edits
from funcforge.toolset.source import LineIndex, split_lines, strip_newline, utf16_len

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- generated tool files --------------------------------------------------------

UNICODE = ["ä", "Grüße", "π", "日本語", "🐍", "𝄞", "naïve café", "Ωmega"]
NAMES = ["convert", "grüße", "π_value", "fetch_rows", "parse", "lookup", "área", "f"]
DECORATORS = ["@cache", "@functools.lru_cache(maxsize=None)", "@register(name='x')", "@tool"]
PARAMS = ["", "x", "x: int", "x: int = 1", "s: str = 'é'", "*args, **kwargs", "a, /, b, *, c=None"]


@st.composite
def comment(draw: st.DrawFn) -> str:
    return "# " + draw(st.sampled_from(["note", "TODO", *UNICODE]))


@st.composite
def body(draw: st.DrawFn, indent: str, depth: int) -> list[str]:
    """Lines of a block at `indent * depth`, always with at least one statement."""
    pad = indent * depth
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(pad + '"""' + draw(st.sampled_from(UNICODE)) + ' docstring."""')
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["assign", "comment", "if", "nested", "return", "string"]))
        if kind == "assign":
            tail = draw(st.sampled_from(["", "  # trailing", "\t# tab comment", "   "]))
            lines.append(f"{pad}y = '{draw(st.sampled_from(UNICODE))}'{tail}")
        elif kind == "comment":
            lines.append(pad + draw(comment()))
        elif kind == "if" and depth < 3:
            lines.append(f"{pad}if y:")
            lines.extend(draw(body(indent, depth + 1)))
        elif kind == "nested" and depth < 3:
            prefix = draw(st.sampled_from(["", "async "]))
            lines.append(f"{pad}{prefix}def inner():")
            lines.extend(draw(body(indent, depth + 1)))
        elif kind == "string":
            lines.extend([f'{pad}y = """', "def not_a_function():", '"""'])
        else:
            lines.append(f"{pad}return 1")
    lines.append(pad + "pass")
    if draw(st.booleans()):
        lines.append(pad + draw(comment()))  # a footer comment inside the block
    return lines


@st.composite
def function(draw: st.DrawFn, name: str, indent: str) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        lines.append(draw(st.sampled_from(DECORATORS)))
        if draw(st.booleans()):
            lines.append(draw(comment()))
    prefix = draw(st.sampled_from(["", "async "]))
    params = draw(st.sampled_from(PARAMS))
    ret = draw(st.sampled_from(["", " -> int", " -> 'list[str]'"]))
    if draw(st.integers(0, 4)) == 0:
        lines.append(f"{prefix}def {name}({params}){ret}: return 1")
        return lines
    tail = draw(st.sampled_from(["", "  # on the def line"]))
    lines.append(f"{prefix}def {name}({params}){ret}:{tail}")
    lines.extend(draw(body(indent, 1)))
    return lines


@st.composite
def tool_file(draw: st.DrawFn) -> str:
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    indent = draw(st.sampled_from(["    ", "\t", "  "]))
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append("# -*- coding: utf-8 -*-")
    if draw(st.booleans()):
        lines.append('"""Tools: ' + draw(st.sampled_from(UNICODE)) + '."""')
    if draw(st.booleans()):
        lines.extend(["import functools", "from math import sqrt  # why"])
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    items: list[list[str]] = [draw(function(n, indent)) for n in names]
    if draw(st.booleans()):
        items.append(["class Helper:", f"{indent}def method(self):", f"{indent * 2}return 1"])
    if draw(st.booleans()):
        items.append(draw(function("_private", indent)))
    if draw(st.booleans()):
        items.append(["X = 1", draw(comment())])
    order = draw(st.permutations(range(len(items))))
    for i in order:
        lines.extend([draw(st.sampled_from(["", "   ", "\t"]))] * draw(st.integers(0, 3)))
        if draw(st.booleans()):
            lines.append(draw(comment()))
        lines.extend(items[i])
    if draw(st.booleans()):
        lines.extend(["", draw(comment())])
    text = nl.join(lines)
    return text + nl if draw(st.booleans()) else text


def compiles(source: str) -> bool:
    try:
        compile(source, "<generated>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


HAND_PICKED = [
    "def a(): return 1",
    "def a():\n    pass\n",
    "\ufeffdef a():\n    pass\n",
    "# -*- coding: latin-1 -*-\r\n\r\ndef caf\u00e9():\r\n\treturn '\u00e9'\r\n",
    "x = 1\rdef a():\r    return x\r",
    "def a():\n    return '''\ntext at column 0\n'''\n\n\ndef b(): pass\n",
    'X = """\ndef fake():\n    pass\n"""\n\ndef real():\n    return X\n',
    "def a():\n    x = 1 + \\\n        2\n    return x\n",
    "def a(): pass; y = 1\nz = 2\n",
    "@d1\n# between\n  # odd indent comment\n@d2(\n    1,\n)\nasync def a(\n    x: int,  # comment in params\n) -> None:\n    await x\n",
    "def a():\n\tif 1:\n\t\treturn 1\n\t\t# deep footer\n\t# footer\n\n# module comment\n",
    "class K:\n    def a(self): pass\n\ndef a(): pass\n",
    "if __name__ == '__main__':\n    def b(): pass\n\ndef a():\n    pass\n\x0c\ndef c(): pass\n",
    "def a():\n    def b():\n        async def c():\n            return '🐍𝄞'\n        return c\n    return b\n",
    'def grüße(name: str = \'Welt\') -> str:\r\n    """Grüßt."""\r\n    return f\'Hallo {name} 👋\'\r\n',
]


def revise(name: str, code: str) -> Action:
    return Action("revise_function", name, code=code)


def check_no_op(source: str) -> None:
    specs = extract_functions(source, "t.py")
    assert specs, "the file should define a tool"
    for spec in specs:
        assert apply_action(source, revise(spec.name, spec.code), "t.py") == source


# --- properties ----------------------------------------------------------------------


@pytest.mark.parametrize("source", HAND_PICKED)
def test_no_op_revise_is_byte_identical_hand_picked(source: str) -> None:
    check_no_op(source)


@SETTINGS
@given(tool_file())
def test_no_op_revise_is_byte_identical_generated(source: str) -> None:
    assume(compiles(source))
    check_no_op(source)


@SETTINGS
@given(tool_file(), st.data())
def test_revise_changes_only_the_function_span(source: str, data: st.DataObject) -> None:
    assume(compiles(source))
    specs = extract_functions(source, "t.py")
    spec = data.draw(st.sampled_from(specs))
    loc = spec.location
    assert loc is not None
    index = LineIndex(source)
    start = index.offset(loc.start_line, loc.start_col)
    end = index.offset(loc.end_line, loc.end_col)
    assert source[start:end] == spec.code
    nl = "\r\n" if "\r\n" in source else "\n"  # generated files use one style
    new_code = f"def {spec.name}(*args, **kwargs):{nl}    return '✓ edited 𝄞'"
    new = apply_action(source, revise(spec.name, new_code.replace(nl, "\n")), "t.py")
    assert new == source[:start] + new_code + source[end:]
    others = {s.name: s.code for s in specs if s.name != spec.name}
    after = {s.name: s.code for s in extract_functions(new, "t.py") if s.name != spec.name}
    assert after == others


@SETTINGS
@given(tool_file(), st.data())
def test_remove_takes_only_the_function_and_blank_lines(source: str, data: st.DataObject) -> None:
    assume(compiles(source))
    specs = extract_functions(source, "t.py")
    spec = data.draw(st.sampled_from(specs))
    loc = spec.location
    assert loc is not None
    index = LineIndex(source)
    start = index.offset(loc.start_line, loc.start_col)
    end = index.offset(loc.end_line, loc.end_col)
    new = apply_action(source, Action("remove_function", spec.name), "t.py")
    # new == source without one contiguous block: the function plus whitespace around it.
    common = 0
    while common < min(len(source), len(new)) and source[common] == new[common]:
        common += 1
    a = min(common, start)
    b = a + len(source) - len(new)
    assert new == source[:a] + source[b:]
    assert b >= end
    assert source[a:start].strip(" \t\r\n\f") == ""
    assert source[end:b].strip(" \t\r\n\f") == ""
    remaining = {s.name: s.code for s in extract_functions(new, "t.py")}
    assert remaining == {s.name: s.code for s in specs if s.name != spec.name}


@SETTINGS
@given(tool_file())
def test_add_only_appends(source: str) -> None:
    assume(compiles(source))
    specs = extract_functions(source, "t.py")
    new = apply_action(
        source, Action("add_function", "added_tool", code="def added_tool(): return 'ü'")
    )
    assert new.startswith(source)
    assert new.endswith("def added_tool(): return 'ü'" + ("\r\n" if "\r\n" in source else "\n"))
    names = [s.name for s in extract_functions(new, "t.py")]
    assert names == [s.name for s in specs] + ["added_tool"]


# --- minimal edits ------------------------------------------------------------------

PIECES = ["a", "b", "é", "𝄞", "🐍", " ", "\t", "\n", "\r\n", "\r", "def f():", "x = 1"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@st.composite
def text_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Independent texts, or a text and a mutation of it (the common editing case)."""
    old = draw(texts)
    if draw(st.booleans()):
        return old, draw(texts)
    new = old
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(new)))
        j = draw(st.integers(i, min(len(new), i + 5)))
        new = new[:i] + draw(texts) + new[j:]
    return old, new


@settings(max_examples=500, deadline=None)
@given(text_pairs())
def test_minimal_edits_applied_to_old_give_new(pair: tuple[str, str]) -> None:
    old, new = pair
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    lines = split_lines(old)
    for edit in edits:
        for line, character in (
            (edit.start_line, edit.start_character),
            (edit.end_line, edit.end_character),
        ):
            # Every position is inside a line's content (never within a line break).
            if line < len(lines):
                assert character <= utf16_len(strip_newline(lines[line]))
            else:
                assert (line, character) == (len(lines), 0)
                assert re.search(r"(\r\n|\r|\n)\Z", old) or old == ""
    if old == new:
        assert edits == []
