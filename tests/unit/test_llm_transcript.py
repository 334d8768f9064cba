"""Record and replay of LLM exchanges (transcripts), through the fake server and the SDK."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.optimizer.llm import LLMError, Usage, make_client
from funcforge.optimizer.transcript import (
    REDACTED,
    RecordingClient,
    ReplayClient,
    canonical_request,
    read_transcript,
    request_hash,
    scrub,
)
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-transcript-secret-7e41b0d2c9"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "revise_function",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
]
ASK_A = [{"role": "user", "content": "step 1"}]
ASK_B = [{"role": "user", "content": "step 2"}]
ASK_C = [{"role": "user", "content": "something never recorded"}]
SCRIPT = [
    {"tool_calls": [{"name": "revise_function", "arguments": {"name": "convert_units"}}]},
    {"content": "TERMINATE"},
]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def config_for(tmp_path: Path, srv: FakeOpenAI | None = None) -> Config:
    base_url = srv.base_url if srv else "http://127.0.0.1:9/v1"
    return Config(root=tmp_path, model="gpt-test", base_url=base_url, max_retries=0)


def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asks: list[list[dict]]) -> Path:
    """Record one answer per request in `asks` from the fake server."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "run.transcript.jsonl"
    with FakeOpenAI(script=SCRIPT, api_key=KEY) as srv:
        client = make_client(config_for(tmp_path, srv), record=path)
        for ask in asks:
            client.complete(ask, TOOLS)
        client.close()
    return path


def write(path: Path, *objs: dict | str) -> Path:
    path.write_text(
        "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs),
        encoding="utf-8",
    )
    return path


HEADER = {"type": "header", "format": 1, "note": "hand-written: a scripted stand-in"}


def completion(content: str | None = None, calls: list[dict] | None = None) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


# -- recording -------------------------------------------------------------------


def test_record_then_replay_gives_identical_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "t.jsonl"
    with FakeOpenAI(script=SCRIPT, api_key=KEY) as srv:
        live = make_client(config_for(tmp_path, srv), record=path)
        assert isinstance(live, RecordingClient)
        recorded = [live.complete(ASK_A, TOOLS), live.complete(ASK_B, TOOLS)]
        live_usage = live.usage
        live.close()
    warnings: list[str] = []
    replay = ReplayClient(path, "gpt-test", warn=warnings.append)
    replayed = [replay.complete(ASK_A, TOOLS), replay.complete(ASK_B, TOOLS)]
    assert replayed == recorded
    assert replayed[0].tool_calls[0]["function"]["name"] == "revise_function"
    assert replayed[1].content == "TERMINATE"
    assert replay.usage == live_usage
    assert live_usage.calls == 2 and live_usage.prompt_tokens > 0
    assert warnings == []


def test_transcript_format_header_then_exchanges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(tmp_path, monkeypatch, [ASK_A])
    header, exchange = lines(path)
    assert header["type"] == "header" and header["format"] == 1
    assert "gpt-test" in header["note"]
    assert exchange["type"] == "exchange"
    assert exchange["request"] == {
        "model": "gpt-test",
        "messages": ASK_A,
        "tools": TOOLS,
        "tool_choice": "auto",
    }
    assert exchange["request_hash"] == request_hash(exchange["request"])
    assert exchange["response"]["object"] == "chat.completion"
    assert exchange["response"]["choices"][0]["message"]["tool_calls"]


def test_each_exchange_is_flushed_as_it_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "deep" / "dir" / "t.jsonl"
    with FakeOpenAI(script=SCRIPT, api_key=KEY) as srv:
        client = make_client(config_for(tmp_path, srv), record=path)
        assert len(lines(path)) == 1  # the header, before any request
        client.complete(ASK_A, TOOLS)
        assert len(lines(path)) == 2  # still open, already on disk
        client.close()


def test_api_key_never_reaches_the_transcript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "t.jsonl"
    leaky = [{"role": "user", "content": f"my key is {KEY}"}, {"role": "user", "content": KEY}]
    with FakeOpenAI(script=SCRIPT, api_key=KEY) as srv:
        client = make_client(config_for(tmp_path, srv), record=path)
        client.complete(leaky, TOOLS)
        client.close()
        assert srv.chat_requests[0].auth == f"Bearer {KEY}"  # the key was sent...
    text = path.read_text(encoding="utf-8")
    assert KEY not in text  # ...but never written
    assert "Bearer" not in text and "uthorization" not in text
    messages = lines(path)[1]["request"]["messages"]
    assert messages == [
        {"role": "user", "content": f"my key is {REDACTED}"},
        {"role": "user", "content": REDACTED},
    ]
    assert KEY not in repr(client)


