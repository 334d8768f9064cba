"""`--executor ray` with a RAY_ADDRESS nobody answers at: a clear error, at once.

(`ray.init` itself retries a refused address for many minutes.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from funcforge.errors import UserError
from funcforge.training.executor import check_reachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# In a process of its own: Ray joined by an earlier test of the session (the cluster
# fixture of test_executor_ray.py) would be used as it is, as a caller's own Ray is.
PROBE = """
import sys, time
import ray
from funcforge.errors import UserError
from funcforge.training.executor import RayExecutor
started = time.monotonic()
try:
    RayExecutor(2)
except UserError as exc:
    print(f"{time.monotonic() - started:.1f}", exc, "initialized" if ray.is_initialized() else "")
    sys.exit(3)
print("joined")
"""


def test_a_refused_ray_address_is_a_clear_error_within_seconds() -> None:
    pytest.importorskip("ray")
    port = _closed_port()
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stdout + done.stderr
    seconds, _, message = done.stdout.strip().partition(" ")
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in message
    assert float(seconds) < 15
    assert not message.endswith("initialized")


def test_reachability_is_checked_for_host_port_forms_only() -> None:
    port = _closed_port()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", f"[::1]:{port}"):
        with pytest.raises(UserError, match="RAY_ADDRESS"):
            check_reachable(address, timeout=2)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")  # accepts: left to Ray
    for address in ("", "auto", "local"):
        check_reachable(address)
