"""How a sandbox worker process is started: inside bubblewrap, or (opted in) as a plain process.

`bwrap` (the default) builds a kernel sandbox with bubblewrap: a fresh mount
namespace holding only the Python installation and its site-packages
(read-only), `/usr` and the dynamic loader's cache (read-only), a private
tmpfs `/tmp` whose `/tmp/work` is the working directory, a new `/proc` of its
own PID namespace (read-only: its sysctls are the host kernel's) and a minimal
`/dev`; no `$HOME`, no workspace, no `.git`.
It unshares every namespace (no network), starts a new session, dies with
funcforge, runs as uid 1000 without capabilities and with a scrubbed
environment (bubblewrap itself gets that environment too, so no secret sits in
any process inside). When funcforge runs as root, a user namespace would map
uid 1000 inside to root outside (owner of the host's `/dev` nodes and sysctls);
instead bubblewrap makes none and keeps only CAP_SETUID/CAP_SETGID, with which
the worker's first act is to become uid/gid 65534 for good (every capability
goes with it; bubblewrap's own init stays pid 1, so the sandbox still dies
with funcforge). The worker then forks its executor, which loads the
syscall filter that forbids new processes (binding root too), exec, signals to
others and ptrace (see `sandbox_worker.install_seccomp`).

`process` is the explicit opt-in where no OS sandbox can be made: the same
worker with the same limits and filter, but in the host's file system, as the
user running funcforge, in a network namespace only where `unshare -rn` works.
It is named as weaker wherever results are shown.

Nothing here falls back quietly: when bubblewrap is missing or cannot create
its namespaces, `require_sandbox` raises `SandboxUnavailable` saying what is
missing and how to install it.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from funcforge.errors import UserError

SandboxMode = Literal["bwrap", "process"]
WORKER_PATH = Path(__file__).with_name("sandbox_worker.py")
INSIDE_WORKER = "/funcforge/worker.pyc"  # compiled here once (worker_bytecode)
INSIDE_WORKER_SOURCE = "/funcforge/worker.py"  # the name its tracebacks give
INSIDE_TMP = "/tmp"
INSIDE_WORK = "/tmp/work"
INSIDE_UID = 1000
# The uid/gid the worker becomes when funcforge runs as root (see above): not
# root outside, so no owner check on a host inode passes as root's.
UNPRIVILEGED_ID = 65534
DROP_ENV = "FUNCFORGE_DROP_TO"
PROCESS_WARNING = (
    'sandbox = "process": tool code runs without an OS sandbox (it can read your files '
    "and may reach the network); weaker than bubblewrap"
)
_KEEP_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")


class SandboxUnavailable(UserError):
    """No OS sandbox can be made here, and the weaker process sandbox was not chosen."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=3)


def bwrap_path() -> str | None:
    """The bubblewrap binary: `FUNCFORGE_BWRAP` when set (may name a missing file), else PATH."""
    chosen = os.environ.get("FUNCFORGE_BWRAP")
    if chosen is not None:
        return chosen if os.path.isfile(chosen) and os.access(chosen, os.X_OK) else None
    return shutil.which("bwrap")


def resolve_mode(requested: str | None) -> SandboxMode:
    """`process` only when asked for by name; everything else means bubblewrap."""
    return "process" if requested == "process" else "bwrap"


def describe_mode(mode: str) -> str:
    """How reports name the isolation: `bwrap`, or `process (weaker: no OS sandbox)`."""
    return "process (weaker: no OS sandbox)" if mode == "process" else "bwrap"


_probe_lock = threading.Lock()
_probe_cache: dict[str, str | None] = {}
_drop_cache: dict[str, bool] = {}  # binary -> the worker drops root (no user namespace)


def drops_root(binary: str) -> bool:
    """Whether workers run without a user namespace and drop to `UNPRIVILEGED_ID`.

    As root, unless that could not start here (root only inside a container's
    user namespace, say): then a user namespace as before, behind the
    read-only `/proc` and the filter's ban on chmod.
    """
    return _drop_cache.get(binary, os.geteuid() == 0)


