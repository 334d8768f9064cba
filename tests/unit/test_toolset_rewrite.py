"""Exact rewriting: each action, each refusal, byte preservation, imports, plans, edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.toolset.action import Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.rewrite import (
    RewriteError,
    TextEditSpec,
    apply_action,
    apply_edits,
    minimal_edits,
    plan_actions,
)
from funcforge.toolset.toolset import load_toolset

BASE = '''"""Unit tools."""

import os

RATE = 2


@register
def convert(value: float, unit: str) -> float:
    """Convert."""
    return value * RATE  # old


# helper section
def scale(x: int) -> int:
    return x * 2
'''


def revise(name: str, code: str, **kw: object) -> Action:
    return Action("revise_function", name, code=code, **kw)  # type: ignore[arg-type]


def add(name: str, code: str, **kw: object) -> Action:
    return Action("add_function", name, code=code, **kw)  # type: ignore[arg-type]


def remove(name: str) -> Action:
    return Action("remove_function", name)


# --- revise ------------------------------------------------------------------


def test_revise_replaces_only_the_function_with_its_decorators() -> None:
    new = apply_action(BASE, revise("convert", "def convert(value, unit):\n    return value\n"))
    assert new == BASE.replace(
        '@register\ndef convert(value: float, unit: str) -> float:\n    """Convert."""\n'
        "    return value * RATE  # old",
        "def convert(value, unit):\n    return value",
    )


def test_revise_keeps_crlf_tabs_unicode_and_encoding_declaration() -> None:
    source = (
        "# -*- coding: utf-8 -*-\r\n"
        "# Grüße 👋\r\n"
        "\r\n"
        "def a():\r\n"
        "\treturn 'ä'\t# tab comment\r\n"
        "\r\n"
        "\r\n"
        "def b():\r\n"
        "\treturn 1\r\n"
        "   \r\n"
        "# end\r\n"
    )
    new = apply_action(source, revise("a", "def a():\n\treturn 'ö'  # 🐍\n"), "t.py")
    assert new == source.replace("\treturn 'ä'\t# tab comment", "\treturn 'ö'  # 🐍")


def test_revise_gives_new_code_the_replaced_functions_line_breaks() -> None:
    source = "def a():\r\n    return 1\r\n"
    assert apply_action(source, revise("a", "def a():\r    x = 2\n    return x")) == (
        "def a():\r\n    x = 2\r\n    return x\r\n"
    )


def test_revise_takes_indented_code_and_strips_surrounding_blank_lines() -> None:
    code = "\n\n    @cache\n    def scale(x: int) -> int:\n        return x * 3\n\n\n"
    new = apply_action(BASE, revise("scale", code))
    assert new.endswith("# helper section\n@cache\ndef scale(x: int) -> int:\n    return x * 3\n")


def test_revise_with_body_comment_footer_replaces_it_too() -> None:
    source = "def a():\n    return 1\n    # note about a\n\n# top-level note\n"
    assert apply_action(source, revise("a", "def a():\n    return 2\n")) == (
        "def a():\n    return 2\n\n# top-level note\n"
    )


def test_revise_of_an_async_function_with_nested_def() -> None:
    source = "async def fetch(u):\n    def inner():\n        return u\n    return inner()\n"
    code = "async def fetch(u):\n    async def inner():\n        return u\n    return await inner()"
    assert apply_action(source, revise("fetch", code)) == code + "\n"


def test_revise_moves_code_imports_to_the_import_block_without_duplicates() -> None:
    code = (
        "import os\n"
        "import re\n"
        "from math import floor, sqrt\n"
        "\n"
        "def scale(x: int) -> int:\n"
        "    return floor(sqrt(x)) + len(re.findall('a', os.sep))\n"
    )
    source = BASE.replace("import os\n", "import os\nfrom math import sqrt\n")
    new = apply_action(source, revise("scale", code))
    assert new.startswith('"""Unit tools."""\n\nimport os\nfrom math import sqrt\nimport re\n')
    assert "from math import floor\n\nRATE = 2" in new
    assert new.count("import os") == 1
    assert extract_functions(new)[-1].code == code.split("\n\n", 1)[1].rstrip("\n")


def test_a_no_op_revise_is_byte_identical() -> None:
    for spec in extract_functions(BASE):
        assert apply_action(BASE, revise(spec.name, spec.code)) == BASE


# --- add ---------------------------------------------------------------------------


def test_add_appends_after_two_blank_lines() -> None:
    new = apply_action(
        BASE, add("area", "def area(w: float, h: float) -> float:\n    return w * h\n")
    )
    assert new == BASE + "\n\ndef area(w: float, h: float) -> float:\n    return w * h\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", "def z(): pass\n"),
        ("x = 1", "x = 1\n\n\ndef z(): pass\n"),
        ("x = 1\n", "x = 1\n\n\ndef z(): pass\n"),
        ("x = 1\n\n", "x = 1\n\n\ndef z(): pass\n"),
        ("x = 1\n\n\n\n", "x = 1\n\n\n\ndef z(): pass\n"),
        ("x = 1\r\n", "x = 1\r\n\r\n\r\ndef z(): pass\r\n"),
        ("# only a comment\n", "# only a comment\n\n\ndef z(): pass\n"),
    ],
)
def test_add_separation_and_line_breaks(source: str, expected: str) -> None:
    assert apply_action(source, add("z", "def z(): pass")) == expected


def test_add_inserts_imports_after_docstring_future_and_existing_imports() -> None:
    source = (
        '"""Doc."""\nfrom __future__ import annotations\n\nimport os\nimport sys  # why\n\nX = 1\n'
    )
    code = "from __future__ import annotations\nimport os\nimport numpy as np\n\ndef z(a):\n    return np.array(a)\n"
    new = apply_action(source, add("z", code))
    assert new == (
        '"""Doc."""\nfrom __future__ import annotations\n\nimport os\nimport sys  # why\n'
        "import numpy as np\n\nX = 1\n\n\ndef z(a):\n    return np.array(a)\n"
    )


def test_add_imports_after_docstring_when_there_are_none() -> None:
    new = apply_action('"""Doc."""\nX = 1\n', add("z", "import re\ndef z(): return re"))
    assert new == '"""Doc."""\n\nimport re\n\nX = 1\n\n\ndef z(): return re\n'


def test_add_imports_keep_shebang_encoding_and_attached_comments() -> None:
    source = "#!/usr/bin/env python\n# -*- coding: latin-1 -*-\n# about a\ndef a(): pass\n"
    new = apply_action(source, add("z", "from math import tau\ndef z(): return tau"))
    assert new == (
        "#!/usr/bin/env python\n# -*- coding: latin-1 -*-\n\nfrom math import tau\n\n\n"
        "# about a\ndef a(): pass\n\n\ndef z(): return tau\n"
    )


def test_add_imports_below_a_header_comment_block() -> None:
    source = "# Copyright\n# Licence\n\nX = 1\n"
    new = apply_action(source, add("z", "import re\ndef z(): return re"))
    assert new == "# Copyright\n# Licence\n\nimport re\n\nX = 1\n\n\ndef z(): return re\n"


def test_future_import_goes_first() -> None:
    source = '"""Doc."""\nimport os\n'
    code = "from __future__ import annotations\ndef z(a: int) -> int: return a"
    new = apply_action(source, add("z", code))
    assert new.startswith('"""Doc."""\n\nfrom __future__ import annotations\n\nimport os\n')


def test_packages_and_stdlib_modules_used_without_import_are_imported() -> None:
    code = "def z(t):\n    return requests.get(json.dumps(t)), numpy\n"
    new = apply_action("import os\n", add("z", code, packages=["requests", "numpy>=1.0"]))
    assert new.startswith("import os\nimport json\nimport requests\n\n\ndef z")


def test_revise_imports_only_modules_the_new_code_starts_using() -> None:
    # The file relies on `functools` without importing it: a revise that keeps
    # using it changes nothing above the function; a new `json.dumps` is imported.
    source = "@functools.cache\ndef z(t):\n    return t\n"
    same = apply_action(source, revise("z", "@functools.cache\ndef z(t):\n    return [t]\n"))
    assert same == "@functools.cache\ndef z(t):\n    return [t]\n"
    new = apply_action(
        source, revise("z", "@functools.cache\ndef z(t):\n    return json.dumps(t)\n")
    )
    assert new == "import json\n\n\n@functools.cache\ndef z(t):\n    return json.dumps(t)\n"


def test_no_guessed_imports_when_the_file_has_a_star_import() -> None:
    source = "from os.path import *\n"
    new = apply_action(
        source, add("z", "def z(p):\n    return shutil.which(p), numpy\n", packages=["numpy"])
    )
    assert new.startswith("from os.path import *\nimport numpy\n\n\ndef z")


def test_no_import_for_names_the_file_already_binds() -> None:
    source = "import json\njson_mod = json\nrequests = None\n"
    code = "def z(t):\n    return requests.get(json.dumps(t))\n"
    new = apply_action(source, add("z", code, packages=["requests"]))
    assert new == source + "\n\n" + code


def test_relative_and_star_imports_are_kept_as_written() -> None:
    code = "from .helpers import parse as p\nfrom fractions import *\ndef z(x): return p(x)"
    new = apply_action("import os\n", add("z", code))
    assert new.startswith("import os\nfrom .helpers import parse as p\nfrom fractions import *\n")


# --- remove ---------------------------------------------------------------------


def test_remove_deletes_function_decorators_and_separating_blank_lines() -> None:
    new = apply_action(BASE, remove("convert"))
    assert new == BASE.replace(
        '\n\n@register\ndef convert(value: float, unit: str) -> float:\n    """Convert."""\n'
        "    return value * RATE  # old\n",
        "",
    )
    assert "RATE = 2\n\n\n# helper section\ndef scale" in new


def test_remove_last_function_keeps_its_leading_comment() -> None:
    new = apply_action(BASE, remove("scale"))
    assert new.endswith("    return value * RATE  # old\n\n\n# helper section\n")


def test_remove_first_function_takes_the_blank_lines_after_it() -> None:
    source = "def a():\n    pass\n\n\ndef b():\n    pass\n"
    assert apply_action(source, remove("a")) == "def b():\n    pass\n"
    assert apply_action("def a(): pass\n", remove("a")) == ""


def test_remove_with_crlf_and_no_final_line_break() -> None:
    source = "import os\r\n\r\n\r\ndef a():\r\n\treturn os"
    assert apply_action(source, remove("a")) == "import os\r\n"


def test_byte_order_mark_is_preserved() -> None:
    source = "\ufeffdef a(): pass\n"
    assert apply_action(source, revise("a", "def a(): return 1")) == "\ufeffdef a(): return 1\n"


# --- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "fragment"),
    [
        (revise("scale", "def scale(x):\n    return (x\n"), "does not parse: line 2"),
        (revise("scale", "def scale(x, x): pass"), "does not parse: line 1"),
        (revise("scale", "def other(x): pass"), "defines 'other' instead"),
        (revise("scale", "def scale(x): pass\ndef extra(): pass"), "defines 'scale', 'extra'"),
        (revise("scale", "import os\n"), "defines no function"),
        (revise("scale", "class scale: pass"), "defines class 'scale'"),
        (revise("scale", "X = 1\ndef scale(x): pass"), "statement at line 1"),
        (revise("scale", "   \n"), "code is empty"),
        (add("convert", "def convert(v, u): pass"), "already defines 'convert'"),
        (revise("missing", "def missing(): pass"), "has no top-level function 'missing'"),
        (remove("missing"), "has no top-level function 'missing'"),
        (add("_private", "def _private(): pass"), "must not start with '_'"),
        (add("class", "def f(): pass"), "not a valid function name"),
        (add("z", "import numpy as os\ndef z(): return os"), "conflicts with 'import os'"),
        (add("z", "from m import scale\ndef z(): return scale"), "shadow the function 'scale'"),
    ],
)
def test_refusals_name_the_function_and_file(action: Action, fragment: str) -> None:
    with pytest.raises(RewriteError) as info:
        apply_action(BASE, action, "tools/units.py")
    message = str(info.value)
    assert fragment in message
    assert "tools/units.py" in message
    assert f"'{action.name}'" in message or repr(action.name) in message
    assert isinstance(info.value, UserError)


def test_refuses_to_edit_a_file_that_does_not_parse() -> None:
    with pytest.raises(RewriteError, match=r"t\.py:2: cannot revise 'a'.*does not parse"):
        apply_action("def a(): pass\ndef (:\n", revise("a", "def a(): pass"), "t.py")


def test_refuses_an_ambiguous_function_defined_twice() -> None:
    with pytest.raises(RewriteError, match=r"defined more than once \(lines 1, 2\)"):
        apply_action("def a(): pass\ndef a(): pass\n", remove("a"), "t.py")


# --- plans across files --------------------------------------------------------------


def workspace(tmp_path: Path, files: dict[str, bytes | str], **config: object) -> Config:
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return Config(root=tmp_path, **config)  # type: ignore[arg-type]


def test_plan_routes_actions_to_files_and_tracks_earlier_actions(tmp_path: Path) -> None:
    config = workspace(
        tmp_path,
        {"tools/b.py": "def b(): return 1\n", "tools/a.py": "def a(): return 1\n"},
    )
    toolset = load_toolset(config)
    changes = plan_actions(
        config,
        toolset,
        [
            revise("b", "def b(): return 2"),
            add("c", "def c(): return 3"),
            revise("c", "def c(): return 4"),
            remove("a"),
            add("a", "def a(): return 5"),
        ],
    )
    by_file = {c.file: c for c in changes}
    assert list(by_file) == ["tools/b.py", "tools/a.py"]
    assert by_file["tools/b.py"].new_text == "def b(): return 2\n"
    # add goes to the first tool file in sorted order: tools/a.py
    assert by_file["tools/a.py"].new_text == "def c(): return 4\n\n\ndef a(): return 5\n"
    for change in changes:
        assert apply_edits(change.old_text, change.edits) == change.new_text
        assert not change.created


def test_plan_adds_to_add_file_and_creates_it(tmp_path: Path) -> None:
    config = workspace(tmp_path, {"tools/a.py": "def a(): pass\n"}, add_file="tools/new/extra.py")
    (change,) = plan_actions(
        config, load_toolset(config), [add("z", "import re\ndef z(): return re")]
    )
    assert change.file == "tools/new/extra.py"
    assert change.created and change.old_text == ""
    assert change.new_text == "import re\n\n\ndef z(): return re\n"
    assert apply_edits("", change.edits) == change.new_text


@pytest.mark.parametrize(
    ("globs", "expected"),
    [
        (["tools/**/*.py"], "tools/tools.py"),
        (["src/agent/*.py"], "src/agent/tools.py"),
        (["*.py"], "tools.py"),
        (["agent_tools.py"], "agent_tools.py"),
    ],
)
def test_plan_into_empty_workspace_uses_the_globs(
    tmp_path: Path, globs: list[str], expected: str
) -> None:
    config = workspace(tmp_path, {}, tools=globs)
    (change,) = plan_actions(config, load_toolset(config), [add("z", "def z(): pass")])
    assert change.file == expected and change.created


def test_plan_keeps_encoding_for_writing_back(tmp_path: Path) -> None:
    latin = "# coding: latin-1\ndef caf\u00e9():\n    return '\u00e9'\n"
    config = workspace(tmp_path, {"tools/a.py": latin.encode("latin-1")})
    (change,) = plan_actions(
        config, load_toolset(config), [revise("caf\u00e9", "def caf\u00e9():\n    return '\u00e8'")]
    )
    assert change.encoding == "iso-8859-1"
    assert change.new_bytes() == latin.replace("\u00e9'", "\u00e8'").encode("latin-1")


@pytest.mark.parametrize(
    ("actions", "fragment"),
    [
        ([revise("nope", "def nope(): pass")], "no tool function 'nope'"),
        ([add("a", "def a(): pass")], "tools/a.py: cannot add 'a': it is already a tool"),
        ([remove("a"), remove("a")], "no tool function 'a'"),
    ],
)
def test_plan_refusals(tmp_path: Path, actions: list[Action], fragment: str) -> None:
    config = workspace(tmp_path, {"tools/a.py": "def a(): pass\n", "tools/b.py": "def b(): pass\n"})
    with pytest.raises(RewriteError, match=fragment.replace("(", r"\(")):
        plan_actions(config, load_toolset(config), actions)


def test_plan_refuses_add_file_outside_the_tools_globs(tmp_path: Path) -> None:
    config = workspace(tmp_path, {"tools/a.py": "def a(): pass\n"}, add_file="lib/x.py")
    with pytest.raises(RewriteError, match="not matched by the tools globs"):
        plan_actions(config, load_toolset(config), [add("z", "def z(): pass")])


# --- minimal edits ----------------------------------------------------------------------


def test_minimal_edits_trim_to_the_changed_characters() -> None:
    old = "a = 1\nb = 2\nc = 3\n"
    new = "a = 1\nb = 20\nc = 3\n"
    assert minimal_edits(old, new) == [TextEditSpec(1, 5, 1, 5, "0")]


def test_minimal_edits_count_utf16_code_units() -> None:
    old = "x = '𝄞é'\n"
    new = "x = '𝄞è'\n"
    # '𝄞' is two UTF-16 code units: the change starts at column 4 + 1 + 2.
    assert minimal_edits(old, new) == [TextEditSpec(0, 7, 0, 8, "è")]


def test_minimal_edits_never_split_a_crlf() -> None:
    old = "a\r\nb\r\n"
    new = "a\rb\r\n"
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    for edit in edits:
        # Column 1 on line 0 is just after "a": never between "\r" and "\n".
        assert (edit.start_line, edit.start_character) in {(0, 1), (1, 0)}


def test_minimal_edits_of_equal_texts_and_to_lsp() -> None:
    assert minimal_edits("same\n", "same\n") == []
    (edit,) = minimal_edits("", "x\n")
    assert edit.to_lsp() == {
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
        "newText": "x\n",
    }


def test_apply_edits_refuses_overlaps() -> None:
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits("abcdef", [TextEditSpec(0, 0, 0, 3, "x"), TextEditSpec(0, 2, 0, 4, "y")])