def test_errors_are_not_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "t.jsonl"
    with FakeOpenAI(script=[{"status": 400, "body": {"error": {"message": "no"}}}]) as srv:
        client = make_client(config_for(tmp_path, srv), record=path)
        with pytest.raises(LLMError):
            client.complete(ASK_A, TOOLS)
        client.close()
    assert [o["type"] for o in lines(path)] == ["header"]


def test_recording_a_replay_and_usage_delegation(tmp_path: Path) -> None:
    source = write(
        tmp_path / "src.jsonl",
        HEADER,
        {
            "type": "exchange",
            "response": {
                **completion("TERMINATE"),
                "usage": {"prompt_tokens": 9, "completion_tokens": 1},
            },
        },
    )
    copy = tmp_path / "copy.jsonl"
    client = make_client(config_for(tmp_path), f"replay:{source}", record=copy)
    reply = client.complete(ASK_A)
    assert reply.content == "TERMINATE"
    assert client.usage == Usage(calls=1, prompt_tokens=9, completion_tokens=1)
    assert client.reset_usage().calls == 1 and client.usage == Usage()
    client.close()
    header, exchange = lines(copy)
    assert f"replay of {source}" in header["note"]
    assert exchange["request"]["messages"] == ASK_A
    assert ReplayClient(copy, "gpt-test").complete(ASK_A) == reply


# -- replay ----------------------------------------------------------------------


def test_replay_matches_by_hash_in_any_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(tmp_path, monkeypatch, [ASK_A, ASK_B])
    warnings: list[str] = []
    replay = ReplayClient(path, "gpt-test", warn=warnings.append)
    assert replay.complete(ASK_B, TOOLS).content == "TERMINATE"
    assert replay.complete(ASK_A, TOOLS).tool_calls[0]["function"]["name"] == "revise_function"
    assert warnings == []
    assert replay.used == 2 and replay.remaining == 0


def test_replay_falls_back_to_the_next_entry_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = record(tmp_path, monkeypatch, [ASK_A, ASK_B])
    logger = logging.getLogger("test.replay")
    replay = make_client(config_for(tmp_path), f"replay:{path}", logger=logger)
    with caplog.at_level(logging.WARNING, logger="test.replay"):
        reply = replay.complete(ASK_C, TOOLS)
    assert reply.tool_calls  # the first unused entry: the answer recorded for ASK_A
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"transcript {path}: no recorded answer matches this request")
    assert "entry at line 2" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test.replay"):
        assert replay.complete(ASK_B, TOOLS).content == "TERMINATE"  # still matched by hash
    assert caplog.records == []


def test_a_changed_model_no_longer_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = record(tmp_path, monkeypatch, [ASK_A])
    warnings: list[str] = []
    ReplayClient(path, "another-model", warn=warnings.append).complete(ASK_A, TOOLS)
    assert len(warnings) == 1


def test_hand_written_entries_are_answered_in_order_without_warning(tmp_path: Path) -> None:
    call = {"function": {"name": "remove_function", "arguments": {"name": "old_tool"}}}
    path = write(
        tmp_path / "hand.jsonl",
        HEADER,
        {"type": "exchange", "response": completion(calls=[call])},
        "",
        {"type": "exchange", "response": completion("TERMINATE")},
    )
    warnings: list[str] = []
    replay = ReplayClient(path, "gpt-test", warn=warnings.append)
    first = replay.complete(ASK_A, TOOLS)
    assert first.tool_calls[0]["function"] == {
        "name": "remove_function",
        "arguments": '{"name": "old_tool"}',
    }
    assert replay.complete(ASK_C, TOOLS).content == "TERMINATE"
    assert warnings == []


def test_exhausted_transcript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = record(tmp_path, monkeypatch, [ASK_A, ASK_B])
    replay = ReplayClient(path, "gpt-test", warn=lambda _: None)
    replay.complete(ASK_A, TOOLS)
    replay.complete(ASK_B, TOOLS)
    with pytest.raises(LLMError) as exc:
        replay.complete(ASK_A, TOOLS)
    assert str(exc.value) == f"transcript {path} has no more answers (used 2)"


def test_strict_replay_refuses_an_unmatched_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(tmp_path, monkeypatch, [ASK_A])
    replay = ReplayClient(path, "gpt-test", strict=True)
    with pytest.raises(LLMError, match=r"has no answer for this request \(hash [0-9a-f]{12}\)"):
        replay.complete(ASK_C, TOOLS)
    assert replay.complete(ASK_A, TOOLS).tool_calls


def test_entry_with_request_but_no_hash_is_matched_by_its_request(tmp_path: Path) -> None:
    request = {"model": "gpt-test", "messages": ASK_B}
    path = write(
        tmp_path / "t.jsonl",
        HEADER,
        {"type": "exchange", "response": completion("first")},
        {"type": "exchange", "request": request, "response": completion("for B")},
    )
    replay = ReplayClient(path, "gpt-test")
    assert replay.complete(ASK_B).content == "for B"


