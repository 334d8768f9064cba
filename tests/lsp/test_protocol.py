"""Protocol faults against `funcforge serve` over raw stdio, each with a bound on time.

Malformed frames, invalid params, unknown proposal ids, `exit` and `shutdown`
while the optimizer runs, `$/cancelRequest` of it, and requests answered while
it runs.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI

SERVER = [sys.executable, "-m", "funcforge", "serve"]


class Raw:
    """The server as a subprocess, spoken to byte by byte; its own requests (progress
    tokens, configuration) are answered with null, as a plain client would."""

    def __init__(self, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
        self.proc = subprocess.Popen(
            SERVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.next_id = 100

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr += line

    def _read(self) -> None:
        try:
            self._read_frames()
        except (OSError, ValueError):  # the test closed the pipe
            return

    def _read_frames(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:  # the server asks: answer null
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            self.messages.put(message)

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with self.lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params: Any = None) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        """The first message (seen or new) `predicate` accepts."""
        for m in self.seen:
            if predicate(m):
                self.seen.remove(m)
                return m
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(m):
                return m
            self.seen.append(m)

    def response(self, msg_id: Any, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait(
            lambda m: m.get("id") == msg_id and "method" not in m, timeout, f"response {msg_id}"
        )

    def initialize(self, root: Path, options: dict[str, Any] | None = None) -> None:
        rid = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {"window": {"workDoneProgress": True}},
                "initializationOptions": options or {},
            },
        )
        assert "result" in self.response(rid, 60)
        self.notify("initialized", {})
        self.wait(
            lambda m: (
                m.get("method") == "funcforge/status"
                and m["params"]["state"] in ("idle", "converged")
            ),
            60,
            "indexing done",
        )

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        rid = self.request(
            "workspace/executeCommand", {"command": "funcforge.status", "arguments": []}
        )
        return self.response(rid, timeout)

    def exited(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not exit within {timeout} s") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def raw(math_ws: Path) -> Iterator[Raw]:
    server = Raw(math_ws)
    server.initialize(math_ws)
    yield server
    server.close()


@pytest.fixture
def slow_model(math_ws: Path) -> Iterator[tuple[Raw, FakeOpenAI]]:
    """A server whose model takes 60 s to answer (the fake's own delay)."""
    with FakeOpenAI(script=[{"delay": 60.0, "content": "TERMINATE"}]) as srv:
        srv.add({"content": "TERMINATE"})
        server = Raw(math_ws)
        server.initialize(
            math_ws, {"allowExecution": True, "baseUrl": srv.base_url, "model": "fake-model"}
        )
        yield server, srv
        server.close()


def start_optimize(server: Raw, srv: FakeOpenAI) -> int:
    rid = server.request(
        "workspace/executeCommand", {"command": "funcforge.optimize", "arguments": [{}]}
    )
    end = time.monotonic() + 30
    while not srv.chat_requests:  # the step is now waiting on the model
        assert time.monotonic() < end, "the optimizer never asked the model"
        time.sleep(0.05)
    return rid


def frame(body: bytes, header: bytes | None = None) -> bytes:
    return (header if header is not None else b"Content-Length: %d\r\n\r\n" % len(body)) + body


def status_body(msg_id: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": msg_id,
            "method": "workspace/executeCommand",
            "params": {"command": "funcforge.status", "arguments": []},
        }
    ).encode()


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda n: b"Content-Length: %d\r\n\r\n" % (n - 7), id="short"),
        pytest.param(lambda n: b"Content-Length: %d\r\n\r\n" % (n + 40), id="long"),
        pytest.param(lambda n: b"Content-Length: twelve\r\n\r\n", id="non-numeric"),
        pytest.param(lambda n: b"Content-Length: -5\r\n\r\n", id="negative"),
        pytest.param(lambda n: b"Content-Type: application/json\r\n\r\n", id="missing"),
        pytest.param(lambda n: b"Content-Length: %d\r\n\r\n" % 2**40, id="2^40"),
    ],
)
def test_a_bad_content_length_is_answered_and_the_server_keeps_listening(
    raw: Raw, header: Any
) -> None:
    bad = status_body(1)
    raw.send_raw(frame(bad, header(len(bad))) + frame(status_body(2)))
    first = raw.response(1, 15)  # answered: the result, or an error naming the fault
    assert "result" in first or "Content-Length" in first["error"]["message"]
    assert raw.response(2, 15)["result"]["state"] in ("idle", "converged")
    assert raw.status()["result"]  # still listening
    assert raw.proc.poll() is None


