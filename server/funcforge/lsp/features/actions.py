"""Code actions (apply, preview, reject a proposal; roll back; pin) and their resolve."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from funcforge.lsp import code_actions as ca
from funcforge.lsp.features import Feature

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer


class CodeActionsFeature(Feature):
    """textDocument/codeAction and codeAction/resolve on the document's current version.

    `conflicted`: proposals whose Apply met the user's edits (id -> functions):
    "Propose again" is offered for them until they are applied or replaced.
    """

    def __init__(self, ls: FuncforgeServer) -> None:
        super().__init__(ls)
        self.conflicted: dict[str, list[str]] = {}

    def register(self) -> None:
        self.ls.handle(
            types.TEXT_DOCUMENT_CODE_ACTION,
            self.code_action,
            types.CodeActionOptions(
                code_action_kinds=[
                    types.CodeActionKind.QuickFix,
                    types.CodeActionKind.RefactorRewrite,
                ],
                resolve_provider=True,
            ),
        )
        self.ls.handle(types.CODE_ACTION_RESOLVE, self.resolve)

    def _doc(self, uri: str) -> tuple[int | None, str]:
        doc = self.ls.workspace.get_text_document(uri)
        return doc.version, doc.source

    def code_action(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        ls = self.ls
        session, uri = ls.session, params.text_document.uri
        rel = ls.rel_of(uri)
        if session is None or rel is None:
            return []
        version, text = self._doc(uri)
        only = [str(k) for k in params.context.only] if params.context.only else None
        pins = (
            ls.hand_check.pin_actions(rel, params.range) if not only or "quickfix" in only else []
        )
        return pins + ca.code_actions(
            session,
            ca.ActionContext(
                uri=uri,
                rel=rel,
                version=version,
                text=text,
                range=params.range,
                only=only,
                resolve=ls.caps.resolve_actions,
                versioned=ls.caps.versioned_edits,
                decline=ls.diagnostics.decline,
                conflicted=frozenset(self.conflicted),
            ),
        )

    def resolve(self, action: types.CodeAction) -> types.CodeAction:
        session = self.ls.session
        if session is None:
            return action
        return ca.resolve_action(session, action, self._doc, self.ls.caps.versioned_edits)