def require_sandbox(mode: SandboxMode) -> None:
    """Raise `SandboxUnavailable` unless `mode` can run here (bubblewrap is probed once)."""
    if mode == "process":
        return
    binary = bwrap_path()
    if binary is None:
        where = os.environ.get("FUNCFORGE_BWRAP")
        missing = (
            f"FUNCFORGE_BWRAP={where} is not an executable file"
            if where is not None
            else "bubblewrap (`bwrap`) is not on PATH"
        )
        raise SandboxUnavailable(_refusal(missing))
    with _probe_lock:
        if binary not in _probe_cache:
            problem = _probe(binary, drop=True) if os.geteuid() == 0 else "not root"
            _drop_cache[binary] = problem is None
            if problem is not None:
                problem = _probe(binary, drop=False)
            _probe_cache[binary] = problem
        problem = _probe_cache[binary]
    if problem is not None:
        raise SandboxUnavailable(_refusal(f"bubblewrap cannot create its sandbox here: {problem}"))


def _refusal(missing: str) -> str:
    return (
        f"funcforge will not run tool code without an OS sandbox: {missing}. "
        "Install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
        "`dnf install bubblewrap`) and make sure user namespaces are enabled "
        "(sysctl user.max_user_namespaces > 0; on Ubuntu 24.04 and later, AppArmor's "
        'bwrap profile), or accept the weaker process sandbox with sandbox = "process" '
        "in [tool.funcforge] (or the editor setting funcforge.sandbox). See docs/sandbox.md."
    )


def _probe(binary: str, drop: bool) -> str | None:
    """None when bubblewrap starts the interpreter in a full sandbox here, else what failed."""
    probe = "pass"
    if drop:  # the worker's first act as root, then what it reads as uid 65534
        probe = (
            f"import os; i = {UNPRIVILEGED_ID}; os.setgroups([]); os.setresgid(i, i, i); "
            "os.setresuid(i, i, i); import ctypes, json, site; "
            "[os.listdir(d) for d in os.environ['FUNCFORGE_SITE_DIRS'].split(os.pathsep) if d]"
        )
    argv, fds = bwrap_argv(
        binary, [sys.executable, "-S", "-B", "-c", probe], worker=None, drop=drop
    )
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=30,
            env=scrubbed_env(INSIDE_WORK),
            pass_fds=fds,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        for fd in fds:
            os.close(fd)
    if done.returncode != 0:
        err = " ".join(done.stderr.decode("utf-8", "replace").split())[:300]
        return err or f"exit status {done.returncode}"
    return None


def scrubbed_env(workdir: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker (and of bubblewrap itself), built from scratch: no secrets."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUTF8": "1",
            "HOME": workdir,
            "TMPDIR": os.path.join(workdir, "tmp") if workdir != INSIDE_WORK else INSIDE_TMP,
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1",
        }
    )
    env.update(extra or {})
    return env


def python_dirs() -> tuple[str, list[str]]:
    """The interpreter to run (its real path) and the directories it needs, read-only.

    The base installation (standard library, shared objects) and every
    site-packages directory of this environment (a virtualenv's included), but
    never the folders around them.
    """
    executable = os.path.realpath(sys.executable)
    dirs = [os.path.realpath(sys.base_prefix)]
    for path in (
        sysconfig.get_paths().get("stdlib"),
        sysconfig.get_paths().get("platstdlib"),
        *site_dirs(),
        os.path.dirname(executable),
    ):
        if path:
            dirs.append(os.path.realpath(path))
    out: list[str] = []
    for d in sorted(set(dirs), key=len):
        if os.path.isdir(d) and not any(d == o or d.startswith(o + os.sep) for o in out):
            out.append(d)
    return executable, out


