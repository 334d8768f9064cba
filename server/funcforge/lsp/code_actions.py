"""Code actions: apply, preview or reject a proposal; roll back after a decline.

An "Apply" action's edit is computed against the document's *current* text and
bound to its version; when the proposal no longer applies to that text (the
function changed), Apply is not offered ("Propose again" is), and resolving an
action that went stale meanwhile answers ContentModified, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams

from funcforge.errors import UserError
from funcforge.lsp import evidence
from funcforge.lsp.model import ActionData, Decline
from funcforge.lsp.positions import def_range, overlaps
from funcforge.lsp.session import Session
from funcforge.optimizer.proposal import Proposal
from funcforge.toolset.spec import FunctionSpec
from funcforge.toolset.toolset import matches_tools

APPLY_PREFIX = "Apply funcforge proposal"


def proposal_edits(
    session: Session, proposal: Proposal, rel: str, text: str
) -> list[types.TextEdit] | None:
    """Minimal edits turning `text` (the document now) into the proposal's result.

    None when the proposal is stale for this text: a touched function changed.
    """
    overrides = dict(session.buffers)
    overrides[rel] = text
    toolset = session.toolset_with(overrides)
    for name, digest in proposal.function_hashes.items():
        spec = toolset.functions.get(name)
        if spec is None or spec.code_hash() != digest:
            return None
    try:
        from funcforge.toolset.rewrite import plan_actions  # libcst: not at start

        changes = plan_actions(session.config, toolset, proposal.actions)
    except UserError:
        return None
    for change in changes:
        if change.file == rel:
            return [
                types.TextEdit(
                    range=types.Range(
                        start=types.Position(line=e.start_line, character=e.start_character),
                        end=types.Position(line=e.end_line, character=e.end_character),
                    ),
                    new_text=e.new_text,
                )
                for e in change.edits
            ]
    return []


def apply_edit(
    uri: str, version: int | None, edits: list[types.TextEdit], versioned: bool = True
) -> types.WorkspaceEdit:
    """The edit bound to the document's version, or plain `changes` for clients
    that do not support `documentChanges`."""
    if not versioned:
        return types.WorkspaceEdit(changes={uri: list(edits)})
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=version
                ),
                edits=list(edits),
            )
        ]
    )


def _wanted(only: list[str] | None, kind: str) -> bool:
    """Is `kind` asked for? Without `only`, the refactor copy of Apply is left out,
    so menus do not list the same action twice."""
    if not only:
        return kind != types.CodeActionKind.RefactorRewrite
    return any(kind == o or kind.startswith(o + ".") for o in only)


@dataclass(frozen=True)
class ActionContext:
    """One codeAction request: the document as the editor has it, and what the client takes.

    `resolve`: return actions with `data` and fill the edit on resolve;
    `versioned`: the client takes `documentChanges`; `decline`: offer a roll-back.
    """

    uri: str
    rel: str
    version: int | None
    text: str
    range: types.Range
    only: list[str] | None
    resolve: bool
    versioned: bool
    decline: Decline | None
    conflicted: frozenset[str] = frozenset()  # proposals whose Apply met the user's edits


_PARSED: dict[str, tuple[int, list[FunctionSpec]]] = {}  # rel -> (hash of text, its functions)
_NEWLINE = re.compile(r"\r\n|\r|\n")  # LSP's and Python's line breaks (no libcst import)
_GOOD: dict[str, list[FunctionSpec]] = {}  # rel -> its functions in the last text that parsed


def functions_of(session: Session, rel: str, text: str) -> list[FunctionSpec]:
    """The tool functions of the document's text as the editor has it now.

    The session's toolset is re-read a debounce after each keystroke; until then
    its positions belong to the previous text, so a text it does not hold yet is
    parsed here (once per text). A text that does not parse (mid-typing) keeps
    the functions of its last text that did, moved to where their `def` lines
    are now (the toolset has none for it: lenses, hovers and warnings vanished).
    """
    with session.lock:
        known = session.toolset.files.get(rel)
        config = session.config
    if known == text:
        specs = session.functions_in(rel)
        if specs:
            _remember(_GOOD, rel, specs)
            return specs
    if not matches_tools(config, rel) or _too_big(text, config.max_tool_file_kb):
        return []  # not a tool file (agent.py, a lock file), or over the size limit
    key = hash(text)
    cached = _PARSED.get(rel)
    if cached is not None and cached[0] == key:
        return list(cached[1])
    try:
        from funcforge.toolset.extract import extract_functions

        specs = extract_functions(text, rel)
    except Exception:  # a syntax error mid-typing: the last good parse, moved
        specs = moved(_GOOD.get(rel) or session.functions_in(rel), text)
    else:
        _remember(_GOOD, rel, specs)
    _remember(_PARSED, rel, (key, specs))
    return list(specs)


def _remember(cache: dict[str, Any], rel: str, value: Any) -> None:
    if len(cache) > 64 and rel not in cache:
        cache.clear()
    cache[rel] = value


def moved(specs: list[FunctionSpec], text: str) -> list[FunctionSpec]:
    """`specs` with their lines moved to where each one's top-level `def name` is in
    `text` (a function whose `def` line is gone is left out)."""
    lines = _NEWLINE.split(text)
    out = []
    for spec in specs:
        loc = spec.location
        assert loc is not None
        pattern = re.compile(rf"(?:async[ \t]+)?def[ \t]+({re.escape(spec.name)})\b")
        at = next(((i, m) for i, line in enumerate(lines) if (m := pattern.match(line))), None)
        if at is None:
            continue
        line0, found = at
        delta = line0 + 1 - (loc.name_line or loc.start_line)
        place = replace(
            loc,
            start_line=loc.start_line + delta,
            end_line=min(loc.end_line + delta, len(lines)),
            name_line=line0 + 1,
            name_col=found.start(1),
        )
        out.append(replace(spec, location=place))
    return out


def _too_big(text: str, limit_kb: int) -> bool:
    """Over the tool file size limit (in UTF-8 bytes; the toolset reports it)."""
    limit = max(1, limit_kb) * 1024
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


def is_stale(session: Session, proposal: Proposal, current: dict[str, FunctionSpec]) -> bool:
    """Has a function the proposal touches changed (in `current`, this document's
    functions, or in the session's toolset for the other files)?"""
    with session.lock:
        others = session.toolset.functions
    for name, digest in proposal.function_hashes.items():
        spec = current.get(name) or others.get(name)
        if spec is None or spec.code_hash() != digest:
            return True
    return False


def _repropose(p: Proposal, name: str, stale: bool) -> types.CodeAction:
    """Offered instead of Apply when the function changed since the proposal, and
    beside it when applying it met the user's edits."""
    why = "is stale" if stale else "conflicts with your edits"
    title = f"Propose again for {name} on the current text (proposal {p.id} {why})"
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        command=types.Command(
            title=title,
            command="funcforge.optimize",
            arguments=[{"function": name, "supersedes": p.id}],
        ),
    )


