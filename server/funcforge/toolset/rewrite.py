"""Exact rewriting of tool files: optimizer actions -> new source text -> minimal edits.

Only the function an action names changes (plus, for new code, the imports
it needs at the top of the module); every other byte of the file stays as
it was: comments, blank lines, line breaks, tabs, the encoding declaration.

What counts as "the function" is what `extract` calls its code: from its
first decorator to its last line, comment lines indented in its body
included, comment lines above it not. In an action's code, the import
statements at top level are moved to the module's import block, and the
function is taken with that same span (comments around it at column 0 are
dropped). The new code gets the line breaks of the text it replaces (revise)
or of the file (add).
"""

from __future__ import annotations

import ast
import builtins
import difflib
import keyword
import re
import sys
import textwrap
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from funcforge.errors import UserError
from funcforge.toolset.action import ACTION_KINDS, Action
from funcforge.toolset.extract import (
    FunctionNode,
    FunctionSpan,
    first_line,
    function_spans,
    module_level,
    referenced_globals,
)
from funcforge.toolset.source import (
    LineIndex,
    SourceDecodeError,
    ToolsetSyntaxError,
    decode_source,
    encode_source,
    is_blank,
    newline_of,
    parse_python,
    split_lines,
    strip_newline,
    to_newline,
    utf16_len,
)

if TYPE_CHECKING:
    from funcforge.config import Config
    from funcforge.toolset.toolset import Toolset


class RewriteError(UserError):
    """An action that cannot be applied to the source as asked."""


@dataclass(frozen=True)
class TextEditSpec:
    """One LSP `TextEdit`: 0-based lines, characters in UTF-16 code units."""

    start_line: int
    start_character: int
    end_line: int
    end_character: int
    new_text: str

    def to_lsp(self) -> dict[str, Any]:
        """The edit as an LSP `TextEdit` JSON object."""
        return {
            "range": {
                "start": {"line": self.start_line, "character": self.start_character},
                "end": {"line": self.end_line, "character": self.end_character},
            },
            "newText": self.new_text,
        }


@dataclass
class FileChange:
    """The new text of one file, with the minimal edits that turn `old_text` into it."""

    file: str
    old_text: str
    new_text: str
    edits: list[TextEditSpec]
    # How to write `new_text` back (`utf-8-sig` keeps a BOM); True for a file that is new.
    encoding: str = "utf-8"
    created: bool = False

    def new_bytes(self) -> bytes:
        """The bytes to write for `new_text`."""
        return encode_source(self.new_text, self.encoding)


# --- the code of an action ---------------------------------------------------


@dataclass(frozen=True)
class _Import:
    """One imported name: `import module [as asname]` or `from module import name [as asname]`."""

    module: str
    name: str | None = None
    asname: str | None = None

    def normalized(self) -> _Import:
        bound_default = self.name if self.name is not None else self.module
        if self.asname == bound_default:
            return _Import(self.module, self.name, None)
        return self

    @property
    def bound(self) -> str | None:
        """The name this import binds in the module (None for a star import)."""
        if self.name == "*":
            return None
        if self.asname:
            return self.asname
        return self.name if self.name is not None else self.module.split(".")[0]

    @property
    def target(self) -> tuple[str, ...]:
        """What the bound name refers to, to tell a duplicate from a conflict."""
        if self.name is None:
            return ("module", self.module if self.asname else self.module.split(".")[0])
        return ("from", self.module, self.name)


def _imports_of(stmt: ast.Import | ast.ImportFrom) -> list[_Import]:
    if isinstance(stmt, ast.Import):
        return [_Import(a.name, None, a.asname).normalized() for a in stmt.names]
    module = "." * stmt.level + (stmt.module or "")
    return [_Import(module, a.name, a.asname).normalized() for a in stmt.names]


@dataclass
class _Code:
    """An action's code, split into its imports and its function's text (with `\\n` breaks)."""

    imports: list[_Import]
    function: str
    free_names: set[str] = field(default_factory=set)
    attribute_bases: set[str] = field(default_factory=set)


