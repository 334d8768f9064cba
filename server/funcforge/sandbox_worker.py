"""The sandbox worker: loads untrusted tool sources and runs calls, one JSON line at a time.

This file is started by `funcforge.sandbox` as a separate interpreter and is
run *by path*, so it imports only the standard library (never funcforge): the
worker must work whatever the interpreter's import path, and untrusted code
must not find funcforge's own modules next to it. It can also be started as
`python -m funcforge.sandbox_worker`.

Protocol (stdin -> stdout, one JSON object per line):

- `{"op": "init", "sources": {path: text}, "limits": {...}}` first; the worker
  applies its limits and guards, then loads the sources and answers
  `{"functions": [...], "problems": [{"file", "line", "type", "message"}]}`.
- `{"op": "call", "function": name, "args": {...}, "cpu_seconds": n}` and
  `{"op": "eval", "function": name, "setup": [src, ...], "source": src, ...}`
  (a doctest example, run like doctest does) answer a call result:
  `ok, value_json, is_json, rendered, value_repr, stdout, digest, error_type,
  error_bases, error_message, seconds`.

Guards installed before any untrusted code runs: limits on address space,
file size, processes and CPU time (`resource`); `os.fork` and friends replaced
by functions that raise; an audit hook that refuses process creation, network
use, signals to other processes, writes outside the working directory and
reads of other processes' `/proc` entries. The audit hook is a guard against
accidents and careless code, not a security boundary (ctypes can bypass it);
the hard limits are the subprocess, its rlimits, the parent's timeout and,
where available, the network namespace the parent starts it in.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import io
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Sequence
from typing import Any

MAX_RENDERED = 200_000
MAX_JSON = 1_000_000
MAX_STDOUT = 20_000

SIGNATURE_MISMATCH = "SignatureMismatch"


def render_result(value: Any) -> str:
    """A tool result as a tool message's content: a str as is, else JSON when possible, else repr."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a hostile or broken __repr__
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"...[truncated {len(text) - limit} chars]"


def describe_value(value: Any) -> dict[str, Any]:
    """The JSON-able description of a returned value (see the module docstring)."""
    rendered = render_result(value)
    value_repr = _safe_repr(value)
    try:
        canonical = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        is_json = True
    except (TypeError, ValueError, RecursionError):
        canonical = "repr:" + value_repr
        is_json = False
    value_json: Any = None
    if is_json and len(canonical) <= MAX_JSON:
        value_json = json.loads(canonical)
    return {
        "ok": True,
        "value_json": value_json,
        "is_json": is_json,
        "rendered": _cap(rendered, MAX_RENDERED),
        "value_repr": _cap(value_repr, MAX_RENDERED),
        "digest": hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32],
    }


def describe_error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The JSON-able description of a raised exception."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable message>"
    return {
        "ok": False,
        "error_type": error_type or type(exc).__name__,
        "error_bases": [c.__name__ for c in type(exc).__mro__],
        "error_message": _cap(message, 2000),
    }


# ---------------------------------------------------------------- guards


