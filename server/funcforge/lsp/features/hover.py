"""Hover on a tool function's name: statistics, latest errors, proposals, and the tool
definition the model is sent.

Markdown, or plain text for a client whose `hover.contentFormat` prefers it.
"""

from __future__ import annotations

import json

from lsprotocol import types

from funcforge.lsp import evidence
from funcforge.lsp.code_actions import functions_of
from funcforge.lsp.diagnostics import CODE, FAILURES
from funcforge.lsp.features import Feature
from funcforge.lsp.positions import contains, name_range
from funcforge.lsp.provenance import provenance
from funcforge.toolset.spec import FunctionSpec


def definition_markdown(spec: FunctionSpec) -> str:
    """The tool definition the model is sent (`to_openai_tool()`), and what it could not say."""
    tool = json.dumps(spec.to_openai_tool(), indent=2, ensure_ascii=False)
    fence = "````" if "```" in tool else "```"
    lines = ["**Tool definition sent to the model:**", "", f"{fence}json", tool, fence]
    if spec.schema_hints:
        lines += ["", "**Not in the schema:**", ""]
        lines += [f"- {hint}" for hint in spec.schema_hints]
    return "\n".join(lines)


def definition_plaintext(spec: FunctionSpec) -> str:
    """`definition_markdown` without Markdown syntax."""
    tool = json.dumps(spec.to_openai_tool(), indent=2, ensure_ascii=False)
    lines = ["Tool definition sent to the model:", tool]
    if spec.schema_hints:
        lines += ["", "Not in the schema:"]
        lines += [f"  {hint}" for hint in spec.schema_hints]
    return "\n".join(lines)


class HoverFeature(Feature):
    """textDocument/hover, on the editor's current text."""

    def register(self) -> None:
        self.ls.handle(types.TEXT_DOCUMENT_HOVER, self.hover)

    def hover(self, params: types.HoverParams) -> types.Hover | None:
        ls = self.ls
        session, rel = ls.session, ls.rel_of(params.text_document.uri)
        if session is None or rel is None:
            return None
        text = session.text_of(rel)
        if text is None:
            return None
        stats_all = session.tool_stats()
        for spec in functions_of(session, rel, text):  # positions on the text now
            assert spec.location is not None
            rng = name_range(spec.location, text, spec.name)
            if contains(rng, params.position):
                stats = stats_all.get(spec.name)
                origin = provenance(
                    session.config,
                    spec.name,
                    rel,
                    spec.code_hash(),
                    FAILURES.get(session.store).get(spec.name),
                    CODE,
                )
                proposals = session.proposals_for(spec.name)
                if ls.caps.hover_markdown:
                    kind = types.MarkupKind.Markdown
                    value = evidence.hover_markdown(spec.name, stats, proposals, origin)
                    value += "\n\n" + definition_markdown(spec)
                else:  # e.g. eglot without markdown-mode: no raw table syntax
                    kind = types.MarkupKind.PlainText
                    value = evidence.hover_plaintext(spec.name, stats, proposals, origin)
                    value += "\n\n" + definition_plaintext(spec)
                return types.Hover(contents=types.MarkupContent(kind=kind, value=value), range=rng)
        return None
