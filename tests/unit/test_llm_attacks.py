"""Attacks on the model client found by verifying issue 14 end to end (the real SDK, the fake server).

Each test here failed before its fix: garbled `usage`, context-length errors in
each server's own words, lying or stalling tokenizers, a `Retry-After` past the
step's deadline, a lone surrogate in a server's error message.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from funcforge.errors import UserError
from funcforge.optimizer.llm import LLMClient, LLMError, parse_context_overflow
from funcforge.optimizer.tokens import make_counter
from tests.fakes.openai_server import FakeOpenAI, error_body, word_tokenizer
from tests.unit.test_adversarial_replies import run
from tests.unit.test_step import TERMINATE, revise, ws  # noqa: F401 - the fixture

ANSWER = '{"role": "assistant", "content": "TERMINATE"}'


def client_of(srv: FakeOpenAI, **options) -> LLMClient:
    options.setdefault("max_retries", 0)
    return LLMClient("fake-model", api_key="sk-test-key", base_url=srv.base_url, **options)


@pytest.mark.parametrize("usage", ["[1]", "1e400", "NaN", '"lots"', "-50", "true", "{}"])
def test_a_garbled_usage_figure_keeps_the_answer(usage: str) -> None:
    body = (
        '{"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", '
        f'"message": {ANSWER}}}], "usage": {{"prompt_tokens": {usage}, "completion_tokens": 2}}}}'
    )
    with FakeOpenAI(script=[{"raw": body}]) as srv:
        client = client_of(srv)
        reply = client.complete([{"role": "user", "content": "hi"}])
    assert reply.content == "TERMINATE"
    assert reply.usage.prompt_tokens == 0 and reply.usage.completion_tokens == 2
    assert client.usage.retries == 0


WINDOW, PROMPT, CAP = 8192, 9000, 2048
# Context-length refusals in each server's words: (text, the window, the prompt's own tokens).
WORDINGS = [
    # OpenAI (and llama-cpp-python, which copies it): the total counts the answer's cap
    (
        f"This model's maximum context length is {WINDOW} tokens. However, you requested "
        f"{PROMPT + CAP} tokens ({PROMPT} in the messages, {CAP} in the completion). "
        "Please reduce the length of the messages or completion.",
        (WINDOW, PROMPT),
    ),
    (
        f"This model's maximum context length is {WINDOW} tokens. However, you requested "
        f"{PROMPT + 500 + CAP} tokens ({PROMPT} in the messages, 500 in the functions, "
        f"{CAP} in the completion).",
        (WINDOW, PROMPT + 500),
    ),
    (
        f"Input tokens exceed the configured limit of {WINDOW} tokens. Your messages resulted "
        f"in {PROMPT} tokens. Please reduce the length of the messages.",
        (WINDOW, PROMPT),
    ),
    ("Your input exceeds the context window of this model.", (None, None)),
    # vLLM, old and new
    (
        f"This model's maximum context length is {WINDOW} tokens. However, your request has "
        f"{PROMPT} input tokens. Please reduce the length of the input messages. "
        f"(parameter=input_tokens, value={PROMPT})",
        (WINDOW, PROMPT),
    ),
    (
        f"This model's maximum context length is {WINDOW} tokens. However, your request has "
        f"{PROMPT} input tokens plus {CAP} 'max_tokens'. Please reduce one or the other.",
        (WINDOW, PROMPT),
    ),
    (
        f"'max_tokens' or 'max_completion_tokens' is too large: {CAP}. This model's maximum "
        f"context length is {WINDOW} tokens and your request has {PROMPT} input tokens "
        f"({CAP} > {WINDOW} - {PROMPT}).",
        (WINDOW, PROMPT),
    ),
    (
        f"The decoder prompt (length {PROMPT}) is longer than the maximum model length of "
        f"{WINDOW}. Make sure that `max_model_len` is no smaller than the number of text tokens.",
        (WINDOW, PROMPT),
    ),
    (
        f"Prompt length of {PROMPT} is longer than the maximum model length of {WINDOW}.",
        (WINDOW, PROMPT),
    ),
    # llama.cpp's llama-server, new and old; llama-cpp-python's own
    (
        json.dumps(
            {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": PROMPT,
                "n_ctx": WINDOW,
            }
        ),
        (WINDOW, PROMPT),
    ),
    (
        "the request exceeds the available context size. try increasing the context size or "
        "enable context shift",
        (None, None),
    ),
    (f"Requested tokens ({PROMPT}) exceed context window of {WINDOW}", (WINDOW, PROMPT)),
    # Ollama: llama.cpp's error as escaped JSON in a string (truncate: false), shift: false
    (
        json.dumps(
            json.dumps(
                {
                    "error": {
                        "message": f"request ({PROMPT} tokens) exceeds the available context "
                        f"size ({WINDOW} tokens), try increasing it",
                        "type": "exceed_context_size_error",
                        "n_prompt_tokens": PROMPT,
                        "n_ctx": WINDOW,
                    }
                }
            )
        ),
        (WINDOW, PROMPT),
    ),
    (
        "the prompt is longer than the context length currently available to the model",
        (None, None),
    ),
    ("the input length exceeds the context length", (None, None)),
    # others that speak OpenAI's protocol: Mistral, Gemini, Anthropic's, LiteLLM's proxy
    (
        f"Prompt contains {PROMPT} tokens and 0 draft tokens, too large for model with "
        f"{WINDOW} maximum context length",
        (WINDOW, PROMPT),
    ),
    (
        f"The input token count ({PROMPT}) exceeds the maximum number of tokens allowed "
        f"({WINDOW}).",
        (WINDOW, PROMPT),
    ),
    (f"prompt is too long: {PROMPT} tokens > {WINDOW} maximum", (WINDOW, PROMPT)),
    ("litellm.ContextWindowExceededError: BadRequestError: ...", (None, None)),
]


@pytest.mark.parametrize(("text", "expected"), WORDINGS)
def test_context_errors_in_each_servers_words(text: str, expected: tuple) -> None:
    assert parse_context_overflow(text) == expected


def refusing(words: str, window: int, ollama: bool = False):
    """A server that refuses prompts over `window` (its own count) in `words`, else answers."""
    answers = [revise(), TERMINATE]
    refusals: list[int] = []

    def respond(request) -> dict:
        prompt = word_tokenizer(json.dumps(request.body["messages"])) + 300
        cap = request.body.get("max_tokens") or 0
        if prompt + cap > window:
            refusals.append(prompt)
            text = words.format(window=window, prompt=prompt, cap=cap, total=prompt + cap)
            body = {"error": text} if ollama else error_body(text, "invalid_request_error", None)
            return {"status": 400, "body": body}
        return answers.pop(0) if answers else TERMINATE

    return respond, refusals


SERVERS = {
    "vllm": (
        "The decoder prompt (length {prompt}) is longer than the maximum model length of "
        "{window}. Make sure that `max_model_len` is no smaller than the number of text tokens.",
        False,
    ),
    "vllm-cap": (
        "'max_tokens' or 'max_completion_tokens' is too large: {cap}. This model's maximum "
        "context length is {window} tokens and your request has {prompt} input tokens "
        "({cap} > {window} - {prompt}).",
        False,
    ),
    "openai": (
        "Input tokens exceed the configured limit of {window} tokens. Your messages resulted "
        "in {prompt} tokens. Please reduce the length of the messages.",
        False,
    ),
    "ollama": (
        "the prompt is longer than the context length currently available to the model; "
        "try increasing num_ctx",
        True,
    ),
    "ollama-input": ("the input length exceeds the context length", True),
    "llama.cpp": (
        '{{"code": 400, "message": "request ({prompt} tokens) exceeds the available context '
        'size ({window} tokens), try increasing it", "type": "exceed_context_size_error", '
        '"n_prompt_tokens": {prompt}, "n_ctx": {window}}}',
        True,
    ),
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_each_servers_refusal_shrinks_the_prompt_and_says_so(
    ws: Path,  # noqa: F811
    server: str,
) -> None:
    words, ollama = SERVERS[server]
    respond, refusals = refusing(words, 5000, ollama)
    with FakeOpenAI(responder=respond) as srv:
        result, _ = run(ws, srv)
    assert refusals, "the first prompt must be refused for the test to mean anything"
    assert result.proposal is not None and result.proposal.title == "revise convert_units"
    assert any("longer than the model's context" in n for n in result.notes)
    assert all("asking again with fewer histories" in n for n in result.notes)


def test_the_answers_cap_is_not_learnt_as_prompt_tokens(ws: Path) -> None:  # noqa: F811
    # The window is configured, so the first request already caps the answer (1,024
    # tokens): OpenAI's and vLLM's "you requested N" then counts prompt + cap.
    words = (
        "This model's maximum context length is {window} tokens. However, you requested "
        "{total} tokens ({prompt} in the messages, {cap} in the completion)."
    )
    respond, refusals = refusing(words, 4200, ollama=False)
    with FakeOpenAI(responder=respond) as srv:
        result, _ = run(ws, srv, context_window=4200)
    assert refusals and result.proposal is not None
    assert f"{refusals[0]} by the endpoint" in result.notes[0]


LIES = {
    "always one": lambda text: {"body": {"count": 1, "tokens": [0]}},
    "a billion": lambda text: {"body": {"count": 10**9}},
    "negative": lambda text: {"body": {"count": -7}},
    "a boolean": lambda text: {"body": {"count": True}},
    "404 after the probe": lambda text: (
        {"body": {"count": 2}} if text == "hello world" else {"status": 404, "body": {}}
    ),
    "500 after the probe": lambda text: (
        {"body": {"count": 2}} if text == "hello world" else {"status": 500, "body": "oops"}
    ),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_or_failing_tokenizer_falls_back_to_the_estimate(
    ws: Path,  # noqa: F811
    lie: str,
) -> None:
    with FakeOpenAI(
        script=[revise(), TERMINATE],
        tokenizer=word_tokenizer,
        tokenize_route="/tokenize",
        tokenize_reply=LIES[lie],
        context_window=4000,
    ) as srv:
        result, _ = run(ws, srv)
    assert result.proposal is not None and result.proposal.title == "revise convert_units"
    for note in result.notes:
        assert "counted by estimate" in note


def test_an_implausible_count_is_not_used() -> None:
    with FakeOpenAI(tokenize_route="/tokenize", tokenize_reply=LIES["always one"]) as srv:
        client = client_of(srv)
        assert client.count_tokens("hello world") == 1  # plausible for 11 characters
        assert client.count_tokens("def f(x):\n    return x + 1\n" * 200) is None
        assert client.tokenizer_name() is None
        counter = make_counter(client)
    assert counter.method.startswith("estimate") and not counter.exact


def test_a_trickling_tokenizer_and_discovery_are_cut_at_wall_time() -> None:
    # One byte every 0.25 s: every read is far within the timeout; only a wall-clock
    # deadline ends the probes (before the fix they ran for minutes).
    with FakeOpenAI(
        tokenize_route="/extras/tokenize/count",
        tokenizer=word_tokenizer,
        probe_trickle=0.25,
        context_window=8192,
        advertise_window=True,
    ) as srv:
        client = client_of(srv, timeout=1.0)
        started = time.monotonic()
        assert client.count_tokens("hello world") is None
        assert client.context_window() is None
        elapsed = time.monotonic() - started
    assert elapsed < 6, f"held for {elapsed:.0f} s"


def test_a_tokenize_answer_cut_mid_chunk_is_survived(tmp_path: Path) -> None:
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(6):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"cou\r\n'
            )
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        client = LLMClient("m", api_key="k", base_url=f"http://127.0.0.1:{port}/v1", timeout=3)
        assert client.count_tokens("hello world") is None  # was http.client.IncompleteRead
        assert client.context_window() is None
    finally:
        listener.close()


def test_a_retry_after_past_the_step_deadline_ends_at_once(ws: Path) -> None:  # noqa: F811
    wait = {"status": 429, "headers": {"Retry-After": "30"}}
    with FakeOpenAI(script=[wait, revise(), TERMINATE]) as srv:
        started = time.monotonic()
        with pytest.raises(UserError, match=r"not retried: waiting 30.0 s would pass"):
            run(ws, srv, step_timeout=3.0)
        elapsed = time.monotonic() - started
    assert elapsed < 15, f"slept {elapsed:.0f} s"


def test_a_lone_surrogate_in_a_servers_error_is_escaped() -> None:
    bad = {"status": 500, "body": '{"error": {"message": "broken \\ud800 here"}}'}
    with FakeOpenAI(script=[bad]) as srv, pytest.raises(LLMError) as caught:
        client_of(srv).complete([{"role": "user", "content": "hi"}])
    message = str(caught.value)
    assert "broken \\ud800 here" in message
    message.encode("utf-8")  # printable and writable as it is


def test_a_proposal_file_with_a_lone_surrogate_applies(ws: Path) -> None:  # noqa: F811
    import subprocess
    import sys

    from tests.conftest import git

    with FakeOpenAI(script=[revise(), TERMINATE]) as srv:
        result, config = run(ws, srv)
    assert result.proposal is not None
    path = config.proposals_path / f"{result.proposal.id}.json"
    # Hand-edited, or written by another tool: a JSON escape that decodes to a lone surrogate.
    path.write_text(path.read_text().replace("miles were", "miles \\ud800 were"))
    done = subprocess.run(
        [sys.executable, "-m", "funcforge", "apply", result.proposal.id, str(ws)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr  # was UnicodeEncodeError writing the message
    assert "miles \\ud800 were" in git(ws, "log", "-1", "--format=%B")


@pytest.mark.parametrize(
    "text", ['{"id": "x", "actions": ' + "[" * 5000 + "]" * 5000 + "}", "[1, 2]", '"a"']
)
def test_a_damaged_proposal_file_is_named_not_a_crash(tmp_path: Path, text: str) -> None:
    from funcforge.optimizer.proposal import ProposalError, list_proposals, load_proposal

    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(ProposalError, match=r"bad\.json: unreadable proposal"):
        load_proposal(tmp_path, "bad")
    assert list_proposals(tmp_path) == []


def test_a_413_from_a_proxy_shrinks_the_prompt(ws: Path) -> None:  # noqa: F811
    page = "<html><head><title>413 Request Entity Too Large</title></head></html>"
    answers = [revise(), TERMINATE]

    def respond(request) -> dict:
        if len(json.dumps(request.body)) > 16_000:
            return {"status": 413, "body": page}
        return answers.pop(0) if answers else TERMINATE

    with FakeOpenAI(responder=respond) as srv:
        result, _ = run(ws, srv)
    assert result.proposal is not None
    assert "longer than the model's context" in result.notes[0]


def test_a_run_whose_tokenizer_lied_replays_the_same(ws: Path, tmp_path: Path) -> None:  # noqa: F811
    transcript = tmp_path / "liar.jsonl"
    with FakeOpenAI(
        script=[revise(), TERMINATE],
        tokenizer=word_tokenizer,
        tokenize_route="/tokenize",
        tokenize_reply=LIES["always one"],
        context_window=4000,
    ) as srv:
        live, _ = run(ws, srv, record=transcript)
    with FakeOpenAI() as unused:
        replayed, _ = run(ws, unused, llm=f"replay:{transcript}")
        assert unused.requests == []
    assert live.proposal is not None and replayed.proposal is not None
    assert replayed.notes == live.notes and replayed.prompt_tokens == live.prompt_tokens
    assert any("longer than the model's context" in n for n in live.notes)


@pytest.mark.parametrize("param", ["type", "properties", "required"])
def test_ag2_properties_with_a_parameter_named_like_a_schema_keyword(
    ws: Path,  # noqa: F811
    param: str,
) -> None:
    code = (
        f"def convert_units(value: float, {param}: str, to_unit: str) -> float:\n"
        '    """Convert."""\n    return value\n'
    )
    properties = {
        "value": {"type": "number"},
        param: {"type": "string", "description": "the kind"},
        "to_unit": {"type": "string"},
    }
    with FakeOpenAI(script=[revise(code=code, arguments=properties), TERMINATE]) as srv:
        result, _ = run(ws, srv)
    assert result.trials == []  # was "'type' must be 'object', got {...}" fed back
    assert result.proposal is not None
    schema = result.proposal.actions[0].arguments
    assert schema["type"] == "object" and schema["properties"] == properties


def test_a_whole_schema_is_not_taken_for_properties() -> None:
    from funcforge.optimizer.actions import is_properties_only

    assert not is_properties_only({"properties": {"type": {"type": "string"}}})
    assert not is_properties_only({"type": "object", "properties": {}})
    assert is_properties_only({"type": {"type": "string"}, "n": {"type": ["integer", "null"]}})


@pytest.mark.parametrize("keep", [0, 40])
def test_a_connection_reset_mid_answer_is_retried(ws: Path, keep: int) -> None:  # noqa: F811
    with FakeOpenAI(script=[{"cut": keep, **revise()}, revise(), TERMINATE]) as srv:
        result, _ = run(ws, srv)
    assert result.proposal is not None and result.trials == []
    assert result.usage["retries"] == 1


def test_an_endless_answer_is_cut_at_a_size_not_read_into_memory() -> None:
    # Before, the whole body was read until the wall-clock deadline: at loopback speed,
    # gigabytes in the default 120 s.
    with FakeOpenAI(script=[{"flood": True}, TERMINATE]) as srv:
        client = client_of(srv, timeout=60.0, max_retries=1, backoff_base=0.01)
        started = time.monotonic()
        reply = client.complete([{"role": "user", "content": "hi"}])
        elapsed = time.monotonic() - started
    assert reply.content == "TERMINATE" and client.usage.retries == 1
    assert elapsed < 30, f"read for {elapsed:.0f} s"


def test_a_read_stalled_mid_answer_is_a_timeout_and_retried() -> None:
    with FakeOpenAI(script=[{"trickle": 3.0, **TERMINATE}, TERMINATE]) as srv:
        client = client_of(srv, timeout=1.0, max_retries=1, backoff_base=0.01)
        assert client.complete([{"role": "user", "content": "hi"}]).content == "TERMINATE"
        assert client.usage.retries == 1


@pytest.mark.parametrize("bad", [True, 0, -5, "8192", 8.5e3, None])
def test_a_nonsense_advertised_window_is_ignored(
    bad: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {
        "/v1/models": {"data": [{"id": "fake-model", "max_model_len": bad}]},
        "/props": {"default_generation_settings": {"n_ctx": bad}, "n_ctx": bad},
    }
    client = LLMClient("fake-model", api_key="k", base_url="http://127.0.0.1:9/v1")
    monkeypatch.setattr(
        client,
        "_http",
        lambda method, url, body=None: answers.get(url[len("http://127.0.0.1:9") :]),
    )
    assert client.context_window() is None  # `true` was a window of 1 token: "too small"