class _Guard:
    """The audit hook's policy: what the untrusted code may not do."""

    def __init__(self, write_roots: Sequence[str]) -> None:
        self.pid = os.getpid()
        self.write_roots = [os.path.realpath(r) for r in write_roots]
        self.active = False
        self.trusted = False
        self.main_thread = threading.get_ident()

    def _inside(self, path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already open file descriptor
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        if real == os.devnull:
            return True
        return any(real == r or real.startswith(r + os.sep) for r in self.write_roots)

    def _proc_of_other(self, path: Any) -> bool:
        if isinstance(path, int):
            return False
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        m = re.match(r"^/proc/(\d+)(/|$)", real)
        return m is not None and int(m.group(1)) != self.pid

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, _mode, flags = args
            if self._proc_of_other(path):
                raise PermissionError(f"funcforge sandbox: reading {path!r} is not allowed")
            write_bits = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
            if isinstance(flags, int) and flags & write_bits and not self._inside(path):
                raise PermissionError(
                    f"funcforge sandbox: writing {path!r} outside the working directory is not allowed"
                )
        elif event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                path = args[index] if index < len(args) else None
                if path is not None and not self._inside(path):
                    raise PermissionError(
                        f"funcforge sandbox: {event} on {path!r} outside the working directory "
                        "is not allowed"
                    )
        elif event in _PROCESS_EVENTS:
            raise PermissionError(f"funcforge sandbox: {event} is not allowed (no new processes)")
        elif event in _NETWORK_EVENTS:
            raise PermissionError(f"funcforge sandbox: network access ({event}) is not allowed")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            target = args[0]
            if event == "signal.pthread_kill" or target not in (0, self.pid):
                raise PermissionError(f"funcforge sandbox: {event} is not allowed")
        elif event == "resource.setrlimit" and not self._own_setrlimit():
            raise PermissionError(f"funcforge sandbox: {event} is not allowed")

    def _own_setrlimit(self) -> bool:
        """True while the worker itself (not tool code) adjusts its CPU limit."""
        return self.trusted and threading.get_ident() == self.main_thread


# event -> indices of the arguments that name paths the operation modifies
_PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.mkfifo": (0,),
    "os.mknod": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
    "sqlite3.connect": (0,),  # sqlite opens its files in C, past the "open" event
}
_PROCESS_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "pty.spawn",
    }
)
_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.gethostbyname_ex",
        "socket.getnameinfo",
    }
)


def _refuse(what: str) -> Callable[..., Any]:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(f"funcforge sandbox: {what} is not allowed (no new processes)")

    return refuse


def _patch_process_creation() -> None:
    """Replace the functions that create processes, in addition to the audit hook."""
    for name in (
        "fork",
        "forkpty",
        "posix_spawn",
        "posix_spawnp",
        "system",
        "execv",
        "execve",
        "spawnv",
        "spawnve",
    ):
        if hasattr(os, name):
            setattr(os, name, _refuse(f"os.{name}"))
    try:
        import _posixsubprocess

        _posixsubprocess.fork_exec = _refuse("_posixsubprocess.fork_exec")  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - not POSIX
        pass


def _apply_limits(limits: dict[str, Any]) -> list[str]:
    """rlimits on this process; returns what could not be applied (reported, not fatal)."""
    missing: list[str] = []
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return ["resource module unavailable: no memory, file size or process limits"]

    def setlim(name: str, soft: int, hard: int | None = None) -> None:
        which = getattr(resource, name, None)
        if which is None:
            missing.append(f"{name} unavailable")
            return
        try:
            resource.setrlimit(which, (soft, soft if hard is None else hard))
        except (ValueError, OSError) as exc:
            missing.append(f"{name}: {exc}")

    mb = 1024 * 1024
    if limits.get("memory_mb"):
        setlim("RLIMIT_AS", int(limits["memory_mb"]) * mb)
    if limits.get("fsize_mb"):
        setlim("RLIMIT_FSIZE", int(limits["fsize_mb"]) * mb)
    setlim("RLIMIT_CORE", 0)
    if limits.get("nproc") is not None:
        # Counted per user and ignored for root; the patched os.fork and the
        # audit hook cover those cases.
        setlim("RLIMIT_NPROC", int(limits["nproc"]))
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-large writes raise OSError instead
    return missing


def _set_cpu_limit(guard: _Guard, seconds: float | None) -> None:
    """Allow this call `seconds` more CPU time (a backstop for the parent's wall-clock limit)."""
    if not seconds:
        return
    guard.trusted = True
    try:
        import resource

        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft = int(spent + seconds) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY and soft > hard:
            soft = hard
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - best effort
        pass
    finally:
        guard.trusted = False


# ---------------------------------------------------------------- loading


def module_names(path: str, index: int) -> list[str]:
    """Importable names for a source path: `tools/units.py` -> `tools.units`, `units`.

    An absolute path gives its last two components (`/ws/tools/units.py` ->
    `tools.units`, `units`); a path that is not made of identifiers gives a
    private name.
    """
    p = path.replace("\\", "/")
    if p.endswith(".py"):
        p = p[:-3]
    parts = [part for part in p.split("/") if part not in ("", ".")]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if path.startswith("/") or (len(path) > 2 and path[1] == ":"):
        parts = parts[-2:]
    while parts and not all(part.isidentifier() for part in parts):
        parts = parts[1:]
    if not parts:
        return [f"_funcforge_source_{index}"]
    names = [".".join(parts)]
    if len(parts) > 1:
        names.append(parts[-1])
    return names


