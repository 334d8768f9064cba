"""The command line attacked as a new user and a CI system would (issue 17, second pass).

Each test pins a defect found by using the real CLI in real git repositories:
a command printed by `train` that failed when pasted, bad `train` input found
only after a worktree (or an evaluation) was made, `--output` ignored by text
`check`, reports written unreadable to others, a review range that named no
commit read as empty, verdicts claimed without a check, the wrong trace lines
beside a call, a plot format traceback, `--help` into a closed pipe, a
pre-push hook that compared HEAD with itself, and adopted training versions
without scores (so `rollback --best` reverted them).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from funcforge.cli import main as cli_main
from funcforge.errors import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_FOUND
from funcforge.toolset.toolset import load_toolset
from funcforge.training.runs import adoption_hint
from funcforge.training.trainer import Trainer, TrainOptions
from tests.conftest import git
from tests.unit.test_history_support import (
    make_workspace,
    scores,
    sha,
    trained,
    user_commit,
    write_traces,
)
from tests.unit.test_review_check import call_trace, history  # noqa: F401 (a fixture)
from tests.unit.test_training_runs import make_run

TIMEOUT = 120


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("funcforge: error: "), err
    return lines[0]


# ------------------------------------------------------------------ train: pasted hints


def test_the_summary_commands_name_the_workspace_they_were_run_on() -> None:
    lines = adoption_hint("r1", "funcforge/train/r1", "a" * 40, "b" * 40, "samples/math tools")
    assert "funcforge train 'samples/math tools' --adopt r1" in lines[0]
    assert "funcforge train 'samples/math tools' --clean r1" in lines[1]
    here = adoption_hint("r1", "funcforge/train/r1", "a" * 40, "b" * 40, ".")
    assert "funcforge train --adopt r1" in here[0] and "funcforge train --clean r1" in here[1]


def test_clean_given_a_folder_takes_it_as_the_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_workspace(tmp_path / "ws")
    run = make_run(config)
    monkeypatch.chdir(tmp_path)
    # `funcforge train --clean ws` used to look for a run named "ws"
    code, out, err = cli(capsys, "train", "--clean", "ws")
    assert code == 0, err
    assert "removed the worktree of run 20260101-000000" in out
    assert not Path(run["worktree"]).exists()


# ------------------------------------------------------------------ train: inputs first


def _train_workspace(tmp_path: Path) -> Path:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    tasks = [{"id": f"t{i}", "input": "q", "expected": "1", "split": "train"} for i in range(3)]
    (root / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    (root / "test-only.jsonl").write_text(
        json.dumps({"id": "x", "input": "q", "expected": "1", "split": "test"}) + "\n"
    )
    (root / "answers.jsonl").write_text(
        json.dumps({"type": "header", "format": 1, "note": "empty"}) + "\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", "tasks")
    return root


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--tasks", "nope.jsonl"], "nope.jsonl does not exist"),
        (["--tasks", "test-only.jsonl"], "no train tasks"),
        (["--llm", "replay:missing.jsonl"], "missing.jsonl not found"),
        (["--llm", "replay:"], "--llm must be replay:FILE"),
        (["--agent", "bogus"], "unknown agent `bogus`"),
        (["--agent", "command:"], "unknown agent `command:`"),
        (["--epochs", "-1"], "epochs must be at least 0"),
        (["--patience", "0"], "patience must be at least 1"),
        (["--concurrency", "0"], "concurrency must be at least 1"),
        (["--batch-size", "0"], "batch size must be at least 1"),
    ],
)
def test_train_refuses_bad_input_before_any_branch_worktree_or_evaluation(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    says: str,
) -> None:
    root = _train_workspace(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(root)
    argv = ["train", ".", "--tasks", "tasks.jsonl", "--agent", "command:python3 agent.py"]
    argv += ["--llm", "replay:answers.jsonl", *extra]
    code, _, err = cli(capsys, *argv)
    assert code == EXIT_ERROR, err
    assert says in one_line_error(err)
    # before: a branch and a worktree (a bad task file), or the whole initial
    # evaluation and the baseline (a missing transcript), were made first
    assert not (root / ".funcforge" / "train").exists()
    assert git(root, "branch", "--list", "funcforge/train/*") == ""


def test_a_replayed_transcript_is_read_from_where_train_was_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncommitted transcript beside the tools is not in the run's worktree: pin its path."""
    root = _train_workspace(tmp_path)
    (root / "mine.jsonl").write_text(json.dumps({"type": "header", "format": 1}) + "\n")
    monkeypatch.chdir(tmp_path)  # relative to the workspace, not to the working directory
    options = TrainOptions(tasks="tasks.jsonl", llm="replay:mine.jsonl", agent="command:true")
    trainer = Trainer(root, options)
    trainer.check_inputs()
    assert trainer.settings["llm"] == f"replay:{(root / 'mine.jsonl').resolve()}"


