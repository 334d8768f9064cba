"""Real editors, headless, against `funcforge serve`: the workspace, the run, the checks.

Each editor test copies samples/math-tools into a fresh git repository with a
transcript standing in for the model, runs the editor with a driver script
(parameters in the FUNCFORGE_E2E environment variable, findings written to a
JSON result file), then checks git and the file system. A missing editor fails
the test: CI installs them (scripts/setup.sh --editors).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, git, init_repo, log_label
from tests.lsp.conftest import revise_reply, write_transcript

HERE = Path(__file__).resolve().parent
FUNCTION = "convert_units"
CONTENT = "7946404a6be6"  # the toolset version the sample's traces log: its tools' content hash
TYPED = "# typed above\n"  # the line the drivers type above the function, never committed
RUN_TIMEOUT = 120.0  # seconds for a whole editor session; a hang fails the test
STEP_TIMEOUT_MS = 60_000  # each wait inside the driver


@dataclass
class Workspace:
    """A sample workspace in a real git repository, plus the scratch folders of one run."""

    root: Path
    transcript: Path
    scratch: Path
    traced: str  # short sha of the commit whose tools the sample's traces ran (content hash)

    @property
    def tool_file(self) -> Path:
        return self.root / "tools" / "units.py"

    @property
    def result(self) -> Path:
        """Where the driver writes its findings (JSON)."""
        return self.scratch / "result.json"

    @property
    def server_log(self) -> Path:
        return self.scratch / "server.log"

    def server_command(self) -> list[str]:
        """The server under the interpreter running pytest, so its installed funcforge runs."""
        return [sys.executable, "-m", "funcforge", "serve", "--log-file", str(self.server_log)]

    def options(self) -> dict[str, Any]:
        return {"allowExecution": True, "llm": f"replay:{self.transcript}"}


# A workspace whose path needs percent-encoding in URIs, and a tool file with a form feed
# (a page break, as Emacs users write them) and U+2028 above the function: neither breaks
# a line for LSP, Python or the editors, but both did for the server's copy of the buffer.
PAGED = "paged"
PAGED_FOLDER = "my tools ü"


def paged_units(text: str) -> str:
    return text.replace(
        "\n\n\ndef convert_units", "\n\n\x0c\n# Conversions\u2028 of units.\n\n\ndef convert_units"
    )


@pytest.fixture
def workspace(tmp_path: Path, request: pytest.FixtureRequest) -> Workspace:
    """samples/math-tools in a fresh git repo, a transcript next to it, a scratch home.

    Parametrized indirectly with `PAGED`: in `my tools ü/`, units.py with a page break."""
    paged = getattr(request, "param", None) == PAGED
    root = tmp_path / (PAGED_FOLDER if paged else "math-tools")
    shutil.copytree(SAMPLES / "math-tools", root, ignore=shutil.ignore_patterns(".funcforge"))
    init_repo(root)
    traced = git(root, "rev-parse", "--short=7", "HEAD").strip()  # the sample's tools, as logged
    if paged:  # a commit of its own: the traces name the sample's first version
        units = root / "tools" / "units.py"
        units.write_bytes(paged_units(units.read_text()).encode("utf-8"))
        git(root, "commit", "-qam", "a page break above convert_units")
    git(root, "config", "user.name", "Ada Lovelace")
    git(root, "config", "user.email", "ada@example.com")
    transcript = write_transcript(
        tmp_path / "transcript.jsonl",
        [revise_reply(), {"role": "assistant", "content": "TERMINATE"}],
    )
    scratch = tmp_path / "editor"
    scratch.mkdir()
    return Workspace(root=root, transcript=transcript, scratch=scratch, traced=traced)


def require(program: str) -> str:
    """The program's path; fails (never skips) when it is missing."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is not installed: run `scripts/setup.sh --editors` "
            "(apt packages neovim, emacs-nox, elpa-eglot)",
            pytrace=False,
        )
    return path


def editor_env(ws: Workspace) -> dict[str, str]:
    """The environment of one run: HOME and XDG_* in the scratch folder, the parameters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    home = ws.scratch / "home"
    for name in ("config", "data", "state", "cache", "runtime"):
        (home / name).mkdir(parents=True, exist_ok=True)
    (home / "runtime").chmod(0o700)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_RUNTIME_DIR=str(home / "runtime"),
        TERM="dumb",
        FUNCFORGE_E2E=json.dumps(
            {
                "root": str(ws.root),
                "file": str(ws.tool_file),
                "function": FUNCTION,
                "server": ws.server_command(),
                "options": ws.options(),
                "result": str(ws.result),
                "timeout_ms": STEP_TIMEOUT_MS,
            }
        ),
    )
    env.pop("OPENAI_API_KEY", None)  # the transcript answers; no key may reach the run
    return env


@dataclass
class Run:
    """One editor session: exit code, output, elapsed seconds and the driver's findings."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    result: dict[str, Any]


