"""Open documents: the editor's text of tool files, mirrored into the session."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument

from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer


class DocumentsFeature(Feature):
    """didOpen/didChange/didSave/didClose: keep `session.buffers` equal to the editor's text.

    `uris`: the URI the client named each open tool file with (relative path -> URI).
    The server's own spelling of a path's URI may differ (percent-encoding of spaces
    and non-ASCII letters, drive letters), so open documents are looked up by path.
    """

    def __init__(self, ls: FuncforgeServer) -> None:
        super().__init__(ls)
        self.uris: dict[str, str] = {}

    def doc_of(self, rel: str) -> TextDocument | None:
        """The open document of a workspace-relative path, as the client named it."""
        uri = self.uris.get(rel)
        if uri is None:
            return None
        return self.ls.workspace.text_documents.get(unquote(uri))

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
        uri = params.text_document.uri
        doc = self.ls.workspace.text_documents.get(unquote(uri))
        if doc is not None:  # a save of a document never opened is not a buffer
            self._changed(uri, doc.source)
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
                self.uris.pop(rel, None)
            else:
                session.buffers[rel] = text
                self.uris[rel] = uri
        ls.debounce(f"doc:{rel}", 0.25, lambda: ls.refresh(Change(tools=True, rescan=False)))