def site_dirs() -> list[str]:
    """This environment's site-packages directories (the worker adds them with `site`)."""
    found: Iterable[str] = site.getsitepackages() if hasattr(site, "getsitepackages") else ()
    return [d for d in found if os.path.isdir(d)]


def bwrap_argv(
    binary: str,
    command: list[str],
    worker: str | None = WORKER_PATH.as_posix(),
    tmp_mb: int = 64,
    drop: bool | None = None,
) -> tuple[list[str], list[int]]:
    """bubblewrap's command line around `command`, and the descriptors to pass to it.

    `worker` (a path on the host) is copied into the sandbox at `INSIDE_WORKER`,
    compiled (`worker_bytecode`), through a descriptor; nothing of the folder
    around it is visible. `drop`: no user namespace, the worker drops root
    itself (default: `drops_root`).
    """
    executable, dirs = python_dirs()
    extra = {"FUNCFORGE_SITE_DIRS": os.pathsep.join(site_dirs())}
    if drops_root(binary) if drop is None else drop:
        # No user namespace (it would make the sandbox root outside): the worker drops
        # to UNPRIVILEGED_ID itself with the two capabilities kept for that. Not
        # --as-pid-1: bubblewrap's init (root) stays pid 1 and takes the sandbox down
        # with it when funcforge dies (the kernel does not let it signal uid 65534).
        who = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        who += ["--unshare-cgroup-try", "--cap-drop", "ALL"]
        who += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        extra[DROP_ENV] = str(UNPRIVILEGED_ID)
    else:
        who = ["--unshare-all", "--unshare-user", "--as-pid-1", "--uid", str(INSIDE_UID)]
        who += ["--gid", str(INSIDE_UID), "--disable-userns", "--cap-drop", "ALL"]
    argv = [
        binary,
        *who,
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--clearenv",
    ]
    fds: list[int] = []
    for key, value in scrubbed_env(INSIDE_WORK, extra).items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--perms", "0755", "--dir", "/etc"]
    for path in _ETC_FILES:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    # The private /tmp before the interpreter's folders: a Python or venv that lives
    # under /tmp (a checkout in `mktemp -d`) is bound onto it, not hidden by it (hidden,
    # the worker could not start as uid 65534 and the sandbox fell back to a user
    # namespace, root outside when funcforge runs as root).
    argv += ["--perms", "1777", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", INSIDE_TMP]
    made: set[Path] = {Path(INSIDE_TMP), *Path(INSIDE_TMP).parents}
    for d in dirs:
        if d != "/usr" and not d.startswith("/usr/"):
            # The folders on the way open to the worker's uid (as root, bubblewrap makes 0700).
            for parent in reversed(Path(d).parents[:-1]):
                if parent not in made:
                    made.add(parent)
                    argv += ["--perms", "0755", "--dir", str(parent)]
            argv += ["--ro-bind", d, d]
    argv += [
        "--proc",
        "/proc",
        # Read-only: its sysctl files are the host kernel's, and when funcforge runs as
        # root, uid 1000 inside is root outside (kernel.core_pattern would be a way out).
        "--remount-ro",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "0777",
        "--dir",
        INSIDE_WORK,
        "--chdir",
        INSIDE_WORK,
    ]
    if worker is not None:
        fd = _memfd(worker_bytecode(worker))
        fds.append(fd)
        argv += ["--perms", "0755", "--dir", os.path.dirname(INSIDE_WORKER)]
        argv += ["--perms", "0444", "--ro-bind-data", str(fd), INSIDE_WORKER]
    # The interpreter's real path, so its prefix (and pyvenv.cfg lookup) is the bound one.
    if command and command[0] == sys.executable:
        command = [executable, *command[1:]]
    return [*argv, "--", *command], fds


_bytecode_lock = threading.Lock()
_bytecode: dict[str, bytes] = {}


def worker_bytecode(worker: str) -> bytes:
    """The worker script as a `.pyc` file's bytes, compiled once per funcforge process.

    The sandbox runs this same interpreter (`python_dirs`), so the bytecode fits;
    a script run from source is compiled at every start (~10 ms of each worker's
    CPU). The header is the magic number and zero flags and timestamps: a `.pyc`
    run as a script is not checked against a source.
    """
    with _bytecode_lock:
        data = _bytecode.get(worker)
        if data is None:
            code = compile(
                Path(worker).read_bytes(), INSIDE_WORKER_SOURCE, "exec", dont_inherit=True
            )
            data = importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)
            _bytecode[worker] = data
        return data


