"""On save: the replay check of the user's own edits, as diagnostics with the calls.

Runs only when execution is allowed (trusted workspace), in the sandbox, off
the request path, debounced. "this edit changes 3 logged results that passing
runs relied on", with each call in `relatedInformation` and a "Pin" code
action per call that records the old result as the expected one.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from funcforge.lsp.model import HandFinding, Pin
from funcforge.lsp.positions import name_range, path_to_uri
from funcforge.lsp.session import Session

SOURCE = "funcforge"
CODE = "hand-edit-regression"


def _ref_location(session: Session, ref: str) -> types.Location | None:
    file, _, line = ref.rpartition(":")
    if not file or not line.isdigit():
        return None
    line0 = max(0, int(line) - 1)
    return types.Location(
        uri=path_to_uri(session.root / file),
        range=types.Range(
            start=types.Position(line=line0, character=0),
            end=types.Position(line=line0, character=0),
        ),
    )


def _pinnable(entry: Any, title: str) -> Pin | None:
    """What a pin of this call would record: the old (presumed correct) outcome."""
    old = entry.old
    if old is None or not isinstance(entry.args, dict):
        return None
    if old.ok and old.is_json:
        return Pin(entry.function, entry.args, title, expected=old.value_json, has_expected=True)
    if not old.ok and old.error_type:
        return Pin(entry.function, entry.args, title, expected_error=str(old.error_type))
    return None


def hand_edit_findings(session: Session) -> dict[str, list[HandFinding]]:
    """Findings per tool file for functions whose edit changes logged results."""
    from funcforge.optimizer.handcheck import check_hand_edits
    from funcforge.toolset.toolset import load_toolset

    if session.store is None:
        return {}
    toolset = load_toolset(session.config)  # what is saved on disk
    result = check_hand_edits(session.config, toolset, session.store)
    out: dict[str, list[HandFinding]] = {}
    for report in result.reports:
        bad = [e for e in report.entries if e.verdict in ("regression", "signature_mismatch")]
        if not bad:
            continue
        spec = toolset.functions.get(report.function)
        if spec is None or spec.location is None:
            continue
        text = toolset.files.get(spec.location.file, "")
        relied = sum(e.count for e in bad)
        noun = "result" if relied == 1 else "results"
        message = (
            f"this edit changes {relied} logged {noun} that passing runs or expectations "
            f"relied on ({report.summary})"
        )
        related = []
        pins: list[Pin] = []
        for entry in bad[:8]:
            new = entry.new.short(60) if entry.new is not None else "?"
            old = entry.old.short(60) if entry.old is not None else "?"
            for ref in entry.refs[:1]:
                loc = _ref_location(session, ref)
                if loc is not None:
                    related.append(
                        types.DiagnosticRelatedInformation(
                            location=loc, message=f"{entry.call_text()}: {old} -> {new}"
                        )
                    )
            pin = _pinnable(entry, f"{entry.call_text(60)} = {old}")
            if pin is not None:
                pins.append(pin)
        diagnostic = types.Diagnostic(
            range=name_range(spec.location, text, spec.name),
            message=message,
            severity=types.DiagnosticSeverity.Warning,
            source=SOURCE,
            code=CODE,
            related_information=related or None,
        )
        out.setdefault(spec.location.file, []).append(
            HandFinding(diagnostic, tuple(pins), spec.name)
        )
    return out
