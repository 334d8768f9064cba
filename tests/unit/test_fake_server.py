"""The fake OpenAI-compatible server, driven by the real openai SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.conftest import REPO_ROOT
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-test-fake-server-0123456789"


def sdk(srv: FakeOpenAI, key: str = KEY, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=key, timeout=timeout, max_retries=0)


def chat(client: openai.OpenAI, model: str = "fake-model", **kw):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **kw
    )


TOOLS = [
    {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
    }
]


def test_tool_calls_and_content_replies_parse_in_the_sdk() -> None:
    script = [
        {"tool_calls": [{"name": "add_function", "arguments": {"name": "g", "code": "x"}}]},
        {"tool_calls": [{"name": "remove_function", "arguments": '{"name": "broken'}]},
        {"content": "TERMINATE"},
    ]
    with FakeOpenAI(script=script) as srv:
        client = sdk(srv)
        first = chat(client, tools=TOOLS)
        second = chat(client)
        third = chat(client)
        assert srv.remaining == 0
    call = first.choices[0].message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "add_function"
    assert json.loads(call.function.arguments) == {"name": "g", "code": "x"}
    assert first.choices[0].finish_reason == "tool_calls"
    # string arguments are passed through untouched, even when not valid JSON
    assert second.choices[0].message.tool_calls[0].function.arguments == '{"name": "broken'
    assert third.choices[0].message.content == "TERMINATE"
    assert third.choices[0].message.tool_calls is None
    assert third.choices[0].finish_reason == "stop"
    assert first.usage is not None and first.usage.prompt_tokens > 0
    assert first.usage.completion_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens


def test_requests_are_recorded_with_body_and_auth() -> None:
    with FakeOpenAI(script=[{"content": "ok"}]) as srv:
        chat(sdk(srv), tools=TOOLS, temperature=0)
        [request] = srv.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == [{"role": "user", "content": "hi"}]
    assert request.body["tools"] == TOOLS
    assert request.body["temperature"] == 0
    assert request.had_auth is True
    assert request.auth == f"Bearer {KEY}"
    assert "authorization" not in request.headers
    assert KEY not in repr(request)
    assert KEY not in json.dumps(request.to_json())


def test_usage_and_completion_overrides() -> None:
    completion = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "v"}, "finish_reason": "stop"}
        ],
    }
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    with FakeOpenAI(script=[{"content": "a", "usage": usage}, {"completion": completion}]) as srv:
        client = sdk(srv)
        a = chat(client)
        b = chat(client)
    assert a.usage is not None and (a.usage.prompt_tokens, a.usage.completion_tokens) == (7, 3)
    assert b.id == "x" and b.choices[0].message.content == "v" and b.usage is None


def test_error_statuses_with_headers_and_body() -> None:
    script = [
        {"status": 429, "headers": {"Retry-After": "7"}, "body": {"error": {"message": "slow"}}},
        {"status": 500},
        {"status": 503, "body": "plain text"},
    ]
    with FakeOpenAI(script=script) as srv:
        client = sdk(srv)
        with pytest.raises(openai.RateLimitError) as rate:
            chat(client)
        with pytest.raises(openai.InternalServerError) as server:
            chat(client)
        with pytest.raises(openai.InternalServerError) as unavailable:
            chat(client)
    assert rate.value.response.headers["retry-after"] == "7"
    assert rate.value.body == {"message": "slow"}
    assert server.value.status_code == 500
    assert unavailable.value.status_code == 503
    assert unavailable.value.response.text == "plain text"


def test_raw_body_is_sent_verbatim() -> None:
    with FakeOpenAI(script=[{"raw": "not json"}]) as srv:
        req = urllib.request.Request(
            srv.base_url + "/chat/completions",
            data=json.dumps({"model": "m", "messages": []}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
            assert resp.read() == b"not json"


def test_delay_makes_the_client_time_out() -> None:
    with FakeOpenAI(script=[{"delay": 2.0, "content": "late"}, {"content": "on time"}]) as srv:
        with pytest.raises(openai.APITimeoutError):
            chat(sdk(srv, timeout=0.2))
        assert chat(sdk(srv)).choices[0].message.content == "on time"


def test_latency_applies_to_every_reply() -> None:
    with FakeOpenAI(script=[{"content": "a"}], latency=0.2) as srv:
        start = time.monotonic()
        chat(sdk(srv))
        assert time.monotonic() - start >= 0.2


def test_exhausted_script_answers_500_or_the_responder() -> None:
    with FakeOpenAI(script=[{"content": "only"}]) as srv:
        client = sdk(srv)
        chat(client)
        with pytest.raises(openai.InternalServerError) as exc:
            chat(client)
    assert "script exhausted after 1 replies" in str(exc.value)

    seen = []

    def responder(request):
        seen.append(request.body["messages"][-1]["content"])
        return {"content": f"echo {len(seen)}"}

    with FakeOpenAI(responder=responder) as srv:
        assert chat(sdk(srv)).choices[0].message.content == "echo 1"
        assert chat(sdk(srv)).choices[0].message.content == "echo 2"
    assert seen == ["hi", "hi"]


def test_cycle_repeats_the_script() -> None:
    with FakeOpenAI(script=[{"content": "a"}, {"content": "b"}], cycle=True) as srv:
        got = [chat(sdk(srv)).choices[0].message.content for _ in range(3)]
    assert got == ["a", "b", "a"]


def test_wrong_api_key_is_401_and_does_not_use_the_script() -> None:
    with FakeOpenAI(script=[{"content": "ok"}], api_key=KEY) as srv:
        with pytest.raises(openai.AuthenticationError) as exc:
            chat(sdk(srv, key="sk-wrong"))
        assert exc.value.code == "invalid_api_key"
        assert srv.remaining == 1
        assert chat(sdk(srv)).choices[0].message.content == "ok"


def test_unknown_model_is_404_model_not_found_and_models_are_listed() -> None:
    with FakeOpenAI(script=[{"content": "ok"}], models=["known"]) as srv:
        client = sdk(srv)
        with pytest.raises(openai.NotFoundError) as exc:
            chat(client, model="other")
        assert exc.value.code == "model_not_found"
        assert chat(client, model="known").choices[0].message.content == "ok"
        assert [m.id for m in client.models.list()] == ["known"]


def test_reject_tools_is_400_mentioning_tools() -> None:
    with FakeOpenAI(script=[{"content": "ok"}], reject_tools=True) as srv:
        client = sdk(srv)
        with pytest.raises(openai.BadRequestError) as exc:
            chat(client, tools=TOOLS)
        assert "tools not supported" in str(exc.value)
        assert chat(client).choices[0].message.content == "ok"


def test_path_without_v1_and_unknown_path() -> None:
    with FakeOpenAI(script=[{"content": "ok"}]) as srv:
        client = openai.OpenAI(base_url=srv.root_url, api_key=KEY, max_retries=0)
        assert chat(client).choices[0].message.content == "ok"
        assert srv.requests[0].path == "/chat/completions"
        wrong = openai.OpenAI(base_url=srv.root_url + "/nope", api_key=KEY, max_retries=0)
        with pytest.raises(openai.NotFoundError):
            chat(wrong)
        assert srv.remaining == 0


def test_azure_deployment_path_with_api_version() -> None:
    with FakeOpenAI(script=[{"content": "azure"}], api_key=KEY, models=["my-deploy"]) as srv:
        client = openai.AzureOpenAI(
            azure_endpoint=srv.root_url, api_version="2024-10-21", api_key=KEY, max_retries=0
        )
        reply = chat(client, model="my-deploy")
        with pytest.raises(openai.NotFoundError) as exc:
            chat(client, model="missing")
        [request, _] = srv.requests
    assert reply.choices[0].message.content == "azure"
    assert request.path == "/openai/deployments/my-deploy/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.auth == KEY  # Azure sends the key in the api-key header
    assert request.model == "my-deploy"
    assert exc.value.code == "DeploymentNotFound"


def test_runs_as_a_process(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"content": "from a process"}]))
    port_file = tmp_path / "port"
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--script",
            str(script),
            "--port-file",
            str(port_file),
            "--requests-log",
            str(log),
            "--api-key",
            KEY,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url == f"http://127.0.0.1:{port_file.read_text()}/v1"
        client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        assert chat(client).choices[0].message.content == "from a process"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    [logged] = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert logged["had_auth"] is True
    assert KEY not in log.read_text()


def test_process_rejects_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text('{"not": "a list"}')
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fakes.openai_server", "--script", str(script)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "must be a JSON list of objects" in proc.stderr