class _SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the given sources as importable modules (siblings can import each other)."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, str]] = {}  # module name -> (path, text)
        self.packages: set[str] = set()

    def add(self, name: str, path: str, text: str) -> None:
        self.sources.setdefault(name, (path, text))
        parts = name.split(".")
        for i in range(1, len(parts)):
            self.packages.add(".".join(parts[:i]))

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in self.sources:
            origin = self.sources[fullname][0]
            spec = importlib.machinery.ModuleSpec(fullname, self, origin=origin)
            spec.has_location = True
            if fullname in self.packages:
                spec.submodule_search_locations = []
            return spec
        if fullname in self.packages:
            spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        entry = self.sources.get(module.__name__)
        if entry is None:
            return  # a synthesized package
        path, text = entry
        module.__file__ = path
        code = compile(text, path, "exec", dont_inherit=True)
        exec(code, module.__dict__)


class Worker:
    """The state of one worker process: the loaded modules and their functions."""

    def __init__(self) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.problems: list[dict[str, Any]] = []
        self.finder = _SourceFinder()

    def load(self, sources: dict[str, str]) -> None:
        sys.meta_path.insert(0, self.finder)
        order: list[tuple[str, str]] = []
        for index, (path, text) in enumerate(sorted(sources.items())):
            names = [
                n
                for n in module_names(path, index)
                if n not in self.finder.sources and not _taken(n)
            ] or [f"_funcforge_source_{index}"]
            for name in names:
                self.finder.add(name, path, text)
            order.append((names[0], path))
        for name, path in order:
            try:
                module = importlib.import_module(name)
            except SyntaxError as exc:
                self.problems.append(
                    {
                        "file": path,
                        "line": exc.lineno or 0,
                        "type": "SyntaxError",
                        "message": exc.msg,
                    }
                )
                continue
            except BaseException as exc:
                self.problems.append(
                    {
                        "file": path,
                        "line": _error_line(exc, path),
                        "type": type(exc).__name__,
                        "message": str(exc)[:500],
                    }
                )
                continue
            for attr, obj in vars(module).items():
                if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                    self.functions.setdefault(attr, obj)
                    self.functions.setdefault(f"{path}:{attr}", obj)
                    self.namespaces.setdefault(attr, module.__dict__)

    def _missing(self, name: str) -> dict[str, Any]:
        why = ""
        if self.problems:
            p = self.problems[0]
            why = f" ({p['file']}:{p['line']}: {p['type']}: {p['message']})"
        return describe_error(NameError(f"no function '{name}' in the sandboxed sources{why}"))

    def call(self, name: str, args: Any) -> dict[str, Any]:
        func = self.functions.get(name)
        if func is None:
            return self._missing(name)
        if not isinstance(args, dict):
            return describe_error(
                TypeError(f"arguments must be a JSON object, got {type(args).__name__}"),
                SIGNATURE_MISMATCH,
            )
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:  # no signature to check against
            return describe_error(exc)
        try:
            bound = signature.bind(**args)
        except TypeError as exc:
            return describe_error(TypeError(_mismatch(signature, args, exc)), SIGNATURE_MISMATCH)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                value = func(*bound.args, **bound.kwargs)
                if inspect.isawaitable(value):
                    import asyncio

                    value = asyncio.run(_await(value))
            result = describe_value(value)
        except BaseException as exc:
            result = describe_error(exc)
        result["stdout"] = _cap(out.getvalue(), MAX_STDOUT)
        return result

    def eval(self, name: str, setup: list[str], source: str) -> dict[str, Any]:
        """Run a doctest example after its setup examples, in a copy of the module namespace."""
        base = self.namespaces.get(name)
        if base is None:
            return self._missing(name)
        ns = dict(base)
        out = io.StringIO()
        shown: list[Any] = []

        def displayhook(value: Any) -> None:
            if value is not None:
                shown.append(value)
                sys.stdout.write(_safe_repr(value) + "\n")

        old_hook = sys.displayhook
        sys.displayhook = displayhook
        try:
            for i, src in enumerate(setup):
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        exec(compile(src, f"<doctest setup {i}>", "single"), ns)
                except BaseException as exc:
                    err = describe_error(exc)
                    err["error_message"] = f"in setup `{src.strip()}`: {err['error_message']}"
                    return err
            shown.clear()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(source, "<doctest>", "single"), ns)
            except BaseException as exc:
                err = describe_error(exc)
                err["stdout"] = _cap(out.getvalue(), MAX_STDOUT)
                return err
        finally:
            sys.displayhook = old_hook
        result = describe_value(shown[-1] if shown else None)
        result["stdout"] = _cap(out.getvalue(), MAX_STDOUT)
        result["rendered"] = result["stdout"]  # what doctest compares
        return result


