"""The rewrite engine attacked: mixed files, encodings apply cannot write, very long files.

Every test goes through the public entry points (`apply_action`,
`plan_actions`, the replay check's `replay_for_actions`, `apply_proposal`
into a real git repository) and checks what they write byte for byte.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funcforge.config import load_config
from funcforge.history.git import apply_proposal
from funcforge.optimizer import replay as replay_mod
from funcforge.optimizer.proposal import Proposal
from funcforge.toolset.action import Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.rewrite import (
    RewriteError,
    apply_action,
    apply_edits,
    minimal_edits,
    plan_actions,
)
from funcforge.toolset.toolset import load_toolset
from funcforge.traces.store import TraceStore
from tests.conftest import git
from tests.unit.test_check_cli import make_workspace

# --- a file in a legacy encoding ----------------------------------------------

LATIN = (
    b"# -*- coding: latin-1 -*-\n"
    b'def greet(name: str) -> str:\n    """Say hello."""\n    return "h\xe9llo " + name\n'
)


def _latin_workspace(tmp_path: Path) -> Path:
    root = make_workspace(tmp_path / "ws")
    (root / "tools" / "legacy.py").write_bytes(LATIN)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a latin-1 tool file")
    return root


@pytest.mark.parametrize(
    ("action", "line"),
    [
        (
            Action(
                "revise_function",
                "greet",
                code='def greet(name: str) -> str:\n    """Say hello."""\n    return "☃ " + name\n',
            ),
            4,
        ),
        (
            Action(
                "revise_function",
                "greet",
                code='def greet(name: str) -> str:\n    """Say hello ☃."""\n    return name\n',
            ),
            3,
        ),
    ],
)
def test_code_the_files_encoding_cannot_hold_is_refused_by_plan_and_check(
    tmp_path: Path, action: Action, line: int
) -> None:
    root = _latin_workspace(tmp_path)
    config = load_config(root, {"tools": ["tools/legacy.py"]})
    toolset = load_toolset(config)
    store = TraceStore(config)
    store.refresh()
    with pytest.raises(RewriteError) as by_apply:
        plan_actions(config, toolset, [action])
    with pytest.raises(RewriteError) as by_check:
        replay_mod.replay_for_actions(config, store, toolset, [action])
    message = str(by_apply.value)
    assert message == str(by_check.value)
    assert message.startswith(f"tools/legacy.py:{line}: cannot revise 'greet'")
    assert "U+2603" in message and "iso-8859-1" in message and "\\u2603" in message
    assert (root / "tools" / "legacy.py").read_bytes() == LATIN  # nothing written


def test_an_add_the_encoding_cannot_hold_is_refused(tmp_path: Path) -> None:
    root = _latin_workspace(tmp_path)
    config = load_config(root, {"tools": ["tools/legacy.py"]})
    action = Action("add_function", "wave", code='def wave() -> str:\n    return "👋"\n')
    with pytest.raises(RewriteError, match=r"^tools/legacy.py:8: cannot add 'wave'.*U\+1F44B"):
        plan_actions(config, load_toolset(config), [action])


def test_what_the_check_runs_is_what_apply_commits_in_the_files_encoding(
    tmp_path: Path,
) -> None:
    root = _latin_workspace(tmp_path)
    config = load_config(root, {"tools": ["tools/legacy.py"]})
    toolset = load_toolset(config)
    code = 'def greet(name: str) -> str:\n    """Say hello."""\n    return "olé " + name\n'
    actions = [Action("revise_function", "greet", code=code)]
    checked = replay_mod.planned_files(config, toolset, actions)["tools/legacy.py"]
    proposal = Proposal(
        id="lat1",
        actions=actions,
        function_hashes={"greet": toolset.functions["greet"].code_hash()},
    )
    proposal.save(config.proposals_path)
    apply_proposal(config, proposal)
    committed = subprocess.run(
        ["git", "show", "HEAD:tools/legacy.py"], cwd=root, check=True, capture_output=True
    ).stdout
    assert committed == checked.encode("latin-1")
    assert committed == LATIN.replace(b'"h\xe9llo "', b'"ol\xe9 "')


# --- very long files ------------------------------------------------------------


def _long_file(n: int) -> str:
    return "".join(
        f"def f{i}(x: int) -> int:\n    y = x + {i}\n    return y\n\n\n" for i in range(n)
    )


def test_edits_of_a_very_long_file_are_exact_and_local() -> None:
    """3,000 functions (15,000 lines, most repeated): the heuristic diff path, still exact."""
    old = _long_file(3000)
    add = Action(
        "add_function",
        "dump",
        code="import json\n\ndef dump(x: int) -> str:\n    return json.dumps(x)\n",
    )
    new = apply_action(old, add, "t.py")
    assert new.startswith("import json\n\n\n" + old[:-2])
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    assert len(edits) == 2  # the import on top, the function at the end
    assert (edits[0].start_line, edits[0].end_line) == (0, 0)
    revise = Action("revise_function", "f1500", code="def f1500(x: int) -> int:\n    return 0\n")
    new = apply_action(old, revise, "t.py")
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    assert len(edits) == 1 and edits[0].start_line == 1500 * 5 + 1


# --- random files: every other byte stays ------------------------------------------

_FUNCTIONS = [
    "def {n}(x: int) -> int:\n    return x\n",
    "@(\n    deco\n)\ndef {n}():\n    pass\n",
    "@deco\n# between\n@deco2(1,\n       2)\ndef {n}():\n    pass\n",
    "async def {n}(a, /, b, *, c=1):\n    await a\n",
    "def {n}(): return 1\n",
    "def {n}():\n    x = 1\n    # trailing indented comment\n",
    "def {n}():\n    '''doc\ndef fake():\n    pass\n'''\n    return 2\n",
    "def {n}():\n\tif 1:\n\t\treturn 2\n",
    "def \\\n  {n}():\n    pass\n",
    "def {n}(\n    a: int,  # comment\n    b: str = 'x',\n) -> None:\n    pass\n",
    "def {n}(x):\n    (y): int = 0\n    return x\n",
]
_OTHER = [
    "\n",
    "# a comment\n",
    "x = 1\n",
    "class K:\n    def m(self):\n        pass\n",
    "if x:\n    def cond():\n        pass\n",
    "\x0c\n",
    "    # indented comment\n",
    "y = [\n1,\n]\n",
]
_NEW = "def {n}(q: str) -> str:\n    # new\n    return q * 2\n"


@st.composite
def tool_files(draw: st.DrawFn) -> tuple[str, list[str]]:
    parts = ["deco = deco2 = lambda *a: (lambda f: f)\n"]
    names: list[str] = []
    for i in range(draw(st.integers(1, 5))):
        parts += draw(st.lists(st.sampled_from(_OTHER), max_size=3))
        names.append(f"fn{i}")
        parts.append(draw(st.sampled_from(_FUNCTIONS)).format(n=f"fn{i}"))
    lines = re.findall(r"[^\n]*\n", "".join(parts))
    breaks = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines)))
    text = "".join(line[:-1] + nl for line, nl in zip(lines, breaks, strict=False))
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text, names


def _codes(text: str) -> dict[str, str]:
    return {s.name: s.code for s in extract_functions(text, "tools/t.py", None, [])}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool_files())
def test_add_revise_remove_on_random_files_touch_only_their_function(
    case: tuple[str, list[str]],
) -> None:
    source, names = case
    ast.parse(source.lstrip("\ufeff"))  # valid Python, libcst able or not
    before = _codes(source)
    assert list(before) == names
    bom = "\ufeff" if source.startswith("\ufeff") else ""
    for name in names:
        assert apply_action(source, Action("revise_function", name, code=before[name]), "t") == (
            source
        )
        new = _NEW.format(n=name)
        revised = apply_action(source, Action("revise_function", name, code=new), "t")
        after = _codes(revised)
        assert list(after) == names
        assert re.sub(r"\r\n?", "\n", after[name]) == new.rstrip("\n")
        assert {k: v for k, v in after.items() if k != name} == {
            k: v for k, v in before.items() if k != name
        }
        start = source.index(before[name])
        assert revised.startswith(source[:start])
        assert revised.endswith(source[start + len(before[name]) :])
        removed = apply_action(source, Action("remove_function", name), "t")
        ast.parse(removed.lstrip("\ufeff"))
        assert removed.startswith(bom)
        assert _codes(removed) == {k: v for k, v in before.items() if k != name}
    added = apply_action(source, Action("add_function", "added", code=_NEW.format(n="added")), "t")
    assert added.startswith(source.rstrip("\r\n"))
    after = _codes(added)
    nl = re.search(r"\r\n|\r|\n", source)
    assert after.pop("added") == _NEW.format(n="added").rstrip("\n").replace(
        "\n", nl.group(0) if nl else "\n"
    )  # an added function takes the file's first line break
    assert after == before


# --- a name defined more than once ------------------------------------------------


def test_overload_stubs_are_not_tools_the_implementation_is(tmp_path: Path) -> None:
    from funcforge.config import Config

    (tmp_path / "tools").mkdir()
    source = (
        "from typing import overload\n\n"
        "@overload\ndef area(x: int) -> int: ...\n\n"
        "@typing.overload\ndef area(x: str) -> str: ...\n\n"
        "def area(x: int | str):\n"
        '    """Area of a square of side x."""\n'
        "    return x\n"
    )
    (tmp_path / "tools" / "geo.py").write_text(source, encoding="utf-8")
    toolset = load_toolset(Config(root=tmp_path))
    spec = toolset.functions["area"]
    assert spec.location is not None and spec.location.start_line == 9
    assert spec.description == "Area of a square of side x."
    assert spec.parameters["properties"]["x"] == {"type": ["integer", "string"]}
    assert toolset.problems == []
    with pytest.raises(RewriteError, match=r"'area' is defined more than once \(lines 3, 6, 9\)"):
        apply_action(source, Action("remove_function", "area"), "tools/geo.py")


def test_a_function_redefined_in_one_file_is_its_last_definition(tmp_path: Path) -> None:
    from funcforge.config import Config

    (tmp_path / "tools").mkdir()
    source = (
        "def lookup(key: str) -> str:\n    return 'old'\n\n\n"
        "def lookup(key: str, default: int = 0) -> str:\n    return 'new'\n"
    )
    (tmp_path / "tools" / "kv.py").write_text(source, encoding="utf-8")
    toolset = load_toolset(Config(root=tmp_path))
    spec = toolset.functions["lookup"]
    assert spec.location is not None and spec.location.start_line == 5
    assert "default" in spec.parameters["properties"]
    (problem,) = toolset.problems
    assert (problem.file, problem.line, problem.severity) == ("tools/kv.py", 1, "warning")
    assert "defined again at tools/kv.py:5" in problem.message


def test_a_class_based_tool_is_a_warning_not_silence(tmp_path: Path) -> None:
    from funcforge.config import Config

    (tmp_path / "tools").mkdir()
    source = (
        "from crewai.tools import BaseTool\nfrom pydantic import BaseModel\n\n"
        "class Query(BaseModel):\n    q: str\n\n"
        "class SearchTool(BaseTool):\n    name: str = 'search'\n"
        "    def _run(self, q: str) -> str:\n        return q\n\n"
        "def helper_tool(x: int) -> int:\n    return x\n"
    )
    (tmp_path / "tools" / "crew.py").write_text(source, encoding="utf-8")
    toolset = load_toolset(Config(root=tmp_path))
    assert list(toolset.functions) == ["helper_tool"]
    (problem,) = toolset.problems
    assert (problem.line, problem.severity) == (7, "warning")
    assert "class 'SearchTool' is a class-based tool" in problem.message
