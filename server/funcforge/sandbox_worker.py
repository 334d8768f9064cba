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
import importlib
import importlib.machinery
import io
import json
import os
import re
import select
import signal
import sys
import threading
import time
import types

# Every import here is paid by every worker start (CPU, inside the sandbox):
# no `inspect`, `typing`, `importlib.abc`, `hashlib` (OpenSSL), `platform` or
# `traceback` at start-up (benchmarks/sandbox_overhead.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from collections.abc import Callable, Sequence
    from typing import Any

try:  # the built-in SHA-256 (hashlib would load OpenSSL first)
    from _sha2 import sha256  # type: ignore[import-not-found]  # CPython 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef]  # CPython 3.11
    except ImportError:  # pragma: no cover - other interpreters
        from hashlib import sha256  # type: ignore[assignment,no-redef]

MAX_RENDERED = 200_000
MAX_JSON = 1_000_000
# Containers and scalars a returned JSON value may hold to be kept as a value (beyond,
# only its digest and rendering): millions of tiny ones ("[[],[],...]") are ~20 bytes
# of Python objects per byte of JSON, in funcforge too, once per logged call.
MAX_VALUE_NODES = 10_000
MAX_STDOUT = 20_000

SIGNATURE_MISMATCH = "SignatureMismatch"


def render_result(value: Any) -> str:
    """A tool result as a tool message's content: a str as is, else JSON when possible, else repr."""
    if isinstance(value, str):
        return str.__str__(value)  # a plain copy: a str subclass's __len__ could lie to the caps
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _safe_repr(value)


# What a class is called and derives from, read past its metaclass (whose
# `__name__` or `__mro__` property could raise SystemExit or lie).
_CLASS_NAME = type.__dict__["__name__"]
_CLASS_MRO = type.__dict__["__mro__"]


def _class_name(cls: type) -> str:
    return str(_CLASS_NAME.__get__(cls, type))


def _safe_repr(value: Any) -> str:
    try:
        return str.__str__(repr(value))
    except BaseException as exc:  # a hostile or broken __repr__ (SystemExit included)
        return f"<unrepresentable {_class_name(type(value))}: {_class_name(type(exc))}>"


def _safe_str(exc: BaseException) -> str:
    """`str(exc)` as a plain str; a hostile `__str__` (raising SystemExit, say) gives a placeholder."""
    try:
        return str.__str__(str(exc))
    except BaseException:
        return "<unprintable message>"


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"...[truncated {len(text) - limit} chars]"


_SCALARS = (str, int, float, bool, type(None))


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
        # The value as returned (key order kept); the canonical form is only for the digest.
        # A str, int, float, bool or None is its own JSON round trip.
        if type(value) in _SCALARS:
            value_json = value
        else:
            value_json = json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))
            if json_nodes(value_json, MAX_VALUE_NODES) > MAX_VALUE_NODES:
                value_json = None
    return {
        "ok": True,
        "value_json": value_json,
        "is_json": is_json,
        "rendered": _cap(rendered, MAX_RENDERED),
        "value_repr": _cap(value_repr, MAX_RENDERED),
        "digest": sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32],
    }


def json_nodes(value: Any, limit: int) -> int:
    """How many values (containers and scalars) a JSON value holds, counted up to `limit` + 1."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def describe_error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The JSON-able description of a raised exception."""
    return {
        "ok": False,
        "error_type": error_type or _class_name(type(exc)),
        "error_bases": [_class_name(c) for c in _CLASS_MRO.__get__(type(exc), type)],
        "error_message": _cap(_safe_str(exc), 2000),
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
    if limits.get("nofile"):
        # Each descriptor can hold kernel memory the address-space limit does not
        # count (a socketpair's buffers: ~200 KB; a pipe's: up to 1 MB).
        setlim("RLIMIT_NOFILE", int(limits["nofile"]))
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


if TYPE_CHECKING:
    from importlib.abc import Loader as _Loader
else:
    _Loader = object  # the protocol is enough at run time


class _SourceFinder(_Loader):
    """Serves the given sources as importable modules (siblings can import each other).

    A meta path finder and its loader by protocol (`find_spec`, `create_module`,
    `exec_module`); not derived from `importlib.abc`, whose import costs each worker start.
    """

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
                        "type": _class_name(type(exc)),
                        "message": _safe_str(exc)[:500],
                    }
                )
                continue
            for attr, obj in vars(module).items():
                if isinstance(obj, types.FunctionType) and obj.__module__ == module.__name__:
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
        positional: tuple[Any, ...] = ()
        keywords: dict[str, Any] = args
        if not _fits(func, args):  # decorated, or the arguments do not fit: inspect decides
            import inspect

            try:
                signature = inspect.signature(func)
            except (TypeError, ValueError) as exc:  # no signature to check against
                return describe_error(exc)
            try:
                bound = signature.bind(**args)
            except TypeError as exc:
                message = _mismatch(signature, args, exc)
                return describe_error(TypeError(message), SIGNATURE_MISMATCH)
            positional, keywords = bound.args, bound.kwargs
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                value = func(*positional, **keywords)
                if _isawaitable(value):
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
        import importlib.util

        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return True