def _taken(name: str) -> bool:
    """Is `name` already an importable module (stdlib or installed)? Then no alias."""
    top = name.split(".")[0]
    if name in sys.modules or top in getattr(sys, "stdlib_module_names", ()):
        return True
    if "." in name:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return True


def _mismatch(signature: inspect.Signature, args: dict[str, Any], exc: TypeError) -> str:
    """Which arguments do not fit: unexpected names and missing required ones."""
    params = signature.parameters
    kinds = inspect.Parameter
    parts = []
    if not any(p.kind == kinds.VAR_KEYWORD for p in params.values()):
        unexpected = [
            k
            for k in args
            if k not in params or params[k].kind in (kinds.POSITIONAL_ONLY, kinds.VAR_POSITIONAL)
        ]
        if unexpected:
            parts.append("unexpected argument " + ", ".join(repr(k) for k in unexpected))
    missing = [
        name
        for name, p in params.items()
        if p.default is kinds.empty
        and p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
        and name not in args
    ]
    if missing:
        parts.append("missing argument " + ", ".join(repr(k) for k in missing))
    return "; ".join(parts) or str(exc)


async def _await(value: Any) -> Any:
    return await value


def _error_line(exc: BaseException, path: str) -> int:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == path:
            return frame.lineno or 0
    return 0


# ---------------------------------------------------------------- main loop


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    # The protocol moves to private descriptors; untrusted code that prints to
    # fd 1 or reads fd 0 sees stderr and /dev/null instead.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = io.StringIO()

    def send(obj: dict[str, Any]) -> None:
        try:
            line = json.dumps(obj)  # ASCII: lone surrogates in results stay valid JSON
        except (TypeError, ValueError):  # pragma: no cover - describe_* keep it JSON
            line = json.dumps({"ok": False, "error_type": "ProtocolError", "error_message": "?"})
        proto_out.write(line.encode("ascii") + b"\n")
        proto_out.flush()

    first = proto_in.readline()
    if not first:
        return
    init = json.loads(first)
    limits = init.get("limits", {})
    warnings = _apply_limits(limits)
    guard = _Guard([os.getcwd(), *init.get("write_roots", [])])
    sys.addaudithook(guard)
    _patch_process_creation()
    worker = Worker()
    guard.active = True
    worker.load(init.get("sources", {}))
    send(
        {
            "op": "init",
            "functions": sorted(k for k in worker.functions if ":" not in k),
            "problems": worker.problems,
            "warnings": warnings,
        }
    )
    while True:
        line = proto_in.readline()
        if not line:
            return
        try:
            req = json.loads(line)
        except json.JSONDecodeError:
            send(describe_error(ValueError("malformed request"), "ProtocolError"))
            continue
        _set_cpu_limit(guard, req.get("cpu_seconds"))
        start = time.perf_counter()
        if req.get("op") == "eval":
            result = worker.eval(req["function"], list(req.get("setup", [])), req["source"])
        else:
            result = worker.call(req["function"], req.get("args"))
        result["seconds"] = round(time.perf_counter() - start, 6)
        send(result)


if __name__ == "__main__":
    main()
