"""End to end against a real model: llama.cpp's OpenAI-compatible server, SmolLM2-135M, 8k context.

Through the real `openai` SDK and the real CLI: `optimize` with the sample's
default configuration must fit the context (the endpoint's tokenizer counts,
a refusal shrinks the prompt) and end with a proposal or a clear "no valid
action"; the recorded transcript replays to the same result without the
server. (test_local_train.py: one epoch of `train` with the function-calling agent.) A
135M model writes poor tools: the point is the real wire, tokenizer, limits
and garbage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, init_repo
from tests.realmodel.conftest import CONTEXT, LocalModel

RUN_TIMEOUT = 2400  # seconds per CLI run: a hang fails the test instead of holding CI


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def outcome(self) -> str:
        """The run's result without run-specific ids: the proposal and its diff, or the error."""
        if self.code == 0:
            text = re.sub(r"\b[0-9a-f]{6}\b", "<id>", self.stdout)
            return "\n".join(line for line in text.splitlines() if not line.startswith("Usage:"))
        errors = [line for line in self.stderr.splitlines() if line.startswith("funcforge: error")]
        return errors[-1] if errors else self.stderr[-500:]


def workspace(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(
        SAMPLES / "math-tools", dest, ignore=shutil.ignore_patterns(".funcforge", "__pycache__")
    )
    return init_repo(dest)


def configure(root: Path, **keys: object) -> None:
    """Add keys to the sample's [tool.funcforge] table (its budget settings stay the defaults)."""
    path = root / "pyproject.toml"
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())
    text = path.read_text(encoding="utf-8").replace(
        "[tool.funcforge]\n", f"[tool.funcforge]\n{lines}", 1
    )
    path.write_text(text, encoding="utf-8")


# Patience with a slow machine (a 135M model on two shared cores can take minutes
# for an 8k prompt; a single-slot server gains nothing from a retry) and one action
# per step, to bound the run. token_budget and context_window stay unset: the
# budget must come from the endpoint.
SLOW_MACHINE = {
    "request_timeout": 1200,
    "max_retries": 1,
    "step_timeout": 2000,
    "max_actions_per_step": 1,
}


def funcforge(*args: str, base_url: str | None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if base_url:
        env["OPENAI_BASE_URL"] = base_url  # a local endpoint needs no key
    done = subprocess.run(
        [sys.executable, "-m", "funcforge", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def ends_clearly(run: Run) -> bool:
    """A proposal, or a clear "no valid action" (the step's own words), and nothing else."""
    if run.code == 0:
        proposed = re.search(r"^Proposal [0-9a-f]{6}: ", run.stdout, re.M) is not None
        return proposed or "No valid action: nothing proposed." in run.stdout
    return "no valid action in" in run.stderr


def exchanges(transcript: Path) -> list[dict]:
    lines = [json.loads(line) for line in transcript.read_text(encoding="utf-8").splitlines()]
    return [e for e in lines if e.get("type") == "exchange"]


@pytest.fixture(scope="module")
def recorded(local_model: LocalModel, tmp_path_factory: pytest.TempPathFactory):
    """One live `optimize` run with the sample's default configuration, recorded."""
    tmp = tmp_path_factory.mktemp("optimize-live")
    root = workspace(tmp, "math-tools")
    configure(root, **SLOW_MACHINE)
    transcript = tmp / "live.transcript.jsonl"
    run = funcforge(
        "optimize",
        str(root),
        "--no-execute",
        "--record",
        str(transcript),
        base_url=local_model.base_url,
    )
    return run, transcript, local_model


def test_optimize_fits_the_context_and_ends_clearly(recorded) -> None:
    run, transcript, model = recorded
    assert ends_clearly(run), f"exit {run.code}\n{run.stderr[-3000:]}\nserver:\n{model.log_tail()}"
    assert "maximum context length" not in run.outcome()
    answered = [e for e in exchanges(transcript) if "response" in e]
    assert answered, "no request was answered"
    for exchange in answered:
        usage = exchange["response"]["usage"]
        assert usage["prompt_tokens"] + usage["completion_tokens"] <= CONTEXT
        # The answer is capped to the room kept for it, learnt from the context.
        assert exchange["request"].get("max_tokens", 0) <= CONTEXT // 4
    refused = [e for e in exchanges(transcript) if "context_overflow" in e]
    for _ in refused:  # each refusal was said, and followed by a smaller prompt
        assert "asking again with fewer histories" in run.stderr
    # The endpoint's tokenizer counted, and its context was learnt or told.
    counts = [
        json.loads(line)
        for line in transcript.read_text(encoding="utf-8").splitlines()
        if '"type": "tokens"' in line
    ]
    assert counts and counts[0]["tokenizer"] == "endpoint /extras/tokenize/count"
    # Tool calls came in the endpoint's own format (chatml-function-calling).
    calls = [
        call
        for e in answered
        for call in e["response"]["choices"][0]["message"].get("tool_calls") or []
    ]
    for call in calls:
        assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)


def test_replay_of_the_real_transcript_gives_the_same_result(recorded, tmp_path: Path) -> None:
    run, transcript, _ = recorded
    assert ends_clearly(run), run.stderr[-2000:]
    root = workspace(tmp_path, "math-tools")
    configure(root, **SLOW_MACHINE)
    again = funcforge(
        "optimize", str(root), "--no-execute", "--llm", f"replay:{transcript}", base_url=None
    )
    assert again.code == run.code, again.stderr[-2000:]
    assert again.outcome() == run.outcome()
    assert "no recorded answer matches" not in again.stderr