def test_relative_replay_path_is_found_in_the_workspace_root(tmp_path: Path) -> None:
    write(tmp_path / "demo.jsonl", HEADER, {"type": "exchange", "response": completion("hi")})
    client = make_client(config_for(tmp_path), "replay:demo.jsonl")
    assert client.complete(ASK_A).content == "hi"


# -- malformed transcripts -------------------------------------------------------


@pytest.mark.parametrize(
    ("objs", "message"),
    [
        ((), "is empty; the first line must be a header"),
        (({"type": "exchange"},), ":1: not a funcforge transcript: the first line must be"),
        (({"type": "header", "format": 2},), ":1: transcript format 2 is not supported"),
        ((HEADER, "{not json"), ":2: not valid JSON (Expecting property name"),
        ((HEADER, "[1, 2]"), ":2: each line must be a JSON object"),
        ((HEADER, {"type": "note"}), ':2: expected "type": "exchange", got \'note\''),
        ((HEADER, {"type": "exchange"}), ":2: missing 'response'"),
        (
            (
                HEADER,
                {"type": "exchange", "response": completion("x")},
                {"type": "exchange", "response": {}},
            ),
            ":3: bad response: no 'choices' in the chat completion",
        ),
        ((HEADER, {"type": "exchange", "request": [], "response": {}}), ":2: 'request' must be"),
        (
            (HEADER, {"type": "exchange", "request_hash": 5, "response": completion("x")}),
            ":2: 'request_hash' must be a string",
        ),
    ],
)
def test_malformed_transcript_names_file_and_line(
    tmp_path: Path, objs: tuple, message: str
) -> None:
    path = write(tmp_path / "bad.jsonl", *objs)
    with pytest.raises(LLMError) as exc:
        ReplayClient(path, "gpt-test")
    assert str(exc.value).startswith(f"{path}:") or str(exc.value).startswith(f"transcript {path} ")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_transcript(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=r"transcript .*nope\.jsonl not found"):
        make_client(config_for(tmp_path), "replay:nope.jsonl")


def test_read_transcript_keeps_header_and_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.jsonl",
        HEADER,
        "",
        {"type": "exchange", "response": completion("x"), "extra": "kept"},
    )
    transcript = read_transcript(path)
    assert transcript.header["note"].startswith("hand-written")
    [exchange] = transcript.exchanges
    assert exchange.line == 3 and exchange.request_hash is None


# -- hashing and scrubbing ---------------------------------------------------------


def test_request_hash_is_canonical() -> None:
    a = {"model": "m", "messages": ASK_A, "tools": TOOLS, "tool_choice": "auto"}
    b = {"tool_choice": "auto", "tools": TOOLS, "messages": ASK_A, "model": "m"}
    assert canonical_request(a) == canonical_request(b)
    assert request_hash(a) == request_hash(b)
    assert len(request_hash(a)) == 64
    assert request_hash(a) != request_hash({**a, "messages": ASK_B})
    assert request_hash(a) != request_hash({**a, "temperature": 0})
    assert canonical_request({"b": "é", "a": 1}) == '{"a":1,"b":"é"}'


def test_scrub() -> None:
    value = {"a": [KEY, f"x{KEY}y", {"k": 1}], KEY: "short", "s": "abc"}
    assert scrub(value, [KEY, "abc"]) == {
        "a": [REDACTED, f"x{REDACTED}y", {"k": 1}],
        REDACTED: "short",
        "s": REDACTED,
    }
    assert scrub({"s": "xabcx"}, ["abc"]) == {"s": "xabcx"}  # short: whole strings only
    assert scrub(value, []) is value


def test_recording_survives_lone_surrogates_in_requests_and_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "surrogates.jsonl"
    ask = [{"role": "user", "content": "history with \ud800 in a tool result"}]
    body = (
        '{"model": "gpt-test", "choices": [{"index": 0, "finish_reason": "stop", '
        '"message": {"role": "assistant", "content": "TERMINATE \\udc80"}}]}'
    )
    with FakeOpenAI(script=[{"raw": body}], api_key=KEY) as srv:
        client = make_client(config_for(tmp_path, srv), record=path)
        reply = client.complete(ask, TOOLS)
        client.close()
    assert reply.content == "TERMINATE \\udc80"  # escaped, encodable
    assert reply.model == "gpt-test"
    written = lines(path)
    assert written[1]["request"]["messages"][0]["content"] == (
        "history with \\ud800 in a tool result"
    )
    replay = ReplayClient(path, "gpt-test", strict=True)
    again = replay.complete(ask, TOOLS)  # same request hash after cleaning
    assert again.message == reply.message
