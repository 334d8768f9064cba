"""What the client sees: status, code lenses, hovers, code actions, decline warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

from funcforge.errors import UserError
from funcforge.lsp import code_actions as ca
from funcforge.lsp import evidence
from funcforge.lsp.positions import contains, def_range, name_range
from funcforge.lsp.session import Session

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer


def status(ls: FuncforgeServer, session: Session, message: str | None = None) -> dict[str, Any]:
    """The `funcforge/status` payload."""
    state = session.optimizer_state()
    name = session.state_name
    if name == "idle" and state.converged:
        name = "converged"
    return {
        "state": name,
        "message": message or session.state_message,
        "bestScore": state.best_score,
        "bestN": state.best_n or None,
        "step": state.step,
        "proposals": len(session.pending_proposals()),
        "executionAllowed": session.settings.allow_execution,
    }


def decline(session: Session) -> dict[str, Any] | None:
    """The decline rule's verdict on the current version, when it fires.

    Returns {message, best: {commit, short, score, n}, functions} where
    `functions` are the tools whose code differs from the best version's.
    """
    from funcforge.history.log import history_log

    if session.store is None:
        return None
    try:
        log = history_log(session.config, session.store.version_stats(), session.version())
    except UserError:
        return None
    found = log.decline
    if found is None or not found.declined or found.best is None or not found.best.commit:
        return None
    best = found.best
    commit = best.commit
    assert commit is not None
    return {
        "message": found.message(),
        "best": {
            "commit": best.commit,
            "short": best.label,
            "score": best.mean_score or 0.0,
            "n": best.scored,
        },
        "functions": sorted(_changed_since(session, commit)),
    }


def _changed_since(session: Session, commit: str) -> set[str]:
    """Tool functions whose code differs between `commit` and the working toolset."""
    from funcforge.history.git import open_repo
    from funcforge.history.gitops import blob_bytes, repo_path
    from funcforge.toolset.extract import extract_functions

    with session.lock:
        current = {n: s.code for n, s in session.toolset.functions.items()}
        files = list(session.toolset.files)
    old: dict[str, str] = {}
    try:
        with open_repo(session.config) as repo:
            for rel in files:
                data = blob_bytes(repo, commit, repo_path(repo, session.config, rel))
                if data is None:
                    continue
                for spec in extract_functions(data.decode("utf-8", "replace"), rel):
                    old[spec.name] = spec.code
    except UserError:
        return set(current)
    return {n for n, code in current.items() if old.get(n) != code} or set(current)


def decline_tuple(found: dict[str, Any] | None) -> tuple[str, set[str]] | None:
    if not found:
        return None
    return str(found["message"]), set(found.get("functions") or [])


def rollback_offer(found: dict[str, Any] | None) -> tuple[str, str] | None:
    if not found:
        return None
    best = found["best"]
    title = f"Roll back to {best['short']} ({best['score']:.2f}, n={best['n']})"
    return best["commit"], title


def _doc(ls: FuncforgeServer, uri: str) -> tuple[int | None, str]:
    doc = ls.workspace.get_text_document(uri)
    return doc.version, doc.source


def code_lenses(ls: FuncforgeServer, uri: str) -> list[types.CodeLens]:
    session, rel = ls.session, ls.rel_of(uri)
    if session is None or rel is None:
        return []
    text = session.text_of(rel)
    if text is None:
        return []
    stats_all = session.tool_stats()
    out: list[types.CodeLens] = []
    for spec in session.functions_in(rel):
        assert spec.location is not None
        rng = name_range(spec.location, text, spec.name)
        line_range = types.Range(
            start=types.Position(line=rng.start.line, character=0), end=rng.start
        )
        out.append(
            types.CodeLens(
                range=line_range,
                command=types.Command(
                    title=evidence.lens_title(stats_all.get(spec.name)), command=""
                ),
            )
        )
        out.append(
            types.CodeLens(
                range=line_range,
                command=types.Command(
                    title="Optimize",
                    command="funcforge.optimize",
                    arguments=[{"function": spec.name}],
                ),
            )
        )
    return out


def hover(ls: FuncforgeServer, uri: str, pos: types.Position) -> types.Hover | None:
    session, rel = ls.session, ls.rel_of(uri)
    if session is None or rel is None:
        return None
    text = session.text_of(rel)
    if text is None:
        return None
    stats_all = session.tool_stats()
    for spec in session.functions_in(rel):
        assert spec.location is not None
        rng = name_range(spec.location, text, spec.name)
        if contains(rng, pos):
            md = evidence.hover_markdown(
                spec.name, stats_all.get(spec.name), session.proposals_for(spec.name)
            )
            return types.Hover(
                contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=md), range=rng
            )
    return None


def code_actions(ls: FuncforgeServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    session, uri = ls.session, params.text_document.uri
    rel = ls.rel_of(uri)
    if session is None or rel is None:
        return []
    version, text = _doc(ls, uri)
    only = [str(k) for k in params.context.only] if params.context.only else None
    from funcforge.lsp.handcheck import pin_actions
    from funcforge.lsp.positions import overlaps

    hand = [d for d in ls.hand_diags.get(rel, []) if overlaps(d.range, params.range)]
    pins = pin_actions(hand) if not only or "quickfix" in only else []
    return pins + ca.code_actions(
        session,
        uri,
        rel,
        version,
        text,
        params.range,
        only,
        ls.resolve_actions,
        rollback_offer(ls.decline),
    )


def resolve(ls: FuncforgeServer, action: types.CodeAction) -> types.CodeAction:
    session = ls.session
    if session is None:
        return action
    return ca.resolve_action(session, action, lambda uri: _doc(ls, uri))


def function_at(session: Session, rel: str, text: str, pos: types.Position) -> str | None:
    """The tool function whose definition contains `pos`."""
    for spec in session.functions_in(rel):
        assert spec.location is not None
        if contains(def_range(spec.location, text), pos):
            return spec.name
    return None