def _memfd(data: bytes) -> int:
    """A descriptor holding `data` from its start (bubblewrap reads it to the end)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("funcforge-worker", 0)
    else:  # pragma: no cover - Linux always has memfd_create
        fd, name = tempfile.mkstemp()
        os.unlink(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


_shielded = False


def shield_this_process() -> None:
    """Make funcforge non-dumpable (once), for the process sandbox.

    There the tool code runs as the same user as funcforge; a non-dumpable
    process's `/proc/<pid>/environ`, `mem` and `fd/` are closed to other
    processes of that user, so the key in funcforge's environment cannot be
    read from there. (Other processes of the user are not covered: that is
    part of why the process sandbox is weaker.)
    """
    global _shielded
    if _shielded:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) == 0:  # PR_SET_DUMPABLE
            _shielded = True
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def worker_command(
    mode: SandboxMode, isolation_net: bool
) -> tuple[list[str], list[int], str | None]:
    """The command line of one worker, the descriptors to pass, and its host work dir (or None).

    `isolation_net` (process mode only): start it inside `unshare -rn` (with its own
    PID namespace and `/proc` where that works, `_unshare_flags`).
    """
    if mode == "bwrap":
        binary = bwrap_path()
        if binary is None:  # require_sandbox was called before; the binary vanished since
            raise SandboxUnavailable(_refusal("bubblewrap (`bwrap`) is not on PATH"))
        # -S: no `site` at start-up (the base installation's .pth files ran code and
        # imported modules in every worker, and its site-packages are not this
        # environment's); the worker adds this environment's site-packages itself.
        argv, fds = bwrap_argv(binary, [sys.executable, "-S", "-B", INSIDE_WORKER])
        return argv, fds, None
    shield_this_process()
    workdir = tempfile.mkdtemp(prefix="funcforge-sandbox-")
    os.mkdir(os.path.join(workdir, "tmp"))
    cmd = [sys.executable, "-s", "-B", str(WORKER_PATH)]
    if isolation_net:
        unshare = shutil.which("unshare") or "unshare"
        cmd = [unshare, *_unshare_flags(unshare), *cmd]
    return cmd, [], workdir


_pid_ns_lock = threading.Lock()
_pid_ns_cache: dict[str, bool] = {}
_PID_NS_FLAGS = ["-rnpf", "--mount-proc", "--kill-child"]


def _unshare_flags(unshare: str) -> list[str]:
    """`unshare` flags for the process sandbox: its own PID namespace and `/proc` too, where
    they can be made (probed once).

    Without them the tool code sees every process on the host in `/proc`: the
    environment of any of them that runs as your user and is dumpable (a
    `command:` training agent holding a model key, your shell) is readable.
    """
    with _pid_ns_lock:
        if unshare not in _pid_ns_cache:
            probe = "import os, sys; sys.exit(0 if os.getpid() == 1 and len(os.listdir('/proc/1/task')) else 3)"
            try:
                done = subprocess.run(
                    [unshare, *_PID_NS_FLAGS, sys.executable, "-S", "-c", probe],
                    capture_output=True,
                    timeout=10,
                    env=scrubbed_env(tempfile.gettempdir()),
                    check=False,
                )
                _pid_ns_cache[unshare] = done.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _pid_ns_cache[unshare] = False
        return _PID_NS_FLAGS if _pid_ns_cache[unshare] else ["-rn"]
