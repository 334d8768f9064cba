"""Batches: many calls per message to a worker, each with its own limits, checked answer and error.

`SandboxPool.batch` is how the replay check runs its calls (benchmarks/sandbox_overhead.py);
it must give what the calls one at a time give, stop at the call that ends its worker, and
leave the calls after it to a fresh worker.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import sys
from typing import Any

import pytest

from funcforge.optimizer.replay import check_calls
from funcforge.sandbox import SandboxPool, call_request, eval_request
from funcforge.sandbox_os import site_dirs
from funcforge.sandbox_worker import _fits

TOOLS = '''
import functools
import os
import sys
import time


def add(a: int, b: int = 1) -> int:
    """
    >>> add(2)
    3
    """
    return a + b


def shout(text):
    print("noise")
    return text.upper()


def fail(x):
    raise KeyError(x)


def letters():
    return {"b", "a"}


async def later(x):
    return x * 2


def loop():
    while True:
        pass


def nap(seconds):
    time.sleep(seconds)
    return seconds


def exit_on(x):
    if x == 2:
        os._exit(3)
    return x


def garbage_on(x):
    if x == 1:
        for fd in range(3, 64):
            try:
                os.write(fd, b"not an answer\\n")
            except OSError:
                pass
    return x


def _logged(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


@_logged
def wrapped(a, *, b):
    return a - b


def paths():
    return list(sys.path)
'''


def _plain(result: Any) -> dict[str, Any]:
    out = result.to_dict()
    out.pop("seconds")
    return out


REQUESTS = [
    call_request("add", {"a": 1, "b": 2}),
    call_request("add", {"a": 1}),
    call_request("add", {"c": 1}),  # a signature mismatch
    call_request("nope", {}),  # no such function
    call_request("add", [1, 2]),  # arguments that are not an object
    call_request("shout", {"text": "hi"}),
    call_request("fail", {"x": "k"}),
    call_request("letters", {}),  # not JSON: compared through repr
    call_request("later", {"x": 4}),
    call_request("wrapped", {"a": 5, "b": 2}),
    call_request("wrapped", {"a": 5}),  # a mismatch found by inspect (decorated)
    eval_request("add", "add(2)"),
    eval_request("add", "add(y)", ["y = 40"]),
]


def test_a_batch_answers_like_the_calls_one_at_a_time() -> None:
    with SandboxPool({"tools/t.py": TOOLS}, timeout=5) as pool:
        batched = pool.batch(REQUESTS)
        single = [
            pool.evaluate(r["function"], r["source"], r["setup"])
            if r["op"] == "eval"
            else pool.call(r["function"], r["args"])
            for r in REQUESTS
        ]
        assert pool.started == 1
    assert [_plain(r) for r in batched] == [_plain(r) for r in single]
    assert batched[0].value_json == 3 and batched[2].signature_mismatch
    assert batched[10].signature_mismatch and "'b'" in (batched[10].error_message or "")
    assert batched[8].value_json == 8 and batched[12].rendered == "41\n"


def test_a_call_that_hangs_ends_the_batch_there_and_the_rest_runs_in_a_fresh_worker() -> None:
    with SandboxPool({"t.py": TOOLS}, timeout=1) as pool:
        requests = [call_request("add", {"a": 1}), call_request("loop", {})]
        requests.append(call_request("add", {"a": 2}))
        done = pool.batch(requests)
        assert [r.ok for r in done] == [True, False] and done[1].timed_out
        assert done[1].seconds < 5
        rest = pool.batch(requests[2:])
        assert [r.value_json for r in rest] == [3] and pool.started == 2


def test_each_call_of_a_batch_has_its_own_wall_clock_limit() -> None:
    """Four naps of 0.8 s under a 2 s limit: 3.2 s in all, but no call took 2 s."""
    with SandboxPool({"t.py": TOOLS}, timeout=2) as pool:
        done = pool.batch([call_request("nap", {"seconds": 0.8})] * 4)
    assert [r.value_json for r in done] == [0.8] * 4, [r.short() for r in done]


def test_a_crash_or_a_broken_answer_in_a_batch_is_that_calls_error_only() -> None:
    with SandboxPool({"t.py": TOOLS}, timeout=5) as pool:
        for name, bad in (("exit_on", 2), ("garbage_on", 1)):
            requests = [call_request(name, {"x": x}) for x in range(5)]
            results = []
            while len(results) < len(requests):
                results += pool.batch(requests[len(results) :])
            assert [r.ok for r in results] == [x != bad for x in range(5)], name
            assert [r.value_json for r in results if r.ok] == [x for x in range(5) if x != bad]
            assert results[bad].crashed
            kind = "SandboxCrash" if name == "exit_on" else "ProtocolError"
            assert results[bad].error_type == kind, results[bad].short(200)


def test_a_replay_check_with_a_crash_in_the_middle_gives_every_other_call_its_verdict() -> None:
    old = "def exit_on(x):\n    return x\n"
    new = "import os\n\ndef exit_on(x):\n    if x == 2:\n        os._exit(3)\n    return x\n"
    calls = [{"args": {"x": x}, "result": str(x), "passed": True} for x in range(6)]
    report = check_calls("exit_on", old, new, calls)
    verdicts = [e.verdict for e in report.entries]
    assert verdicts == ["unchanged"] * 2 + ["regression"] + ["unchanged"] * 3
    assert report.entries[2].new.crashed


def test_fitting_arguments_are_read_from_the_code_object_as_inspect_would() -> None:
    """`_fits` (the worker's fast path) never accepts what `inspect`'s bind refuses."""
    signatures = [
        "",
        "a",
        "a=1",
        "a, /",
        "a=1, /",
        "a=1, /, **kw",
        "a, b=2, /, c=3",
        "*, k",
        "*, k=1",
        "a, *args",
        "a, **kw",
        "*args, k, **kw",
        "a, /, b, *, c",
        "a, b=1, *args, c, d=2, **kw",
        "args, /, *a",
        "**kw",
        "b=1, /, a=2, *args, k=3, **kw",
    ]
    names = ["a", "b", "c", "d", "k", "kw", "args", "x"]
    for text in signatures:
        namespace: dict[str, Any] = {}
        exec(f"def f({text}):\n    x = 1\n    return x\n", namespace)
        func = namespace["f"]
        for size in range(len(names) + 1):
            for chosen in itertools.combinations(names, size):
                args = dict.fromkeys(chosen, 1)
                try:
                    inspect.signature(func).bind(**args)
                    binds = True
                except TypeError:
                    binds = False
                assert _fits(func, args) == binds, (text, args)

    @functools.wraps(lambda a: a)
    def decorated(*args: Any, **kwargs: Any) -> None:
        return None

    assert not _fits(decorated, {"a": 1})  # wrapped: inspect decides


def test_the_worker_sees_only_this_environments_site_packages() -> None:
    """Not the base installation's: its `.pth` files ran code in every worker start."""
    with SandboxPool({"t.py": TOOLS}, timeout=5) as pool:
        result = pool.call("paths", {})
    assert result.ok, result.short(300)
    mine = {os.path.realpath(d) for d in site_dirs()}
    found = {os.path.realpath(p) for p in result.value_json if "-packages" in p}
    assert found == mine
    base = os.path.realpath(sys.base_prefix)
    if os.path.realpath(sys.prefix) != base:  # a virtual environment
        assert not any(p.startswith(base + os.sep) and "-packages" in p for p in found)


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
def test_batches_run_in_both_sandboxes(isolation: str) -> None:
    with SandboxPool({"t.py": TOOLS}, timeout=5, isolation=isolation) as pool:  # type: ignore[arg-type]
        done = pool.batch([call_request("add", {"a": i}) for i in range(600)])
    assert [r.value_json for r in done] == [i + 1 for i in range(600)]


def test_the_two_versions_of_a_replay_check_never_share_a_worker() -> None:
    """What the old version's calls leave behind (patched builtins, files), the new one never sees."""
    old = (
        "import builtins\n\n"
        "def probe(x):\n"
        "    builtins.POISON = True\n"
        "    open('poison', 'w').write('x')\n"
        "    return [False, False]\n"
    )
    new = (
        "import builtins, os\n\n"
        "def probe(x):\n"
        "    return [hasattr(builtins, 'POISON'), os.path.exists('poison')]\n"
    )
    calls = [{"args": {"x": x}} for x in range(3)]
    report = check_calls("probe", old, new, calls)
    assert all(e.old is not None and e.old.ok for e in report.entries)
    assert [e.new.value_json for e in report.entries] == [[False, False]] * 3
    assert [e.verdict for e in report.entries] == ["unchanged"] * 3