# ------------------------------------------------------------------ train --adopt: scores


def test_adopted_versions_keep_their_scores_so_rollback_best_keeps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    run = make_run(config)
    base, s1 = run["base"], run["s1"]
    write_traces(root, base[:7], scores(0.5, 30))  # the user's own logged runs
    worktree = Path(run["worktree"])
    name = "20260101-000000-epoch-01.jsonl"
    write_traces(worktree, base[:7], scores(0.5, 30), f"traces/funcforge-train/{name}")
    write_traces(worktree, s1[:7], scores(0.9, 30), f"traces/funcforge-train/{name}")
    code, out, err = cli(capsys, "train", str(root), "--adopt", "latest")
    assert code == 0, err
    assert sha(root) == s1 and "trace file(s) to traces/funcforge-train/" in out
    assert (root / "traces" / "funcforge-train" / name).is_file()
    code, out, _ = cli(capsys, "log", str(root), "--json")
    best = json.loads(out)["best"]
    assert best["version"] == s1 and best["n"] == 30
    # before: the run's traces stayed in its worktree, s1 had "no traces", and
    # `rollback --best` reverted the adopted toolset to the base
    cli(capsys, "rollback", str(root), "--best")
    assert sha(root) == s1


def test_adopt_after_clean_reads_the_kept_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    run = make_run(config)
    assert cli(capsys, "train", str(config.root), "--clean")[0] == 0
    code, _, err = cli(capsys, "train", str(config.root), "--adopt", "latest")
    assert code == 0, err
    assert sha(config.root) == run["s1"]
    kept = config.root / "traces" / "funcforge-train" / "20260101-000000-epoch-00.jsonl"
    assert kept.is_file()


# ------------------------------------------------------------------ check --output, modes


