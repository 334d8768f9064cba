"""Attacks on issue 13's guarantees, with the real CLI on a copy of samples/math-tools.

Test-split traces arriving in unusual ways (any case, padded, only in the task,
through an outcome sidecar, in a file named anything) never reach the
optimizer's requests or the statistics; the early-stop counter of `log` is the
policy's (the trainer's steps that made no commit included); a proposal made
after a roll-back names its base's score.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from funcforge.cli import main as cli_main
from tests.conftest import SAMPLES, git, init_repo
from tests.fakes.openai_server import FakeOpenAI

HELD_OUT_MARKERS = ["LEAKUPPER", "LEAKTITLE", "LEAKSPACE", "LEAKTASKFIELD", "LEAKPLAIN", "LEAKSIDE"]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(args))
    return code, out.getvalue(), err.getvalue()


def sample(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(
        SAMPLES / "math-tools", ws, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    return ws


def commit_all(ws: Path) -> None:
    init_repo(ws)
    git(ws, "config", "user.name", "Ada Lovelace")
    git(ws, "config", "user.email", "ada@example.com")


def held_out_variant(template: dict[str, Any], marker: str, **fields: Any) -> dict[str, Any]:
    """A copy of a sample trace whose task, answer and question all carry `marker`."""
    t = json.loads(json.dumps(template))
    t.pop("split", None)
    t["id"] = f"id-{marker}"
    t["task"] = {"id": f"task-{marker}", "input": f"Question {marker}?", "expected": f"{marker}42"}
    t["messages"][0]["content"] = f"Question {marker}?"
    t.update(fields)
    return t


def add_odd_test_traces(ws: Path) -> None:
    """Six test-split traces, each marked test in another way."""
    first = json.loads((ws / "traces" / "run-2025-11-20.jsonl").read_text().splitlines()[0])
    in_task = held_out_variant(first, "LEAKTASKFIELD")
    in_task["task"]["split"] = "test"  # a task file line copied into the trace
    odd = [
        held_out_variant(first, "LEAKUPPER", split="TEST"),
        held_out_variant(first, "LEAKTITLE", split="Test"),
        held_out_variant(first, "LEAKSPACE", split=" test "),
        in_task,
        held_out_variant(first, "LEAKPLAIN", split="test"),
    ]
    (ws / "traces" / "evaluation (copy).jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in odd)
    )
    side = ws / "traces" / "side"
    side.mkdir()
    (side / "a.jsonl").write_text(json.dumps(held_out_variant(first, "LEAKSIDE")) + "\n")
    (side / "outcomes.jsonl").write_text(
        json.dumps({"trace_id": "id-LEAKSIDE", "score": 0.0, "split": "Test"}) + "\n"
    )


def test_test_split_in_any_spelling_never_reaches_the_prompt_or_the_statistics(
    tmp_path: Path,
) -> None:
    ws = sample(tmp_path)
    code, before, err = cli("stats", str(ws), "--json")
    assert code == 0, err
    add_odd_test_traces(ws)
    commit_all(ws)
    with FakeOpenAI(script=[{"content": "TERMINATE"}]) as srv:
        (ws / "funcforge.toml").write_text(f'base_url = "{srv.base_url}"\nmodel = "fake-model"\n')
        code, out, err = cli("optimize", str(ws), "--no-execute", "--json")
        requests = [json.dumps(r.to_json()) for r in srv.chat_requests]
    assert code == 0, err
    assert len(requests) == 1
    sample_traces = (ws / "traces" / "run-2025-11-20.jsonl").read_text().splitlines()
    train_ids = {json.loads(x)["task"]["id"] for x in sample_traces if '"split": "train"' in x}
    assert any(f"### Task {i} " in requests[0] for i in train_ids)  # histories were shown
    for marker in HELD_OUT_MARKERS:
        assert marker not in requests[0], marker
    # The statistics: the six are counted as held out, the learnable figures unchanged.
    # Twice: a second run reads the index (with a sidecar among the files) again.
    for _ in range(2):
        code, out, err = cli("stats", str(ws), "--json")
        assert code == 0, err
        now, was = json.loads(out), json.loads(before)
        assert now["held_out_traces"] == was["held_out_traces"] + 6
        assert now["tools"] == was["tools"]
        assert [v for v in now["versions"] if v["split"] == "train"] == [
            v for v in was["versions"] if v["split"] == "train"
        ]
