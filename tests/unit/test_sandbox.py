"""The sandbox: calls run in a limited subprocess worker; hostile code stops only its own call."""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from funcforge import sandbox
from funcforge.sandbox import CallResult, SandboxPool, render_result, run_calls

TOOLS = """
import json
import os
import socket
import sys
import subprocess


def add(a: int, b: int = 1) -> int:
    return a + b


def shout(text):
    print("noise on stdout " * 100)
    os.write(1, b"garbage on fd 1\\n")
    return text.upper()


def loop():
    while True:
        pass


def hog():
    blocks = []
    while True:
        blocks.append(bytearray(50 * 1024 * 1024))


def exit_now():
    os._exit(3)


def segfault():
    import ctypes

    return ctypes.string_at(0)


def fork_bomb():
    while True:
        os.fork()


def run_child():
    return subprocess.run(["true"]).returncode


def shell():
    return os.system("true")


def spawn_process():
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=print)
    p.start()
    p.join()
    return p.exitcode


def write_to(path):
    with open(path, "w") as fh:
        fh.write("escaped")
    return "written"


def remove(path):
    os.remove(path)


def database(path):
    import sqlite3

    sqlite3.connect(path).execute("create table t (x)")
    return "created"


def write_here():
    with open("inside.txt", "w") as fh:
        fh.write("ok")
    return os.getcwd()


def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    return "connected"


def environment():
    return dict(os.environ)


def parent_environment():
    with open(f"/proc/{os.getppid()}/environ", "rb") as fh:
        return fh.read().decode("latin-1")


def signal_parent():
    os.kill(os.getppid(), 0)


def letters():
    return {"a", "b", "c", "d", "e", "f"}


async def later(x):
    return x * 2


def cwd():
    return os.getcwd()


def listdir(path):
    return sorted(os.listdir(path))


def surrogate():
    return "a\\ud800b"


def flood():
    for fd in range(3, 10):
        try:
            os.write(fd, b"x" * (40 * 1024 * 1024))
        except OSError:
            pass
    return "flooded"
"""


@pytest.fixture(scope="module")
def pool():
    with SandboxPool({"tools/hostile.py": TOOLS}, timeout=1.5, memory_mb=256) as p:
        yield p


def test_render_result_convention():
    assert render_result("7/8") == "7/8"
    assert render_result({"a": [1, 2.5]}) == '{"a": [1, 2.5]}'
    assert render_result(None) == "null"
    assert render_result({1, 2}) == "{1, 2}"  # not JSON: repr
    assert render_result(float("nan")) == "nan"


def test_call_returns_value_rendered_and_json(pool):
    r = pool.call("add", {"a": 2, "b": 3})
    assert r.ok and r.value_json == 5 and r.rendered == "5" and r.is_json
    assert r.tool_content() == "5"
    assert pool.call("add", {"a": 2}).value_json == 3


def test_prints_do_not_corrupt_the_protocol(pool):
    r = pool.call("shout", {"text": "hi"})
    assert r.ok and r.value_json == "HI"
    assert "noise on stdout" in r.stdout


def test_arguments_that_do_not_fit_are_a_signature_mismatch(pool):
    r = pool.call("add", {"x": 1})
    assert not r.ok and r.signature_mismatch
    assert "a" in (r.error_message or "")
    assert pool.call("add", [1, 2]).signature_mismatch


def test_unknown_function_is_an_error_of_that_call(pool):
    r = pool.call("nope", {})
    assert r.error_type == "NameError" and "nope" in (r.error_message or "")


def test_infinite_loop_times_out_and_the_next_call_works(pool):
    r = pool.call("loop", {})
    assert not r.ok and r.timed_out and r.error_type == sandbox.TIMEOUT
    assert r.tool_content().startswith("Error: Timeout:")
    assert pool.call("add", {"a": 1}).value_json == 2


def test_unbounded_allocation_is_stopped(pool):
    r = pool.call("hog", {})
    assert not r.ok
    assert r.error_type == "MemoryError" or r.crashed
    assert pool.call("add", {"a": 1}).value_json == 2


def test_os_exit_crashes_only_that_call(pool):
    r = pool.call("exit_now", {})
    assert not r.ok and r.crashed and "status 3" in (r.error_message or "")
    assert pool.call("add", {"a": 1}).value_json == 2


