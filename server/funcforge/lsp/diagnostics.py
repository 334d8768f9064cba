"""Diagnostics on tool functions: failing calls, proposals ready, score declines.

Failing calls say on which version they were logged; when the function's
code (as the editor has it) differs from its code in every version with
failures, they are shown as a hint about the past ("before your change"),
not as a current warning.
"""

from __future__ import annotations

from lsprotocol import types

from funcforge.lsp import evidence
from funcforge.lsp.code_actions import functions_of
from funcforge.lsp.model import Decline
from funcforge.lsp.positions import name_range, path_to_uri
from funcforge.lsp.provenance import CodeAtVersion, FailureIndex, provenance
from funcforge.lsp.session import Session

SOURCE = "funcforge"
FAILURES = FailureIndex()  # per-version failures of each tool, recomputed when traces change
CODE = CodeAtVersion()  # each function's code hash per committed version


def _related(session: Session, stats: object) -> list[types.DiagnosticRelatedInformation]:
    out: list[types.DiagnosticRelatedInformation] = []
    examples = getattr(stats, "examples", {}) or {}
    for etype, refs in sorted(examples.items()):
        for ref in list(refs)[:2]:
            path = session.root / ref.file
            out.append(
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=path_to_uri(path),
                        range=types.Range(
                            start=types.Position(line=max(0, ref.line - 1), character=0),
                            end=types.Position(line=max(0, ref.line - 1), character=0),
                        ),
                    ),
                    message=f"{etype} in {ref}",
                )
            )
    return out[:8]


def diagnostics_for(
    session: Session,
    rel: str,
    decline: Decline | None = None,
    extra: list[types.Diagnostic] | None = None,
) -> list[types.Diagnostic]:
    """All funcforge diagnostics of one tool file (by workspace-relative path).

    `decline`: the decline rule's verdict, shown on the functions changed since the best.
    """
    out: list[types.Diagnostic] = []
    for problem in session.toolset.problems:
        if problem.file == rel:
            line0 = max(0, problem.line - 1)
            out.append(
                types.Diagnostic(
                    range=types.Range(
                        start=types.Position(line=line0, character=0),
                        end=types.Position(line=line0, character=0),
                    ),
                    message=problem.message,
                    severity=(
                        types.DiagnosticSeverity.Warning
                        if problem.severity == "warning"
                        else types.DiagnosticSeverity.Error
                    ),
                    source=SOURCE,
                    code="tool-file",
                )
            )
    text = session.text_of(rel)
    if text is None:  # unreadable or undecodable: only its problems
        return out
    stats_all = session.tool_stats()
    pending = session.pending_proposals()
    warn_at = session.config.error_rate_warning
    # Positions on the text as the editor has it now: the session's toolset is re-read a
    # debounce after each keystroke (a pull right after an edit came before that).
    for spec in functions_of(session, rel, text):
        assert spec.location is not None
        rng = name_range(spec.location, text, spec.name)
        stats = stats_all.get(spec.name)
        if stats is not None and stats.errors:
            origin = provenance(
                session.config,
                spec.name,
                rel,
                spec.code_hash(),
                FAILURES.get(session.store).get(spec.name),
                CODE,
            )
            rate = evidence.error_rate(stats)
            if origin is not None and origin.before_change:
                severity, code = types.DiagnosticSeverity.Hint, "failed-before-change"
            elif rate >= warn_at:
                severity, code = types.DiagnosticSeverity.Warning, "failing-calls"
            else:
                severity, code = types.DiagnosticSeverity.Information, "failing-calls"
            out.append(
                types.Diagnostic(
                    range=rng,
                    message=evidence.failure_message(stats, origin),
                    severity=severity,
                    source=SOURCE,
                    code=code,
                    related_information=_related(session, stats) or None,
                )
            )
        for p in pending:
            if any(a.name == spec.name for a in p.actions):
                out.append(
                    types.Diagnostic(
                        range=rng,
                        message=f"funcforge proposal {p.id} ready: {p.title} "
                        f"({evidence.replay_title(p)})",
                        severity=types.DiagnosticSeverity.Hint,
                        source=SOURCE,
                        code="proposal-ready",
                        data={"proposal": p.id},
                    )
                )
        for hint in spec.schema_hints:
            out.append(
                types.Diagnostic(
                    range=rng,
                    message=f"the model's schema for `{spec.name}` is incomplete: {hint}",
                    severity=types.DiagnosticSeverity.Hint,
                    source=SOURCE,
                    code="schema-hint",
                )
            )
        if decline is not None and spec.name in decline.functions:
            out.append(
                types.Diagnostic(
                    range=rng,
                    message=decline.message,
                    severity=types.DiagnosticSeverity.Warning,
                    source=SOURCE,
                    code="score-decline",
                )
            )
    out.extend(extra or [])
    return out
