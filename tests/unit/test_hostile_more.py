"""More hostile tool functions: the routes the first catalogue (test_hostile.py) missed.

Found by attacking the sandbox as root (as funcforge runs here): bubblewrap
maps uid 1000 inside to the uid that started it, so as root the sandbox is
root outside, without capabilities. Owner checks on host inodes then pass:
the sysctls under `/proc/sys` (kernel.core_pattern: a way out of the sandbox
as root) and the `/dev` nodes bound from the host (chmod /dev/null). Each
attack writes back what is already there, so even where it gets through,
nothing on this machine changes.

And signals the kill/tgkill rules never saw: `fcntl(F_SETOWN)` +
`F_SETSIG(SIGKILL)` on a pipe makes the kernel kill the owner on the next
write, and `prlimit64`/`sched_setaffinity` act on another process. In the
process sandbox those reach funcforge itself, so they run in a child
`funcforge`-like process that must survive with its limits intact.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funcforge.fsutil import dumps
from funcforge.optimizer.replay import LoggedCall, check_calls
from tests.unit.test_hostile import (  # noqa: F401 - `host` is the fixture
    OLD,
    PRELUDE,
    SECRET,
    _descendants,
    _tree_hash,
    host,
)

ATTACKS: dict[str, str] = {
    "sysctl_core_pattern_written_back": """
    guard_off()
    path = "/proc/sys/kernel/core_pattern"
    value = open(path).read()
    with open(path, "w") as fh:
        fh.write(value)
    return "wrote a host sysctl"
""",
    "sysctl_written_through_ctypes": """
    fd = check(libc.open(b"/proc/sys/kernel/core_pattern", os.O_RDONLY), "open")
    value = os.read(fd, 4096)
    out = check(libc.open(b"/proc/sys/kernel/core_pattern", os.O_WRONLY), "open for write")
    check(libc.write(out, value, len(value)), "write")
    return "wrote a host sysctl"
""",
    "chmod_a_host_device_node": """
    guard_off()
    os.chmod("/dev/null", 0o666)
    return "chmod on the host's /dev/null"
""",
    "fchmod_a_host_device_node": """
    fd = os.open("/dev/null", os.O_RDONLY)
    check(libc.fchmod(fd, 0o666), "fchmod")
    return "fchmod on the host's /dev/null"
""",
    "utime_a_host_device_node": """
    guard_off()
    st = os.stat("/dev/null")
    os.utime("/dev/null", ns=(st.st_atime_ns, st.st_mtime_ns))
    return "set the times of the host's /dev/null"
""",
    "prlimit_another_process": """
    import resource
    return resource.prlimit(1, resource.RLIMIT_NOFILE)
""",
    "sched_setaffinity_another_process": """
    os.sched_setaffinity(1, os.sched_getaffinity(1))
    return "moved another process"
""",
    "setown_sigkill_to_the_supervisor": """
    import fcntl
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETOWN, 1)
    fcntl.fcntl(r, 10, signal.SIGKILL)  # F_SETSIG
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(w, b"x")
    return "signalled through F_SETOWN"
""",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_more_hostile_functions_are_contained(name: str, host: dict[str, Path]) -> None:  # noqa: F811
    home, ws = host["home"], host["ws"]
    marker = host["base"] / f"marker-more-{name}"
    before = {"home": _tree_hash(home), "ws": _tree_hash(ws)}
    running = _descendants()
    core = Path("/proc/sys/kernel/core_pattern").read_bytes()
    dev_null = os.stat("/dev/null").st_mode
    args = {"home": str(home), "ws": str(ws), "marker": str(marker), "port": int(str(host["port"]))}
    report = check_calls(
        "attack",
        OLD,
        PRELUDE + ATTACKS[name],
        [LoggedCall(args=args, result="harmless")],
        timeout=3.0,
        memory_mb=256,
    )
    (entry,) = report.entries
    assert entry.old is not None and entry.old.ok
    assert not entry.new.ok, f"{name} got through: {entry.new.short(200)}"
    assert entry.verdict == "regression"
    text = dumps(report.to_dict())
    assert SECRET not in text
    assert Path("/proc/sys/kernel/core_pattern").read_bytes() == core
    assert os.stat("/dev/null").st_mode == dev_null
    assert not marker.exists()
    assert _tree_hash(home) == before["home"] and _tree_hash(ws) == before["ws"]
    deadline = time.monotonic() + 10
    while _descendants() - running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_descendants() - running), f"{name} left processes running"


def test_the_sandbox_is_not_root_outside() -> None:
    """Whoever runs funcforge, the tool code's uid outside the sandbox is not 0."""
    from funcforge.sandbox import run_calls

    source = (
        "def whoami():\n"
        "    uid = [int(f) for f in open('/proc/self/status').read().split('Uid:')[1].split()[:4]]\n"
        "    maps = [line.split() for line in open('/proc/self/uid_map').read().splitlines()]\n"
        "    return uid, maps\n"
    )
    (result,) = run_calls(source, "whoami", [{}])
    assert result.ok, result.short(300)
    uids, maps = result.value_json
    for uid in uids:
        outside = [int(o) + uid - int(i) for i, o, n in maps if int(i) <= uid < int(i) + int(n)]
        assert outside and outside[0] != 0, (uids, maps)
    assert uids[0] == (65534 if os.geteuid() == 0 else 1000)


