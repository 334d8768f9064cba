"""Run untrusted tool code in a sandboxed worker process; never in this process.

Each worker is `sandbox_worker.py` started inside bubblewrap (`sandbox_os`
says how: a fresh mount namespace with only the Python installation, its own
PID namespace, no network, a non-root uid, a scrubbed environment), or, only
when the user opted in with `sandbox = "process"`, as a plain subprocess
(named as weaker in every report). Where bubblewrap cannot run, creating a
pool raises `SandboxUnavailable` instead of running anything.

Inside, the worker's supervisor forks the executor that loads the tool code
after its limits (address space, file size, no core dumps, CPU time per
call) and a seccomp filter (no new processes, exec, signals to others,
ptrace) are in place. The supervisor alone holds the channel to funcforge.
Here, on top:

- a per-call wall-clock timeout: the worker is killed and a fresh one starts
  for the next call;
- every answer must be one JSON object carrying the request's sequence number,
  within `MAX_ANSWER_BYTES`; anything else is that call's error
  (`ProtocolError`), never a crash, and ends that worker;
- values are decoded defensively (`CallResult.from_worker`).

Limits apply inside the worker before any untrusted code is loaded (not in a
`preexec_fn`, which is unsafe in a threaded parent such as the language server).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal

from funcforge.fsutil import clean_json, clean_text
from funcforge.sandbox_os import (
    INSIDE_WORK,
    PROCESS_WARNING,
    SandboxMode,
    SandboxUnavailable,
    describe_mode,
    require_sandbox,
    resolve_mode,
    scrubbed_env,
    worker_command,
)
from funcforge.sandbox_worker import MAX_VALUE_NODES, SIGNATURE_MISMATCH, json_nodes, render_result

__all__ = [
    "PROCESS_WARNING",
    "SIGNATURE_MISMATCH",
    "CallResult",
    "SandboxMode",
    "SandboxPool",
    "SandboxUnavailable",
    "call_request",
    "describe_mode",
    "eval_request",
    "network_isolation",
    "render_result",
    "require_sandbox",
    "resolve_mode",
    "run_calls",
]

# "auto" and "bwrap" mean bubblewrap; "process" is the explicit weaker opt-in.
Isolation = Literal["auto", "bwrap", "process"]
TIMEOUT = "Timeout"
CRASH = "SandboxCrash"
PROTOCOL = "ProtocolError"
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a worker flooding the protocol pipe is stopped
MAX_TEXT = 1_000_000  # characters kept of any text field of an answer
MAX_BATCH = 256  # calls sent to a worker in one message (`SandboxPool.batch`)
MAX_BATCH_BYTES = 4 * 1024 * 1024  # ... and about this much of their arguments
# Descriptors a worker may hold: each can pin kernel memory outside its address-space
# limit (socket and pipe buffers), 256 of them ~100 MB at most.
MAX_OPEN_FILES = 256


@dataclass
class CallResult:
    """The outcome of one sandboxed call.

    `value_json` is the returned value when it is JSON-able (`is_json`), else
    None; `rendered` is the tool message content (`render_result`);
    `value_repr` its repr, the comparison key for values that are not JSON;
    `digest` identifies the value (canonical JSON, or repr) for equality tests.
    """

    ok: bool
    value_json: Any = None
    rendered: str = ""
    error_type: str | None = None
    error_message: str | None = None
    timed_out: bool = False
    crashed: bool = False
    seconds: float = 0.0
    is_json: bool = True
    value_repr: str | None = None
    stdout: str = ""
    digest: str | None = None
    error_bases: list[str] = field(default_factory=list)

    @classmethod
    def from_worker(cls, data: Mapping[str, Any]) -> CallResult:
        """A result from a worker's answer, every field checked and made safe to print.

        Text is cut at `MAX_TEXT` characters with lone surrogates escaped, and
        the JSON value is cut below `fsutil.MAX_WRITE_DEPTH` levels: whatever the
        tool returned (or its worker claimed), the result can be written anywhere.
        A value of more than `MAX_VALUE_NODES` values is not kept (the worker
        does not send one; tool code that forges its answer could): 3 million
        `[]` in a 9 MB answer were 200 MB of objects held by funcforge per call.
        """
        ok = data.get("ok") is True
        value = data.get("value_json") if ok else None
        if json_nodes(value, MAX_VALUE_NODES) > MAX_VALUE_NODES:
            value = None
        error_type = _text(data.get("error_type"), 200) or (None if ok else PROTOCOL)
        bases = data.get("error_bases")
        return cls(
            ok=ok,
            value_json=clean_json(value),
            rendered=_text(data.get("rendered")) or "",
            error_type=None if ok else error_type,
            error_message=None if ok else _text(data.get("error_message")),
            seconds=_number(data.get("seconds")),
            is_json=data.get("is_json", True) is True,
            value_repr=_text(data.get("value_repr")),
            stdout=_text(data.get("stdout")) or "",
            digest=_text(data.get("digest"), 100),
            error_bases=[_text(b, 200) or "" for b in bases[:50]]
            if isinstance(bases, list)
            else ([] if ok else [error_type or PROTOCOL]),
            crashed=not ok and error_type in (CRASH, PROTOCOL),
        )

    @classmethod
    def failure(
        cls,
        error_type: str,
        message: str,
        *,
        timed_out: bool = False,
        crashed: bool = False,
        seconds: float = 0.0,
    ) -> CallResult:
        return cls(
            ok=False,
            error_type=error_type,
            error_message=message,
            timed_out=timed_out,
            crashed=crashed,
            seconds=seconds,
            error_bases=[error_type],
        )

    @property
    def signature_mismatch(self) -> bool:
        """The arguments do not fit the function's signature (the call never started)."""
        return not self.ok and self.error_type == SIGNATURE_MISMATCH

    def tool_content(self) -> str:
        """What an agent's tool message shows: the rendered value, or `Error: Type: message`."""
        if self.ok:
            return self.rendered
        return f"Error: {self.error_type}: {self.error_message or ''}".rstrip()

    def short(self, limit: int = 80) -> str:
        """One-line description for reports: the value, or the error."""
        if self.ok:
            text = self.rendered if self.is_json else (self.value_repr or self.rendered)
        else:
            text = f"{self.error_type}: {self.error_message or ''}".rstrip(": ")
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- isolation

