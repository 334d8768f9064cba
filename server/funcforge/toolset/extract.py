"""Tool functions out of Python source: every public top-level function -> `FunctionSpec`.

A function's `code` is its exact text from its first decorator to the end of
its last line, including comment lines indented inside its body; comment
lines above it (and above its decorators) are not part of it. `toolset.rewrite`
replaces exactly this span, so a function replaced by its own code leaves the
file byte-identical.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import (
    GlobalScope,
    MetadataWrapper,
    PositionProvider,
    ScopeProvider,
    WhitespaceInclusivePositionProvider,
)

from funcforge.toolset.schema import clean_docstring, parameters_schema, parse_docstring
from funcforge.toolset.source import (
    LineIndex,
    ToolsetSyntaxError,
    is_blank,
    parse_module,
    split_lines,
)
from funcforge.toolset.spec import FunctionSpec, Location

__all__ = [
    "FunctionSpan",
    "ToolsetSyntaxError",
    "extract_functions",
    "function_spans",
    "is_third_party",
    "module_spans",
]

_STDLIB = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | {"__future__"}


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
    node: cst.FunctionDef
    start_line: int
    end_line: int
    start: int
    end: int
    name_line: int
    name_col: int


def _spans(wrapper: MetadataWrapper, source: str) -> Iterator[FunctionSpan]:
    positions = wrapper.resolve(PositionProvider)
    inclusive = wrapper.resolve(WhitespaceInclusivePositionProvider)
    index = LineIndex(source)
    lines = split_lines(source)
    for node in wrapper.module.body:
        if not isinstance(node, cst.FunctionDef):
            continue
        first = node.decorators[0] if node.decorators else node
        start_line = positions[first].start.line
        end_line = positions[node].end.line
        # Comment lines indented inside the body (block footers) belong to it.
        incl_end = inclusive[node].end
        last = incl_end.line if incl_end.column > 0 else incl_end.line - 1
        for line in range(end_line + 1, min(last, len(lines)) + 1):
            if not is_blank(lines[line - 1]):
                end_line = line
        name_pos = positions[node.name].start
        yield FunctionSpan(
            name=node.name.value,
            node=node,
            start_line=start_line,
            end_line=end_line,
            start=index.offset(start_line, 0),
            end=index.line_end(end_line),
            name_line=name_pos.line,
            name_col=name_pos.column,
        )


def module_spans(
    source: str, file: str = "<string>"
) -> tuple[cst.Module, list[FunctionSpan], MetadataWrapper]:
    """Parse `source`; every top-level function (public or not) with its span, in file order.

    Raises `ToolsetSyntaxError` when the source does not parse.
    """
    wrapper = MetadataWrapper(parse_module(source, file), unsafe_skip_copy=True)
    return wrapper.module, list(_spans(wrapper, source)), wrapper


def function_spans(source: str, file: str = "<string>") -> list[FunctionSpan]:
    """Every top-level function (public or not) with its exact span, in file order."""
    return module_spans(source, file)[1]


def _top_module(dotted: str) -> str:
    return dotted.split(".", 1)[0]


def _import_module(assignment: object) -> str | None:
    """The top-level module a module-level import binding refers to (None: relative)."""
    node = getattr(assignment, "node", None)
    if isinstance(node, cst.Import):
        index = getattr(assignment, "index", 0)
        alias = node.names[index]
        return _top_module(_EMPTY.code_for_node(alias.name))
    if isinstance(node, cst.ImportFrom):
        if node.relative or node.module is None:
            return None
        return _top_module(_EMPTY.code_for_node(node.module))
    return None


_EMPTY = cst.Module(body=[])


class _InnerImports(cst.CSTVisitor):
    def __init__(self) -> None:
        self.modules: set[str] = set()

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            self.modules.add(_top_module(_EMPTY.code_for_node(alias.name)))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if not node.relative and node.module is not None:
            self.modules.add(_top_module(_EMPTY.code_for_node(node.module)))


def _packages(wrapper: MetadataWrapper, spans: list[FunctionSpan]) -> dict[int, set[str]]:
    """Third-party top-level modules each function uses, by the span's first line."""
    positions = wrapper.resolve(PositionProvider)
    scopes = wrapper.resolve(ScopeProvider)
    used: dict[int, set[str]] = {s.start_line: set() for s in spans}
    bounds = [(s.start_line, s.end_line) for s in spans]
    global_scope = next((s for s in scopes.values() if isinstance(s, GlobalScope)), None)
    if global_scope is not None:
        for assignment in global_scope.assignments:
            module = _import_module(assignment)
            if module is None or not is_third_party(module):
                continue
            for ref in assignment.references:
                line = positions[ref.node].start.line
                for lo, hi in bounds:
                    if lo <= line <= hi:
                        used[lo].add(module)
    for span in spans:
        inner = _InnerImports()
        span.node.visit(inner)
        used[span.start_line].update(m for m in inner.modules if is_third_party(m))
    return used


def extract_functions(source: str, file: str = "<string>") -> list[FunctionSpec]:
    """Every public (no leading `_`) top-level function in `source`, in file order.

    Raises `ToolsetSyntaxError` when the source does not parse.
    """
    bom = 1 if source.startswith("\ufeff") else 0
    text = source[bom:]
    wrapper = MetadataWrapper(parse_module(text, file), unsafe_skip_copy=True)
    spans = [s for s in _spans(wrapper, text) if not s.name.startswith("_")]
    packages = _packages(wrapper, spans)
    index = LineIndex(text)
    out: list[FunctionSpec] = []
    for span in spans:
        node = span.node
        raw_doc = node.get_docstring(clean=False)
        docstring = clean_docstring(raw_doc) if raw_doc is not None else None
        doc = parse_docstring(raw_doc)

        def col(line: int, value: int) -> int:
            return value + bom if line == 1 else value

        end_col = span.end - index.starts[span.end_line - 1]
        out.append(
            FunctionSpec(
                name=span.name,
                description=doc.summary,
                parameters=parameters_schema(node.params, doc.params),
                packages=sorted(packages[span.start_line]),
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
                docstring=docstring,
            )
        )
    return out