_CO_VARKEYWORDS = 0x08
_CO_ITERABLE_COROUTINE = 0x100


def _fits(func: Callable[..., Any], args: dict[str, Any]) -> bool:
    """Does `func(**args)` bind? For a plain function, read from its code object.

    True only when `inspect.signature(func).bind(**args)` would succeed; False
    for anything else (a decorated function, or arguments that do not fit),
    which `inspect` then decides and explains. `inspect` costs every worker
    start ~10 ms of imports (`ast`, `dis`, `tokenize`), and a call ~25 us.
    """
    if (
        type(func) is not types.FunctionType
        or "__wrapped__" in func.__dict__
        or "__signature__" in func.__dict__
    ):
        return False
    code = func.__code__
    count, posonly, kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    names = code.co_varnames
    required = count - len(func.__defaults__ or ())
    if min(posonly, required) > 0:
        return False  # a positional-only parameter without a default: keywords cannot fill it
    for name in names[:posonly]:
        if name in args:
            return False  # inspect refuses it, even where **kwargs would take it
    for name in names[posonly:required]:
        if name not in args:
            return False
    kwdefaults = func.__kwdefaults__ or {}
    for name in names[count : count + kwonly]:
        if name not in args and name not in kwdefaults:
            return False
    if code.co_flags & _CO_VARKEYWORDS:
        return True
    allowed = names[posonly : count + kwonly]
    return all(key in allowed for key in args)


def _isawaitable(value: Any) -> bool:
    """`inspect.isawaitable`, without importing `inspect`."""
    if isinstance(value, types.CoroutineType):
        return True
    if isinstance(value, types.GeneratorType):
        return bool(value.gi_code.co_flags & _CO_ITERABLE_COROUTINE)
    import collections.abc

    return isinstance(value, collections.abc.Awaitable)


def _mismatch(signature: inspect.Signature, args: dict[str, Any], exc: TypeError) -> str:
    """Which arguments do not fit: unexpected names and missing required ones."""
    import inspect

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
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == path:
            return frame.lineno or 0
    return 0


# ---------------------------------------------------------------- seccomp