def test_segfault_crashes_only_that_call(pool):
    r = pool.call("segfault", {})
    assert not r.ok and r.crashed and "SIGSEGV" in (r.error_message or "")
    assert pool.call("add", {"a": 1}).value_json == 2


@pytest.mark.parametrize("name", ["fork_bomb", "run_child", "shell", "spawn_process"])
def test_no_new_processes(pool, name):
    r = pool.call(name, {})
    assert not r.ok and r.error_type == "PermissionError", r
    assert "not allowed" in (r.error_message or "")
    assert pool.call("add", {"a": 1}).value_json == 2


def test_writes_outside_the_working_directory_never_reach_the_host(pool, tmp_path: Path):
    target = tmp_path / "outside.txt"
    r = pool.call("write_to", {"path": str(target)})
    assert not r.ok and r.error_type in ("PermissionError", "FileNotFoundError")
    assert not target.exists()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    assert not pool.call("remove", {"path": str(victim)}).ok
    assert victim.read_text() == "keep"
    db = tmp_path / "x.db"
    assert not pool.call("database", {"path": str(db)}).ok
    assert not db.exists()
    assert pool.call("database", {"path": "inside.db"}).value_json == "created"
    assert pool.call("database", {"path": ":memory:"}).value_json == "created"


def test_the_bwrap_working_directory_is_private_and_empty():
    with SandboxPool({"t.py": TOOLS}, timeout=5) as pool:
        assert pool.mode == "bwrap" and pool.description == "bwrap"
        assert pool.call("listdir", {"path": "."}).value_json == []
        assert pool.call("write_here", {}).value_json == "/tmp/work"
        assert pool.call("listdir", {"path": "."}).value_json == ["inside.txt"]
        top = pool.call("listdir", {"path": "/"}).value_json
        assert "home" not in top and ".git" not in top
        # nothing of the host's /tmp but the way to this interpreter when it lives there
        from funcforge.sandbox_os import python_dirs

        bound = {Path(d).parts[2] for d in python_dirs()[1] if d.startswith("/tmp/")}
        assert set(pool.call("listdir", {"path": "/tmp"}).value_json) == {"work"} | bound


def test_process_mode_writes_inside_its_own_directory_removed_after(tmp_path: Path):
    with SandboxPool({"t.py": TOOLS}, timeout=5, isolation="process") as p:
        assert p.mode == "process" and "weaker" in p.description
        assert any("weaker" in w for w in p.warnings)
        r = p.call("write_here", {})
        assert r.ok
        workdir = Path(r.value_json)
        assert (workdir / "inside.txt").read_text() == "ok"
        assert workdir.resolve() != Path.cwd().resolve()
        assert p.call("write_to", {"path": "../escape.txt"}).error_type == "PermissionError"
    assert not workdir.exists()


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_no_network_even_to_loopback(isolation):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        with SandboxPool({"t.py": TOOLS}, timeout=5, isolation=isolation) as p:  # type: ignore[arg-type]
            r = p.call("connect", {"port": port})
            assert not r.ok, r
            assert r.error_type in ("PermissionError", "OSError")
            assert p.call("add", {"a": 1}).value_json == 2
        with pytest.raises(TimeoutError):
            server.accept()  # nobody connected
    finally:
        server.close()


def test_network_isolation_of_process_mode_is_detected_once():
    first = sandbox.network_isolation()
    assert first in ("namespace", "hooks")
    assert sandbox.network_isolation() == first
    assert (first == "namespace") == sandbox._unshare_works()


def test_secrets_of_the_parent_are_not_visible(monkeypatch, pool):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-parent-secret")
    monkeypatch.setenv("SOME_TOKEN", "tok-secret")
    with SandboxPool({"t.py": TOOLS}, timeout=5) as p:
        env = p.call("environment", {}).value_json
        assert "OPENAI_API_KEY" not in env and "SOME_TOKEN" not in env
        assert "sk-test-parent-secret" not in repr(env)
        assert env["PYTHONHASHSEED"] == "0"
        leak = p.call("parent_environment", {})
        assert "sk-test-parent-secret" not in leak.rendered + (leak.error_message or "")
        assert not p.call("signal_parent", {}).ok


