"""Diagnostics: pushed per changed file (or a refresh asked of pull clients), and
the decline rule's verdict, judged off the hot path."""

from __future__ import annotations

from lsprotocol import types

from funcforge.lsp.decline import find_decline
from funcforge.lsp.diagnostics import diagnostics_for
from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change, Decline
from funcforge.lsp.positions import path_to_uri
from funcforge.lsp.session import Session


class DiagnosticsFeature(Feature):
    """Owns what was last published per URI and the current decline verdict."""

    def __init__(self, ls) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ls)
        self.decline: Decline | None = None
        self._decline_key: tuple[int, str] | None = None
        self._published: dict[str, list[types.Diagnostic]] = {}

    def register(self) -> None:
        self.ls.handle(
            types.TEXT_DOCUMENT_DIAGNOSTIC,
            self.pull,
            types.DiagnosticOptions(
                identifier="funcforge", inter_file_dependencies=True, workspace_diagnostics=False
            ),
        )

    def of(self, rel: str) -> list[types.Diagnostic]:
        """All diagnostics of one tool file, hand-edit findings included."""
        session = self.ls.require_session()
        return diagnostics_for(session, rel, self.decline, self.ls.hand_check.diagnostics(rel))

    def pull(
        self, params: types.DocumentDiagnosticParams
    ) -> types.RelatedFullDocumentDiagnosticReport:
        rel = self.ls.rel_of(params.text_document.uri)
        items = self.of(rel) if self.ls.session is not None and rel is not None else []
        return types.RelatedFullDocumentDiagnosticReport(items=items)

    def on_change(self, change: Change) -> None:
        only = None
        if change.files_scope_limited and change.tool_names is not None:
            only = self.ls.require_session().files_of(set(change.tool_names))
        self.publish(only=only)

    def publish(self, judge_decline: bool = True, only: set[str] | None = None) -> None:
        """Push diagnostics of the tool files that changed (`only`: just these files),
        or ask a pull client to refresh; then, debounced, re-judge the decline rule."""
        session = self.ls.session
        if session is None:
            return
        self._publish(session, only)
        if judge_decline:
            self.ls.debounce("decline", 2.0, lambda: self._judge_decline(session))

    def _judge_decline(self, session: Session) -> None:
        """The decline rule reads git and every version's score: run it off the hot path."""
        key = (len(session.store) if session.store else 0, session.toolset.content_hash())
        if key == self._decline_key:
            return
        self._decline_key = key
        found = find_decline(session)
        if found != self.decline:
            self.decline = found
            self._publish(session)

    def _publish(self, session: Session, only: set[str] | None = None) -> None:
        ls = self.ls
        if ls.caps.pull_diagnostics:
            if ls.caps.diagnostic_refresh:
                ls.post(ls.workspace_diagnostic_refresh, None)
            return
        files = session.diagnosed_files()
        if only is not None:
            files &= only
        with session.lock:  # open files first: the editor shows them
            opened = set(session.buffers)
        order = sorted(files, key=lambda rel: (rel not in opened, rel))
        uris = {path_to_uri(session.root / rel): rel for rel in order}
        if only is None:  # files gone (deleted, renamed, no longer matched): clear them
            for uri in [u for u in self._published if u not in uris]:
                if self._published.pop(uri):
                    ls.post(
                        ls.text_document_publish_diagnostics,
                        types.PublishDiagnosticsParams(uri=uri, diagnostics=[]),
                    )
        for uri, rel in uris.items():
            diags = self.of(rel)
            if self._published.get(uri) == diags:
                continue
            self._published[uri] = diags
            doc = ls.documents.doc_of(rel)
            ls.post(
                ls.text_document_publish_diagnostics,
                types.PublishDiagnosticsParams(
                    uri=uri, diagnostics=diags, version=doc.version if doc else None
                ),
            )