def test_garbage_and_bad_json_get_parse_errors_then_service_resumes(raw: Raw) -> None:
    raw.send_raw(b"hello there\r\n\r\n")
    raw.send_raw(frame(b"{not json at all"))
    errors = [
        raw.wait(lambda m: m.get("id") is None and "error" in m, 15, "a parse error")
        for _ in range(2)
    ]
    assert {e["error"]["code"] for e in errors} <= {-32700, -32600}
    assert raw.status()["result"]["state"] in ("idle", "converged")


def test_invalid_params_get_an_error_response(raw: Raw) -> None:
    rid = raw.request("textDocument/hover", {"textDocument": 5, "position": "top"})
    error = raw.response(rid, 15)["error"]
    assert error["code"] == -32602 and "textDocument/hover" in error["message"]
    rid = raw.request(
        "workspace/executeCommand", {"command": "funcforge.optimize", "arguments": [7]}
    )
    assert raw.response(rid, 15)["error"]["code"] == -32602
    rid = raw.request("textDocument/codeLens", None)
    assert "error" in raw.response(rid, 15)
    assert raw.status()["result"]


def test_unknown_and_hostile_proposal_ids_get_clean_errors(raw: Raw) -> None:
    for command in (
        "funcforge.applyProposal",
        "funcforge.proposalPreview",
        "funcforge.rejectProposal",
    ):
        rid = raw.request(
            "workspace/executeCommand", {"command": command, "arguments": [{"id": "nope"}]}
        )
        error = raw.response(rid, 15)["error"]
        assert "no proposal 'nope'" in error["message"]
        assert "Traceback" not in json.dumps(error) and error["code"] == -32803
    for hostile in ("../../etc/passwd", "*", "", 42):
        rid = raw.request(
            "workspace/executeCommand",
            {"command": "funcforge.applyProposal", "arguments": [{"id": hostile}]},
        )
        error = raw.response(rid, 15)["error"]
        assert error["code"] == -32602 and "Traceback" not in error["message"]


def test_a_stale_code_action_resolve_is_an_error_without_traceback(raw: Raw, math_ws: Path) -> None:
    uri = (math_ws / "tools" / "units.py").as_uri()
    action = {
        "title": "Apply funcforge proposal: x",
        "data": {"proposal": "nope", "uri": uri, "rel": "tools/units.py", "version": 1},
    }
    rid = raw.request("codeAction/resolve", action)
    error = raw.response(rid, 15)["error"]
    assert "no proposal 'nope'" in error["message"] and "Traceback" not in error["message"]


def test_exit_while_optimize_runs_ends_the_process(
    slow_model: tuple[Raw, FakeOpenAI],
) -> None:
    server, srv = slow_model
    start_optimize(server, srv)
    server.notify("exit")
    assert server.exited(10) == 1  # exit without shutdown: 1, and promptly
    assert b"Traceback" not in server.stderr


