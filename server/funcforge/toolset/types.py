"""The named types of a module, read statically: aliases, classes and imports.

Tool files are never imported, so a parameter annotated `Unit`, `Movie` or
`Query` is understood by reading where the name is defined: in the same
file (a type alias, an `Enum`, a `TypedDict`, a pydantic model, a
dataclass), or in a workspace file it imports from (relative or absolute
import). `workspace_loader` finds those files under the workspace root.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst

_EMPTY = cst.Module(body=[])
_TYPE_ALIAS: Any = getattr(cst, "TypeAlias", ())


def py_name(name: str) -> str:
    """An identifier as Python binds it: NFKC-normalised (`ﬁle` is `file`, `ｘ` is `x`)."""
    return name if name.isascii() else unicodedata.normalize("NFKC", name)


def code_of(node: cst.CSTNode) -> str:
    """The source text of a node."""
    return _EMPTY.code_for_node(node)


@dataclass(frozen=True)
class ImportRef:
    """What an import binds: `module` (dotted, without the dots of `level`) and `name` (None: the module)."""

    module: str
    name: str | None
    level: int = 0

    @property
    def dotted(self) -> str:
        return "." * self.level + self.module


@dataclass
class ModuleTypes:
    """Top-level names of one module that can name a type (or give a default its value).

    A name bound twice is its last binding, as Python binds it, except that a
    fallback (an `except ImportError:` handler, the `else:` of an
    `if TYPE_CHECKING:`) never replaces what the main branch bound: the type
    checker and, usually, the running tool see the main branch's.
    """

    file: str
    aliases: dict[str, cst.BaseExpression] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    imports: dict[str, ImportRef] = field(default_factory=dict)
    stars: list[ImportRef] = field(default_factory=list)  # `from .models import *`
    # `LIMIT: int = 10`: annotated module constants (plain `LIMIT = 10` is in `aliases`)
    constants: dict[str, cst.BaseExpression] = field(default_factory=dict)

    @classmethod
    def scan(cls, tree: cst.Module, file: str) -> ModuleTypes:
        out = cls(file)
        out._scan(tree.body, fallback=False)
        return out

    def _bind(self, table: dict[str, Any], name: str, value: Any, fallback: bool) -> None:
        tables = (self.aliases, self.classes, self.imports, self.constants)
        name = py_name(name)
        if fallback and any(name in t for t in tables):
            return
        for t in tables:
            t.pop(name, None)
        table[name] = value

    def _scan(self, body: object, fallback: bool) -> None:
        for stmt in body:  # type: ignore[attr-defined]
            if isinstance(stmt, cst.ClassDef):
                self._bind(self.classes, stmt.name.value, stmt, fallback)
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    self._small(small, fallback)
            elif isinstance(stmt, cst.If):
                self._scan(stmt.body.body, fallback)
                orelse = stmt.orelse
                while orelse is not None:
                    self._scan(orelse.body.body, True)
                    orelse = orelse.orelse if isinstance(orelse, cst.If) else None
            elif isinstance(stmt, cst.Try):
                self._scan(stmt.body.body, fallback)
                if stmt.orelse is not None:
                    self._scan(stmt.orelse.body.body, fallback)
                for handler in stmt.handlers:
                    self._scan(handler.body.body, True)

    def _small(self, small: cst.BaseSmallStatement, fallback: bool) -> None:
        if isinstance(small, cst.Import):
            for alias in small.names:
                dotted = code_of(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self._bind(
                        self.imports, alias.asname.name.value, ImportRef(dotted, None), fallback
                    )
                else:
                    top = dotted.split(".")[0]
                    self._bind(self.imports, top, ImportRef(top, None), fallback)
        elif isinstance(small, cst.ImportFrom):
            module = code_of(small.module) if small.module is not None else ""
            level = len(small.relative)
            if isinstance(small.names, cst.ImportStar):
                self.stars.append(ImportRef(module, None, level))
                return
            for alias in small.names:
                name = code_of(alias.name)
                bound = name
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    bound = alias.asname.name.value
                self._bind(self.imports, bound, ImportRef(module, name, level), fallback)
        elif isinstance(small, cst.Assign) and len(small.targets) == 1:
            target = small.targets[0].target
            if isinstance(target, cst.Name):
                self._bind(self.aliases, target.value, small.value, fallback)
        elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
            if small.value is not None and _last(small.annotation.annotation) == "TypeAlias":
                self._bind(self.aliases, small.target.value, small.value, fallback)
            elif small.value is not None:
                self._bind(self.constants, small.target.value, small.value, fallback)
        elif isinstance(small, _TYPE_ALIAS):  # `type X = ...` (libcst >= 1.1)
            self._bind(self.aliases, small.name.value, small.value, fallback)


def _last(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


# Reads a workspace module: (importing file, ImportRef) -> its types, or None when not in the workspace.
ModuleLoader = Callable[[str, ImportRef], "ModuleTypes | None"]


def candidate_paths(importer: str, ref: ImportRef) -> list[str]:
    """Workspace-relative files an import may name, most likely first.

    Relative imports resolve against the importing file's package; absolute
    ones against the workspace root, `src/`, and the importing file's folder
    (a script's own folder is on `sys.path`).
    """
    parts = [p for p in ref.module.split(".") if p]
    folder = Path(importer).parent
    if ref.level:
        base = folder
        for _ in range(ref.level - 1):
            base = base.parent
        bases = [base]
    else:
        bases = [Path(""), Path("src"), folder]
    out: list[str] = []
    for base in bases:
        stem = base.joinpath(*parts) if parts else base
        for path in (stem.with_suffix(".py") if parts else None, stem / "__init__.py"):
            if path is not None:
                text = path.as_posix()
                if text not in out and not text.startswith("../"):
                    out.append(text)
    return out


_MODULE_PART = re.compile(r"^[A-Za-z_]\w*$")


def workspace_loader(
    root: Path, overrides: dict[str, str] | None = None
) -> Callable[[str, ImportRef], ModuleTypes | None]:
    """A `ModuleLoader` reading files under `root` (`overrides`: unsaved texts by relative path)."""
    from funcforge.toolset.source import decode_source

    cache: dict[str, ModuleTypes | None] = {}
    root = root.resolve()

    def load(importer: str, ref: ImportRef) -> ModuleTypes | None:
        if not all(_MODULE_PART.match(p) for p in ref.module.split(".") if p):
            return None
        for rel in candidate_paths(importer, ref):
            if rel in cache:
                if cache[rel] is not None:
                    return cache[rel]
                continue
            text = (overrides or {}).get(rel)
            if text is None:
                path = (root / rel).resolve()
                if root not in path.parents or not path.is_file():
                    cache[rel] = None
                    continue
                try:
                    text = decode_source(path.read_bytes(), rel)[0]
                except Exception:
                    cache[rel] = None
                    continue
            try:
                cache[rel] = ModuleTypes.scan(cst.parse_module(text.lstrip("\ufeff")), rel)
            except Exception:  # a file libcst cannot parse names no types
                cache[rel] = None
            if cache[rel] is not None:
                return cache[rel]
        return None

    return load
