"""A fake OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies.

Tests drive the real `openai` SDK against it, so the whole client path (URLs,
headers, JSON, status codes, timeouts) is exercised without any network.

    with FakeOpenAI(script=[{"tool_calls": [{"name": "f", "arguments": {}}]},
                            {"content": "TERMINATE"}]) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k")

Each POST to a chat completions endpoint takes the next script item:

- ``{"tool_calls": [{"name": ..., "arguments": {...} or "string", "id"?: ...}]}``
- ``{"content": "TERMINATE"}`` (content and tool calls may be combined)
- ``{"completion": {...}}``: this chat.completion object, verbatim
- ``{"status": 429, "headers": {"Retry-After": "0"}, "body": {...}}``: an error
  (``body`` defaults to OpenAI's error object; a string body is sent as is)
- ``{"raw": "not json"}``: this text as the 200 response body
- ``{"delay": seconds, ...}``: sleep first (for timeouts), then answer the rest
  of the item (an item with only a delay answers an empty assistant message)
- ``{"trickle": seconds, ...}``: send the answer's bytes one at a time, `seconds`
  apart (a server that keeps a per-read timeout from ever firing)
- ``{"cut": n, ...}``: send the headers and the answer's first `n` bytes, then
  reset the connection (a server or proxy dying mid-answer)
- ``{"flood": True}``: a 200 whose chunked body of spaces never ends (until the
  client hangs up)
- optional ``"usage"``, ``"finish_reason"``, ``"model"`` override those fields.

A real model's tokens (``tokenizer``, a function text -> token count): the
server then bills ``usage.prompt_tokens`` by it over its own chat template
(`template_text`), serves llama-cpp-python's ``/extras/tokenize/count`` or
vLLM's ``/tokenize`` (``tokenize_route``), and with ``context_window`` refuses
a longer prompt with llama-cpp-python's 400 ("This model's maximum context
length is N tokens..."); ``advertise_window`` puts ``max_model_len`` in
``/v1/models`` as vLLM does. ``probe_trickle`` (seconds) sends the answers of
those side routes (tokenize, ``/v1/models``, ``/props``) a byte at a time.
``tokenize_reply(text)`` overrides the tokenize route's answer (a broken or
lying tokenizer): ``{"status": 404, "body": {...}}`` or ``{"body": {"count": 1}}``.

When the script is exhausted, ``responder(request)`` (a `ReceivedRequest`)
supplies the item; without one the server answers 500 with a clear message.
Checks that happen before the script (and do not consume it): ``api_key``
(401 with OpenAI's error body), ``models`` (404 model_not_found) and
``reject_tools`` (400 when the request carries ``tools``).

Run as a process for editor end-to-end tests:
``python3 -m tests.fakes.openai_server --script FILE.json [--port N]
[--port-file F] [--latency S]`` prints the base URL and serves until killed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ScriptItem = dict[str, Any]

DEFAULT_MODEL = "fake-model"


@dataclass
class ReceivedRequest:
    """One request as the server saw it.

    `auth` keeps the credential header's value (Authorization or Azure's
    api-key) only so tests can assert the key was sent; nothing else stores it.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    had_auth: bool
    auth: str | None = field(default=None, repr=False)

    @property
    def model(self) -> str | None:
        """The model the request asked for (the deployment name on Azure paths)."""
        deployment = _azure_deployment(self.path)
        if deployment is not None:
            return deployment
        return self.body.get("model") if isinstance(self.body, dict) else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe view without the credential (for the process mode's log)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "headers": self.headers,
            "had_auth": self.had_auth,
        }


