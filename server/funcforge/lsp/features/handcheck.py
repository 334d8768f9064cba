"""The hand-edit check on save: its findings per file, and the Pin actions they offer."""

from __future__ import annotations

import copy
import threading

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
        self._lock = threading.Lock()
        self._running = False  # a check runs (one at a time)
        self._again = False  # saved while it ran: check once more after it
        self._generation = 0  # bumped by clear(): findings of a check begun before are dropped

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
        """Forget the findings (a check still running for older files drops its own)."""
        with self._lock:
            self._generation += 1
            self.findings = {}

    def schedule(self) -> None:
        """Check the saved edits against logged calls (debounced; only when execution is allowed).

        One check at a time: a save while one runs asks for one more run after
        it (however many saves), never a second check beside it. Checks that
        overlapped each held sandboxes and a core for up to their whole length
        (a tool that takes just under the call timeout holds a check for
        minutes), and a slow earlier check finishing last replaced the findings
        of a later one.
        """
        ls, session = self.ls, self.ls.session
        if session is None or not session.settings.allow_execution:
            return

        def check() -> dict[str, list[HandFinding]]:
            from funcforge.lsp.handcheck import hand_edit_findings

            try:
                return hand_edit_findings(session)
            except SandboxUnavailable as exc:
                # Said once per session, where the user sees it: nothing runs without a sandbox.
                if not self.refused:
                    self.refused = True
                    ls.show(f"funcforge: hand-edit check not run: {exc}", types.MessageType.Warning)
                ls.log_line(f"funcforge: hand-edit check skipped: {exc}")
            except UserError as exc:
                ls.log_line(f"funcforge: hand-edit check skipped: {exc}")
            return {}

        def run() -> None:
            with self._lock:
                if self._running:
                    self._again = True
                    return
                self._running = True
            try:
                while True:
                    with self._lock:
                        self._again = False
                        generation = self._generation
                    findings = check()
                    with self._lock:
                        if generation == self._generation:
                            self.findings = findings
                    ls.diagnostics.publish(judge_decline=False)
                    with self._lock:
                        if not self._again:
                            self._running = False
                            return
            except BaseException:
                with self._lock:
                    self._running = False
                raise

        ls.debounce("hand-check", 0.5, run)