# The kernel's syscall filter for the executor: no new processes (fork, vfork,
# clone without CLONE_THREAD; clone3 answers ENOSYS so the C library falls back
# to clone), no exec, no signals to any process but itself, no ptrace or
# access to other processes' memory or descriptors, no new namespaces, mounts,
# io_uring (its operations bypass seccomp), bpf, perf or keyrings; no I/O
# signals to a chosen owner (fcntl F_SETOWN, FIOSETOWN), no resource limits or
# scheduling of other processes (prlimit64, sched_set*, ioprio_set), no page
# migration; no chmod or extended attributes (the sandbox's /dev nodes are the
# host's inodes, and their owner, root, is who the sandbox is outside when
# funcforge runs as root); no socket() of any family (socketpair stays, for
# asyncio): in the process sandbox a network namespace does not hide Unix
# sockets on the file system (ssh-agent, docker) and may not exist at all.
# No memory outside the address-space limit: memfd_create (each file up to
# the file-size limit, as many as descriptors), SysV shared memory (kept after
# shmdt; in the process sandbox it outlived the worker on the host, where
# other programs' segments of the same user could be attached), SysV
# semaphores and message queues, POSIX message queues.
# Unlike RLIMIT_NPROC this binds root too. Numbers per architecture.
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SYSCALLS = {
    "x86_64": {
        "fork": 57,
        "vfork": 58,
        "clone": 56,
        "clone3": 435,
        "execve": 59,
        "execveat": 322,
        "kill": 62,
        "tkill": 200,
        "tgkill": 234,
        "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "chroot": 161,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "perf_event_open": 298,
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "setpriority": 141,
        "process_madvise": 440,
        "kcmp": 312,
        "open_by_handle_at": 304,
        "socket": 41,
        "fcntl": 72,
        "ioctl": 16,
        "prlimit64": 302,
        "sched_setparam": 142,
        "sched_setscheduler": 144,
        "sched_setaffinity": 203,
        "sched_setattr": 314,
        "ioprio_set": 251,
        "migrate_pages": 256,
        "move_pages": 279,
        "chmod": 90,
        "fchmod": 91,
        "fchmodat": 268,
        "fchmodat2": 452,
        "setxattr": 188,
        "lsetxattr": 189,
        "fsetxattr": 190,
        "removexattr": 197,
        "lremovexattr": 198,
        "fremovexattr": 199,
        "setxattrat": 463,
        "removexattrat": 466,
        "memfd_create": 319,
        "memfd_secret": 447,
        "shmget": 29,
        "shmat": 30,
        "shmctl": 31,
        "shmdt": 67,
        "semget": 64,
        "semop": 65,
        "semctl": 66,
        "semtimedop": 220,
        "msgget": 68,
        "msgsnd": 69,
        "msgrcv": 70,
        "msgctl": 71,
        "mq_open": 240,
    },
    "aarch64": {
        "clone": 220,
        "clone3": 435,
        "execve": 221,
        "execveat": 281,
        "kill": 129,
        "tkill": 130,
        "tgkill": 131,
        "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "chroot": 51,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "perf_event_open": 241,
        "userfaultfd": 282,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "setpriority": 140,
        "process_madvise": 440,
        "kcmp": 272,
        "open_by_handle_at": 265,
        "socket": 198,
        "fcntl": 25,
        "ioctl": 29,
        "prlimit64": 261,
        "sched_setparam": 118,
        "sched_setscheduler": 119,
        "sched_setaffinity": 122,
        "sched_setattr": 274,
        "ioprio_set": 30,
        "migrate_pages": 238,
        "move_pages": 239,
        "fchmod": 52,
        "fchmodat": 53,
        "fchmodat2": 452,
        "setxattr": 5,
        "lsetxattr": 6,
        "fsetxattr": 7,
        "removexattr": 14,
        "lremovexattr": 15,
        "fremovexattr": 16,
        "setxattrat": 463,
        "removexattrat": 466,
        "memfd_create": 279,
        "memfd_secret": 447,
        "shmget": 194,
        "shmctl": 195,
        "shmat": 196,
        "shmdt": 197,
        "semget": 190,
        "semctl": 191,
        "semtimedop": 192,
        "semop": 193,
        "msgget": 186,
        "msgctl": 187,
        "msgrcv": 188,
        "msgsnd": 189,
        "mq_open": 180,
    },
}
_CLONE_THREAD = 0x00010000
# fcntl commands and ioctls that make the kernel signal a chosen process on I/O
# (F_SETOWN + F_SETSIG(SIGKILL) on a pipe kills that process: a kill that
# the kill/tgkill rules never see). F_SETOWN, F_SETOWN_EX; FIOSETOWN, SIOCSPGRP.
_FCNTL_OWNER = (8, 15)
_IOCTL_OWNER = (0x8901, 0x8902)
# Calls that name a process as their first argument: only 0 (itself) or its own pid.
_SELF_ONLY = (
    "prlimit64",
    "sched_setparam",
    "sched_setscheduler",
    "sched_setaffinity",
    "sched_setattr",
)
_EPERM, _EAGAIN, _ENOSYS = 1, 11, 38


