"""Run untrusted tool code in a subprocess worker with limits; never in this process.

A worker is a separate interpreter running `sandbox_worker.py` (by path, so it
imports only the standard library) with:

- a per-call wall-clock timeout: the worker's process group is killed and a
  fresh worker is started for the next call; a CPU-time rlimit as a backstop;
- an address-space limit (`memory_mb`), a file-size limit, no core dumps, and
  `RLIMIT_NPROC` = 0 (no new processes or threads; the kernel ignores it for
  root, so `os.fork` and friends are also replaced and refused by an audit hook);
- a fresh temporary working directory (also `HOME` and `TMPDIR`), deleted when
  the worker ends; writes outside it are refused by the audit hook;
- a scrubbed environment: only `PATH`, `LANG`, `PYTHONHASHSEED=0` and a few
  neutral variables; no API keys; other processes' `/proc/<pid>/` is unreadable;
- no network: inside `unshare -rn` (a new user and network namespace with only
  a down loopback) when that works on this machine — detected once and
  cached — and, always, an audit hook refusing connect, bind, send and name
  resolution. `network_isolation()` says which applies.

The worker runs with `-s -B` rather than `-I`: `-I` would also ignore
`PYTHONHASHSEED`, and hash-randomised set orders would make two runs of the
same code disagree. The environment is built from scratch instead, and the
worker removes its own folder from `sys.path`.

Limits apply in the worker itself before any untrusted code is loaded (not in
a `preexec_fn`, which is unsafe in a threaded parent such as the language
server).
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from funcforge.sandbox_worker import SIGNATURE_MISMATCH, render_result

__all__ = [
    "SIGNATURE_MISMATCH",
    "CallResult",
    "SandboxPool",
    "network_isolation",
    "render_result",
    "run_calls",
]

WORKER_PATH = Path(__file__).with_name("sandbox_worker.py")
Isolation = Literal["auto", "namespace", "hooks"]
TIMEOUT = "Timeout"
CRASH = "SandboxCrash"
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a worker flooding the protocol pipe is stopped
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")


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
        return cls(
            ok=bool(data.get("ok")),
            value_json=data.get("value_json"),
            rendered=str(data.get("rendered", "")),
            error_type=data.get("error_type"),
            error_message=data.get("error_message"),
            seconds=float(data.get("seconds", 0.0)),
            is_json=bool(data.get("is_json", True)),
            value_repr=data.get("value_repr"),
            stdout=str(data.get("stdout", "")),
            digest=data.get("digest"),
            error_bases=list(data.get("error_bases") or []),
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
            env=_scrubbed_env(tempfile.gettempdir()),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _scrubbed_env(workdir: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUTF8": "1",
            "HOME": workdir,
            "TMPDIR": os.path.join(workdir, "tmp"),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1",
        }
    )
    return env


# ---------------------------------------------------------------- one worker


class _WorkerTimeout(Exception):
    pass


class _WorkerDied(Exception):
    pass


class _Worker:
    """One worker process: spawn, load sources, answer requests, die cleanly."""

    def __init__(
        self,
        sources: Mapping[str, str],
        memory_mb: int,
        isolation: str,
        load_timeout: float,
        fsize_mb: int,
    ) -> None:
        self.workdir = tempfile.mkdtemp(prefix="funcforge-sandbox-")
        os.mkdir(os.path.join(self.workdir, "tmp"))
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        cmd = [sys.executable, "-s", "-B", str(WORKER_PATH)]
        if isolation == "namespace":
            unshare = shutil.which("unshare") or "unshare"
            cmd = [unshare, "-rn", *cmd]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=self.workdir,
            env=_scrubbed_env(self.workdir),
            start_new_session=True,
            close_fds=True,
        )
        self._buf = bytearray()
        self.dead = False
        # A worker nobody closed (an exception, interpreter exit) is still killed and cleaned up.
        self._finalizer = weakref.finalize(self, _reap, self.proc, self.workdir)
        init = {
            "op": "init",
            "sources": dict(sources),
            "limits": {"memory_mb": memory_mb, "fsize_mb": fsize_mb, "nproc": 0},
        }
        reply = self.request(init, load_timeout)
        self.functions: list[str] = list(reply.get("functions", []))
        self.problems: list[dict[str, Any]] = list(reply.get("problems", []))
        self.warnings: list[str] = list(reply.get("warnings", []))

    def request(self, obj: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer; kills the worker on timeout or death."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(obj).encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self.kill()
            raise _WorkerDied(self._death_reason()) from exc
        line = self._readline(time.monotonic() + timeout)
        try:
            reply = json.loads(line)
        except ValueError as exc:  # not JSON, or not UTF-8
            self.kill()
            raise _WorkerDied("the worker answered something that is not JSON") from exc
        if not isinstance(reply, dict):
            self.kill()
            raise _WorkerDied("the worker answered something that is not a JSON object")
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
                self.kill()
                raise _WorkerDied(self._death_reason())
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
            return " ".join(self.stderr.read().decode("utf-8", "replace").split())
        except (OSError, ValueError):
            return ""

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
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        self.kill()
        with contextlib.suppress(OSError):
            self.stderr.close()


def _reap(proc: subprocess.Popen[bytes], workdir: str) -> None:
    """Kill a worker's process group, close its pipes, delete its working directory."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
    shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- the pool


class SandboxPool:
    """Workers with a set of sources loaded, for many calls (agents, replay checks).

    Thread-safe: up to `workers` calls run at once, each in its own process.
    A worker that times out or crashes is killed and replaced on the next
    call. A source whose loading hangs or kills the worker makes every call
    fail with that reason, without trying again.
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
        self.isolation = network_isolation() if isolation == "auto" else isolation
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
        return self._run({"op": "call", "function": name, "args": args}, timeout)

    def evaluate(
        self, name: str, source: str, setup: Iterable[str] = (), timeout: float | None = None
    ) -> CallResult:
        """Run a doctest example (after its `setup` examples) in `name`'s module namespace."""
        request = {"op": "eval", "function": name, "source": source, "setup": list(setup)}
        return self._run(request, timeout)

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
            return CallResult.failure(
                TIMEOUT,
                f"the call took longer than {limit:g} s and was stopped",
                timed_out=True,
                seconds=time.monotonic() - start,
            )
        except _WorkerDied as exc:
            self._release(worker)
            timed_out = "SIGXCPU" in str(exc)
            message = "CPU time limit exceeded" if timed_out else str(exc)
            return CallResult.failure(
                TIMEOUT if timed_out else CRASH,
                message,
                timed_out=timed_out,
                crashed=not timed_out,
                seconds=time.monotonic() - start,
            )
        self._release(worker)
        return CallResult.from_worker(reply)

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise _StartFailed(CallResult.failure(CRASH, "the sandbox pool is closed"))
                if self._load_error is not None:
                    raise _StartFailed(self._load_error)
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_workers:
                    self._count += 1
                    self.started += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker(
                self.sources, self.memory_mb, self.isolation, self.load_timeout, self.fsize_mb
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