def test_where_dropping_root_cannot_start_a_user_namespace_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Root only inside a container's user namespace, say: bubblewrap's own namespace as before."""
    from funcforge import sandbox_os
    from funcforge.sandbox import run_calls

    real = sandbox_os._probe
    tried: list[bool] = []

    def probe(binary: str, drop: bool) -> str | None:
        tried.append(drop)
        return "cannot mount as root here" if drop else real(binary, drop)

    monkeypatch.setattr(sandbox_os, "_probe", probe)
    monkeypatch.setattr(sandbox_os, "_probe_cache", {})
    monkeypatch.setattr(sandbox_os, "_drop_cache", {})
    sandbox_os.require_sandbox("bwrap")
    binary = sandbox_os.bwrap_path()
    assert binary is not None and not sandbox_os.drops_root(binary)
    assert tried == ([True, False] if os.geteuid() == 0 else [False])
    source = "import os\ndef whoami():\n    return os.getuid()\n"
    (result,) = run_calls(source, "whoami", [{}])
    assert result.ok and result.value_json == 1000, result.short(300)


# In the process sandbox the executor's parent's parent is funcforge: these aim at it.
PROCESS_ATTACKS: dict[str, str] = {
    "setown_sigkill_to_funcforge": """
    import fcntl
    guard_off()
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETOWN, funcforge_pid())
    fcntl.fcntl(r, 10, signal.SIGKILL)  # F_SETSIG
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(w, b"x")
    return "signalled funcforge"
""",
    "setown_ex_sigkill_to_funcforge": """
    import struct
    guard_off()
    r, w = os.pipe()
    owner = struct.pack("ii", 1, funcforge_pid())  # F_OWNER_PID
    buf = ctypes.create_string_buffer(owner)
    check(libc.fcntl(r, 15, buf), "F_SETOWN_EX")
    check(libc.fcntl(r, 10, 9), "F_SETSIG")
    check(libc.fcntl(r, 4, os.O_ASYNC), "F_SETFL")
    os.write(w, b"x")
    return "signalled funcforge"
""",
    "prlimit_funcforge_cpu": """
    import resource
    guard_off()
    resource.prlimit(funcforge_pid(), resource.RLIMIT_CPU, (1, 1))
    return "limited funcforge"
""",
    "sched_setaffinity_funcforge": """
    guard_off()
    os.sched_setaffinity(funcforge_pid(), {min(os.sched_getaffinity(0))})
    return "pinned funcforge"
""",
}

PROCESS_PRELUDE = PRELUDE.replace(
    "def attack(home, ws, marker, port):",
    """def funcforge_pid():
    supervisor = os.getppid()
    stat = open(f"/proc/{supervisor}/stat").read()
    pid = int(stat.rsplit(")", 1)[1].split()[1])
    if pid <= 0:  # its own PID namespace: funcforge is out of sight
        raise LookupError("funcforge is not visible from here")
    return pid


def attack(home, ws, marker, port):""",
)

RUNNER = """
import json, os, resource, sys
from funcforge.sandbox import run_calls
source = sys.stdin.read()
before = [resource.getrlimit(resource.RLIMIT_CPU), sorted(os.sched_getaffinity(0))]
args = {"home": "", "ws": "", "marker": "", "port": 0}
(result,) = run_calls(source, "attack", [args], timeout=5, memory_mb=256, isolation="process")
after = [resource.getrlimit(resource.RLIMIT_CPU), sorted(os.sched_getaffinity(0))]
print(json.dumps({"ok": result.ok, "short": result.short(200), "same": before == after}))
"""


@pytest.mark.parametrize("name", sorted(PROCESS_ATTACKS))
def test_process_sandbox_code_cannot_reach_funcforge(name: str) -> None:
    """The seccomp filter covers the process sandbox too: funcforge lives, its limits hold."""
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=PROCESS_PRELUDE + PROCESS_ATTACKS[name],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENAI_API_KEY": SECRET},
    )
    assert done.returncode == 0, f"{name}: funcforge died ({done.returncode}): {done.stderr[-500:]}"
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert not outcome["ok"], f"{name} got through: {outcome['short']}"
    assert outcome["same"], f"{name} changed funcforge's limits or affinity"
    assert SECRET not in done.stdout + done.stderr


NET_ATTACK = (
    PRELUDE.replace("def attack(home, ws, marker, port):", "def attack(targets):")
    + """
    guard_off()
    got = []
    for family, address in targets:
        if family == "inet6":
            address = tuple(address)
        fam = {"inet6": socket.AF_INET6, "unix": socket.AF_UNIX}[family]
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(address)
            got.append(str(address))
        except OSError as exc:
            got.append(type(exc).__name__)
            continue
        s.sendall(b"escaped")
    if any(g not in ("PermissionError", "OSError", "ConnectionRefusedError", "FileNotFoundError")
           for g in got):
        return got
    raise PermissionError(repr(got))