def seccomp_program(machine: str, pid: int) -> bytes | None:
    """The classic-BPF filter (see above) for this machine, or None when unknown."""
    import struct

    arch, nrs = _AUDIT_ARCH.get(machine), _SYSCALLS.get(machine)
    if arch is None or nrs is None:
        return None
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000

    def errno(n: int) -> int:
        return 0x00050000 | n

    prog: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, arch),
        (ret, 0, 0, kill),
        (ld, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":  # the x32 ABI's numbers would slip past the list
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, errno(_EPERM))]
    arg0 = 16  # seccomp_data.args[0], low 32 bits (little-endian)
    # clone: threads only; kill/tgkill: only this process.
    prog += [
        (jeq, 0, 4, nrs["clone"]),
        (ld, 0, 0, arg0),
        (jset, 0, 1, _CLONE_THREAD),
        (ret, 0, 0, allow),
        (ret, 0, 0, errno(_EAGAIN)),
        (jeq, 0, 1, nrs["clone3"]),
        (ret, 0, 0, errno(_ENOSYS)),
    ]
    for name in ("kill", "tgkill"):
        prog += [
            (jeq, 0, 4, nrs[name]),
            (ld, 0, 0, arg0),
            (jeq, 0, 1, pid),
            (ret, 0, 0, allow),
            (ret, 0, 0, errno(_EPERM)),
        ]
    arg1 = 24  # seccomp_data.args[1], low 32 bits
    for name, denied in (("fcntl", _FCNTL_OWNER), ("ioctl", _IOCTL_OWNER)):
        n = len(denied)
        prog += [(jeq, 0, n + 3, nrs[name]), (ld, 0, 0, arg1)]
        prog += [(jeq, n - i, 0, cmd) for i, cmd in enumerate(denied)]
        prog += [(ret, 0, 0, allow), (ret, 0, 0, errno(_EPERM))]
    for name in _SELF_ONLY:
        prog += [
            (jeq, 0, 5, nrs[name]),
            (ld, 0, 0, arg0),
            (jeq, 2, 0, 0),
            (jeq, 1, 0, pid),
            (ret, 0, 0, errno(_EPERM)),
            (ret, 0, 0, allow),
        ]
    skip = {"clone", "clone3", "kill", "tgkill", "fcntl", "ioctl", *_SELF_ONLY}
    for name, nr in sorted(nrs.items()):
        if name not in skip:
            prog += [(jeq, 0, 1, nr), (ret, 0, 0, errno(_EAGAIN if "fork" in name else _EPERM))]
    prog.append((ret, 0, 0, allow))
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)


