"""The hand-edit check on save: its findings per file, and the Pin actions they offer."""

from __future__ import annotations

import copy

from lsprotocol import types

from funcforge.errors import UserError
from funcforge.lsp.code_actions import functions_of
from funcforge.lsp.features import Feature
from funcforge.lsp.model import HandFinding
from funcforge.lsp.positions import name_range, overlaps
from funcforge.sandbox_os import SandboxUnavailable


class HandCheckFeature(Feature):
    """Owns the last hand-edit findings; re-runs the check (debounced) after a save or a pin."""

    def __init__(self, ls) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ls)
        self.findings: dict[str, list[HandFinding]] = {}
        self.refused = False  # the missing-sandbox message was shown

    def diagnostics(self, rel: str) -> list[types.Diagnostic]:
        return [diagnostic for _, diagnostic in self._placed(rel)]

    def _placed(self, rel: str) -> list[tuple[HandFinding, types.Diagnostic]]:
        """The findings of `rel` with ranges on the editor's text now: a finding was made
        at a save, and lines typed above the function since move its name."""
        findings = self.findings.get(rel, [])
        session = self.ls.session
        text = session.text_of(rel) if session is not None and findings else None
        if session is None or text is None:
            return [(f, f.diagnostic) for f in findings]
        specs = {s.name: s for s in functions_of(session, rel, text)}
        out = []
        for finding in findings:
            spec = specs.get(finding.function)
            if spec is None or spec.location is None:
                continue  # the function is gone from the text: so is what was found on it
            placed = copy.copy(finding.diagnostic)
            placed.range = name_range(spec.location, text, spec.name)
            out.append((finding, placed))
        return out

    def pin_actions(self, rel: str, rng: types.Range) -> list[types.CodeAction]:
        """ "Pin this call's expected result" for each call a finding overlapping `rng` names."""
        actions = []
        for finding, diagnostic in self._placed(rel):
            if not overlaps(diagnostic.range, rng):
                continue
            for pin in finding.pins:
                title = f"Pin this call's expected result: {pin.title}"
                actions.append(
                    types.CodeAction(
                        title=title,
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic],
                        command=types.Command(
                            title=title,
                            command="funcforge.pinCall",
                            arguments=[pin.command_argument()],
                        ),
                    )
                )
        return actions

    def clear(self) -> None:
        self.findings = {}

    def schedule(self) -> None:
        """Check the saved edits against logged calls (debounced; only when execution is allowed)."""
        ls, session = self.ls, self.ls.session
        if session is None or not session.settings.allow_execution:
            return

        def run() -> None:
            from funcforge.lsp.handcheck import hand_edit_findings

            try:
                self.findings = hand_edit_findings(session)
            except SandboxUnavailable as exc:
                # Said once per session, where the user sees it: nothing runs without a sandbox.
                if not self.refused:
                    self.refused = True
                    ls.show(f"funcforge: hand-edit check not run: {exc}", types.MessageType.Warning)
                ls.log_line(f"funcforge: hand-edit check skipped: {exc}")
                self.findings = {}
            except UserError as exc:
                ls.log_line(f"funcforge: hand-edit check skipped: {exc}")
                self.findings = {}
            ls.diagnostics.publish(judge_decline=False)

        ls.debounce("hand-check", 0.5, run)