def run_editor(ws: Workspace, argv: list[str], *logs: Path) -> Run:
    """Run the editor in its own process group; kill the group when it overruns."""
    env = editor_env(ws)
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=ws.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"{argv[0]} did not finish within {RUN_TIMEOUT:.0f} s\n"
            + report(ws, stdout, stderr, *logs),
            pytrace=False,
        )
    seconds = time.monotonic() - start
    found = json.loads(ws.result.read_text()) if ws.result.exists() else {}
    return Run(proc.returncode, stdout, stderr, seconds, found)


def report(ws: Workspace, stdout: str, stderr: str, *logs: Path) -> str:
    """What to show when a run failed: the findings, the output, the logs."""
    parts = [f"result: {ws.result.read_text() if ws.result.exists() else '(none written)'}"]
    parts += [f"stdout:\n{stdout[-4000:]}", f"stderr:\n{stderr[-4000:]}"]
    for path in (ws.server_log, *logs):
        if path.exists():
            parts.append(f"{path.name}:\n{path.read_text(errors='replace')[-6000:]}")
    return "\n".join(parts)


def check_session(ws: Workspace, run: Run, *logs: Path) -> dict[str, Any]:
    """The checks every editor shares: what it saw, and what ended up in git."""
    found = run.result
    steps = ", ".join(f"{k} {v:.1f}" for k, v in (found.get("seconds") or {}).items() if v >= 0.05)
    print(f"editor session {run.seconds:.1f} s (steps, s: {steps})")  # shown with -s
    assert run.returncode == 0 and found.get("ok") is True, report(
        ws, run.stdout, run.stderr, *logs
    )
    # The traces name the tools' content hash: the server names the commit that had those
    # tools, as `funcforge log` does.
    assert log_label(ws.root, CONTENT) == ws.traced
    assert found["diagnostic"]["message"].startswith(
        f"4 of 13 logged calls failed on {ws.traced}: KeyError"
    )
    proposals = found["optimize"]["proposals"]
    assert len(proposals) == 1, found["optimize"]
    pid = proposals[0]
    assert pid in found["proposal_diagnostic"]["message"]
    title = found["action"]["title"]
    assert title.startswith(f"Apply funcforge proposal: revise {FUNCTION}"), title
    assert found["command"] == "funcforge.applyProposal"

    sha = found["apply"]["commit"]
    assert found["apply"]["files"] == ["tools/units.py"]
    assert git(ws.root, "rev-parse", "HEAD").strip() == sha
    subject, _, body = git(ws.root, "log", "-1", "--format=%s%n%b").partition("\n")
    assert subject == f"funcforge: revise {FUNCTION}"
    assert f"Funcforge-Proposal: {pid}" in body
    assert git(ws.root, "show", "--format=", "--name-only", "HEAD").split() == ["tools/units.py"]
    # Unsaved editor text never made the base version "dirty".
    base = git(ws.root, "rev-parse", "--short=7", "HEAD~1").strip()
    assert f"Funcforge-Base: {base}" in body and "dirty-" not in body
    # The commit holds exactly the proposal; the line the user typed stays theirs,
    # uncommitted, in the buffer and (once the editor saved it) on disk.
    committed = git(ws.root, "show", "HEAD:tools/units.py")
    assert "lengths = dict(_LENGTH, mile=1609.344)" in committed
    assert "table = _LENGTH if from_unit in _LENGTH else _MASS" not in committed
    assert TYPED not in committed
    assert found["buffer_text"] == committed.replace(f"def {FUNCTION}(", f"{TYPED}def {FUNCTION}(")
    assert found["saved_text"] == found["buffer_text"]
    assert ws.tool_file.read_text() == found["buffer_text"]
    assert git(ws.root, "status", "--porcelain", "--", "tools").strip() == "M tools/units.py"
    diff = git(ws.root, "diff", "-U0", "HEAD", "--", "tools")
    assert [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")] == [
        "+" + TYPED.rstrip("\n")
    ]
    # After Apply, with the typed line above it, the failures sit on the function's name
    # and read as history (they were logged on the version before the fix).
    history = found["history"]
    assert history["message"].startswith(f"31% errors on {ws.traced} (before your change)")
    assert history.get("lnum", history.get("line")) == history.get(
        "def_lnum", history.get("def_line")
    )
    hover = found["hover"]
    hover_text = hover["value"] if isinstance(hover, dict) else hover
    assert f"Failures logged on {ws.traced}, before your change" in hover_text
    return found
