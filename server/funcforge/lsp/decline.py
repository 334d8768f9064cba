"""The decline rule's verdict on the working version, as a typed `Decline`."""

from __future__ import annotations

from funcforge.errors import UserError
from funcforge.lsp.model import BestVersion, Decline
from funcforge.lsp.session import Session


def find_decline(session: Session) -> Decline | None:
    """The decline rule's verdict on the current version, when it fires.

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
    return Decline(
        message=found.message(),
        best=BestVersion(
            commit=commit, short=best.label, score=best.mean_score or 0.0, n=best.scored
        ),
        functions=frozenset(_changed_since(session, commit)),
    )


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