_isolation_lock = threading.Lock()
_isolation_cache: Literal["namespace", "hooks"] | None = None


def network_isolation() -> Literal["namespace", "hooks"]:
    """`namespace` when `unshare -rn` works here (checked once, cached), else `hooks`."""
    global _isolation_cache
    with _isolation_lock:
        if _isolation_cache is None:
            _isolation_cache = "namespace" if _unshare_works() else "hooks"
        return _isolation_cache


def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(1)\n"
        "try:\n"
        "    s.connect(('127.0.0.1', 9))\n"
        "except OSError as e:\n"
        "    raise SystemExit(0 if e.errno == 101 else 3)\n"
        "raise SystemExit(4)\n"
    )
    try:
        proc = subprocess.run(
            [unshare, "-rn", sys.executable, "-s", "-c", probe],
            capture_output=True,
            timeout=10,
            env=scrubbed_env(tempfile.gettempdir()),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A string field of an answer: None, or the text capped and with surrogates escaped."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + f"...[truncated {len(text) - limit} chars]"
    return clean_text(text)


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(min(max(value, 0.0), 1e9))
    return 0.0


# ---------------------------------------------------------------- one worker

_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="funcforge-sandbox-spawner")


def _spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a worker from one long-lived thread.

    bubblewrap's `--die-with-parent` is the kernel's parent-death signal, which
    fires when the *thread* that started the process ends: a worker started
    from a short-lived thread (a request handler, a task pool) would die with
    it. The spawner thread lives as long as funcforge.
    """

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, **kwargs)

    return _spawner.submit(start).result()


class _WorkerTimeout(Exception):
    pass


class _WorkerDied(Exception):
    pass


_seq = itertools.count(1)


class _Worker:
    """One worker process: spawn, load sources, answer requests, die cleanly."""

    def __init__(
        self,
        sources: Mapping[str, str],
        memory_mb: int,
        mode: SandboxMode,
        load_timeout: float,
        fsize_mb: int,
    ) -> None:
        self.mode = mode
        net = mode == "process" and network_isolation() == "namespace"
        cmd, fds, workdir = worker_command(mode, net)
        self.workdir = workdir
        env = scrubbed_env(workdir or INSIDE_WORK)
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.proc = _spawn(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                cwd=workdir or "/",
                env=env,
                start_new_session=True,
                close_fds=True,
                pass_fds=fds,
            )
        finally:
            for fd in fds:
                os.close(fd)
        self._buf = bytearray()
        self.dead = False
        # A worker nobody closed (an exception, interpreter exit) is still killed and cleaned up.
        self._finalizer = weakref.finalize(self, _reap, self.proc, self.workdir)
        init = {
            "op": "init",
            "sources": dict(sources),
            "limits": {
                "memory_mb": memory_mb,
                "fsize_mb": fsize_mb,
                "nofile": MAX_OPEN_FILES,
                "seccomp": True,
            },
        }
        reply = self.request(init, load_timeout)
        if reply.get("fatal"):
            self.kill()
            raise _WorkerDied(str(reply.get("error_message") or "the worker died while loading"))
        self.functions: list[str] = [str(f) for f in reply.get("functions") or []]
        problems = reply.get("problems")
        self.problems: list[dict[str, Any]] = (
            [clean_json(p) for p in problems if isinstance(p, dict)]
            if isinstance(problems, list)
            else []
        )
        self.warnings: list[str] = [clean_text(str(w)) for w in reply.get("warnings") or []]
        self.seccomp = reply.get("seccomp") is True

    def request(self, obj: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer; kills the worker on timeout or death.

        The answer must be one JSON object with the request's sequence number;
        an answer that is not ends the worker and raises `_WorkerDied`.
        """
        seq = next(_seq)
        self._send(json.dumps({**obj, "seq": seq}).encode("utf-8"))
        return self._receive(seq, timeout)

    def requests(
        self, objs: Sequence[Mapping[str, Any]], timeout: float
    ) -> Iterator[dict[str, Any]]:
        """Answers to many requests, sent as batches (one message each, `MAX_BATCH` calls at most).

        The worker answers each call on its own line, in order; each answer is
        checked like `request`'s and gets `timeout` seconds from the previous one.
        """
        pos = 0
        while pos < len(objs):
            seqs: list[int] = []
            parts: list[bytes] = []
            size = 0
            while pos < len(objs) and len(parts) < MAX_BATCH and size < MAX_BATCH_BYTES:
                seqs.append(next(_seq))
                parts.append(json.dumps({**objs[pos], "seq": seqs[-1]}).encode("utf-8"))
                size += len(parts[-1])
                pos += 1
            head = json.dumps({"op": "batch", "seq": seqs[0]}).encode("utf-8")[:-1]
            self._send(head + b', "calls": [' + b", ".join(parts) + b"]}")
            for seq in seqs:
                yield self._receive(seq, timeout)

    def _send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            reason = self._death_reason()
            self.kill()
            raise _WorkerDied(reason) from exc

    def _receive(self, seq: int, timeout: float) -> dict[str, Any]:
        line = self._readline(time.monotonic() + timeout)
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError) as exc:  # not JSON, or not UTF-8
            self.kill()
            raise _WorkerDied("the worker answered something that is not JSON") from exc
        if not isinstance(reply, dict):
            self.kill()
            raise _WorkerDied("the worker answered something that is not a JSON object")
        if reply.get("seq") != seq:
            self.kill()
            raise _WorkerDied("the worker's answer does not belong to the request")
        return reply

    def _readline(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        scanned = 0  # bytes of the buffer known to hold no newline
        while True:
            newline = self._buf.find(b"\n", scanned)
            scanned = len(self._buf)
            if newline >= 0:
                line = bytes(self._buf[:newline])
                del self._buf[: newline + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise _WorkerTimeout()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                reason = self._death_reason()
                self.kill()
                raise _WorkerDied(reason)
            self._buf += chunk
            if len(self._buf) > MAX_ANSWER_BYTES:
                self.kill()
                raise _WorkerDied(f"the worker's answer exceeded {MAX_ANSWER_BYTES} bytes")

    def _death_reason(self) -> str:
        code = self.proc.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=2)
        if code is None:
            why = "the worker stopped answering"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"the worker was killed by {name}"
        else:
            why = f"the worker exited with status {code}"
        tail = self.stderr_tail()
        return f"{why}; stderr: {tail}" if tail else why

    def stderr_tail(self, limit: int = 400) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - limit))
            return clean_text(" ".join(self.stderr.read().decode("utf-8", "replace").split()))
        except (OSError, ValueError):
            return ""

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker's whole process group and remove its working directory."""
        if self.dead:
            return
        self.dead = True
        self._finalizer.detach()
        _reap(self.proc, self.workdir)

    def close(self) -> None:
        """End the worker politely (EOF on stdin), then make sure it is gone."""
        if self.dead:
            return
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        _wait(self.proc, 2)
        self.kill()
        with contextlib.suppress(OSError):
            self.stderr.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to `timeout` s for `proc` to end (and reap it); True when it has.

    Woken by the kernel through a pidfd the moment it ends; `Popen.wait` with a
    timeout polls with growing sleeps instead (up to 50 ms late, every close).
    """
    if proc.poll() is not None:
        return True
    try:  # not reaped yet, so the pid cannot have been reused
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here (old kernel, not Linux)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return proc.poll() is not None


def _reap(proc: subprocess.Popen[bytes], workdir: str | None) -> None:
    """Kill a worker's process group, close its pipes, delete its working directory."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    _wait(proc, 5)
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- the pool