def _python_name(name: Any) -> Any:
    """An identifier as Python reads it (NFKC-normalised); anything else unchanged."""
    return unicodedata.normalize("NFKC", name) if isinstance(name, str) else name


def _where(action: Action, file: str) -> str:
    verb = action.kind.split("_")[0]
    return f"{file}: cannot {verb} '{action.name}'"


def _prepare(action: Action, file: str) -> _Code:
    where = _where(action, file)
    code = to_newline(action.code or "", "\n")
    lines = code.split("\n")
    while lines and is_blank(lines[0]):
        lines.pop(0)
    while lines and is_blank(lines[-1]):
        lines.pop()
    if not lines:
        raise RewriteError(f"{where}: the action's code is empty")
    code = "\n".join(lines) + "\n"
    if lines[0][:1] in (" ", "\t"):
        code = textwrap.dedent(code)
    label = f"<code of {action.name}>"
    try:
        tree = parse_python(code, label)
    except ToolsetSyntaxError as exc:
        raise RewriteError(
            f"{where}: the code does not parse: line {exc.line}, column {exc.col + 1}: "
            f"{exc.message}"
        ) from None
    imports: list[_Import] = []
    functions: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.extend(_imports_of(stmt))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(stmt.name)
        else:
            if isinstance(stmt, ast.ClassDef):
                what = f"defines class '{stmt.name}'"
            else:
                what = (
                    f"has a top-level statement at line {stmt.lineno} "
                    "that is neither an import nor the function"
                )
            raise RewriteError(
                f"{where}: the code must define exactly the function '{action.name}' "
                f"(imports before it are allowed), but it {what}"
            )
    if functions != [_python_name(action.name)]:
        if not functions:
            got = "defines no function"
        elif len(functions) == 1:
            got = f"defines '{functions[0]}' instead"
        else:
            got = "defines " + ", ".join(f"'{n}'" for n in functions)
        raise RewriteError(
            f"{where}: the code must define exactly one top-level function '{action.name}', "
            f"but it {got}"
        )
    (span,) = function_spans(code, label, tree)
    free = _free_names(code, label, tree, span.node)
    bases = {
        n.value.id
        for n in ast.walk(span.node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    return _Code(imports, code[span.start : span.end], free, bases & free)


_BUILTINS = set(dir(builtins))


def _free_names(code: str, file: str, tree: ast.Module, node: FunctionNode) -> set[str]:
    """Module-scope names the function reads that its code does not bind, builtins aside."""
    (read,) = referenced_globals(code, file, [node])
    return read - _bound_names(tree).keys() - _BUILTINS


def _function_free_names(code: str, file: str) -> set[str]:
    """Free names of one function's exact code (a top-level def)."""
    try:
        tree = parse_python(code, file)
    except ToolsetSyntaxError:
        return set()
    nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return _free_names(code, file, tree, nodes[0]) if nodes else set()


def _bound_names(tree: ast.Module) -> dict[str, str]:
    """Names bound at module level, each with what binds it ('import', 'function', ...)."""
    out: dict[str, str] = {}
    for node in module_level(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for imp in _imports_of(node):
                if imp.bound:
                    out.setdefault(imp.bound, "import")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.setdefault(node.name, "function")
        elif isinstance(node, ast.ClassDef):
            out.setdefault(node.name, "class")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.setdefault(node.id, "assignment")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.setdefault(node.name, "assignment")
    return out


# --- module structure ----------------------------------------------------------


@dataclass
class _Module:
    """What the import logic needs to know about a module's text."""

    text: str
    tree: ast.Module

    @classmethod
    def parse(cls, text: str, file: str) -> _Module:
        return cls(text, parse_python(text, file))

    def imports(self) -> list[_Import]:
        """Every import at module level (inside top-level `if`/`try` too, not in defs)."""
        found: list[_Import] = []
        for node in module_level(self.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.extend(_imports_of(node))
        return found

    def global_names(self) -> dict[str, str]:
        """Names bound at module level, each with what binds it ('import', 'function', ...)."""
        return _bound_names(self.tree)


# --- the three actions ---------------------------------------------------------


def apply_action(source: str, action: Action, file: str = "<string>") -> str:
    """The text of `source` after `action` (add / revise / remove one function).

    Raises `RewriteError` when the action cannot apply: code that does not
    parse or does not define exactly the named function, an add of an
    existing name, a revise or remove of a missing one.
    """
    bom = "\ufeff" if source.startswith("\ufeff") else ""
    text = source[len(bom) :]
    if action.kind not in ACTION_KINDS:
        raise RewriteError(f"{file}: unknown action kind {action.kind!r}")
    where = _where(action, file)
    name = _python_name(action.name)  # `ﬁle_size` is `file_size` to Python
    if not (isinstance(name, str) and name.isidentifier()) or keyword.iskeyword(name):
        raise RewriteError(f"{where}: {name!r} is not a valid function name")
    if name.startswith("_"):
        raise RewriteError(f"{where}: tool names must not start with '_' (those are private)")
    try:
        spans = function_spans(text, file)
    except ToolsetSyntaxError as exc:
        raise RewriteError(
            f"{file}:{exc.line}: cannot {action.kind.split('_')[0]} '{name}': "
            f"the file does not parse ({exc.message}); fix it first"
        ) from None
    matches = [s for s in spans if s.name == name]
    if action.kind == "add_function" and matches:
        raise RewriteError(
            f"{where}: {file}:{matches[0].start_line} already defines '{name}' "
            "(use revise_function to change it)"
        )
    if action.kind != "add_function":
        if not matches:
            raise RewriteError(f"{where}: {file} has no top-level function '{name}'")
        if len(matches) > 1:
            lines = ", ".join(str(s.start_line) for s in matches)
            raise RewriteError(f"{where}: '{name}' is defined more than once (lines {lines})")

    if action.kind == "remove_function":
        return bom + _remove(text, matches[0])
    code = _prepare(action, file)
    old_free: set[str] | None = None
    if action.kind == "revise_function":
        span = matches[0]
        old_free = _function_free_names(text[span.start : span.end], file)
        new = (
            text[: span.start]
            + _keep_breaks(text[span.start : span.end], code.function, _span_newline(text, span))
            + text[span.end :]
        )
    else:
        new = _append(text, to_newline(code.function, newline_of(text)))
    return bom + _add_imports(new, file, code, action, old_free)


def _keep_breaks(old: str, new: str, default: str) -> str:
    """`new` (with `\\n` breaks) given the line breaks its unchanged lines have in `old`.

    A function may mix `\\r\\n` and `\\n`: a line that stays (or is
    replaced) keeps its own break, so revising a function with its own code
    changes no byte; an inserted line takes the break of the line before it,
    else `default` (the function's first break).
    """
    old_lines = split_lines(old)
    old_text = [strip_newline(line) for line in old_lines]
    breaks = [line[len(body) :] for line, body in zip(old_lines, old_text, strict=True)]
    new_text = new.split("\n")
    chosen = [default] * len(new_text)
    matcher = difflib.SequenceMatcher(None, old_text, new_text, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for j in range(j1, j2):
            if tag in ("equal", "replace") and i2 > i1:
                source = min(i1 + (j - j1), i2 - 1)  # the line it replaces, else the block's last
            else:
                source = i1 - 1  # an inserted line: like the line before it
            if 0 <= source < len(breaks) and breaks[source]:
                chosen[j] = breaks[source]
    out = [body + chosen[j] for j, body in enumerate(new_text[:-1])]
    return "".join(out) + new_text[-1]


def _span_newline(text: str, span: FunctionSpan) -> str:
    """The line break the replaced function uses (the file's when it has none)."""
    end = text.find("\n", span.start)
    cr = text.find("\r", span.start)
    if cr != -1 and (end == -1 or cr < end):
        return "\r\n" if text.startswith("\r\n", cr) else "\r"
    return "\n" if end != -1 else newline_of(text)


def _remove(text: str, span: FunctionSpan) -> str:
    """`text` without the function's lines and the blank lines that set it apart."""
    lines = split_lines(text)
    first, stop = span.start_line - 1, span.end_line
    before = first
    while before > 0 and is_blank(lines[before - 1]):
        before -= 1
    if before > 0:
        del lines[before:stop]
    else:
        after = stop
        while after < len(lines) and is_blank(lines[after]):
            after += 1
        del lines[first:after]
    return "".join(lines)


def _append(text: str, function: str) -> str:
    """`text` with `function` at its end, after two blank lines."""
    nl = newline_of(text)
    if not text.strip(" \t\f\r\n"):
        return text + function + nl
    out = text if text.endswith(("\n", "\r")) else text + nl
    blank = 0
    for line in reversed(split_lines(out)):
        if not is_blank(line):
            break
        blank += 1
    return out + nl * max(0, 2 - blank) + function + nl


# --- imports ---------------------------------------------------------------------

_NOT_IMPORTED = {"this", "antigravity", "__main__"}
_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def _needed_imports(
    code: _Code, action: Action, guess_stdlib: bool
) -> tuple[list[_Import], list[_Import]]:
    """The code's own imports, and `import x` for names it uses as modules without importing.

    A derived import is for a free name listed in the action's packages, or
    (when `guess_stdlib`) a standard-library module the code uses as
    `name.attribute`.
    """
    explicit = list(dict.fromkeys(code.imports))
    bound = {i.bound for i in explicit}
    packages = {
        p.strip().split(".")[0] for p in action.packages if _MODULE_NAME.match(p.strip() or "-")
    }
    stdlib = (set(sys.stdlib_module_names) - _NOT_IMPORTED) if guess_stdlib else set()
    derived = [
        _Import(name)
        for name in sorted(code.free_names - bound)
        if name in packages or (name in stdlib and name in code.attribute_bases)
    ]
    return explicit, derived


def _render(imports: list[_Import]) -> list[str]:
    """Import statements, one per line; `from` imports of one module on one line."""
    entries: list[tuple[str, list[str]]] = []  # (plain statement or from-module, names)
    froms: dict[str, list[str]] = {}
    for imp in imports:
        alias = f" as {imp.asname}" if imp.asname else ""
        if imp.name is None:
            entries.append((f"import {imp.module}{alias}", []))
        elif imp.module in froms:
            froms[imp.module].append(imp.name + alias)
        else:
            froms[imp.module] = [imp.name + alias]
            entries.append((imp.module, froms[imp.module]))
    return [f"from {head} import {', '.join(names)}" if names else head for head, names in entries]


def _add_imports(
    text: str, file: str, code: _Code, action: Action, old_free: set[str] | None = None
) -> str:
    """`text` with the imports the new code needs and the module does not have yet.

    `old_free`: the free names of the function a revise replaces. A standard
    library module it already used without an import is left alone (the file
    may rely on a star import or on something funcforge cannot see), and so is
    every guess when the module has a star import.
    """
    module = _Module.parse(text, file)
    existing = module.imports()
    star = any(i.name == "*" for i in existing)
    explicit, derived = _needed_imports(code, action, guess_stdlib=not star)
    packages = {p.strip().split(".")[0] for p in action.packages}
    derived = [i for i in derived if i.module in packages or i.module not in (old_free or set())]
    if not explicit and not derived:
        return text
    where = _where(action, file)
    present = set(existing)
    by_name = {i.bound: i for i in existing if i.bound}
    names = module.global_names()
    # A derived import is only for a name the module does not bind at all.
    needed = explicit + [i for i in derived if i.bound not in names]
    missing: list[_Import] = []
    for imp in needed:
        if imp in present or imp in missing:
            continue
        bound = imp.bound
        if bound is not None:
            if bound == action.name:
                raise RewriteError(f"{where}: the code imports the name '{bound}' itself")
            other = by_name.get(bound)
            if other is not None and other.target != imp.target:
                raise RewriteError(
                    f"{where}: the code's {_render([imp])[0]!r} conflicts with "
                    f"{_render([other])[0]!r} in {file}"
                )
            kind = names.get(bound)
            if other is None and kind is not None and kind != "import":
                raise RewriteError(
                    f"{where}: the code's {_render([imp])[0]!r} would shadow the {kind} "
                    f"'{bound}' defined in {file}"
                )
        missing.append(imp)
    if not missing:
        return text
    future = [i for i in missing if i.module == "__future__"]
    regular = [i for i in missing if i.module != "__future__"]
    if future:
        text = _insert_imports(_Module.parse(text, file), future, future=True)
    if regular:
        text = _insert_imports(_Module.parse(text, file), regular, future=False)
    return text


def _docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_future(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module == "__future__"


def _insert_imports(module: _Module, imports: list[_Import], *, future: bool) -> str:
    """Insert import lines after the docstring / `__future__` imports / the leading imports."""
    text = module.text
    nl = newline_of(text)
    lines = split_lines(text)
    body = module.tree.body
    i = 0
    anchor: ast.stmt | None = None  # insert after this statement's last line
    if body and _docstring(body[0]):
        anchor = body[0]
        i = 1
    while i < len(body) and _is_future(body[i]):
        anchor = body[i]
        i += 1
    if not future:
        while i < len(body) and isinstance(body[i], (ast.Import, ast.ImportFrom)):
            anchor = body[i]
            i += 1
    new_lines = [line + nl for line in _render(imports)]
    if anchor is not None:
        after = anchor.end_lineno or anchor.lineno
        directly = isinstance(anchor, (ast.Import, ast.ImportFrom))
    else:
        after = _header_end(module, lines)
        directly = False
    head = lines[:after]
    tail = lines[after:]
    if head and strip_newline(head[-1]) == head[-1]:
        head[-1] += nl
    if not directly:
        if head and not is_blank(head[-1]):
            new_lines.insert(0, nl)
        following = next((line for line in tail if not is_blank(line)), None)
        blank = 0
        for line in tail:
            if not is_blank(line):
                break
            blank += 1
        want = 2 if following is not None and _starts_definition(following) else 1
        if following is None:
            want = 0
        new_lines.extend([nl] * max(0, want - blank))
    return "".join(head + new_lines + tail)


def _starts_definition(line: str) -> bool:
    return bool(re.match(r"(@|def\b|async\s+def\b|class\b|#)", line))


_SPECIAL_HEADER = re.compile(r"^#!|^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")


def _header_end(module: _Module, lines: list[str]) -> int:
    """How many leading lines come before the first statement's own comment block.

    Comments directly above the first statement stay attached to it; a
    shebang and an encoding declaration stay first.
    """
    body = module.tree.body
    first = first_line(body[0], lines) - 1 if body else len(lines)
    cut = 0
    for k in range(first):
        if is_blank(lines[k]):
            cut = k + 1
    for k in range(min(2, first)):
        if _SPECIAL_HEADER.match(lines[k]) and cut < k + 1:
            cut = k + 1
    return cut


# --- several actions across files ------------------------------------------------


def _add_target(config: Config, toolset: Toolset) -> str:
    from funcforge.toolset.toolset import matches_tools

    if config.add_file:
        target = config.add_file.replace("\\", "/")
        if not matches_tools(config, target):
            raise RewriteError(
                f"add_file {target!r} is not matched by the tools globs "
                f"{config.tools}; a function added there would not be a tool"
            )
        return target
    if toolset.files:
        return sorted(toolset.files)[0]
    for pattern in config.tools:
        if not any(ch in pattern for ch in "*?["):
            candidate = pattern  # a single named file
        else:
            parts = pattern.split("/")
            literal = []
            for part in parts[:-1]:
                if any(ch in part for ch in "*?["):
                    break
                literal.append(part)
            candidate = "/".join([*literal, "tools.py"])
        if matches_tools(config, candidate):
            return candidate
    raise RewriteError(
        "no tool file to add a function to: set add_file in the funcforge configuration"
    )


def plan_actions(config: Config, toolset: Toolset, actions: Iterable[Action]) -> list[FileChange]:
    """Apply `actions` in order; one `FileChange` per file that ends up different.

    revise/remove go to the file holding the function (following earlier
    actions of the same plan); add goes to `config.add_file`, else to the
    first tool file in sorted order; a file that does not exist is created.
    """
    owner = {name: spec.location.file for name, spec in toolset.functions.items() if spec.location}
    texts: dict[str, str] = {}
    originals: dict[str, str] = {}
    encodings: dict[str, str] = {}
    created: set[str] = set()
    for action in actions:
        verb = action.kind.split("_")[0]
        if action.kind == "add_function":
            if action.name in owner:
                raise RewriteError(
                    f"{owner[action.name]}: cannot add '{action.name}': it is already a tool "
                    "(use revise_function to change it)"
                )
            target = _add_target(config, toolset)
        else:
            if action.name not in owner:
                raise RewriteError(
                    f"cannot {verb} '{action.name}': no tool function '{action.name}' "
                    f"in {', '.join(sorted(toolset.files)) or 'the toolset'}"
                )
            target = owner[action.name]
        if target not in texts:
            text, encoding, is_new = _current(config, toolset, target)
            texts[target] = originals[target] = text
            encodings[target] = encoding
            if is_new:
                created.add(target)
        texts[target] = apply_action(texts[target], action, target)
        _check_encodable(texts[target], encodings[target], target, action)
        if action.kind == "add_function":
            owner[action.name] = target
        elif action.kind == "remove_function":
            del owner[action.name]
    return [
        FileChange(
            file,
            originals[file],
            texts[file],
            minimal_edits(originals[file], texts[file]),
            encodings[file],
            file in created,
        )
        for file in texts
        if texts[file] != originals[file] or file in created
    ]


def _check_encodable(text: str, encoding: str, file: str, action: Action) -> None:
    """Refuse a change the file's encoding cannot hold (apply could not write it).

    A file declared `# -*- coding: latin-1 -*-` cannot take a `☃` the new code
    brings; found here, in the plan, the replay check refuses it exactly as
    apply does, instead of apply failing after the check passed.
    """
    try:
        text.encode(encoding)
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start]
        line = LineIndex(text).line_of(exc.start) + 1
        raise RewriteError(
            f"{file}:{line}: cannot {action.kind.split('_')[0]} '{action.name}': the code has "
            f"{bad!r} (U+{ord(bad):04X}), which the file's encoding {encoding} cannot hold; "
            f"write it as an escape ({bad.encode('ascii', 'backslashreplace').decode()!r}) "
            "or change the file's encoding"
        ) from None
    except LookupError:
        pass  # decode_source already refused an unknown encoding


def _current(config: Config, toolset: Toolset, rel: str) -> tuple[str, str, bool]:
    """(text, encoding, is_new) of a file to change."""
    if rel in toolset.files:
        return toolset.files[rel], toolset.encodings.get(rel, "utf-8"), False
    path = config.root / rel
    if not path.exists():
        return "", "utf-8", True
    try:
        text, encoding = decode_source(path.read_bytes(), rel)
    except SourceDecodeError as exc:
        raise RewriteError(str(exc)) from None
    except OSError as exc:
        raise RewriteError(f"{rel}: cannot read: {exc.strerror or exc}") from None
    return text, encoding, False


# --- minimal edits ----------------------------------------------------------------


def _position(index: LineIndex, offset: int) -> tuple[int, int]:
    """(0-based line, UTF-16 column) of `offset` in the indexed text."""
    line = index.line_of(offset)
    return line, utf16_len(index.text[index.starts[line] : offset])


def minimal_edits(old: str, new: str) -> list[TextEditSpec]:
    """LSP edits that turn `old` into `new`, touching as little as possible.

    Lines are matched with difflib; inside each changed block the common
    prefix and suffix are trimmed (never between the `\\r` and `\\n` of a
    line break). Positions are 0-based lines and UTF-16 columns in `old`.
    """
    if old == new:
        return []
    a, b = split_lines(old), split_lines(new)
    index = LineIndex(old)

    def line_offset(i: int) -> int:
        return index.starts[i] if i < len(index.starts) else len(old)

    edits: list[TextEditSpec] = []
    for tag, i1, i2, j1, j2 in _line_opcodes(a, b):
        if tag == "equal":
            continue
        start, end = line_offset(i1), line_offset(i2)
        old_chunk, new_chunk = old[start:end], "".join(b[j1:j2])
        prefix = 0
        limit = min(len(old_chunk), len(new_chunk))
        while prefix < limit and old_chunk[prefix] == new_chunk[prefix]:
            prefix += 1
        if (
            0 < prefix < len(old_chunk)
            and old_chunk[prefix - 1] == "\r"
            and old_chunk[prefix] == "\n"
        ):
            prefix -= 1
        suffix = 0
        limit = min(len(old_chunk), len(new_chunk)) - prefix
        while suffix < limit and old_chunk[-1 - suffix] == new_chunk[-1 - suffix]:
            suffix += 1
        cut = len(old_chunk) - suffix
        if suffix and cut > 0 and old_chunk[cut] == "\n" and old_chunk[cut - 1] == "\r":
            suffix -= 1
        s_line, s_char = _position(index, start + prefix)
        e_line, e_char = _position(index, end - suffix)
        edits.append(
            TextEditSpec(
                s_line, s_char, e_line, e_char, new_chunk[prefix : len(new_chunk) - suffix]
            )
        )
    return edits


# Past this many differing lines, difflib's exact matching (autojunk off) is
# quadratic in repeated lines (blank lines, `return x`): a 30,000-line file
# took 90 s. Its popular-line heuristic keeps big diffs linear; the edits still
# turn `old` into `new` exactly, only perhaps not minimally.
_EXACT_DIFF_LINES = 2000


def _line_opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes of two line lists, the common first and last lines matched first."""
    head = 0
    limit = min(len(a), len(b))
    while head < limit and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < limit - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    mid_a, mid_b = a[head : len(a) - tail], b[head : len(b) - tail]
    exact = max(len(mid_a), len(mid_b)) <= _EXACT_DIFF_LINES
    matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=not exact)
    return [
        (tag, i1 + head, i2 + head, j1 + head, j2 + head)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _offset(index: LineIndex, line: int, character: int) -> int:
    """Offset of an LSP position; a column past the line's end means its end."""
    if line >= len(index.starts):
        return len(index.text)
    offset = index.starts[line]
    end = index.line_end(line + 1)
    units = 0
    while offset < end and units < character:
        units += 2 if ord(index.text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


def apply_edits(text: str, edits: Iterable[TextEditSpec]) -> str:
    """`text` with LSP-style `edits` applied (positions refer to `text`; no overlaps)."""
    index = LineIndex(text)
    spans = sorted(
        (
            _offset(index, e.start_line, e.start_character),
            _offset(index, e.end_line, e.end_character),
            e.new_text,
        )
        for e in edits
    )
    out: list[str] = []
    pos = 0
    for start, end, new_text in spans:
        if start < pos:
            raise ValueError("overlapping edits")
        out.append(text[pos:start])
        out.append(new_text)
        pos = end
    out.append(text[pos:])
    return "".join(out)