def test_hash_seed_is_fixed_so_two_workers_agree():
    a = run_calls(TOOLS, "letters", [{}])[0]
    b = run_calls(TOOLS, "letters", [{}])[0]
    assert not a.is_json and a.value_repr == b.value_repr and a.digest == b.digest


def test_non_json_values_come_back_as_repr(pool):
    r = pool.call("letters", {})
    assert r.ok and not r.is_json and r.value_json is None
    assert r.value_repr is not None and r.value_repr.startswith("{")
    assert r.rendered == r.value_repr


def test_async_functions_are_awaited(pool):
    assert pool.call("later", {"x": 4}).value_json == 8


def test_doctest_examples_run_like_doctest(pool):
    r = pool.evaluate("add", "add(2, b=5)\n")
    assert r.ok and r.stdout == "7\n" and r.value_json == 7
    r = pool.evaluate("add", "y + 1\n", setup=["y = add(1)\n"])
    assert r.stdout == "3\n"
    r = pool.evaluate("add", "add('a')\n")
    assert not r.ok and r.error_type == "TypeError"


def test_siblings_import_each_other():
    sources = {
        "tools/helpers.py": "FACTOR = 3\n",
        "tools/main.py": (
            "from tools.helpers import FACTOR\nimport helpers\n\n"
            "def triple(x):\n    return x * FACTOR + helpers.FACTOR - 3\n"
        ),
    }
    assert run_calls(sources, "triple", [{"x": 2}])[0].value_json == 6


def test_a_file_that_does_not_load_is_reported_and_others_still_work():
    with SandboxPool({"a.py": "def f(:\n", "b.py": "def g():\n    return 1\n"}, timeout=5) as p:
        assert p.call("g", {}).value_json == 1
        assert p.problems and p.problems[0]["file"] == "a.py" and p.problems[0]["line"] == 1
        r = p.call("f", {})
        assert r.error_type == "NameError" and "a.py:1" in (r.error_message or "")


def test_a_source_that_hangs_while_loading_fails_every_call_without_retrying():
    with SandboxPool({"a.py": "while True:\n    pass\n"}, timeout=1, load_timeout=1) as p:
        first = p.call("f", {})
        second = p.call("f", {})
        assert first.crashed and first.timed_out and "loading" in (first.error_message or "")
        assert second.error_message == first.error_message
        assert p.started == 1


def test_cpu_limit_is_a_backstop_for_the_wall_clock():
    worker = sandbox._Worker({"t.py": TOOLS}, 256, "bwrap", 10, 16)
    try:
        reply = worker.request({"op": "call", "function": "loop", "args": {}, "cpu_seconds": 1}, 30)
        assert reply["fatal"] and "SIGXCPU" in reply["error_message"]
        result = sandbox._died(reply["error_message"], sandbox.CRASH, 1.0)
        assert result.timed_out and result.error_type == sandbox.TIMEOUT
    finally:
        worker.close()


def test_pool_is_thread_safe_with_several_workers():
    results: dict[int, CallResult] = {}
    with SandboxPool({"t.py": TOOLS}, timeout=5, workers=2) as p:

        def work(i: int) -> None:
            results[i] = p.call("add", {"a": i, "b": i})

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert p.started <= 2
    assert {i: r.value_json for i, r in results.items()} == {i: 2 * i for i in range(8)}


def test_run_calls_runs_each_argument_set():
    out = run_calls("def sq(x):\n    return x * x\n", "sq", [{"x": 2}, {"x": "a"}, {"y": 1}])
    assert out[0].value_json == 4
    assert out[1].error_type == "TypeError"
    assert out[2].signature_mismatch


def test_closed_pool_refuses_calls():
    p = SandboxPool({"t.py": TOOLS}, timeout=5)
    p.close()
    assert p.call("add", {"a": 1}).error_type == sandbox.CRASH


def test_worker_never_runs_in_this_process():
    r = run_calls("import os\ndef pid():\n    return os.getpid()\n", "pid", [{}])[0]
    assert r.ok and r.value_json != os.getpid()


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
def test_a_pool_nobody_closed_still_reaps_its_worker(isolation):
    import gc

    p = SandboxPool({"t.py": TOOLS}, timeout=5, isolation=isolation)  # type: ignore[arg-type]
    assert p.call("cwd", {}).ok
    worker = p._idle[0]
    pid, workdir = worker.proc.pid, worker.workdir
    del p, worker
    gc.collect()
    assert workdir is None or not Path(workdir).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_results_with_lone_surrogates_do_not_break_the_protocol(pool):
    r = pool.call("surrogate", {})
    # Escaped so that the result can be printed and written anywhere.
    assert r.ok and r.value_json == "a\\ud800b" and r.rendered == "a\\ud800b"
    r.rendered.encode("utf-8")