def _azure_deployment(path: str) -> str | None:
    parts = path.strip("/").split("/")
    # openai/deployments/{d}/chat/completions
    if (
        len(parts) == 5
        and parts[:2] == ["openai", "deployments"]
        and parts[3:]
        == [
            "chat",
            "completions",
        ]
    ):
        return parts[2]
    return None


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _estimate_tokens(value: Any) -> int:
    """A deterministic stand-in for a tokenizer: about four characters a token."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, (len(text) + 3) // 4)


class FakeOpenAI:
    """The fake server; a context manager that starts and stops it."""

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        responder: Callable[[ReceivedRequest], ScriptItem] | None = None,
        latency: float = 0.0,
        api_key: str | None = None,
        models: Iterable[str] | None = None,
        reject_tools: bool | str = False,
        cycle: bool = False,
        port: int = 0,
        tokenizer: Callable[[str], int] | None = None,
        tokenize_route: str | None = None,
        context_window: int | None = None,
        advertise_window: bool = False,
        probe_trickle: float = 0.0,
        tokenize_reply: Callable[[str], ScriptItem] | None = None,
    ) -> None:
        self.probe_trickle = probe_trickle
        self.tokenize_reply = tokenize_reply
        self.tokenizer = tokenizer
        self.tokenize_route = tokenize_route
        self.context_window = context_window
        self.advertise_window = advertise_window
        self.script: list[ScriptItem] = list(script)
        self.responder = responder
        self.latency = latency
        self.api_key = api_key
        self.models = list(models) if models is not None else None
        self.reject_tools = reject_tools
        self.cycle = cycle
        self.requests: list[ReceivedRequest] = []
        self.replies = 0  # chat completion requests answered from the script/responder
        self._next = 0
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._bound_port: int | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        """Bind 127.0.0.1 (port 0 picks a free one) and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        self._server = server
        self._bound_port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping handlers (delays) wake up and give up."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses and script ------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (still known after `stop`, for messages in assertions)."""
        if self._bound_port is None:
            raise RuntimeError("FakeOpenAI has not been started")
        return self._bound_port

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT (Azure's endpoint; the SDK adds /openai/...)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending with /v1."""
        return f"{self.root_url}/v1"

    def add(self, *items: ScriptItem) -> None:
        """Append items to the script (also while serving)."""
        with self._lock:
            self.script.extend(items)

    @property
    def remaining(self) -> int:
        """Script items not yet used."""
        with self._lock:
            return max(0, len(self.script) - self._next)

    @property
    def chat_requests(self) -> list[ReceivedRequest]:
        """The received chat completion requests, in order."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- answering ---------------------------------------------------------------

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take(self, request: ReceivedRequest) -> ScriptItem:
        with self._lock:
            if self._next < len(self.script):
                item = self.script[self._next]
                self._next += 1
                self.replies += 1
                return item
            if self.cycle and self.script:
                item = self.script[0]
                self._next = 1
                self.replies += 1
                return item
            used = self._next
        if self.responder is not None:
            item = self.responder(request)
            with self._lock:
                self.replies += 1
            return item
        return {
            "status": 500,
            "body": error_body(
                f"FakeOpenAI script exhausted after {used} replies; "
                "add script items or pass a responder",
                "server_error",
                "fake_script_exhausted",
            ),
        }

    def _completion(self, item: ScriptItem, model: str, body: dict[str, Any]) -> dict[str, Any]:
        if "completion" in item:
            return dict(item["completion"])
        with self._lock:
            self._counter += 1
            n = self._counter
        message: dict[str, Any] = {"role": "assistant", "content": item.get("content")}
        calls = []
        for i, call in enumerate(item.get("tool_calls") or []):
            arguments = call.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            calls.append(
                {
                    "id": call.get("id", f"call_{n}_{i}"),
                    "type": "function",
                    "function": {"name": call["name"], "arguments": arguments},
                }
            )
        if calls:
            message["tool_calls"] = calls
        finish = item.get("finish_reason", "tool_calls" if calls else "stop")
        prompt_tokens = self.prompt_tokens(body)
        completion_tokens = _estimate_tokens(message.get("content")) + _estimate_tokens(
            calls or None
        )
        usage = item.get("usage") or {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return {
            "id": f"chatcmpl-fake{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": item.get("model", model),
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": usage,
            "system_fingerprint": "fake",
        }

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """What the server bills for a request's prompt."""
        if self.tokenizer is None:
            return _estimate_tokens(body.get("messages")) + _estimate_tokens(body.get("tools"))
        return self.tokenizer(template_text(body))


def template_text(body: dict[str, Any]) -> str:
    """The fake's chat template: tools in a system preamble, then ChatML turns."""
    parts = []
    tools = body.get("tools")
    if tools:
        parts.append("<|im_start|>system\nfunctions:\n")
        for tool in tools:
            function = tool.get("function") or {}
            parts.append(
                f"// {function.get('description', '')}\n{function.get('name')}: "
                f"{json.dumps(function.get('parameters'))}\n"
            )
        parts.append("<|im_end|>\n")
    for message in body.get("messages") or []:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        parts.append(f"<|im_start|>{message.get('role')}\n{text}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def word_tokenizer(text: str) -> int:
    """A deterministic stand-in for a small model's tokenizer: words and each punctuation mark."""
    import re

    return len(re.findall(r"\w+|[^\w\s]", text))


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection for the `FakeOpenAI` set on the subclass."""

    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid a 40 ms stall

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    # -- plumbing -----------------------------------------------------------------

    def _send(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        trickle: float = 0.0,
    ) -> None:
        if self.fake.latency:
            self.fake._stopping.wait(self.fake.latency)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        if trickle:
            self._trickle(status, data, trickle)
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", f"req_fake_{len(self.fake.requests)}")
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def _trickle(self, status: int, data: bytes, interval: float) -> None:
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        try:
            for i in range(len(head) + len(data)):
                chunk = (head + data)[i : i + 1]
                self.wfile.write(chunk)
                self.wfile.flush()
                if self.fake._stopping.wait(interval):
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    def _cut(self, status: int, data: bytes, keep: int) -> None:
        """The headers and `keep` bytes of the body, then a reset (RST) of the connection."""
        import socket
        import struct

        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        try:
            self.wfile.write(head + data[:keep])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True

    def _flood(self) -> None:
        """A 200 with an endless chunked body, 1 MB a chunk, until the client goes away."""
        chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"
        try:
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            while not self.fake._stopping.is_set():
                self.wfile.write(chunk)
        except OSError:
            pass
        self.close_connection = True

    def _received(self, body: Any) -> ReceivedRequest:
        split = urlsplit(self.path)
        auth = self.headers.get("Authorization") or self.headers.get("api-key")
        headers = {
            k.lower(): v
            for k, v in self.headers.items()
            if k.lower() not in ("authorization", "api-key")
        }
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        request = ReceivedRequest(
            method=self.command,
            path=split.path,
            query=query,
            body=body,
            headers=headers,
            had_auth=bool(auth),
            auth=auth,
        )
        self.fake._record(request)
        return request

    def _auth_ok(self, request: ReceivedRequest) -> bool:
        key = self.fake.api_key
        if key is None:
            return True
        if request.auth in (f"Bearer {key}", key):
            return True
        self._send(
            401,
            error_body(
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            ),
        )
        return False

    # -- routes -------------------------------------------------------------------

    def do_GET(self) -> None:
        request = self._received(None)
        if not self._auth_ok(request):
            return
        if request.path.rstrip("/") in ("/v1/models", "/models"):
            names = self.fake.models or [DEFAULT_MODEL]
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
            if self.fake.advertise_window and self.fake.context_window:
                for entry in data:
                    entry["max_model_len"] = self.fake.context_window
            self._send(200, {"object": "list", "data": data}, trickle=self.fake.probe_trickle)
            return
        self._not_found(request.path)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = self._received(body)
        path = request.path.rstrip("/")
        if self.fake.tokenize_route and path == self.fake.tokenize_route.rstrip("/"):
            self._tokenize(body)
            return
        deployment = _azure_deployment(path)
        if path not in ("/v1/chat/completions", "/chat/completions") and deployment is None:
            self._not_found(path)
            return
        if not self._auth_ok(request):
            return
        if not isinstance(body, dict):
            self._send(
                400,
                error_body(
                    "We could not parse the JSON body of your request.",
                    "invalid_request_error",
                    None,
                ),
            )
            return
        if deployment is not None and "api-version" not in request.query:
            self._send(
                400,
                error_body("Missing the api-version query parameter.", "invalid_request", None),
            )
            return
        model = request.model or ""
        if self.fake.models is not None and model not in self.fake.models:
            if deployment is not None:
                self._send(
                    404,
                    {
                        "error": {
                            "code": "DeploymentNotFound",
                            "message": f"The API deployment for this resource does not exist: "
                            f"{model}.",
                        }
                    },
                )
            else:
                self._send(
                    404,
                    error_body(
                        f"The model `{model}` does not exist or you do not have access to it.",
                        "invalid_request_error",
                        "model_not_found",
                        "model",
                    ),
                )
            return
        if self.fake.reject_tools and body.get("tools"):
            message = (
                self.fake.reject_tools
                if isinstance(self.fake.reject_tools, str)
                else "tools not supported"
            )
            self._send(400, error_body(message, "invalid_request_error", None, "tools"))
            return
        window = self.fake.context_window
        if window is not None:  # refused before the script is consulted, as a real server does
            requested = self.fake.prompt_tokens(body)
            if requested > window:
                message = (
                    f"This model's maximum context length is {window} tokens. However, you "
                    f"requested {requested} tokens ({requested} in the messages, 0 in the "
                    "completion). Please reduce the length of the messages or completion."
                )
                self._send(400, error_body(message, "invalid_request_error", None, "messages"))
                return
        self._answer(self.fake._take(request), model or DEFAULT_MODEL, body)

    def _tokenize(self, body: Any) -> None:
        """llama-cpp-python's {"input"} -> {"count"}, or vLLM's {"prompt"} -> {"count", "tokens"}."""
        tokenizer = self.fake.tokenizer or word_tokenizer
        text = None
        if isinstance(body, dict):
            text = body.get("input") if "input" in body else body.get("prompt")
        if not isinstance(text, str):
            self._send(422, {"detail": "input or prompt (a string) is required"})
            return
        trickle = self.fake.probe_trickle
        if self.fake.tokenize_reply is not None:
            item = self.fake.tokenize_reply(text)
            self._send(int(item.get("status", 200)), item.get("body"), trickle=trickle)
            return
        count = tokenizer(text)
        if self.fake.tokenize_route and self.fake.tokenize_route.endswith("/count"):
            self._send(200, {"count": count}, trickle=trickle)
        else:
            answer = {"count": count, "tokens": list(range(count)), "max_model_len": 0}
            self._send(200, answer, trickle=trickle)

    def _answer(self, item: ScriptItem, model: str, body: dict[str, Any]) -> None:
        delay = float(item.get("delay", 0))
        if delay and self.fake._stopping.wait(delay):
            return
        if "status" in item and int(item["status"]) != 200:
            status = int(item["status"])
            payload = item.get("body")
            if payload is None:
                kind = "rate_limit_exceeded" if status == 429 else "server_error"
                payload = error_body(f"fake error {status}", kind, None)
            self._send(status, payload, item.get("headers"))
            return
        trickle = float(item.get("trickle", 0))
        if item.get("flood"):
            self._flood()
            return
        if "cut" in item:
            self._cut(
                200, json.dumps(self.fake._completion(item, model, body)).encode(), item["cut"]
            )
            return
        if "raw" in item:
            self._send(200, str(item["raw"]), item.get("headers"), trickle)
            return
        self._send(200, self.fake._completion(item, model, body), item.get("headers"), trickle)

    def _not_found(self, path: str) -> None:
        self._send(404, error_body(f"Invalid URL (POST {path})", "invalid_request_error", None))


def main(argv: list[str] | None = None) -> int:
    """Serve a script from a JSON file until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python3 -m tests.fakes.openai_server")
    parser.add_argument("--script", type=Path, help="JSON file: a list of script items")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the port number here")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--api-key", help="require this key (401 otherwise)")
    parser.add_argument("--models", nargs="*", help="known models (404 for others)")
    parser.add_argument("--reject-tools", action="store_true", help="400 when tools are sent")
    parser.add_argument("--cycle", action="store_true", help="repeat the script when used up")
    parser.add_argument("--requests-log", type=Path, help="write received requests (JSONL)")
    args = parser.parse_args(argv)

    script: list[ScriptItem] = []
    if args.script is not None:
        try:
            loaded = json.loads(args.script.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{args.script}: cannot read script: {exc}", file=sys.stderr)
            return 2
        if not isinstance(loaded, list) or not all(isinstance(i, dict) for i in loaded):
            print(f"{args.script}: the script must be a JSON list of objects", file=sys.stderr)
            return 2
        script = loaded

    fake = FakeOpenAI(
        script,
        latency=args.latency,
        api_key=args.api_key,
        models=args.models,
        reject_tools=args.reject_tools,
        cycle=args.cycle,
        port=args.port,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with fake:
        if args.port_file is not None:
            args.port_file.write_text(str(fake.port), encoding="utf-8")
        print(fake.base_url, flush=True)
        written = 0
        while not done.wait(0.1):
            written = _flush_log(fake, args.requests_log, written)
        _flush_log(fake, args.requests_log, written)
    return 0


def _flush_log(fake: FakeOpenAI, path: Path | None, written: int) -> int:
    """Append the requests received since the last call to the JSONL log."""
    if path is None:
        return written
    with fake._lock:
        new = fake.requests[written:]
    if new:
        with path.open("a", encoding="utf-8") as fh:
            for request in new:
                fh.write(json.dumps(request.to_json()) + "\n")
    return written + len(new)


if __name__ == "__main__":
    sys.exit(main())
