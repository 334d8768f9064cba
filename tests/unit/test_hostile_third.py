"""A third round of hostile tool functions: routes the first two catalogues missed.

Memory past the address-space limit (`memory_mb` is RLIMIT_AS, which counts
only what the process maps): memfd files, SysV shared memory (which in the
process sandbox outlived the worker on the host), and the kernel buffers of
many socketpairs. Answers built to make funcforge itself hold gigabytes.
Exceptions and values whose dunders fight the worker's own reporting.
"""

from __future__ import annotations

import ctypes
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

MEMORY_MB = 128
HOLD = 3 * MEMORY_MB  # what each memory attack tries to hold, in MB

ATTACKS: dict[str, str] = {
    "memfd_files_past_the_memory_limit": f"""
    chunk = b"x" * (1 << 20)
    held = []
    while len(held) * 32 < {HOLD}:
        fd = os.memfd_create("bomb")
        for _ in range(32):
            os.write(fd, chunk)
        held.append(fd)
    return f"held {{len(held) * 32}} MB in memfd files"
""",
    "sysv_shared_memory_past_the_memory_limit": f"""
    libc.shmat.restype = ctypes.c_void_p
    ids = []
    for _ in range({HOLD // 64}):
        sid = check(libc.shmget(0, 64 << 20, 0o1000 | 0o600), "shmget")
        addr = libc.shmat(sid, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "shmat")
        ctypes.memset(addr, 1, 64 << 20)
        libc.shmdt(ctypes.c_void_p(addr))
        ids.append(sid)
    return f"held {{len(ids) * 64}} MB of SysV shared memory: {{ids}}"
""",
    "socket_buffers_past_the_memory_limit": f"""
    held, total = [], 0
    while total < ({HOLD} << 20):
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            while True:
                total += a.send(b"x" * 65536)
        except BlockingIOError:
            pass
        held.append((a, b))
    return f"held {{total >> 20}} MB in {{len(held)}} socketpairs"
""",
    "posix_message_queue": """
    QUEUE = b"/funcforge-hostile-queue"
    libc.mq_open.restype = ctypes.c_int
    fd = check(libc.mq_open(QUEUE, os.O_CREAT | os.O_RDWR, 0o600, None), "mq_open")
    return f"a POSIX message queue: {fd}"
""",
}


def _sysv_segments() -> set[int]:
    """The host's SysV shared memory segments (their ids)."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {int(line.split()[1]) for line in lines if line.split()}


def _left_behind(segments: set[int]) -> list[str]:
    """What the attacks left in the host's IPC namespace (removed here, so nothing stays)."""
    libc = ctypes.CDLL(None, use_errno=True)
    left = []
    for sid in sorted(_sysv_segments() - segments):
        libc.shmctl(sid, 0, None)  # IPC_RMID
        left.append(f"SysV segment {sid}")
    if libc.mq_unlink(b"/funcforge-hostile-queue") == 0:
        left.append("POSIX message queue")
    return left


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_third_hostile_functions_are_contained(
    name: str,
    isolation: str,
    host: dict[str, Path],  # noqa: F811
) -> None:
    home, ws = host["home"], host["ws"]
    marker = host["base"] / f"marker-third-{name}"
    before = {"home": _tree_hash(home), "ws": _tree_hash(ws)}
    running = _descendants()
    segments = _sysv_segments()
    args = {"home": str(home), "ws": str(ws), "marker": str(marker), "port": int(str(host["port"]))}
    try:
        report = check_calls(
            "attack",
            OLD,
            PRELUDE + ATTACKS[name],
            [LoggedCall(args=args, result="harmless")],
            timeout=10.0,
            memory_mb=MEMORY_MB,
            isolation=isolation,  # type: ignore[arg-type]
        )
    finally:
        left = _left_behind(segments)
    assert not left, f"{name} left {left} on the host"
    (entry,) = report.entries
    assert entry.old is not None and entry.old.ok
    assert not entry.new.ok, f"{name} got through: {entry.new.short(200)}"
    assert entry.verdict == "regression"
    assert SECRET not in dumps(report.to_dict())
    assert not marker.exists()
    assert _tree_hash(home) == before["home"] and _tree_hash(ws) == before["ws"]
    deadline = time.monotonic() + 10
    while _descendants() - running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_descendants() - running), f"{name} left processes running"