def test_a_worker_flooding_the_protocol_pipe_is_stopped():
    with SandboxPool({"t.py": TOOLS}, timeout=60) as p:
        r = p.call("flood", {})
        assert not r.ok and r.crashed
        assert "answer exceeded" in (r.error_message or "")
        assert p.call("add", {"a": 1}).value_json == 2


def test_process_mode_cannot_read_funcforges_environment(monkeypatch):
    """Even with the audit hook switched off, funcforge's /proc entries are closed (non-dumpable)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-process-mode-secret")
    # Without `unshare -rn` (a user namespace would deny this by itself), as on many machines.
    monkeypatch.setattr(sandbox, "network_isolation", lambda: "hooks")
    source = (
        "import gc, os\n"
        "def steal(pid):\n"
        "    for obj in gc.get_objects():\n"
        "        try:\n"
        "            if type(obj).__name__ == '_Guard':\n"
        "                obj.active = False\n"
        "        except Exception:\n"
        "            pass\n"
        "    return open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1')\n"
    )
    (r,) = run_calls(source, "steal", [{"pid": os.getpid()}], isolation="process")
    assert not r.ok and r.error_type == "PermissionError", r.short(200)
    assert "sk-process-mode-secret" not in (r.error_message or "") + r.rendered


def test_deep_huge_and_surrogate_values_and_messages_are_rendered_safely():
    import json as _json

    from funcforge.fsutil import dumps

    source = (
        "def deep(n):\n"
        "    v = []\n"
        "    for _ in range(n):\n"
        "        v = [v]\n"
        "    return v\n"
        "def keys():\n"
        "    return {'\\ud800': ['\\udfff' * 3], 'x' * 10: 'y' * 3_000_000}\n"
        "def shout():\n"
        "    raise ValueError('bad \\ud800 ' + 'z' * 5_000_000)\n"
        "class Weird:\n"
        "    def __repr__(self):\n"
        "        raise RuntimeError('no repr')\n"
        "def weird():\n"
        "    return Weird()\n"
    )
    with SandboxPool({"t.py": source}, timeout=20) as p:
        for depth in (150, 900, 100_000):
            r = p.call("deep", {"n": depth})
            assert r.ok, r.short(200)
            _json.dumps(r.to_dict())  # always serialisable
        r = p.call("keys", {})
        assert r.ok and "\\ud800" in r.rendered and len(r.rendered) < 1_100_000
        r = p.call("shout", {})
        assert not r.ok and r.error_type == "ValueError"
        assert (r.error_message or "").startswith("bad \\ud800") and len(
            r.error_message or ""
        ) < 5000
        r = p.call("weird", {})
        assert r.ok and "unrepresentable Weird" in (r.value_repr or "")
        for result in (p.call("keys", {}), p.call("shout", {})):
            dumps(result.to_dict()).encode("utf-8")
            print(result.tool_content()[:10], file=sys.stderr)


def test_an_environment_under_tmp_is_seen_inside_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv in a checkout made by `mktemp -d` (under /tmp, in a 0700 folder) was hidden
    by the sandbox's private /tmp: as root the worker could not start as uid 65534 and the
    sandbox fell back to a user namespace (root outside)."""
    from funcforge import sandbox_os

    binary = sandbox_os.bwrap_path()
    assert binary is not None, "bubblewrap is installed by scripts/setup.sh"
    checkout = tmp_path / "tmp.checkout"
    extra = checkout / ".venv" / "lib" / "site-packages"
    extra.mkdir(parents=True)
    checkout.chmod(0o700)
    assert str(extra).startswith(sandbox_os.INSIDE_TMP + "/")
    real = sandbox_os.site_dirs()
    monkeypatch.setattr(sandbox_os, "site_dirs", lambda: [*real, str(extra)])
    assert str(extra) in sandbox_os.python_dirs()[1]
    assert sandbox_os._probe(binary, drop=os.geteuid() == 0) is None
