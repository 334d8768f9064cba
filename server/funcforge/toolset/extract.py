"""Tool functions out of Python source: every public top-level function -> `FunctionSpec`.

A function's `code` is its exact text from its first decorator to the end of
its last line, including indented comment lines that follow its body (before
the next top-level statement); comment lines above it (and above its
decorators) are not part of it. `toolset.rewrite` replaces exactly this
span, so a function replaced by its own code leaves the file byte-identical.

libcst parses every file (the tree the parameter schemas and docstrings are
read from, and the guarantee that the file can be rewritten); positions and
scopes come from the standard library's `ast` and `symtable`, which are one
to two orders of magnitude faster than libcst's metadata providers.
"""

from __future__ import annotations

import ast
import re
import symtable
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from funcforge.toolset.decorators import registrations, tool_decorator
from funcforge.toolset.schema import (
    SchemaBuilder,
    clean_docstring,
    model_parameters,
    parameters_schema,
    parse_docstring,
)
from funcforge.toolset.source import (
    LineIndex,
    ToolsetSyntaxError,
    is_blank,
    parse_cst,
    parse_python,
    split_lines,
)
from funcforge.toolset.spec import FunctionSpec, Location
from funcforge.toolset.types import ModuleLoader, ModuleTypes

__all__ = [
    "FunctionSpan",
    "ToolsetSyntaxError",
    "extract_functions",
    "function_spans",
    "is_third_party",
    "module_level",
    "referenced_globals",
]

_STDLIB = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | {"__future__"}

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def is_third_party(module: str) -> bool:
    """True for a top-level module name outside the standard library (and `__future__`)."""
    return bool(module) and module not in _STDLIB


@dataclass(frozen=True)
class FunctionSpan:
    """A top-level function's place in the text: whole lines `start_line..end_line` (1-based).

    `start`/`end` are offsets: from the first decorator (or `def`) to the end
    of the last line's content, before its line break.
    """

    name: str
    node: FunctionNode
    start_line: int
    end_line: int
    start: int
    end: int
    name_line: int
    name_col: int


def first_line(node: ast.stmt, lines: list[str]) -> int:
    """The 1-based line a statement starts on: its first decorator's `@` line, or its own.

    A decorator's expression may start lines below its `@` (PEP 614:
    `@(\n    decorator\n)`); only brackets, blanks and comments can come
    between, so the `@` is on the nearest line above that starts with one.
    """
    decorators = getattr(node, "decorator_list", None)
    if not decorators:
        return node.lineno
    line = decorators[0].lineno
    col = decorators[0].col_offset
    if line > len(lines) or "@" in lines[line - 1][:col]:
        return line
    for k in range(line - 1, 0, -1):
        if lines[k - 1].lstrip(" \t\f").startswith("@"):
            return k
    return line


def _is_indented_comment(line: str) -> bool:
    stripped = line.lstrip(" \t\f")
    return len(stripped) < len(line) and stripped.startswith("#")


def function_spans(
    source: str, file: str = "<string>", tree: ast.Module | None = None
) -> list[FunctionSpan]:
    """Every top-level function (public or not) with its exact span, in file order.

    Raises `ToolsetSyntaxError` when the source does not compile.
    """
    if tree is None:
        tree = parse_python(source, file)
    index = LineIndex(source)
    lines = split_lines(source)
    spans: list[FunctionSpan] = []
    for i, node in enumerate(tree.body):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        start_line = first_line(node, lines)
        end_line = node.end_lineno or node.lineno
        # Indented comment lines after the body belong to the function.
        stop = first_line(tree.body[i + 1], lines) if i + 1 < len(tree.body) else len(lines) + 1
        for k in range(end_line + 1, stop):
            line = lines[k - 1]
            if _is_indented_comment(line):
                end_line = k
            elif not is_blank(line):
                break
        name_offset = _name_offset(source, index.offset(node.lineno, 0), node.name)
        name_line = index.line_of(name_offset)
        spans.append(
            FunctionSpan(
                name=node.name,
                node=node,
                start_line=start_line,
                end_line=end_line,
                start=index.offset(start_line, 0),
                end=index.line_end(end_line),
                name_line=name_line + 1,
                name_col=name_offset - index.starts[name_line],
            )
        )
    return spans


