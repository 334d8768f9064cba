"""`workspace/executeCommand` handlers; each runs in a worker thread.

They translate between LSP and the core: the optimizer step, apply, reject,
roll-back and history are the core's own functions.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from funcforge.errors import UserError
from funcforge.lsp.model import Change, ServerState
from funcforge.lsp.positions import path_to_uri
from funcforge.optimizer.proposal import load_proposal

if TYPE_CHECKING:
    from funcforge.lsp.server import FuncforgeServer
    from funcforge.lsp.session import Session


def _session(ls: FuncforgeServer) -> Session:
    return ls.require_session()


_PROPOSAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


def _optional_str(arg: dict[str, Any], key: str, command: str) -> str | None:
    value = arg.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise JsonRpcInvalidParams(
            f"{command}: `{key}` must be a string, not {type(value).__name__}"
        )
    return value


def _proposal_id(arg: dict[str, Any], command: str) -> str:
    """The `id` argument: a proposal id or a unique prefix of one (letters, digits, - and _)."""
    value = _optional_str(arg, "id", command)
    if value is None:
        raise JsonRpcInvalidParams(f"{command} needs `id`, the proposal's id")
    if not _PROPOSAL_ID.fullmatch(value):
        raise JsonRpcInvalidParams(f"{command}: {value[:80]!r} is not a proposal id")
    return value


class _Progress:
    """Server-initiated `$/progress` whose Cancel button sets `cancel`."""

    def __init__(self, ls: FuncforgeServer, title: str, cancel: threading.Event) -> None:
        self.ls, self.token, self.active = ls, f"funcforge-{uuid.uuid4().hex[:8]}", False
        if not ls.caps.progress or ls.loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(
                ls.work_done_progress.create_async(self.token), ls.loop
            ).result(timeout=10)
        except Exception:  # a client may refuse the token: work goes on without a bar
            return
        self.active = True
        future = ls.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)
        ls.post(
            ls.work_done_progress.begin,
            self.token,
            types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0),
        )

    def report(self, pct: int, message: str) -> None:
        if self.active:
            self.ls.post(
                self.ls.work_done_progress.report,
                self.token,
                types.WorkDoneProgressReport(message=message, percentage=pct, cancellable=True),
            )

    def end(self, message: str) -> None:
        if self.active:
            self.ls.post(
                self.ls.work_done_progress.end,
                self.token,
                types.WorkDoneProgressEnd(message=message),
            )
            self.ls.post(self.ls.work_done_progress.tokens.pop, self.token, None)


def optimize(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    """Run one optimizer step (one at a time), with progress and cancel.

    The step runs on a thread of its own; this command waits for it or for its
    cancel flag (`$/cancelRequest`, the progress bar's Cancel, shutdown). A
    cancelled step is left to stop at its next check, where it raises before
    writing anything, so the lock is free again at once. The progress ends on
    every path, saying how the step ended.
    """
    from funcforge.optimizer.step import Cancelled

    session = _session(ls)
    function = _optional_str(arg, "function", "funcforge.optimize")
    feature = ls.commands
    if not feature.optimize_lock.acquire(blocking=False):
        raise UserError("an optimization is already running")
    outcome = "failed"
    progress: _Progress | None = None
    try:
        cancel = feature.flag()
        progress = _Progress(ls, f"funcforge: optimizing {function or 'the workspace'}", cancel)
        ls.status.set(ServerState.OPTIMIZING)
        result = _run_step(session, function, cancel, progress.report)
        if result.proposal and arg.get("supersedes"):  # "Propose again": the old one is done
            _supersede(session, str(arg["supersedes"]))
        outcome = (
            f"proposed {result.proposal.title}"
            if result.proposal
            else f"not proposed: {result.repeat}"
            if result.repeat
            else "no change proposed"
        )
        text, warn = optimize_message(result, function, session.settings.allow_execution)
        return said(
            {
                "proposals": [result.proposal.id] if result.proposal else [],
                "notes": list(result.notes),
            },
            text,
            types.MessageType.Warning if warn else types.MessageType.Info,
        )
    except Cancelled:
        outcome = "cancelled"
        return said(
            {"proposals": [], "cancelled": True},
            "funcforge: optimization cancelled; nothing was proposed",
        )
    except Exception as exc:
        outcome = f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        raise  # the error response is the one message
    finally:
        session.proposals_changed()
        if progress is not None:
            progress.end(outcome)
        ls.status.state = ServerState.IDLE
        feature.optimize_lock.release()
        if not ls.stopping:
            ls.refresh(Change(tools=True, proposals=True))


def _run_step(
    session: Session,
    function: str | None,
    cancel: threading.Event,
    report: Callable[[int, str], None],
) -> Any:
    """The optimizer step of `optimize`, on a thread of its own; its `StepResult`."""
    from funcforge.history.git import committed_version
    from funcforge.optimizer.llm import make_client
    from funcforge.optimizer.policy import Policy, live_verdict
    from funcforge.optimizer.step import Cancelled, StepContext, run_step

    session.refresh_traces()
    toolset = session.reload_tools()
    client = make_client(session.config, llm=session.settings.llm)
    # The live verdict, as `funcforge optimize` records it (the same rule the views show).
    policy = Policy.for_config(session.config, session.optimizer_state())
    version = session.version()
    if session.store is not None:
        decline, measured = live_verdict(session.config, session.store, toolset, version)
        if decline is not None:
            policy.observe_live(decline, measured, session.config.min_traces)
            policy.save(session.config.state_path)
    context = StepContext(
        config=session.config,
        store=session.store,  # type: ignore[arg-type]
        toolset=toolset,
        client=client,
        state=policy.state,
        version=committed_version(session.config),  # evidence binds to commits
        execute=session.settings.allow_execution,
        function=function,
        cancel=cancel,
        progress=report,
    )
    box: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            box["result"] = run_step(context)
        except BaseException as exc:  # handed to the command's thread
            box["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=work, name="funcforge-step", daemon=True).start()
    while not finished.wait(0.05):
        if cancel.is_set():
            raise Cancelled("optimization cancelled")
    if "error" in box:
        raise box["error"]
    return box["result"]


def optimize_message(result: Any, function: str | None, execute: bool) -> tuple[str, bool]:
    """The one message of an Optimize: what was proposed (with its evidence), or why
    nothing was, and what the step worked around; True when it is a warning."""
    from funcforge.lsp.evidence import replay_title

    what = function or "the workspace"
    proposal = result.proposal
    if proposal is not None:
        evidence = replay_title(proposal)  # "... not replay-checked" when it could not run
        if not execute:
            evidence += " (workspace code may not run here: allowExecution is off or untrusted)"
        text = f"funcforge: proposed {proposal.title} (proposal {proposal.id}; {evidence})"
    elif result.repeat:
        text = f"funcforge: nothing proposed for {what}: {result.repeat}"
    else:
        text = f"funcforge: nothing proposed for {what}: the optimizer found no change to make"
    if result.notes:  # what the step worked around: a shrunk prompt, a normalised schema...
        text += ". Note: " + "; ".join(result.notes)
    return text, bool(result.notes)


def said(
    result: dict[str, Any], text: str, kind: types.MessageType = types.MessageType.Info
) -> dict[str, Any]:
    """`result` with the action's one message (shown by `CommandsFeature`, or by a client
    that shows results itself)."""
    return {**result, "message": text, "messageType": int(kind)}


def _supersede(session: Session, old_id: str) -> None:
    """Mark a stale or conflicting proposal rejected once a new one replaced it."""
    from funcforge.optimizer.proposal import ProposalError

    try:
        old = load_proposal(session.config.proposals_path, old_id)
    except ProposalError:
        return
    if old.status == "pending":
        old.status = "rejected"
        old.save(session.config.proposals_path)


def applyProposal(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    """Commit exactly the proposal's lines through the index, with its evidence.

    Open documents are the editor's: the disk under them is never written.
    A buffer that lacks the change (the command was run without the code
    action's edit) gets it through `workspace/applyEdit`. `saveable` lists the
    open files whose buffer now equals the committed text (a client may save
    them: nothing of the user's would be saved with them).
    """
    from funcforge.history.git import AlreadyApplied, ApplyConflict, apply_proposal

    session = _session(ls)
    proposal = load_proposal(
        session.config.proposals_path, _proposal_id(arg, "funcforge.applyProposal")
    )
    with session.lock:  # a client that takes no edits gets the files written instead
        buffers = dict(session.buffers) if ls.caps.apply_edit else {}
    try:
        result = apply_proposal(
            session.config, proposal, commit_dirty=bool(arg.get("commitDirty")), buffers=buffers
        )
    except AlreadyApplied as exc:  # a double click: the first one committed it, say nothing
        return {"commit": exc.commit, "files": [], "already": True}
    except ApplyConflict as exc:
        ls.actions.conflicted[exc.proposal] = list(exc.functions)
        ls.refresh(Change(proposals=True))  # the "Propose again" action appears
        raise
    ls.actions.conflicted.pop(proposal.id, None)
    after = dict(buffers)
    lacking: list[str] = []  # open buffers edited meanwhile on the proposal's lines
    for rel, text in result.buffer_texts.items():
        taken = _edit_buffer(ls, rel, buffers[rel], text)
        if isinstance(taken, _Clash):
            lacking.append(rel)
        elif taken is not None:
            after[rel] = taken
    saveable = [rel for rel, text in result.committed.items() if after.get(rel) == text]
    session.proposals_changed()
    ls.hand_check.clear()
    ls.status.send()  # the proposal count drops now, before the slower refresh
    text = f"funcforge: committed {result.commit[:7]} ({proposal.title})"
    kind = types.MessageType.Info
    if lacking:
        text += (
            f", but {', '.join(lacking)} was edited meanwhile on the proposal's lines: "
            "the buffer lacks the fix (git diff shows it as removed)"
        )
        kind = types.MessageType.Warning
    ls.refresh(Change(tools=True, proposals=True))
    return said(
        {"commit": result.commit, "files": list(result.files), "saveable": saveable}, text, kind
    )


class _Clash:
    """The buffer was edited on the proposal's lines while the commit was made."""


def _edit_buffer(ls: FuncforgeServer, rel: str, old: str, new: str) -> str | _Clash | None:
    """Put the applied proposal into an open buffer (workspace/applyEdit); the buffer's
    text then, `_Clash` when the user's edits meanwhile clash with it, or None when the
    edit was not taken."""
    import asyncio

    from funcforge.history.merge import Conflict, carry_lines
    from funcforge.lsp.code_actions import apply_edit, line_edits

    doc = ls.documents.doc_of(rel)  # the client's URI: its percent-encoding may differ
    if doc is None or ls.loop is None or not ls.caps.apply_edit:
        ls.log_line(f"funcforge: {rel} is open but the client takes no edits: reload it")
        return None
    version, now = doc.version, doc.source
    if now != old:  # typed while the commit was made: carry the fix onto the text now
        carried = carry_lines(now, old, new)
        if isinstance(carried, Conflict):
            return _Clash()
        old, new = now, carried
    edit = apply_edit(doc.uri, version, line_edits(old, new), ls.caps.versioned_edits)
    params = types.ApplyWorkspaceEditParams(edit=edit, label="funcforge: apply proposal")
    try:
        reply = asyncio.run_coroutine_threadsafe(
            ls.workspace_apply_edit_async(params), ls.loop
        ).result(timeout=10)
    except Exception as exc:  # a client that refuses or never answers
        ls.log_line(f"funcforge: the editor did not take the edit of {rel}: {exc}")
        return None
    return new if getattr(reply, "applied", False) else None


def rejectProposal(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    session = _session(ls)
    from funcforge.optimizer.policy import reject_proposal

    proposal = load_proposal(
        session.config.proposals_path, _proposal_id(arg, "funcforge.rejectProposal")
    )
    reason = str(arg.get("reason") or "rejected in the editor")
    reject_proposal(session.config, proposal, reason)  # remembered as failure experience
    session.proposals_changed()
    ls.refresh(Change(proposals=True))
    return said(
        {"id": proposal.id},
        f"funcforge: rejected proposal {proposal.id} ({proposal.title}); "
        "the optimizer will not propose it again",
    )


def rollback(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    from funcforge.history.rollback import rollback as do_rollback

    session = _session(ls)
    to = _optional_str(arg, "to", "funcforge.rollback")
    if not to and not arg.get("best"):
        raise UserError("rollback needs `to` (a commit) or `best: true`")
    stats = session.store.version_stats() if session.store else None
    result = do_rollback(session.config, to=to or None, best=bool(arg.get("best")), stats=stats)
    ls.refresh(Change(tools=True, traces=True))
    return said(
        {"commits": list(result.commits), "target": result.target}, rollback_message(result)
    )


def rollback_message(result: Any) -> str:
    """The one message of a roll-back: the commit made, or why none was."""
    if not result.commits:
        return f"funcforge: {result.message or 'nothing to roll back'}"
    n = len(result.reverted)
    text = (
        f"funcforge: rolled back to {result.target[:7]}: committed {result.commits[0][:7]}, "
        f"reverting {n} funcforge commit{'' if n == 1 else 's'}"
    )
    if result.kept:
        text += f" (your commits after it kept: {', '.join(c[:7] for c in result.kept)})"
    return text


def history(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    """HEAD's versions with scores, optimizer commits marked (newest first)."""
    from funcforge.history.log import history_log

    session = _session(ls)
    store = session.store
    stats = store.version_stats() if store else None
    held = store.version_stats("held_out") if store else None  # shown, labelled "test"
    log = history_log(session.config, stats, session.version(), held)
    versions = []
    for v in reversed(log.versions):
        versions.append(
            {
                "commit": v.commit,
                "short": v.short,
                "subject": v.subject,
                "step": v.step,
                "optimizer": v.optimizer,
                "rollback": v.rollback,
                "rolledBack": v.rolled_back,
                "score": v.score,  # train split: what decisions use
                "n": v.n,
                "split": "train",
                "testScore": v.test_score,  # held out: shown, never used for a decision
                "testN": v.test_n,
                "isBest": v.is_best,
                "isHead": v.is_head,
            }
        )
    best = next((v for v in versions if v["isBest"]), None)
    return {"versions": versions, "best": best}


def proposals(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    from funcforge.lsp.evidence import replay_title

    session = _session(ls)
    return {
        "proposals": [
            {
                "id": p.id,
                "title": p.title,
                "status": p.status,
                "summary": replay_title(p),
                "functions": [a.name for a in p.actions],
                "created": p.created,
            }
            for p in session.pending_proposals()
        ]
    }


def proposalPreview(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    """The proposed full text of each changed file, for diff views."""
    from funcforge.lsp.evidence import replay_title

    session = _session(ls)
    proposal = load_proposal(
        session.config.proposals_path, _proposal_id(arg, "funcforge.proposalPreview")
    )
    toolset = session.reload_tools()
    files = []
    from funcforge.toolset.rewrite import plan_actions  # libcst: not at start

    for change in plan_actions(session.config, toolset, proposal.actions):
        files.append(
            {
                "uri": path_to_uri(session.root / change.file),
                "path": change.file,
                "oldText": change.old_text,
                "newText": change.new_text,
            }
        )
    return {
        "id": proposal.id,
        "title": proposal.title,
        "summary": replay_title(proposal),
        "rationale": proposal.rationale,
        "files": files,
    }


def tools(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    session = _session(ls)
    stats_all = session.tool_stats()
    out = []
    with session.lock:
        specs = list(session.toolset.functions.values())
    for spec in sorted(specs, key=lambda s: s.name):
        s = stats_all.get(spec.name)
        calls, errors = (s.calls, s.errors) if s else (0, 0)
        out.append(
            {
                "name": spec.name,
                "uri": path_to_uri(session.root / spec.location.file) if spec.location else None,
                # 1-based, like FunctionSpec.location (docs/lsp.md)
                "line": (spec.location.name_line or spec.location.start_line)
                if spec.location
                else 1,
                "calls": calls,
                "errors": errors,
                "errorRate": errors / calls if calls else 0.0,
                "passRate": s.pass_rate if s else None,
            }
        )
    return {"tools": out}


def pinCall(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    from funcforge.optimizer.expectations import add_pin, pins_path

    session = _session(ls)
    function = _optional_str(arg, "function", "funcforge.pinCall")
    args = arg.get("args")
    if function is None or not isinstance(args, dict):
        raise JsonRpcInvalidParams(
            "funcforge.pinCall needs `function` (a string) and `args` (an object)"
        )
    with session.lock:
        known = function in session.toolset.functions
    if not known:  # a pin nothing would ever check
        raise JsonRpcInvalidParams(f"funcforge.pinCall: no tool function named {function[:80]!r}")
    if "expected" in arg:
        add_pin(session.config, function, args, expected=arg["expected"])
    elif arg.get("expectedError"):
        error = _optional_str(arg, "expectedError", "funcforge.pinCall")
        add_pin(session.config, function, args, expected_error=str(error))
    else:
        raise JsonRpcInvalidParams("funcforge.pinCall needs `expected` or `expectedError`")
    ls.hand_check.schedule()
    where = session.rel(pins_path(session.config)) or str(pins_path(session.config))
    return said({"pinned": True}, pin_message(function, arg, where))


def pin_message(function: str, arg: dict[str, Any], where: str) -> str:
    """The one message of a pin: the call and the result it is now held to."""
    import json

    def short(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return text if len(text) <= 60 else text[:57] + "..."

    args = arg.get("args") or {}
    call = f"{function}({', '.join(f'{k}={short(v)}' for k, v in args.items())})"
    call = call if len(call) <= 100 else call[:97] + "..."
    held = f"= {short(arg['expected'])}" if "expected" in arg else f"raises {arg['expectedError']}"
    return f"funcforge: pinned {call} {held}; proposals must keep it ({where})"


def status(ls: FuncforgeServer, arg: dict[str, Any]) -> dict[str, Any]:
    _session(ls)
    return ls.status.payload()
