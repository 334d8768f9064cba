"""Open documents: the editor's text of tool files, mirrored into the session."""

from __future__ import annotations

from lsprotocol import types

from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change


class DocumentsFeature(Feature):
    """didOpen/didChange/didSave/didClose: keep `session.buffers` equal to the editor's text."""

    def register(self) -> None:
        ls = self.ls
        ls.handle(types.TEXT_DOCUMENT_DID_OPEN, self.did_open)
        ls.handle(types.TEXT_DOCUMENT_DID_CHANGE, self.did_change)
        ls.handle(types.TEXT_DOCUMENT_DID_SAVE, self.did_save)
        ls.handle(types.TEXT_DOCUMENT_DID_CLOSE, self.did_close)

    def did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        self._changed(params.text_document.uri, params.text_document.text)

    def did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        doc = self.ls.workspace.get_text_document(params.text_document.uri)
        self._changed(params.text_document.uri, doc.source)

    def did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        doc = self.ls.workspace.get_text_document(params.text_document.uri)
        self._changed(params.text_document.uri, doc.source)
        self.ls.hand_check.schedule()

    def did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        self._changed(params.text_document.uri, None)

    def _changed(self, uri: str, text: str | None) -> None:
        ls, session = self.ls, self.ls.session
        rel = ls.rel_of(uri)
        if session is None or rel is None or not rel.endswith(".py"):
            return
        with session.lock:
            if text is None:
                session.buffers.pop(rel, None)
            else:
                session.buffers[rel] = text
        ls.debounce(f"doc:{rel}", 0.25, lambda: ls.refresh(Change(tools=True, rescan=False)))
