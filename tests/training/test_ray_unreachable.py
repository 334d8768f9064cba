"""`--executor ray` with a RAY_ADDRESS nobody answers at: a clear error, at once.

(`ray.init` itself retries a refused address for many minutes.)"""

from __future__ import annotations

import socket
import time

import pytest

from funcforge.errors import UserError
from funcforge.training.executor import RayExecutor, check_reachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_ray_address_is_a_clear_error_within_seconds(monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    port = _closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(UserError, match=rf"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        RayExecutor(2)
    assert time.monotonic() - started < 15
    assert not ray.is_initialized()


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