"""
)


@pytest.fixture
def listeners(tmp_path: Path):
    """Real listeners outside: IPv6 loopback, an abstract and a path Unix socket."""
    socks: list[socket.socket] = []
    targets: list[tuple[str, object]] = []
    try:
        six = socket.socket(socket.AF_INET6)
        six.bind(("::1", 0))
        socks.append(six)
        targets.append(("inet6", list(six.getsockname()[:2])))
    except OSError:  # no IPv6 here: the other two still run
        pass
    abstract = socket.socket(socket.AF_UNIX)
    name = f"\0funcforge-hostile-{os.getpid()}"
    abstract.bind(name)
    socks.append(abstract)
    targets.append(("unix", name))
    path = socket.socket(socket.AF_UNIX)
    path.bind(str(tmp_path / "agent.sock"))
    os.chmod(tmp_path, 0o755)
    socks.append(path)
    targets.append(("unix", str(tmp_path / "agent.sock")))
    for sock in socks:
        sock.listen(4)
        sock.setblocking(False)
    yield targets
    for sock in socks:
        with pytest.raises(BlockingIOError):
            sock.accept()  # nobody ever connected
        sock.close()


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
def test_no_socket_reaches_a_listener_outside(listeners, isolation: str) -> None:
    """IPv6, abstract and file-system Unix sockets: the process sandbox's net namespace
    hides none of the latter, the syscall filter refuses socket() itself."""
    from funcforge.sandbox import run_calls

    (result,) = run_calls(
        NET_ATTACK, "attack", [{"targets": listeners}], timeout=10, isolation=isolation
    )
    assert not result.ok, f"connected: {result.short(300)}"
    assert result.error_type == "PermissionError"


SHADOW = 'open({marker!r}, "w").write("imported")\nraise ImportError("shadowed")\n'


def test_a_workspace_module_named_like_a_dependency_is_not_imported(tmp_path: Path) -> None:
    """Editors start `python -m funcforge serve` in the workspace: its `libcst.py` must not run."""
    ws = tmp_path / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "t.py").write_text('def f(x: int) -> int:\n    """F."""\n    return x\n')
    (ws / "pyproject.toml").write_text("[tool.funcforge]\n")
    markers = []
    for name in ("libcst", "mcp", "anyio", "pydantic", "openai", "pygls", "lsprotocol"):
        markers.append(tmp_path / f"imported-{name}")
        (ws / f"{name}.py").write_text(SHADOW.format(marker=str(markers[-1])))
    done = subprocess.run(
        [sys.executable, "-m", "funcforge", "stats", "."],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENAI_API_KEY": SECRET},
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "tools/t.py" in done.stdout
    assert not [m.name for m in markers if m.exists()]


def test_the_relay_imports_nothing_from_the_agents_folder(tmp_path: Path) -> None:
    """A command agent runs the relay in the folder of the toolset's files."""
    from funcforge.training.mcp_host import relay_command

    markers = []
    for name in ("contextlib", "socket", "threading", "funcforge"):
        markers.append(tmp_path / f"imported-{name}")
        (tmp_path / f"{name}.py").write_text(SHADOW.format(marker=str(markers[-1])))
    done = subprocess.run(
        relay_command(str(tmp_path / "no-such.sock")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "cannot reach" in done.stderr, done.stderr[-500:]
    assert not [m.name for m in markers if m.exists()]


def test_mcp_server_ends_with_its_client_while_a_tool_hangs(tmp_path: Path) -> None:
    """A client that goes away mid-call: the server and its sandbox end now, not at the timeout."""
    ws = tmp_path / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "t.py").write_text(
        'def hang() -> None:\n    """Hang."""\n    import time\n    time.sleep(1000)\n'
    )
    (ws / "pyproject.toml").write_text("[tool.funcforge]\ncall_timeout = 120\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "funcforge", "mcp", str(ws), "--no-traces"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdin is not None and server.stdout is not None

    def send(obj: dict[str, object]) -> None:
        assert server.stdin is not None
        server.stdin.write((json.dumps(obj) + "\n").encode())
        server.stdin.flush()

    try:
        hello = {"protocolVersion": "2025-06-18", "capabilities": {}}
        send(
            {
                **_rpc(1, "initialize"),
                "params": {**hello, "clientInfo": {"name": "t", "version": "1"}},
            }
        )
        assert b'"id":1' in server.stdout.readline()
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({**_rpc(2, "tools/call"), "params": {"name": "hang", "arguments": {}}})
        deadline = time.monotonic() + 30
        while not _children(server.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = _children(server.pid)
        assert started, "the call never reached a sandbox"
        time.sleep(1)
        server.stdin.close()
        server.wait(timeout=20)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}").exists() for p in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in started if Path(f"/proc/{p}").exists()]
    finally:
        server.kill()
        server.wait()


def _rpc(ident: int, method: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": ident, "method": method}


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def test_the_process_sandbox_sees_only_its_own_processes() -> None:
    """Where `unshare` works, the process sandbox gets its own PID namespace and /proc:
    no other process's environment (a training agent's key, say) is there to read."""
    from funcforge.sandbox import network_isolation, run_calls

    if network_isolation() != "namespace":
        pytest.skip("unshare -rn does not work here: the process sandbox has no namespaces")
    source = "import os\ndef pids():\n    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
    (result,) = run_calls(source, "pids", [{}], isolation="process")
    assert result.ok, result.short(300)
    assert os.getpid() not in result.value_json
    assert result.value_json == [1, 2]  # the supervisor and the executor


KILLED_MID_CALL = """
import os, sys
from funcforge.sandbox import SandboxPool
pool = SandboxPool({"t.py": "import time\\ndef f():\\n    time.sleep(1000)\\n"}, timeout=300,
                   isolation=sys.argv[1])
print(os.getpid(), flush=True)
pool.call("f", {})
"""


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
def test_nothing_outlives_funcforge_killed_mid_call(isolation: str) -> None:
    """funcforge SIGKILLed while a tool sleeps: every sandbox process ends with it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_CALL, isolation], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    deadline = time.monotonic() + 30
    below: set[int] = set()
    while time.monotonic() < deadline and len(below) < 3:
        below = _descendants(pid)
        time.sleep(0.2)
    time.sleep(1)  # the call is running
    below = _descendants(pid)
    assert below, "no sandbox started"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(below):
        time.sleep(0.2)
    assert not _alive(below), f"left running after funcforge died: {_alive(below)}"


def _alive(pids: set[int]) -> list[int]:
    """Those still running (a zombie waiting for its reaper has ended)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out.append(pid)
    return out


COIN_TOSS = """
import itertools
_runs = itertools.count()


def attack(x: int) -> int:
    # Fails differently on every run, so the two runs of the check never agree.
    n = next(_runs)
    if n % 3 == 0:
        raise RuntimeError("first")
    if n % 3 == 1:
        return x + 1000
    raise ValueError("third")
"""


def test_a_deliberately_flaky_revision_is_a_regression(tmp_path: Path) -> None:
    """Two runs that disagree do not hide a run that regresses (the replay gate stays shut)."""
    report = check_calls(
        "attack",
        "def attack(x: int) -> int:\n    return x\n",
        COIN_TOSS,
        [LoggedCall(args={"x": 1}, result=1)],
        timeout=3.0,
    )
    (entry,) = report.entries
    assert entry.verdict == "regression", entry.note
    assert "two results" in entry.note and report.has_regression
    (tmp_path / "old.py").write_text("def attack(x: int) -> int:\n    return x\n")
    (tmp_path / "new.py").write_text(COIN_TOSS)
    (tmp_path / "calls.jsonl").write_text('{"args": {"x": 1}, "result": 1}\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "funcforge",
            "replay-check",
            *("--old", "old.py", "--new", "new.py"),
            *("--calls", "calls.jsonl"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "regression" in done.stdout, done.stdout + done.stderr


def test_root_keeps_a_user_namespace_where_uid_65534_cannot_read_the_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A site-packages folder only root can read (a venv under /root, say): dropping to
    65534 would leave the worker without its packages, so the probe says no."""
    from funcforge import sandbox_os

    if os.geteuid() != 0:
        pytest.skip("only root drops to uid 65534")
    private = tmp_path / "site-packages"
    private.mkdir()
    private.chmod(0o700)
    real = sandbox_os.site_dirs()
    monkeypatch.setattr(sandbox_os, "site_dirs", lambda: [*real, str(private)])
    monkeypatch.setattr(sandbox_os, "_probe_cache", {})
    monkeypatch.setattr(sandbox_os, "_drop_cache", {})
    sandbox_os.require_sandbox("bwrap")
    binary = sandbox_os.bwrap_path()
    assert binary is not None and not sandbox_os.drops_root(binary)