# Answers that would make funcforge itself hold gigabytes: a value of millions of
# tiny JSON containers is ~20 bytes of Python objects per byte of its JSON.
FORGE_BIG_ANSWER = """
import json, os, stat, sys


def attack():
    frame, req = sys._getframe(), None
    while frame is not None and req is None:
        candidate = frame.f_locals.get("req")
        if isinstance(candidate, dict) and "seq" in candidate:
            req = candidate
        frame = frame.f_back
    value = "[" + ",".join(["[]"] * 3_000_000) + "]"
    line = ('{"ok": true, "is_json": true, "rendered": "x", "value_json": %s, "seq": %d}\\n'
            % (value, req["seq"])).encode()
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and os.get_blocking(fd) is not None:
                os.write(fd, line)
        except OSError:
            pass
    os._exit(0)
"""

MANY_NODES = """
def attack():
    return [[] for _ in range(250_000)]
"""


@pytest.mark.parametrize("source", [FORGE_BIG_ANSWER, MANY_NODES], ids=["forged", "returned"])
def test_an_answer_of_millions_of_tiny_values_is_not_kept(source: str) -> None:
    from funcforge.sandbox import SandboxPool

    with SandboxPool({"tool.py": source}, timeout=20, memory_mb=512) as pool:
        result = pool.call("attack", {})
    assert result.ok, result.short(200)
    value = result.value_json
    assert not isinstance(value, list) or len(value) <= 10_000, (
        f"funcforge keeps a value of {len(value)} containers"
    )
    assert len(dumps(result.to_dict())) < 2_000_000


DUNDERS = """
class LoudStr(Exception):
    def __str__(self):
        raise SystemExit(3)


class Meta(type):
    @property
    def __name__(cls):
        raise KeyboardInterrupt

    def mro(cls):
        return [cls, Exception, BaseException, object]


class Nameless(Exception, metaclass=Meta):
    pass


class LoudRepr:
    def __repr__(self):
        raise SystemExit(4)


class Short(str):
    def __len__(self):
        return 0

    def __str__(self):
        return "short"


def str_raises_system_exit():
    raise LoudStr("never shown")


def class_name_raises_keyboard_interrupt():
    raise Nameless("named anyway")


def repr_raises_system_exit():
    return LoudRepr()


def len_lies():
    return Short("x" * 5_000_000)


def fine():
    return "still the same worker"
"""


def test_dunders_that_raise_or_lie_are_that_calls_result() -> None:
    """A hostile `__str__`, metaclass `__name__`, `__repr__` or `__len__`: reported as that
    call's result, not a crash of the worker (which ended a replay batch there)."""
    from funcforge.sandbox import SandboxPool

    with SandboxPool({"tool.py": DUNDERS}, timeout=20, memory_mb=512) as pool:
        loud = pool.call("str_raises_system_exit", {})
        nameless = pool.call("class_name_raises_keyboard_interrupt", {})
        loud_repr = pool.call("repr_raises_system_exit", {})
        short = pool.call("len_lies", {})
        fine = pool.call("fine", {})
        started = pool.started
    assert (loud.ok, loud.error_type, loud.error_message) == (
        False,
        "LoudStr",
        "<unprintable message>",
    )
    assert (nameless.error_type, nameless.error_message) == ("Nameless", "named anyway")
    assert nameless.error_bases[:2] == ["Nameless", "Exception"]
    assert loud_repr.ok and not loud_repr.is_json
    assert loud_repr.value_repr == "<unrepresentable LoudRepr: SystemExit>"
    assert short.ok and short.value_json is None  # over the JSON cap: digest only
    assert short.rendered.startswith("xxx") and len(short.rendered) < 300_000
    assert fine.ok and fine.value_json == "still the same worker"
    assert started == 1, "a hostile dunder ended the worker"