def test_text_check_writes_to_output_and_the_file_is_readable(
    history: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    root = history["root"]
    out_file = tmp_path / "check.txt"
    code, out, err = cli(capsys, "check", root, "--base", "main", "-o", str(out_file))
    assert code == EXIT_FOUND, err
    assert out == ""  # before: printed to stdout and no file written
    assert "shout: " in out_file.read_text() and "regression" in out_file.read_text()
    for fmt in ("sarif", "junit", "json"):
        target = tmp_path / f"check.{fmt}"
        assert cli(capsys, "check", root, "--base", "main", "--format", fmt, "-o", str(target))[
            0
        ] == (EXIT_FOUND)
        # before: mkstemp's 0600, unreadable by an uploader running as another user
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    review = tmp_path / "review.md"
    assert cli(capsys, "review", "main", root, "--no-execute", "-o", str(review))[0] == 0
    assert stat.S_IMODE(review.stat().st_mode) == 0o644


# ------------------------------------------------------------------ review


def test_review_refuses_a_range_whose_end_names_no_commit(
    history: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    root = history["root"]
    code, out, err = cli(capsys, "review", "main..nope", root)
    # before: exit 0 and "No commit in this range changes tool files"
    assert code == EXIT_ERROR and out == ""
    assert "'nope' names no commit" in one_line_error(err)
    code, _, err = cli(capsys, "review", "main...nope", root)
    assert code == EXIT_ERROR and "'nope' names no commit" in err
    # an option is not a range (git log would take --output=FILE and write there)
    target = tmp_path / "written-by-git"
    code, _, err = cli(capsys, "review", "--", f"--output={target}", root)
    assert code == EXIT_ERROR and "not a range" in err and not target.exists()
    # three dots work
    code, md, err = cli(capsys, "review", "main...HEAD", root, "--no-execute")
    assert code == 0 and "`" + history["o1"][:7] + "`" in md, err


def test_review_without_execution_claims_no_verdict(
    history: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, md, _ = cli(capsys, "review", "main", history["root"], "--no-execute")
    assert code == 0
    assert "no regression found" not in md  # before: said so with nothing checked
    assert "replay checks not run (--no-execute)" in md
    code, out, _ = cli(capsys, "review", "main", history["root"], "--no-execute", "--json")
    assert json.loads(out)["replay_checked"] is False


def test_review_names_each_calls_own_trace_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    content = load_toolset(config).content_hash()
    traces = [call_trace(i, content, "add", {"a": i, "b": 1}, str(i + 1), 1.0) for i in range(4)]
    (root / "traces").mkdir()
    (root / "traces" / "run.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    git(root, "add", "traces")
    git(root, "commit", "-qm", "logged runs")
    other = (root / "tools" / "other.py").read_text()
    user_commit(root, "tools/other.py", other.replace("return a + b", "return a - b"), "minus")
    code, md, err = cli(capsys, "review", "HEAD~1", str(root))
    assert code == 0, err
    rows = [line for line in md.splitlines() if line.startswith("| regression | add(")]
    assert len(rows) == 4, md
    for row in rows:
        a = int(row.split("add(a=", 1)[1].split(",", 1)[0])
        refs = row.rsplit("|", 2)[1].strip()
        # before: every row listed the function's first three trace lines
        assert refs == f"traces/run.jsonl:{a + 1}", row
    code, out, _ = cli(capsys, "review", "HEAD~1", str(root), "--json")
    finding = json.loads(out)["commits"][0]["findings"][0]
    assert len(finding["call_refs"]) == len(finding["calls"]) == 4


def test_review_says_why_a_root_commit_was_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    git(root, "checkout", "-q", "--orphan", "other")
    git(root, "commit", "-q", "-m", "unrelated")
    git(root, "checkout", "-q", "main")
    code, md, err = cli(capsys, "review", "other..main", str(root))
    assert code == 0, err
    row = next(line for line in md.splitlines() if line.startswith("| `"))
    assert "not checked (a root commit: no parent)" in row and "--no-execute" not in row


# ------------------------------------------------------------------ log --plot


def test_plot_to_an_unknown_format_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, *_ = trained(tmp_path)
    target = tmp_path / "plot.txt"
    code, _, err = cli(capsys, "log", str(config.root), "--plot", str(target))
    # before: matplotlib's ValueError as a traceback, exit 1 (the "regression found" code)
    assert code == EXIT_ERROR
    line = one_line_error(err)
    assert "cannot write .txt files" in line and ".png" in line and not target.exists()
    code, _, err = cli(capsys, "log", str(config.root), "--plot", str(tmp_path / "p.svg"))
    assert code == 0 and (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml"), err


# ------------------------------------------------------------------ pipes


@pytest.mark.parametrize("argv", [["train", "--help"], ["--version"], ["check", "--help"]])
def test_help_and_version_into_a_closed_pipe_say_141(tmp_path: Path, argv: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "funcforge", *argv],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            env=env,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == "" and proc.returncode == EXIT_BROKEN_PIPE


# ------------------------------------------------------------------ pre-commit pre-push


def test_check_under_pre_push_compares_the_pushed_range(
    history: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = history["root"]
    # pushing: the work tree is HEAD, so "working tree against HEAD" found nothing
    assert cli(capsys, "check", root)[0] == 0
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", history["o1"])
    monkeypatch.setenv("PRE_COMMIT_TO_REF", history["h1"])
    code, out, _ = cli(capsys, "check", root)
    assert code == EXIT_FOUND and "shout" in out
    # explicit refs win over pre-commit's
    assert cli(capsys, "check", root, "--base", "HEAD")[0] == 0


def test_the_pre_commit_hook_definition_is_the_documented_one() -> None:
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "- id: funcforge-check" in text and "entry: funcforge check" in text
    assert "pass_filenames: false" in text
    docs = (REPO_ROOT / "docs" / "ci.md").read_text()
    assert "PRE_COMMIT_FROM_REF" in docs and "args: [" in docs


# ------------------------------------------------------------------ pin, optimize: bad input


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ('{"x": 1}', "no parameter 'x' (parameters: a, b)"),
        ("{}", "missing 'a', 'b'"),
        ('{"a": 1}', "missing 'b'"),
    ],
)
def test_a_pin_whose_arguments_cannot_bind_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], call: str, says: str
) -> None:
    config = make_workspace(tmp_path / "ws")
    code, _, err = cli(
        capsys, "pin", str(config.root), "--function", "add", "--args", call, "--expected", "2"
    )
    # before: pinned, then failing with TypeError under every version (it pinned nothing)
    assert code == EXIT_ERROR
    assert f"--args do not fit add: {says}" in one_line_error(err)
    assert not (config.state_path / "expectations.jsonl").exists()
    code, _, err = cli(
        capsys,
        "pin",
        str(config.root),
        "--function",
        "add",
        "--args",
        '{"a": 1, "b": 1}',
        "--expected",
        "2",
    )
    assert code == 0, err


def test_optimize_refuses_a_folder_with_no_tools_and_no_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_workspace(tmp_path / "ws")
    empty = config.root / "empty"
    empty.mkdir()
    code, _, err = cli(capsys, "optimize", str(empty), "--llm", "replay:nothing.jsonl")
    # before: made .funcforge/ there and asked the model about an empty toolset
    assert code == EXIT_ERROR
    assert "nothing to optimize: no tool files" in one_line_error(err)
    assert list(empty.iterdir()) == []


# ------------------------------------------------------------------ JUnit as CI systems read it


def test_junit_names_repository_paths_and_is_never_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xml.etree import ElementTree as ET

    config = make_workspace(tmp_path / "repo", sub="agent")
    ws = config.root
    content = load_toolset(config).content_hash()
    traces = [call_trace(i, content, "add", {"a": i, "b": 1}, str(i + 1), 1.0) for i in range(2)]
    (ws / "traces").mkdir()
    (ws / "traces" / "run.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "logged runs")
    # nothing changed: one passing case (Jenkins fails a report with no test at all)
    code, out, _ = cli(capsys, "check", str(ws), "--format", "junit")
    suite = ET.fromstring(out).find("testsuite")
    assert code == 0 and suite is not None and suite.get("tests") == "1"
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "no tool function changed since HEAD"
    # a regression and a removed function, in a workspace under agent/
    other = (ws / "tools" / "other.py").read_text()
    (ws / "tools" / "other.py").write_text(other.replace("return a + b", "return a - b"))
    units = (ws / "tools" / "units.py").read_text()
    (ws / "tools" / "units.py").write_text(units.split("\n\ndef shout", 1)[0] + "\n")
    code, out, _ = cli(capsys, "check", str(ws), "--format", "junit")
    assert code == EXIT_FOUND
    cases = {c.get("name"): c for c in ET.fromstring(out).iter("testcase")}
    # before: file="tools/other.py", which a reporter cannot find from the repository root
    assert cases["add"].get("file") == "agent/tools/other.py"
    assert cases["add"].find("failure") is not None
    assert cases["shout"].get("file") == "agent/tools/units.py"
    removed = cases["shout"].find("system-out")
    assert removed is not None and "removed" in (removed.text or "")


def test_review_says_a_regression_was_rolled_back_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_history_support import make_proposal, optimizer_commit, revise

    config = make_workspace(tmp_path / "ws")
    root = config.root
    content = load_toolset(config).content_hash()
    traces = [call_trace(i, content, "add", {"a": i, "b": 1}, str(i + 1), 1.0) for i in range(2)]
    (root / "traces").mkdir()
    (root / "traces" / "run.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    git(root, "add", "traces")
    git(root, "commit", "-qm", "logged runs")
    c0 = sha(root)
    other = (root / "tools" / "other.py").read_text()
    worse = other.replace("return a + b", "return a - b")
    proposal = make_proposal(config, [revise("add", worse)], pid="aaa111", step=1)
    o1 = optimizer_commit(root, "tools/other.py", worse, proposal)
    code, _, err = cli(capsys, "rollback", str(root), "--to", c0)
    assert code == 0, err
    r1 = sha(root)
    code, md, err = cli(capsys, "review", c0, str(root))
    assert code == 0, err
    status = md.splitlines()[2]
    # before: "⚠️ regressions found", as if the branch still held one
    assert f"regressions found in `{o1[:7]}` (rolled back by `{r1[:7]}`)" in status
    assert "all rolled back since" in status


# ------------------------------------------------------------------ attribution: hostile names


def test_a_model_name_from_the_endpoint_cannot_forge_commit_trailers(tmp_path: Path) -> None:
    from funcforge.history.git import apply_proposal, open_repo
    from funcforge.history.versions import funcforge_commits
    from tests.fakes.openai_server import FakeOpenAI
    from tests.unit.test_attribution import REVISE, _step

    config = make_workspace(tmp_path / "ws")
    write_traces(config.root, sha(config.root)[:7], scores(0.5, 4))
    forged = "gpt-4o)\n\nFuncforge-Rollback-To: " + "0" * 40 + "\nFuncforge-Reverts: " + "1" * 40
    script = [{"tool_calls": [REVISE], "model": forged + " " + "x" * 500}, {"content": "TERMINATE"}]
    with FakeOpenAI(script=script) as srv:
        config, result = _step(config.root, {"base_url": srv.base_url, "model": "gpt-4o"})
    assert result.proposal is not None
    model = result.proposal.model or ""
    assert "\n" not in model and len(model) <= 120 and model.startswith("gpt-4o")
    applied = apply_proposal(config, result.proposal)
    trailers = [line for line in applied.message.splitlines() if line.startswith("Funcforge-")]
    # before: the name's lines became trailers of their own, a roll-back that never happened
    assert not any(t.startswith(("Funcforge-Rollback-To", "Funcforge-Reverts")) for t in trailers)
    with open_repo(config) as repo:
        (commit,) = funcforge_commits(repo)
    assert commit.kind == "proposal" and not commit.reverts


def test_sarif_leaves_the_category_to_the_uploader(
    history: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "check", history["root"], "--base", "main", "--format", "sarif")
    assert code == EXIT_FOUND
    run = json.loads(out)["runs"][0]
    # before: automationDetails.id "funcforge/check/main..working tree": upload-sarif then
    # ignores the workflow's `category:` (it only fills a missing one), and a base with a
    # slash (origin/main) made a category per base branch
    assert "automationDetails" not in run
    assert run["properties"]["base"] == "main" and run["properties"]["head"] is None


# ------------------------------------------------------------------ serve / receive: bad input


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--otlp-port", "99999"],
        ["receive", ".", "--port", "70000"],
        ["receive", ".", "--port", "-1"],
        ["serve", "--otlp-port", "http"],
    ],
)
def test_a_port_out_of_range_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    # before: OverflowError from bind() as a traceback, exit 1
    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    assert exc.value.code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "argument --" in err and ("0-65535" in err or "not a port number" in err)


def test_serve_with_an_unwritable_log_file_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "such" / "log.txt"
    code, _, err = cli(capsys, "serve", "--log-file", str(target))
    assert code == EXIT_ERROR  # before: FileNotFoundError as a traceback, exit 1
    assert "cannot write the log" in one_line_error(err)


def test_receive_names_a_missing_workspace_as_every_command_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    code, _, err = cli(capsys, "receive", str(missing))
    assert code == EXIT_ERROR
    assert f"{missing}: no such folder (PATH is the workspace root)" in one_line_error(err)


# ------------------------------------------------------------------ two workspaces, one repository


def test_a_workspace_log_and_rollback_leave_another_workspaces_commits_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from tests.unit.test_history_support import (
        NEW_CONVERT,
        OLD_CONVERT,
        UNITS,
        make_proposal,
        optimizer_commit,
        revise,
    )

    a = make_workspace(tmp_path / "repo", sub="a")
    repo = tmp_path / "repo"
    shutil.copytree(repo / "a" / "tools", repo / "b" / "tools")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "workspace b")
    c0 = sha(repo)
    proposal = make_proposal(a, [revise()], pid="aaa111", step=1)
    o1 = optimizer_commit(
        repo, "a/tools/units.py", UNITS.replace(OLD_CONVERT, NEW_CONVERT), proposal
    )
    code, out, err = cli(capsys, "log", str(repo / "b"), "--json")
    assert code == 0, err
    # before: a's step was listed as b's own (and counted against b's patience)
    assert json.loads(out)["commits"] == []
    code, out, err = cli(capsys, "log", str(repo / "a"), "--json")
    assert [c["commit"] for c in json.loads(out)["commits"]] == [o1]
    code, out, err = cli(capsys, "rollback", str(repo / "b"), "--to", c0)
    # before: "reverted <o1>": rolling back b undid a's trained tools
    assert code == 0 and "nothing to roll back" in out, err
    assert sha(repo) == o1
    code, md, _ = cli(capsys, "review", c0, str(repo / "b"), "--no-execute")
    assert "No commit in this range changes tool files." in md


# ------------------------------------------------------------------ a step after a roll-back


def test_a_step_after_a_roll_back_is_based_on_the_restored_toolsets_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_attribution import _step
    from tests.unit.test_history_support import (
        NEW_ADD,
        make_proposal,
        optimizer_commit,
        revise,
    )
    from tests.unit.test_review_check import transcript

    config = make_workspace(tmp_path / "ws")
    root = config.root
    c0 = sha(root)
    write_traces(root, c0[:7], scores(0.6, 30))  # the traces name c0, as the agent ran it
    proposal = make_proposal(config, [revise("add", NEW_ADD)], pid="aaa111", step=1)
    optimizer_commit(root, "tools/other.py", NEW_ADD, proposal)
    assert cli(capsys, "rollback", str(root), "--to", c0)[0] == 0
    answers = transcript(tmp_path / "answers.jsonl")
    # as the trainer runs a step: its own optimizer state, which need not hold this toolset
    _, result = _step(root, {}, llm=f"replay:{answers}")
    assert result.proposal is not None
    base = result.proposal.base_score
    # before: None ("base version <roll-back> scored no traces") though it is c0's toolset
    assert base is not None and base["n"] == 30 and abs(base["score"] - 0.6) < 1e-9


@pytest.mark.parametrize("flag", ["--delete-branch", "--json"])
def test_a_cleanup_flag_alone_does_not_start_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    root = _train_workspace(tmp_path)
    argv = ["train", str(root), "--tasks", "tasks.jsonl", "--agent", "command:true", flag]
    code, _, err = cli(capsys, *argv, "--llm", f"replay:{root / 'answers.jsonl'}")
    assert code == EXIT_ERROR
    assert f"{flag} goes with --clean or --adopt" in one_line_error(err)
    assert not (root / ".funcforge" / "train").exists()