def code_actions(session: Session, ctx: ActionContext) -> list[types.CodeAction]:
    """The funcforge actions for functions overlapping `ctx.range` in one document.

    A stale proposal (its function changed since) is never offered for Apply:
    "Propose again" takes its place.
    """
    uri, rel, version, text, rng = ctx.uri, ctx.rel, ctx.version, ctx.text, ctx.range
    only, resolve = ctx.only, ctx.resolve
    out: list[types.CodeAction] = []
    specs = functions_of(session, rel, text)
    current = {s.name: s for s in specs}
    for spec in specs:
        assert spec.location is not None
        if not overlaps(def_range(spec.location, text), rng):
            continue
        for p in session.proposals_for(spec.name):
            stale = is_stale(session, p, current)
            if (stale or p.id in ctx.conflicted) and _wanted(only, types.CodeActionKind.QuickFix):
                out.append(_repropose(p, spec.name, stale))
            if stale:
                continue
            title = f"{APPLY_PREFIX}: {p.title} ({evidence.replay_title(p)})"
            preferred = evidence.proposal_is_safe(p)
            if not preferred:
                title += " — regresses expected results"
            if p.suspicious_unicode:  # bidi controls or invisible characters (Trojan Source)
                preferred = False
                places = [f"{n} {w}" for n, where in p.suspicious_unicode.items() for w in where]
                title += f" — suspicious Unicode in the code: {places[0]}"
                title += f" (+{len(places) - 1} more)" if len(places) > 1 else ""
            command = types.Command(
                title="Commit funcforge proposal",
                command="funcforge.applyProposal",
                arguments=[{"id": p.id, "uri": uri}],
            )
            kinds = [types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite]
            data = ActionData(proposal=p.id, uri=uri, rel=rel, version=version).to_json()
            edits = None if resolve else proposal_edits(session, p, rel, text)
            if not resolve and edits is None:
                continue  # stale for this text: never apply edits to the wrong text
            for kind in kinds:
                if not _wanted(only, kind):
                    continue
                action = types.CodeAction(
                    title=title,
                    kind=kind,
                    is_preferred=preferred and kind == types.CodeActionKind.QuickFix,
                    command=command,
                    data=data if resolve else None,
                    edit=None
                    if resolve or edits is None
                    else apply_edit(uri, version, edits, ctx.versioned),
                )
                out.append(action)
            if _wanted(only, types.CodeActionKind.Empty):
                out.append(
                    types.CodeAction(
                        title=f"Preview funcforge proposal: {p.title}",
                        kind=types.CodeActionKind.Empty,
                        command=types.Command(
                            title="Preview",
                            command="funcforge.previewProposal",
                            arguments=[{"id": p.id}],
                        ),
                    )
                )
                out.append(
                    types.CodeAction(
                        title=f"Reject funcforge proposal: {p.title}",
                        kind=types.CodeActionKind.Empty,
                        command=types.Command(
                            title="Reject",
                            command="funcforge.rejectProposal",
                            arguments=[{"id": p.id}],
                        ),
                    )
                )
    if ctx.decline is not None and _wanted(only, types.CodeActionKind.QuickFix):
        sha, title = ctx.decline.best.commit, ctx.decline.rollback_title()
        if any(
            s.location and overlaps(def_range(s.location, text), rng)
            for s in session.functions_in(rel)
        ):
            out.append(
                types.CodeAction(
                    title=title,
                    kind=types.CodeActionKind.QuickFix,
                    command=types.Command(
                        title=title, command="funcforge.rollback", arguments=[{"to": sha}]
                    ),
                )
            )
    return out