def install_seccomp() -> str | None:
    """Load the filter into this process (irreversibly); None on success, else why not."""
    try:
        import ctypes
    except ImportError as exc:  # pragma: no cover - CPython always has it
        return f"seccomp unavailable: {exc}"
    machine = os.uname().machine  # what platform.machine() says, without importing platform
    program = seccomp_program(machine, os.getpid())
    if program is None:
        return f"seccomp: no syscall table for {machine}"

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if prctl(pr_set_no_new_privs, 1, None, 0, 0) != 0:
        return f"seccomp: PR_SET_NO_NEW_PRIVS failed (errno {ctypes.get_errno()})"
    fprog = SockFprog(len(program) // 8, program)
    if (
        prctl(
            pr_set_seccomp,
            seccomp_mode_filter,
            ctypes.cast(ctypes.byref(fprog), ctypes.c_void_p),
            0,
            0,
        )
        != 0
    ):
        return f"seccomp: loading the filter failed (errno {ctypes.get_errno()})"
    return None


def drop_capabilities() -> str | None:
    """Give up every capability of this process (root in the process sandbox is then just
    uid 0: no reading other processes' memory or environment, no bypassing file modes).
    None on success, else why not."""
    try:
        import ctypes
    except ImportError:  # pragma: no cover
        return "capabilities: ctypes unavailable"

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    libc = ctypes.CDLL(None, use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        return f"capabilities: capset failed (errno {ctypes.get_errno()})"
    return None


def _set_dumpable(flag: bool) -> None:
    """A non-dumpable process's memory, descriptors and /proc entries are closed to its peers."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, int(flag), 0, 0, 0)  # PR_SET_DUMPABLE
    except (ImportError, OSError, AttributeError):  # pragma: no cover - best effort
        pass


# ---------------------------------------------------------------- main loop

MAX_ANSWER = 24 * 1024 * 1024  # bytes of one answer line from the executor


def _executor(requests: int, answers: int, guard_roots: list[str]) -> None:
    """The process that loads and runs tool code: limits and filters first, then the loop.

    It holds only its own two pipes to the supervisor; funcforge's channel is
    not among its descriptors.
    """
    proto_in = os.fdopen(requests, "rb")
    proto_out = os.fdopen(answers, "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # prints to fd 1 go nowhere; print() is captured per call
    os.close(devnull)
    sys.stdin = io.StringIO()

    def send(obj: dict[str, Any]) -> None:
        try:
            line = json.dumps(obj)  # ASCII: lone surrogates in results stay valid JSON
        except (TypeError, ValueError, RecursionError):
            line = json.dumps(
                {"ok": False, "error_type": "ProtocolError", "error_message": "unencodable result"}
            )
        proto_out.write(line.encode("ascii") + b"\n")
        proto_out.flush()

    first = proto_in.readline()
    if not first:
        return
    init = json.loads(first)
    limits = init.get("limits", {})
    warnings = _apply_limits(limits)
    dropped = drop_capabilities()
    if dropped is not None:
        warnings.append(dropped)
    problem = install_seccomp() if limits.get("seccomp", True) else "seccomp off"
    if problem is not None:
        warnings.append(problem)
        # Without the kernel filter, at least try the per-user process limit.
        warnings.extend(_apply_limits({"nproc": 0}))
    guard = _Guard([os.getcwd(), *guard_roots, *init.get("write_roots", [])])
    sys.addaudithook(guard)
    _patch_process_creation()
    worker = Worker()
    guard.active = True
    worker.load(init.get("sources", {}))
    send(
        {
            "op": "init",
            "seq": init.get("seq"),
            "functions": sorted(k for k in worker.functions if ":" not in k),
            "problems": worker.problems,
            "warnings": warnings,
            "seccomp": problem is None,
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
        # A batch is many calls in one message (fewer round trips); each gets its
        # own CPU limit and its own answer line, in order.
        for one in req.get("calls") or () if req.get("op") == "batch" else (req,):
            send(_run_request(worker, guard, one))


def _run_request(worker: Worker, guard: _Guard, req: dict[str, Any]) -> dict[str, Any]:
    """One call or doctest example, under its own CPU limit; the answer carries its `seq`."""
    _set_cpu_limit(guard, req.get("cpu_seconds"))
    start = time.perf_counter()
    if req.get("op") == "eval":
        result = worker.eval(req["function"], list(req.get("setup", [])), req["source"])
    else:
        result = worker.call(req["function"], req.get("args"))
    result["seconds"] = round(time.perf_counter() - start, 6)
    result["seq"] = req.get("seq")
    return result


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"the tool process was killed by {name}"
    return f"the tool process exited with status {os.waitstatus_to_exitcode(status)}"


class ChannelClosed(Exception):
    """funcforge's end of the channel closed while a call ran: funcforge is gone."""


def _read_answer(fd: int, buf: bytearray, watch: Any = None) -> bytes | None:
    """One line from the executor (None at EOF); a line over MAX_ANSWER raises ValueError.

    `watch`: a `select.poll` holding `fd` and funcforge's channel; when the
    channel hangs up while the call runs (funcforge was killed), `ChannelClosed`
    is raised. Nothing else would end a sleeping call in the process sandbox,
    which has no parent-death signal.
    """
    while True:
        newline = buf.find(b"\n")
        if newline >= 0:
            line = bytes(buf[:newline])
            del buf[: newline + 1]
            return line
        if len(buf) > MAX_ANSWER:
            raise ValueError(f"the answer exceeded {MAX_ANSWER} bytes")
        if watch is not None:
            events = dict(watch.poll())
            if any(e & (select.POLLHUP | select.POLLERR) for f, e in events.items() if f != fd):
                raise ChannelClosed()
            if fd not in events:
                continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        buf += chunk


def _checked(line: bytes, seq: Any) -> dict[str, Any]:
    """The executor's answer, decoded and checked; what cannot be trusted raises ValueError."""
    obj = json.loads(line.decode("ascii"))
    if not isinstance(obj, dict):
        raise ValueError("the answer is not a JSON object")
    if obj.get("seq") != seq:
        raise ValueError("the answer does not belong to the request (sequence number)")
    return obj


def supervise() -> None:
    """The worker's main process: relays funcforge's channel to a forked executor.

    It never loads tool code. It answers for the executor when that dies or
    answers something that is not a well-formed reply to the current request;
    both end the worker (funcforge starts a fresh one for the next call).
    """
    _set_dumpable(False)
    channel_in, channel_out = os.dup(0), os.dup(1)
    os.set_inheritable(channel_in, False)
    os.set_inheritable(channel_out, False)
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    roots = [os.environ.get("TMPDIR", "")] if os.environ.get("TMPDIR") else []
    pid = os.fork()
    if pid == 0:  # the executor: keep only its own pipe ends
        try:
            os.close(channel_in)
            os.close(channel_out)
            os.close(req_w)
            os.close(ans_r)
            _executor(req_r, ans_w, roots)
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(70)
        os._exit(0)
    os.close(req_r)
    os.close(ans_w)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    reader = open(channel_in, "rb", buffering=1 << 16)  # noqa: SIM115 - lives until exit
    buf = bytearray()
    watch = select.poll()
    watch.register(ans_r, select.POLLIN)
    watch.register(channel_in, 0)  # hang-ups and errors only

    def send_line(data: bytes) -> None:
        view = memoryview(data + b"\n")
        while view:
            view = view[os.write(channel_out, view) :]

    def forward(obj: dict[str, Any]) -> None:
        send_line(json.dumps(obj, ensure_ascii=True).encode("ascii"))

    def fail(seq: Any, error_type: str, message: str) -> None:
        forward(
            {
                "ok": False,
                "seq": seq,
                "fatal": True,
                "error_type": error_type,
                "error_bases": [error_type],
                "error_message": message,
            }
        )

    while True:
        line = reader.readline()
        if not line:
            break
        seqs = _request_seqs(line)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(req_w, view) :]
        except OSError:
            pass  # the executor is gone: its death is the first call's answer
        # One answer per call, in order (a batch has several): each must belong
        # to its call, or the executor is stopped and that call gets the error.
        for seq in seqs:
            try:
                answer = _read_answer(ans_r, buf, watch)
            except ChannelClosed:
                return _end(pid)
            except (OSError, ValueError) as exc:
                answer = None
                if isinstance(exc, ValueError):
                    os.kill(pid, signal.SIGKILL)
                    fail(seq, "ProtocolError", f"the tool process broke the protocol: {exc}")
                    return _end(pid)
            if answer is None:
                _, status = os.waitpid(pid, 0)
                fail(seq, "SandboxCrash", _status_text(status))
                return
            try:
                _checked(answer, seq)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                os.kill(pid, signal.SIGKILL)
                fail(seq, "ProtocolError", f"the tool process broke the protocol: {str(exc)[:200]}")
                return _end(pid)
            # Checked: one ASCII JSON object for this call. Passed on as it came
            # (funcforge decodes it with the same parser), not encoded again.
            send_line(answer)
    _end(pid)


def _request_seqs(line: bytes) -> list[Any]:
    """The sequence numbers a request line expects answers for: one, or a batch's, in order."""
    try:
        request = json.loads(line)
        if request.get("op") == "batch":
            return [call.get("seq") for call in request["calls"]]
        return [request.get("seq")]
    except (ValueError, AttributeError, TypeError, KeyError, RecursionError):
        return [None]


def _end(pid: int) -> None:
    """Stop the executor and reap it."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def drop_root() -> None:
    """Become `FUNCFORGE_DROP_TO` (uid and gid) for good when started as root.

    When funcforge runs as root, bubblewrap makes no user namespace (it would
    map the sandbox to root outside) and leaves this process CAP_SETUID and
    CAP_SETGID for exactly this; changing every uid away from 0 also clears
    every capability. Anything short of that ends the worker.
    """
    target = os.environ.pop("FUNCFORGE_DROP_TO", "")
    if not target or os.getuid() != 0:
        return
    ident = int(target)
    os.setgroups([])
    os.setresgid(ident, ident, ident)
    os.setresuid(ident, ident, ident)
    if 0 in (*os.getresuid(), *os.getresgid()) or os.getgroups():
        raise SystemExit("funcforge sandbox: could not drop root")


def main() -> None:
    drop_root()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    for directory in os.environ.pop("FUNCFORGE_SITE_DIRS", "").split(os.pathsep):
        if directory:
            import site

            site.addsitedir(directory)
    supervise()
    os._exit(0)  # nothing buffered is left to flush: skip the interpreter's tear-down


if __name__ == "__main__":
    main()
