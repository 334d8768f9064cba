"""Code lenses: the evidence line and an "Optimize" button above each tool function."""

from __future__ import annotations

from lsprotocol import types

from funcforge.lsp import evidence
from funcforge.lsp.code_actions import functions_of
from funcforge.lsp.features import Feature
from funcforge.lsp.model import Change
from funcforge.lsp.positions import name_range


class CodeLensFeature(Feature):
    """textDocument/codeLens, computed on the editor's current text."""

    def register(self) -> None:
        self.ls.handle(types.TEXT_DOCUMENT_CODE_LENS, self.code_lens)

    def on_change(self, change: Change) -> None:
        """Lenses carry line numbers and statistics: ask the client to re-request them
        after tools, traces or proposals changed (`workspace/codeLens/refresh`)."""
        ls = self.ls
        if ls.caps.code_lens_refresh and (change.tools or change.traces or change.proposals):
            ls.post(ls.workspace_code_lens_refresh, None)

    def code_lens(self, params: types.CodeLensParams) -> list[types.CodeLens]:
        ls = self.ls
        session, rel = ls.session, ls.rel_of(params.text_document.uri)
        if session is None or rel is None:
            return []
        text = session.text_of(rel)
        if text is None:
            return []
        stats_all = session.tool_stats()
        out: list[types.CodeLens] = []
        for spec in functions_of(session, rel, text):  # positions on the text now
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
