"""LLMClient through the real openai SDK against the fake server on loopback."""

from __future__ import annotations

import json
import random
import socket
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from funcforge.config import Config
from funcforge.errors import UserError
from funcforge.optimizer.llm import (
    PLACEHOLDER_KEY,
    LLMClient,
    LLMError,
    Usage,
    backoff_delay,
    make_client,
    reply_from_completion,
    retry_after_seconds,
)
from funcforge.optimizer.transcript import RecordingClient, ReplayClient
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-funcforge-test-key-5f3a9c1e"
MESSAGES = [{"role": "user", "content": "improve the tools"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add_function",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
]
TOOL_CALL = {"tool_calls": [{"name": "add_function", "arguments": {"name": "f"}}]}


class Sleeps(list):
    """A `sleep` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(srv: FakeOpenAI, sleeps: Sleeps | None = None, **kw: Any) -> LLMClient:
    """A client of `srv` with a short timeout and a recording sleep."""
    model = kw.pop("model", "fake-model")
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": srv.base_url,
        "timeout": 0.2,
        "max_retries": 2,
        "backoff_base": 0.01,
        "sleep": sleeps if sleeps is not None else Sleeps(),
        "rng": random.Random(0),
    }
    options.update(kw)
    return LLMClient(model, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- replies ---------------------------------------------------------------------


def test_tool_call_reply_in_chat_format() -> None:
    with FakeOpenAI(script=[TOOL_CALL]) as srv:
        reply = client_for(srv).complete(MESSAGES, TOOLS)
        [request] = srv.chat_requests
    assert reply.message["role"] == "assistant"
    [call] = reply.tool_calls
    assert call["type"] == "function"
    assert call["id"]
    assert call["function"] == {"name": "add_function", "arguments": '{"name": "f"}'}
    assert reply.finish_reason == "tool_calls"
    assert reply.response["object"] == "chat.completion"
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == MESSAGES
    assert request.body["tools"] == TOOLS
    assert request.body["tool_choice"] == "auto"
    assert request.auth == f"Bearer {KEY}"


def test_content_reply_has_no_tool_calls_and_tool_choice_is_passed() -> None:
    with FakeOpenAI(script=[{"content": "TERMINATE"}]) as srv:
        reply = client_for(srv).complete(MESSAGES, TOOLS, tool_choice="required")
        assert srv.chat_requests[0].body["tool_choice"] == "required"
    assert reply.content == "TERMINATE"
    assert "tool_calls" not in reply.message
    assert reply.tool_calls == []


def test_without_tools_no_tools_key_is_sent() -> None:
    with FakeOpenAI(script=[{"content": "hi"}]) as srv:
        client_for(srv, temperature=0.0).complete(MESSAGES)
        body = srv.chat_requests[0].body
    assert "tools" not in body and "tool_choice" not in body
    assert body["temperature"] == 0.0


# -- retries ---------------------------------------------------------------------


def test_429_with_retry_after_is_retried_after_the_requested_wait() -> None:
    sleeps = Sleeps()
    script = [{"status": 429, "headers": {"Retry-After": "0.05"}}, TOOL_CALL]
    with FakeOpenAI(script=script) as srv:
        client = client_for(srv, sleeps, backoff_base=10.0)
        reply = client.complete(MESSAGES, TOOLS)
        assert len(srv.chat_requests) == 2
    assert sleeps == [0.05]  # the server's wait, not the 10 s backoff
    assert reply.tool_calls[0]["function"]["name"] == "add_function"
    assert reply.usage.retries == 1
    assert client.usage.retries == 1 and client.usage.calls == 1


def test_retry_after_with_real_sleep_waits_at_least_that_long() -> None:
    script = [{"status": 429, "headers": {"Retry-After": "0.3"}}, {"content": "ok"}]
    with FakeOpenAI(script=script) as srv:
        client = client_for(srv, sleep=time.sleep, backoff_base=0.0)
        start = time.monotonic()
        assert client.complete(MESSAGES).content == "ok"
        assert time.monotonic() - start >= 0.3


def test_retry_after_as_http_date_and_capped() -> None:
    when = formatdate(time.time() + 2, usegmt=True)
    script = [
        {"status": 503, "headers": {"Retry-After": when}},
        {"status": 429, "headers": {"Retry-After": "3600"}},
        {"content": "ok"},
    ]
    sleeps = Sleeps()
    with FakeOpenAI(script=script) as srv:
        client_for(srv, sleeps, max_retry_after=5.0).complete(MESSAGES)
    assert 0 < sleeps[0] <= 3
    assert sleeps[1] == 5.0


def test_500_then_success_uses_backoff() -> None:
    sleeps = Sleeps()
    with FakeOpenAI(script=[{"status": 500}, {"content": "ok"}]) as srv:
        reply = client_for(srv, sleeps, backoff_base=0.04).complete(MESSAGES)
    assert reply.content == "ok"
    assert len(sleeps) == 1 and 0.03 <= sleeps[0] <= 0.04


def test_backoff_grows_exponentially_and_is_capped() -> None:
    sleeps = Sleeps()
    script = [{"status": 502}, {"status": 503}, {"status": 500}, {"content": "ok"}]
    with FakeOpenAI(script=script) as srv:
        client = client_for(srv, sleeps, max_retries=3, backoff_base=1.0, backoff_max=2.5)
        assert client.complete(MESSAGES).content == "ok"
    assert len(sleeps) == 3
    for wait, ceiling in zip(sleeps, [1.0, 2.0, 2.5], strict=True):
        assert 0.75 * ceiling <= wait <= ceiling
    assert client.usage.retries == 3


def test_backoff_delay_jitter_stays_within_bounds() -> None:
    rng = random.Random(1)
    waits = [backoff_delay(4, 0.5, 30.0, rng) for _ in range(50)]
    assert all(6.0 <= w <= 8.0 for w in waits)
    assert len(set(waits)) > 1


def test_timeout_is_retried_then_reported() -> None:
    script = [{"delay": 2.0, "content": "late"}, {"delay": 2.0, "content": "late"}]
    with FakeOpenAI(script=script) as srv, pytest.raises(LLMError) as exc:
        client_for(srv, max_retries=1).complete(MESSAGES)
    assert len(srv.chat_requests) == 2
    assert str(exc.value) == (
        f"request to {srv.base_url} timed out after 0.2 s; gave up after 2 attempts "
        "(max_retries = 1)"
    )


def test_timeout_then_success() -> None:
    with FakeOpenAI(script=[{"delay": 2.0, "content": "late"}, {"content": "ok"}]) as srv:
        client = client_for(srv)
        assert client.complete(MESSAGES).content == "ok"
    assert client.usage.retries == 1


def test_retries_exhausted_on_429() -> None:
    script = [{"status": 429, "body": {"error": {"message": "Slow down"}}}] * 3
    with FakeOpenAI(script=script) as srv, pytest.raises(LLMError) as exc:
        client_for(srv).complete(MESSAGES)
    assert len(srv.chat_requests) == 3
    assert str(exc.value) == (
        f"the model endpoint {srv.base_url} answered 429 (rate limited: Slow down); "
        "gave up after 3 attempts (max_retries = 2)"
    )


def test_insufficient_quota_is_not_retried() -> None:
    body = {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}
    with (
        FakeOpenAI(script=[{"status": 429, "body": body}]) as srv,
        pytest.raises(LLMError, match=r"refused the request \(429: You exceeded your quota"),
    ):
        client_for(srv).complete(MESSAGES)
    assert len(srv.chat_requests) == 1


# -- one-line errors -----------------------------------------------------------


def test_missing_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LLMError) as exc:
        LLMClient.from_config(Config(root=tmp_path))
    assert str(exc.value) == "OPENAI_API_KEY is not set; set it or api_key_env in [tool.funcforge]"
    assert isinstance(exc.value, UserError)
    monkeypatch.delenv("MY_KEY", raising=False)
    config = Config(root=tmp_path, api_key_env="MY_KEY", base_url="https://llm.example.com/v1")
    with pytest.raises(LLMError, match=r"^MY_KEY is not set"):
        LLMClient.from_config(config)


def test_local_endpoint_works_without_a_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI(script=[{"content": "ok"}]) as srv:
        client = LLMClient.from_config(Config(root=tmp_path, base_url=srv.base_url))
        assert client.complete(MESSAGES).content == "ok"
        assert srv.chat_requests[0].auth == f"Bearer {PLACEHOLDER_KEY}"
    assert client.secrets() == ()


def test_rejected_key_names_the_variable_not_the_key() -> None:
    with FakeOpenAI(script=[{"content": "ok"}], api_key="sk-the-right-one") as srv:
        client = client_for(srv)
        with pytest.raises(LLMError) as exc:
            client.complete(MESSAGES)
        assert len(srv.chat_requests) == 1  # not retried
    assert str(exc.value) == (
        f"the model endpoint {srv.base_url} rejected the API key from OPENAI_API_KEY (401); "
        "check the key"
    )
    assert KEY not in str(exc.value)


def test_unknown_model() -> None:
    with (
        FakeOpenAI(script=[{"content": "ok"}], models=["gpt-known"]) as srv,
        pytest.raises(LLMError) as exc,
    ):
        client_for(srv, model="gpt-nope").complete(MESSAGES)
    message = str(exc.value)
    assert message.startswith(f"model 'gpt-nope' is not available at {srv.base_url} (404: ")
    assert message.endswith("set model in [tool.funcforge]")
    assert "\n" not in message


def test_wrong_path_is_not_reported_as_unknown_model() -> None:
    with (
        FakeOpenAI(script=[{"content": "ok"}]) as srv,
        pytest.raises(LLMError, match=r"has no chat completions API .*check base_url"),
    ):
        client_for(srv, base_url=srv.root_url + "/wrong").complete(MESSAGES)


def test_unreachable_endpoint_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    sleeps = Sleeps()
    client = LLMClient("m", api_key=KEY, base_url=url, timeout=0.5, max_retries=1, sleep=sleeps)
    with pytest.raises(LLMError) as exc:
        client.complete(MESSAGES)
    assert str(exc.value) == (
        f"cannot reach the model endpoint {url} (connection refused); gave up after 2 attempts "
        "(max_retries = 1)"
    )
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    "message",
    [
        "tools not supported",
        "registry.ollama.ai/library/gemma:2b does not support tools",
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "tools param requires --jinja flag",
    ],
)
def test_endpoint_without_tool_calling(message: str) -> None:
    with (
        FakeOpenAI(script=[{"content": "ok"}], reject_tools=message) as srv,
        pytest.raises(LLMError) as exc,
    ):
        client_for(srv).complete(MESSAGES, TOOLS)
    assert len(srv.chat_requests) == 1
    assert str(exc.value).startswith(
        f"model 'fake-model' at {srv.base_url} does not support tool calling (400: {message}"
    )
    assert str(exc.value).endswith("use a model with function calling")


def test_other_bad_request_is_reported_as_is() -> None:
    body = {
        "error": {"message": "Invalid schema for function 'add_function': bad", "param": "tools"}
    }
    with FakeOpenAI(script=[{"status": 400, "body": body}]) as srv, pytest.raises(LLMError) as exc:
        client_for(srv).complete(MESSAGES, TOOLS)
    assert str(exc.value) == (
        f"the model endpoint {srv.base_url} rejected the request "
        "(400: Invalid schema for function 'add_function': bad)"
    )


def test_malformed_200_replies_are_retried_then_answered() -> None:
    deep = "[" * 5000 + "]" * 5000
    script = [
        {"raw": "not json"},
        {"completion": {"object": "chat.completion", "choices": []}},
        {"raw": deep},
        {"content": "TERMINATE"},
    ]
    with FakeOpenAI(script=script) as srv:
        client = client_for(srv, max_retries=3)
        reply = client.complete(MESSAGES)
    assert reply.content == "TERMINATE"
    assert reply.usage.retries == 3 and client.usage.retries == 3


def test_malformed_200_replies_give_up_with_the_last_problem() -> None:
    script = [{"raw": "not json"}, {"completion": {"object": "chat.completion", "choices": []}}]
    with FakeOpenAI(script=script) as srv:
        client = client_for(srv, max_retries=1)
        with pytest.raises(
            LLMError, match=r"malformed chat completion: no 'choices'.*gave up after 2 attempts"
        ):
            client.complete(MESSAGES)


def test_server_messages_are_scrubbed_of_the_key() -> None:
    body = {"error": {"message": f"bad key {KEY} here"}}
    with FakeOpenAI(script=[{"status": 403, "body": body}]) as srv, pytest.raises(LLMError) as exc:
        client_for(srv).complete(MESSAGES)
    assert KEY not in str(exc.value)
    assert "bad key [REDACTED] here" in str(exc.value)


# -- usage -----------------------------------------------------------------------


def test_usage_accumulates_and_resets_per_step() -> None:
    usage_a = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    usage_b = {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}
    script = [
        {"content": "a", "usage": usage_a},
        {"status": 500},
        {"content": "b", "usage": usage_b},
        {"content": "c", "usage": usage_b},
    ]
    with FakeOpenAI(script=script) as srv:
        client = client_for(srv)
        first = client.complete(MESSAGES)
        client.complete(MESSAGES)
        assert client.usage == Usage(calls=2, prompt_tokens=150, completion_tokens=25, retries=1)
        assert client.usage.total_tokens == 175
        step = client.reset_usage()
        assert step.calls == 2
        assert client.usage == Usage()
        client.complete(MESSAGES)
        assert client.usage == Usage(calls=1, prompt_tokens=50, completion_tokens=5)
    assert first.usage == Usage(calls=1, prompt_tokens=100, completion_tokens=20)
    assert step.to_dict() == {
        "calls": 2,
        "prompt_tokens": 150,
        "completion_tokens": 25,
        "retries": 1,
    }


def test_endpoint_without_usage_counts_calls_only() -> None:
    completion = {"choices": [{"message": {"role": "assistant", "content": "x"}}]}
    with FakeOpenAI(script=[{"completion": completion}]) as srv:
        client = client_for(srv)
        client.complete(MESSAGES)
    assert client.usage == Usage(calls=1)


# -- configuration -----------------------------------------------------------------


def test_repr_never_shows_the_key() -> None:
    client = LLMClient("m", api_key=KEY, base_url="http://127.0.0.1:1/v1")
    assert KEY not in repr(client)
    assert repr(client) == "LLMClient(model='m', endpoint='http://127.0.0.1:1/v1')"
    assert client.secrets() == (KEY,)


def test_from_config_reads_key_env_timeout_and_retries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEAM_KEY", KEY)
    with FakeOpenAI(script=[{"status": 500}, {"content": "ok"}], api_key=KEY) as srv:
        config = Config(
            root=tmp_path,
            model="team-model",
            base_url=srv.base_url,
            api_key_env="TEAM_KEY",
            request_timeout=7.5,
            max_retries=1,
        )
        client = LLMClient.from_config(config, backoff_base=0.0)
        assert client.complete(MESSAGES).content == "ok"
        assert srv.chat_requests[0].body["model"] == "team-model"
    assert (client.timeout, client.max_retries, client.key_name) == (7.5, 1, "TEAM_KEY")


def test_base_url_from_environment_and_config_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(script=[{"content": "env"}]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        client = LLMClient.from_config(Config(root=tmp_path))
        assert client.endpoint == srv.base_url
        assert client.complete(MESSAGES).content == "env"
    configured = LLMClient.from_config(Config(root=tmp_path, base_url="http://127.0.0.1:9/v1"))
    assert configured.endpoint == "http://127.0.0.1:9/v1"


def test_azure_when_api_version_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZURE_KEY", KEY)
    with FakeOpenAI(script=[TOOL_CALL], api_key=KEY, models=["my-gpt4o"]) as srv:
        config = Config(
            root=tmp_path,
            model="my-gpt4o",
            base_url=srv.root_url,
            api_key_env="AZURE_KEY",
            api_version="2024-10-21",
        )
        client = LLMClient.from_config(config)
        reply = client.complete(MESSAGES, TOOLS)
        [request] = srv.chat_requests
    assert reply.tool_calls[0]["function"]["name"] == "add_function"
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.auth == KEY
    assert "api_version='2024-10-21'" in repr(client)


def test_azure_unknown_deployment_and_missing_base_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI(script=[{"content": "ok"}], models=["other"]) as srv:
        config = Config(root=tmp_path, model="gone", base_url=srv.root_url, api_version="v")
        with pytest.raises(LLMError, match=r"^model 'gone' is not available at"):
            LLMClient.from_config(config).complete(MESSAGES)
    with pytest.raises(LLMError, match=r"api_version is set \(Azure OpenAI\) but base_url is not"):
        LLMClient.from_config(Config(root=tmp_path, api_version="2024-10-21"))


def test_make_client_kinds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = Config(root=tmp_path, base_url="http://127.0.0.1:9/v1")
    assert isinstance(make_client(config), LLMClient)
    transcript = tmp_path / "t.jsonl"
    transcript.write_text('{"type": "header", "format": 1, "note": "empty"}\n')
    assert isinstance(make_client(config, "replay:t.jsonl"), ReplayClient)  # from config.root
    recorded = make_client(config, f"replay:{transcript}", record=tmp_path / "out.jsonl")
    assert isinstance(recorded, RecordingClient)
    assert isinstance(recorded.inner, ReplayClient)
    for bad in ("replay:", "openai", "live:x"):
        with pytest.raises(LLMError, match="--llm must be replay:FILE"):
            make_client(config, bad)


def test_retry_after_parsing() -> None:
    now = 1_000_000.0
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"Retry-After": formatdate(now + 30, usegmt=True)}, now) == 30.0
    assert retry_after_seconds({"Retry-After": formatdate(now - 30, usegmt=True)}, now) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"Retry-After": "-4"}) == 0.0
    assert retry_after_seconds({}) is None


def test_reply_from_completion_is_lenient_for_hand_written_replies() -> None:
    reply = reply_from_completion(
        {
            "choices": [
                {
                    "message": {
                        "tool_calls": [
                            {"function": {"name": "remove_function", "arguments": {"name": "f"}}}
                        ]
                    }
                }
            ]
        }
    )
    [call] = reply.tool_calls
    assert call == {
        "id": "call_0",
        "type": "function",
        "function": {"name": "remove_function", "arguments": json.dumps({"name": "f"})},
    }
    assert reply.content is None and reply.usage == Usage(calls=1)
    # A null name and content as a list of parts are kept for the optimizer to feed back.
    nameless = reply_from_completion(
        {
            "choices": [
                {
                    "message": {
                        "content": [{"type": "text", "text": "part one, "}, {"text": "two"}],
                        "tool_calls": [{"function": {"name": None, "arguments": None}}],
                    }
                }
            ]
        }
    )
    assert nameless.content == "part one, two"
    assert nameless.tool_calls[0]["function"] == {"name": "", "arguments": ""}
    with pytest.raises(ValueError, match=r"tool_calls\[0\] has no 'function' object"):
        reply_from_completion({"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]})
    with pytest.raises(ValueError, match="error: quota"):
        reply_from_completion({"error": {"message": "quota"}})


def test_retry_after_date_without_zone_is_gmt_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 1_000_000.0  # Mon, 12 Jan 1970 13:46:40 GMT
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        header = {"Retry-After": "Mon, 12 Jan 1970 13:47:10 -0000"}
        assert retry_after_seconds(header, now) == 30.0
    finally:
        monkeypatch.undo()
        time.tzset()