class SandboxPool:
    """Workers with a set of sources loaded, for many calls (agents, replay checks).

    Thread-safe: up to `workers` calls run at once, each in its own process.
    A worker that times out or crashes is killed and replaced on the next
    call. A source whose loading hangs or kills the worker makes every call
    fail with that reason, without trying again.

    `isolation`: `"auto"`/`"bwrap"` (bubblewrap; `SandboxUnavailable` is raised
    here when it cannot run) or `"process"` (the explicit weaker opt-in).
    `mode` and `description` say which applies; `warnings` what the workers
    could not set up.
    """

    def __init__(
        self,
        sources: Mapping[str, str],
        timeout: float = 5.0,
        memory_mb: int = 512,
        *,
        workers: int = 1,
        isolation: Isolation = "auto",
        load_timeout: float | None = None,
        fsize_mb: int = 64,
    ) -> None:
        self.sources = dict(sources)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_workers = max(1, workers)
        self.mode: SandboxMode = resolve_mode(isolation)
        require_sandbox(self.mode)
        self.isolation = self.mode
        self.description = describe_mode(self.mode)
        self.warnings: list[str] = [PROCESS_WARNING] if self.mode == "process" else []
        self.load_timeout = load_timeout if load_timeout is not None else max(10.0, timeout)
        self.fsize_mb = fsize_mb
        self.functions: list[str] = []
        self.problems: list[dict[str, Any]] = []
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._load_error: CallResult | None = None
        self.started = 0  # workers started so far (each timeout or crash costs one)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, name: str, args: Any, timeout: float | None = None) -> CallResult:
        """Call `name(**args)` in a worker; every failure comes back as a CallResult."""
        return self._run(call_request(name, args), timeout)

    def evaluate(
        self, name: str, source: str, setup: Iterable[str] = (), timeout: float | None = None
    ) -> CallResult:
        """Run a doctest example (after its `setup` examples) in `name`'s module namespace."""
        return self._run(eval_request(name, source, setup), timeout)

    def batch(
        self, requests: Sequence[Mapping[str, Any]], timeout: float | None = None
    ) -> list[CallResult]:
        """Run `call_request`s and `eval_request`s in order in one worker, many per message.

        The same calls as `call`/`evaluate` one by one, each with its own CPU
        and wall-clock limit and its own checked answer, in far fewer round
        trips. It stops after the first call that ends its worker (a timeout, a
        crash, a broken protocol): that call's result is the last of the list,
        and the caller decides what to run next (in a fresh worker).
        """
        limit = self.timeout if timeout is None else timeout
        if not requests:
            return []
        try:
            worker = self._acquire()
        except _StartFailed as exc:
            return [exc.result]
        out: list[CallResult] = []
        start = time.monotonic()
        try:
            for reply in worker.requests([{**r, "cpu_seconds": limit} for r in requests], limit):
                now = time.monotonic()
                if reply.get("fatal"):
                    worker.kill()
                    out.append(_fatal(reply, now - start))
                    break
                out.append(CallResult.from_worker(reply))
                start = now
        except _WorkerTimeout:
            out.append(_timed_out(limit, time.monotonic() - start))
        except _WorkerDied as exc:
            out.append(_died(str(exc), CRASH, time.monotonic() - start))
        finally:
            self._release(worker)
        return out

    def _run(self, request: dict[str, Any], timeout: float | None) -> CallResult:
        limit = self.timeout if timeout is None else timeout
        request["cpu_seconds"] = limit
        try:
            worker = self._acquire()
        except _StartFailed as exc:
            return exc.result
        start = time.monotonic()
        try:
            reply = worker.request(request, limit)
        except _WorkerTimeout:
            self._release(worker)
            return _timed_out(limit, time.monotonic() - start)
        except _WorkerDied as exc:
            self._release(worker)
            return _died(str(exc), CRASH, time.monotonic() - start)
        if reply.get("fatal"):  # the supervisor answered for a dead or lying executor
            worker.kill()
            self._release(worker)
            return _fatal(reply, time.monotonic() - start)
        self._release(worker)
        return CallResult.from_worker(reply)

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise _StartFailed(CallResult.failure(CRASH, "the sandbox pool is closed"))
                if self._load_error is not None:
                    raise _StartFailed(self._load_error)
                while self._idle:
                    idle = self._idle.pop()
                    if idle.alive():
                        return idle
                    idle.kill()  # died while idle (e.g. its starting thread ended): replace
                    self._count -= 1
                if self._count < self.max_workers:
                    self._count += 1
                    self.started += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker(
                self.sources, self.memory_mb, self.mode, self.load_timeout, self.fsize_mb
            )
        except (_WorkerTimeout, _WorkerDied, OSError) as exc:
            if isinstance(exc, _WorkerTimeout):
                message = f"loading the sources took longer than {self.load_timeout:g} s"
            else:
                message = f"loading the sources failed: {exc}"
            result = CallResult.failure(
                CRASH, message, timed_out=isinstance(exc, _WorkerTimeout), crashed=True
            )
            with self._cond:
                self._count -= 1
                if not isinstance(exc, OSError):
                    self._load_error = result  # deterministic: do not retry every call
                self._cond.notify_all()
            raise _StartFailed(result) from exc
        with self._cond:
            self.functions = worker.functions
            self.problems = worker.problems
            for warning in worker.warnings:
                if warning not in self.warnings:
                    self.warnings.append(warning)
        return worker

    def _release(self, worker: _Worker) -> None:
        retire = False
        with self._cond:
            if worker.dead or self._closed:
                self._count -= 1
                retire = not worker.dead
            else:
                self._idle.append(worker)
            self._cond.notify_all()
        if retire:
            worker.close()

    def close(self) -> None:
        """Stop every worker and delete their working directories."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.close()


def call_request(name: str, args: Any) -> dict[str, Any]:
    """A request for `SandboxPool.batch`: call `name(**args)`."""
    return {"op": "call", "function": name, "args": args}


def eval_request(name: str, source: str, setup: Iterable[str] = ()) -> dict[str, Any]:
    """A request for `SandboxPool.batch`: a doctest example in `name`'s module namespace."""
    return {"op": "eval", "function": name, "source": source, "setup": list(setup)}