def resolve_action(
    session: Session,
    action: types.CodeAction,
    text_of: Callable[[str], tuple[int | None, str]],
    versioned: bool,
) -> types.CodeAction:
    """Fill in the edit of an action returned with `data` only (codeAction/resolve).

    `text_of(uri)` is the document's (version, text) in the editor now.
    """
    data = ActionData.from_json(action.data)
    if data is None:
        return action
    from funcforge.optimizer.proposal import ProposalError, load_proposal

    try:
        proposal = load_proposal(session.config.proposals_path, data.proposal)
    except ProposalError as exc:
        raise JsonRpcInvalidParams(f"funcforge: {exc}") from None
    if proposal.status != "pending":
        raise JsonRpcContentModified(
            f"funcforge: proposal {proposal.id} is {proposal.status} already; nothing to apply"
        )
    uri, rel = data.uri, data.rel
    try:
        version, text = text_of(uri)
    except Exception:  # the document was closed meanwhile
        raise JsonRpcContentModified(f"funcforge: {uri} is no longer open; ask again") from None
    if data.version is not None and version != data.version:
        raise JsonRpcContentModified(
            "funcforge: the document changed since the code action was offered; ask again"
        )
    edits = proposal_edits(session, proposal, rel, text)
    if edits is None:
        raise JsonRpcContentModified(
            f"funcforge: proposal {proposal.id} is stale: the function changed since it was "
            'proposed; use "Propose again"'
        )
    action.edit = apply_edit(uri, version, edits, versioned)
    return action


def line_edits(old: str, new: str) -> list[types.TextEdit]:
    """Whole-line edits turning `old` into `new` (positions at column 0: no UTF-16 counting).

    Lines break where LSP's do (`str.splitlines` also breaks at form feeds and U+2028:
    the edits would land lines away from where they belong)."""
    from difflib import SequenceMatcher

    from funcforge.toolset.source import split_lines

    a, b = split_lines(old), split_lines(new)
    edits = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        edits.append(
            types.TextEdit(
                range=types.Range(
                    start=types.Position(line=i1, character=0),
                    end=types.Position(line=i2, character=0),
                ),
                new_text="".join(b[j1:j2]),
            )
        )
    return edits
