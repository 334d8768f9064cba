"""The replay check for hand edits: each tool changed in the working tree (or the
editor's buffers) against its committed version, on logged calls and expectations.

Used by `funcforge check` and by the language server's on-save diagnostics.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from funcforge.config import Config


@dataclass
class HandCheck:
    """Reports per changed function, functions removed since HEAD, notes, broken files."""

    reports: list[Any] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    broken: list[Any] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)  # (function, file)
    removed_from: dict[str, str] = field(default_factory=dict)  # removed function -> its file

    @property
    def failed(self) -> bool:
        return any(r.has_regression for r in self.reports) or bool(self.broken)


def head_texts(config: Config, files: Iterable[str], base: str = "HEAD") -> dict[str, str | None]:
    """The committed text of each tool file at `base` (HEAD by default); None when absent."""
    from funcforge.history.git import open_repo
    from funcforge.history.gitops import head_sha, workspace_prefix
    from funcforge.toolset.source import SourceDecodeError, decode_source

    out: dict[str, str | None] = {}
    with open_repo(config) as repo:
        prefix = workspace_prefix(repo, config)
        commit = None
        if base == "HEAD" and head_sha(repo) is None:
            commit = None  # no commits yet: everything is new
        else:
            commit = resolve_commit(repo, base)
        for rel in files:
            out[rel] = None
            if commit is None:
                continue
            try:
                blob = commit.tree / f"{prefix}{rel}"
            except KeyError:
                continue
            try:
                out[rel] = decode_source(blob.data_stream.read(), rel)[0]
            except SourceDecodeError:
                continue
    return out


def resolve_commit(repo: Any, rev: str) -> Any:
    """The commit `rev` names (a sha, branch, tag, `HEAD~2`, `origin/main`); a clear error if none."""
    from funcforge.errors import UserError

    try:
        return repo.commit(rev)
    except Exception:  # gitdb/GitPython raise several types for a bad name
        raise UserError(
            f"{rev!r} names no commit in {repo.working_tree_dir} "
            "(in CI, fetch enough history: actions/checkout with fetch-depth: 0)"
        ) from None


def _bindings(tree: ast.Module, text: str) -> tuple[dict[str, str], list[str]]:
    """Top-level name -> the source of the statement binding it, and unbound statements."""
    bound: dict[str, str] = {}
    other: list[str] = []
    for node in tree.body:
        segment = ast.get_source_segment(text, node) or ast.dump(node)
        names: list[str] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        if names:
            for name in names:
                bound[name] = bound.get(name, "") + segment
        elif not (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            other.append(segment)
    return bound, other


def affected_names(old_text: str, new_text: str) -> set[str] | None:
    """Top-level names whose behaviour may differ between two versions of a module.

    A name is affected when its own statement changed or when it refers to an
    affected name (transitively). None means everything: module-level code
    that binds no name changed, or a version does not parse.
    """
    try:
        old_tree, new_tree = ast.parse(old_text), ast.parse(new_text)
    except SyntaxError:
        return None
    (old_bound, old_other), (new_bound, new_other) = (
        _bindings(old_tree, old_text),
        _bindings(new_tree, new_text),
    )
    if old_other != new_other:
        return None
    affected = {n for n in set(old_bound) | set(new_bound) if old_bound.get(n) != new_bound.get(n)}
    uses: dict[str, set[str]] = {}
    for node in new_tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            uses[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    grew = True
    while grew:
        grew = False
        for name, used in uses.items():
            if name not in affected and used & affected:
                affected.add(name)
                grew = True
    return affected


def top_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def check_hand_edits(
    config: Config, toolset: Any, store: Any, function: str | None = None, base: str = "HEAD"
) -> HandCheck:
    """Run the replay check on every tool function that differs from `base` (HEAD).

    `toolset` is what the user has now (files or editor buffers), or the
    toolset of another commit (`review.refs.toolset_at`); `store` a refreshed
    TraceStore. Tool code runs only in the sandbox.
    """
    from funcforge.errors import UserError
    from funcforge.optimizer.replay import (
        check_calls,
        function_expectations,
        logged_calls,
        orphan_pin_problems,
    )
    from funcforge.toolset.extract import extract_functions
    from funcforge.toolset.source import ToolsetSyntaxError

    heads = head_texts(config, toolset.files, base)
    out = HandCheck()
    # A warning (a file read but not rewritable) does not break the tools.
    errors = [p for p in toolset.problems if p.severity == "error"]
    out.broken = [p for p in errors if toolset.files.get(p.file) != heads.get(p.file)]
    for rel in sorted(toolset.files):
        head = heads.get(rel)
        old_specs = {}
        if head is not None:
            try:
                old_specs = {s.name: s for s in extract_functions(head, rel)}
            except ToolsetSyntaxError:
                old_specs = {}
        new_specs = {s.name: s for s in toolset.functions_in(rel)}
        # Module-level code (constants, imports, helpers) affects the tools that use it.
        affected = affected_names(head, toolset.files[rel]) if head is not None else None
        for name, spec in new_specs.items():
            if function and name != function:
                continue
            old = old_specs.get(name)
            if (
                old is None
                or old.code != spec.code
                or affected is None
                or name in affected
                or function
            ):
                out.changed.append((name, rel))
        if not any(p.file == rel for p in errors):
            gone = [n for n in old_specs if n not in new_specs and n not in toolset.functions]
            out.removed.extend(gone)
            out.removed_from.update((n, rel) for n in gone)
    if function and function not in toolset.functions:
        raise UserError(f"no tool function '{function}' in {config.root}", exit_code=2)
    out.notes = [str(p) for p in out.broken]
    out.notes.extend(orphan_pin_problems(config, toolset.functions))
    old_sources = {rel: head for rel, head in heads.items() if head is not None}
    for name, rel in out.changed:
        head = heads.get(rel)
        versions = [(rel, toolset.files[rel])] + ([(rel, head)] if head is not None else [])
        expectations, doc_notes = function_expectations(config, name, versions)
        out.notes.extend(doc_notes)
        existed = head is not None and name in top_names(head)
        out.reports.append(
            check_calls(
                name,
                old_sources if existed else None,
                toolset.files,
                logged_calls(store, name, limit=config.replay_budget * 5),
                expectations,
                config,
            )
        )
    return out