_DEF_NAME = re.compile(r"\bdef(?:[ \t\f]|\\(?:\r\n|\r|\n))+(\w+)")


def _name_offset(source: str, def_line_start: int, name: str) -> int:
    """Offset of the def's name token; `name` is Python's NFKC form (`ﬁle` is `file`)."""
    for m in _DEF_NAME.finditer(source, def_line_start):
        if unicodedata.normalize("NFKC", m.group(1)) == name:
            return m.start(1)
    return def_line_start


# --- names and packages ------------------------------------------------------


def module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """Nodes that run at module level: not inside a def, class or lambda (those are yielded)."""
    stack: list[ast.AST] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _module_imports(tree: ast.Module) -> dict[str, set[str]]:
    """Names bound by absolute imports at module level -> the top-level modules they come from."""
    out: dict[str, set[str]] = {}
    for node in module_level(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                out.setdefault(alias.asname or top, set()).add(top)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name != "*":
                    out.setdefault(alias.asname or alias.name, set()).add(node.module.split(".")[0])
    return out


def _names_in(node: ast.AST | None) -> set[str]:
    """Names read in an expression, including inside string annotations."""
    out: set[str] = set()
    if node is None:
        return out
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            try:
                inner = ast.parse(sub.value.strip(), mode="eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            out |= {n.id for n in ast.walk(inner) if isinstance(n, ast.Name)}
    return out


def _signature_names(node: FunctionNode) -> set[str]:
    """Names a def reads in module scope: decorators, defaults, annotations."""
    args = node.args
    parts: list[ast.AST | None] = [*node.decorator_list, *args.defaults, *args.kw_defaults]
    parts.append(node.returns)
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None:
            parts.append(arg.annotation)
    out: set[str] = set()
    for part in parts:
        out |= _names_in(part)
    return out


def _table_globals(table: symtable.SymbolTable) -> set[str]:
    out = {s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced()}
    for child in table.get_children():
        out |= _table_globals(child)
    return out


def referenced_globals(source: str, file: str, nodes: list[FunctionNode]) -> list[set[str]]:
    """For each top-level def: the module-scope names it reads (signature and body, nested too).

    Builtins are included when read; callers compare with what the module binds.
    """
    table = symtable.symtable(source, file, "exec")
    children: dict[tuple[str, int], symtable.SymbolTable] = {}
    for child in table.get_children():
        children.setdefault((child.get_name(), child.get_lineno()), child)
    out: list[set[str]] = []
    for node in nodes:
        names = _signature_names(node)
        table_of = children.get((node.name, node.lineno))
        if table_of is not None:
            names |= _table_globals(table_of)
        out.append(names)
    return out


def _inner_imports(node: FunctionNode) -> set[str]:
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            out |= {alias.name.split(".")[0] for alias in sub.names}
        elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
            out.add(sub.module.split(".")[0])
    return out


# --- extraction --------------------------------------------------------------


def _is_overload(node: FunctionNode) -> bool:
    """An `@overload` (`@typing.overload`) stub: a signature for type checkers, never called."""
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name == "overload":
            return True
    return False


def _partial_module(text: str, tree: ast.Module) -> cst.Module:
    """libcst's tree of every top-level statement it can parse on its own (the rest left out)."""
    lines = split_lines(text)
    body: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []
    for stmt in tree.body:
        start, end = first_line(stmt, lines), stmt.end_lineno or stmt.lineno
        try:
            body.extend(cst.parse_module("".join(lines[start - 1 : end])).body)
        except Exception:  # libcst's parser fails in more ways than ParserSyntaxError
            continue
    return cst.Module(body=body)


def _cst_function(text: str, span: FunctionSpan) -> cst.FunctionDef:
    """libcst's tree of one function; a stub with its signature and docstring when libcst fails."""
    try:
        parsed = cst.parse_module(re.sub(r"\r(?!\n)", "\n", text[span.start : span.end]) + "\n")
        if parsed.body and isinstance(parsed.body[0], cst.FunctionDef):
            return parsed.body[0]
    except Exception:
        pass
    node = span.node
    body: list[ast.stmt] = []
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        body.append(ast.Expr(ast.Constant(doc)))
    body.append(ast.Expr(ast.Constant(...)))
    stub = type(node)(**{**{f: getattr(node, f) for f in node._fields}, "body": body})
    parsed = cst.parse_module(ast.unparse(ast.fix_missing_locations(stub)) + "\n")
    assert isinstance(parsed.body[0], cst.FunctionDef)
    return parsed.body[0]


def extract_functions(
    source: str,
    file: str = "<string>",
    loader: ModuleLoader | None = None,
    problems: list[ToolsetSyntaxError] | None = None,
) -> list[FunctionSpec]:
    """Every public (no leading `_`) top-level function in `source`, in file order.

    `@overload` stubs are left out (the implementation after them is the
    tool). A name defined twice gives two specs; `load_toolset` keeps the
    last of one file, the definition Python binds.

    `loader` reads the workspace modules the file imports types from (see
    `toolset.types.workspace_loader`); without it only the file's own types
    are resolved. Raises `ToolsetSyntaxError` when the source does not parse.

    Valid Python that libcst cannot parse (`(y): int = 0`) is still read,
    statement by statement; the reason it cannot be rewritten is appended to
    `problems`.
    """
    bom = 1 if source.startswith("\ufeff") else 0
    text = source[bom:]
    tree = parse_python(text, file)
    spans = function_spans(text, file, tree)
    try:
        module = parse_cst(text, file)
        defs = [s for s in module.body if isinstance(s, cst.FunctionDef)]
    except ToolsetSyntaxError as exc:
        if problems is not None:
            problems.append(exc)
        module = _partial_module(text, tree)
        defs = [_cst_function(text, span) for span in spans]
    if [unicodedata.normalize("NFKC", d.name.value) for d in defs] != [s.name for s in spans]:
        raise ToolsetSyntaxError(file, 1, 0, "libcst and Python disagree on the functions")
    public = [
        (span, d)
        for span, d in zip(spans, defs, strict=True)
        if not span.name.startswith("_") and not _is_overload(span.node)
    ]
    imports = _module_imports(tree)
    used = referenced_globals(text, file, [span.node for span, _ in public])
    index = LineIndex(text)
    types = ModuleTypes.scan(module, file)
    registered_as = registrations(tree)

    def col(line: int, value: int) -> int:
        return value + bom if line == 1 else value

    out: list[FunctionSpec] = []
    for (span, node), names in zip(public, used, strict=True):
        modules = set().union(*(imports.get(n, set()) for n in names))
        modules |= _inner_imports(span.node)
        raw_doc = node.get_docstring(clean=False)
        doc = parse_docstring(raw_doc)
        builder = SchemaBuilder(types, loader)
        decorator = tool_decorator(node)
        registered = registered_as.get(span.name)
        if registered is not None and not decorator.decorator:
            decorator = registered
        parameters = None
        if decorator.args_schema is not None:
            parameters = model_parameters(decorator.args_schema, builder)
        if parameters is None:
            parameters = parameters_schema(node.params, doc.params, builder)
        hints = decorator.hints + builder.hints
        if decorator.name is not None and decorator.name != span.name:
            at = "@" if registered is None or decorator is not registered else ""
            hints.insert(
                0,
                f"{at}{decorator.decorator} names this tool {decorator.name!r}: funcforge knows "
                f"it as '{span.name}' (its function's name), in definitions and in traces",
            )
        end_col = span.end - index.starts[span.end_line - 1]
        out.append(
            FunctionSpec(
                name=span.name,
                description=decorator.description or doc.description,
                parameters=parameters,
                packages=sorted(m for m in modules if is_third_party(m)),
                code=text[span.start : span.end],
                location=Location(
                    file=file,
                    start_line=span.start_line,
                    start_col=col(span.start_line, 0),
                    end_line=span.end_line,
                    end_col=col(span.end_line, end_col),
                    name_line=span.name_line,
                    name_col=col(span.name_line, span.name_col),
                ),
                is_async=node.asynchronous is not None,
                docstring=clean_docstring(raw_doc) if raw_doc is not None else None,
                schema_hints=hints,
            )
        )
    return out