def _timed_out(limit: float, seconds: float) -> CallResult:
    return CallResult.failure(
        TIMEOUT,
        f"the call took longer than {limit:g} s and was stopped",
        timed_out=True,
        seconds=seconds,
    )


def _fatal(reply: Mapping[str, Any], seconds: float) -> CallResult:
    """The supervisor's answer for a dead or lying executor."""
    kind = PROTOCOL if reply.get("error_type") == PROTOCOL else CRASH
    return _died(_text(reply.get("error_message")) or "", kind, seconds)


def _died(message: str, kind: str, seconds: float) -> CallResult:
    """The result of a call whose worker died (a CPU limit counts as a timeout)."""
    if "SIGXCPU" in message:
        return CallResult.failure(
            TIMEOUT, "CPU time limit exceeded", timed_out=True, seconds=seconds
        )
    return CallResult.failure(kind, message, crashed=True, seconds=seconds)


class _StartFailed(Exception):
    def __init__(self, result: CallResult) -> None:
        super().__init__(result.error_message)
        self.result = result


def run_calls(
    source: str | Mapping[str, str],
    function: str,
    calls: Iterable[Any],
    *,
    timeout: float = 5.0,
    memory_mb: int = 512,
    isolation: Isolation = "auto",
) -> list[CallResult]:
    """Run `function(**args)` for each args dict in `calls`, in one sandbox pool.

    `source` is one module's text or a mapping path -> text (siblings import
    each other by module name).
    """
    sources = {"<source>.py": source} if isinstance(source, str) else dict(source)
    with SandboxPool(sources, timeout, memory_mb, isolation=isolation) as pool:
        return [pool.call(function, args) for args in calls]