def test_shutdown_during_optimize_cancels_it_within_a_bound(
    slow_model: tuple[Raw, FakeOpenAI],
) -> None:
    server, srv = slow_model
    opt = start_optimize(server, srv)
    started = time.monotonic()
    rid = server.request("shutdown")
    assert server.response(rid, 15).get("result", "missing") is None
    assert time.monotonic() - started < 10
    answered = server.response(opt, 5)
    assert "result" in answered or answered["error"]["code"] == -32800
    assert b"dictionary changed size" not in server.stderr
    late = server.request("workspace/executeCommand", {"command": "funcforge.status"})
    assert server.response(late, 5)["error"]["code"] == -32600  # refused, not ignored
    server.notify("exit")
    assert server.exited(10) == 0


def test_cancel_request_really_cancels_the_step_and_frees_the_lock(
    slow_model: tuple[Raw, FakeOpenAI], math_ws: Path
) -> None:
    server, srv = slow_model
    opt = start_optimize(server, srv)
    server.notify("$/cancelRequest", {"id": opt})
    started = time.monotonic()
    assert server.response(opt, 10)["error"]["code"] == -32800
    assert time.monotonic() - started < 5
    # The lock is free: a second step runs (the model now answers at once).
    again = server.request(
        "workspace/executeCommand", {"command": "funcforge.optimize", "arguments": [{}]}
    )
    result = server.response(again, 60)
    assert result.get("result", {}).get("proposals") == [], result
    assert not list((math_ws / ".funcforge" / "proposals").glob("*.json"))


def test_requests_are_answered_promptly_while_optimize_runs(
    slow_model: tuple[Raw, FakeOpenAI], math_ws: Path
) -> None:
    server, srv = slow_model
    start_optimize(server, srv)
    uri = (math_ws / "tools" / "units.py").as_uri()
    server.notify(
        "textDocument/didOpen",
        {
            "textDocument": {
                "uri": uri,
                "languageId": "python",
                "version": 1,
                "text": (math_ws / "tools" / "units.py").read_text(),
            }
        },
    )
    line = next(
        i
        for i, text in enumerate((math_ws / "tools" / "units.py").read_text().splitlines())
        if text.startswith("def convert_units")
    )
    for _ in range(5):  # several commands at once do not starve the reader
        server.request("workspace/executeCommand", {"command": "funcforge.history"})
    started = time.monotonic()
    rid = server.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": {"line": line, "character": 6}},
    )
    hover = server.response(rid, 10)
    assert time.monotonic() - started < 3
    assert "convert_units" in hover["result"]["contents"]["value"]


def test_writes_to_a_closed_stdout_end_quietly(math_ws: Path) -> None:
    server = Raw(math_ws)
    try:
        server.initialize(math_ws)
        assert server.proc.stdout is not None
        server.proc.stdout.close()  # the client stops reading
        for _ in range(3):
            server.request("workspace/executeCommand", {"command": "funcforge.status"})
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        assert server.exited(15) == 0
    finally:
        server.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_10_mb_tool_buffer_gets_a_size_diagnostic_and_does_not_stall_hovers(
    raw: Raw, math_ws: Path
) -> None:
    big_uri = (math_ws / "tools" / "generated.py").as_uri()
    body = "".join(f"def gen_{i}(x: int) -> int:\n    return x + {i}\n\n" for i in range(260_000))
    assert len(body) > 10_000_000
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": big_uri, "languageId": "python", "version": 1, "text": body}},
    )
    units = math_ws / "tools" / "units.py"
    line = next(
        i for i, t in enumerate(units.read_text().splitlines()) if t.startswith("def convert_units")
    )
    started = time.monotonic()
    rid = raw.request(
        "textDocument/hover",
        {"textDocument": {"uri": units.as_uri()}, "position": {"line": line, "character": 6}},
    )
    assert raw.response(rid, 20).get("result") is not None
    assert time.monotonic() - started < 5
    published = raw.wait(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics"
            and m["params"]["uri"] == big_uri
            and m["params"]["diagnostics"]
        ),
        60,
        "the size diagnostic",
    )
    (diag,) = published["params"]["diagnostics"]
    assert "over the 256 KB limit" in diag["message"]
    assert rss_mb(raw.proc.pid) < 1000
