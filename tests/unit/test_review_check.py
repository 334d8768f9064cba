"""`funcforge review` and `funcforge check --format sarif|junit` on a scripted history.

A real git repository: main has the tools and logged traces; a feature branch
gets an optimizer commit (a replayed `funcforge optimize`, then `funcforge
apply`) and a hand edit that breaks a logged call. The review report, the
SARIF log (validated against the official SARIF 2.1.0 schema) and the JUnit
XML must all tell that story, at the right lines, with the proving calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from funcforge.cli import main as cli_main
from funcforge.config import load_config
from funcforge.errors import EXIT_ERROR
from funcforge.toolset.toolset import load_toolset
from tests.conftest import REPO_ROOT, git
from tests.unit.test_history_support import UNITS, make_workspace, sha, user_commit

SCHEMA = REPO_ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"

FIXED = '''def convert_units(value: float, unit: str) -> float:
    """Convert a length to metres."""
    factors = {"km": 1000.0, "m": 1.0, "mile": 1609.344}
    if unit not in factors:
        raise ValueError(f"unknown unit: {unit}")
    return value * factors[unit]
'''


def call_trace(i: int, version: str, name: str, args: dict, result: str, score: float) -> dict:
    return {
        "id": f"run-{version}-{i}",
        "task": {"id": f"t{i}", "input": "q"},
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": result},
            {"role": "assistant", "content": "done"},
        ],
        "outcome": {"score": score, "passed": score >= 1.0},
        "toolset_version": version,
        "split": "train",
    }


def transcript(path: Path) -> Path:
    call = {
        "id": "c1",
        "type": "function",
        "function": {
            "name": "revise_function",
            "arguments": json.dumps(
                {
                    "name": "convert_units",
                    "description": "Convert a length to metres.",
                    "arguments": {
                        "type": "object",
                        "properties": {
                            "value": {"type": "number"},
                            "unit": {"type": "string"},
                        },
                        "required": ["value", "unit"],
                    },
                    "code": FIXED,
                    "rationale": "Logged calls with unit 'mile' fail with KeyError; add miles.",
                }
            ),
        },
    }
    answers = [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "assistant", "content": "TERMINATE"},
    ]
    lines = [{"type": "header", "format": 1, "note": "scripted for the test"}]
    for k, message in enumerate(answers):
        lines.append(
            {
                "type": "exchange",
                "response": {
                    "id": f"s{k}",
                    "object": "chat.completion",
                    "model": "scripted",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                },
            }
        )
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_runs(root: Path, content: str, error: str) -> None:
    """traces/run.jsonl of toolset `content`: 3 failing convert_units calls (`error`),
    3 passing ones and 4 passing shout calls."""
    traces = [
        call_trace(i, content, "convert_units", {"value": 3, "unit": "mile"}, error, 0.0)
        for i in range(3)
    ]
    traces += [
        call_trace(10 + i, content, "convert_units", {"value": 2, "unit": "km"}, "2000.0", 1.0)
        for i in range(3)
    ]
    traces += [call_trace(20 + i, content, "shout", {"text": "hi"}, "HI", 1.0) for i in range(4)]
    (root / "traces").mkdir()
    (root / "traces" / "run.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in traces), encoding="utf-8"
    )


@pytest.fixture
def history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """main: c0 with traces; feature: o1 (optimize + apply), h1 (a hand edit that regresses)."""
    config = make_workspace(tmp_path / "ws")
    root = config.root
    content = load_toolset(config).content_hash()
    write_runs(root, content, "Error: KeyError: 'mile'")
    git(root, "add", "traces")
    git(root, "commit", "-qm", "logged runs")
    c0 = sha(root)
    git(root, "checkout", "-q", "-b", "feature")
    code, _, err = cli(
        capsys,
        "pin",
        str(root),
        "--function",
        "convert_units",
        "--args",
        '{"value": 3, "unit": "mile"}',
        "--expected",
        "4828.032",
    )
    assert code == 0, err
    answers = transcript(tmp_path / "answers.jsonl")
    code, out, err = cli(capsys, "optimize", str(root), "--llm", f"replay:{answers}", "--json")
    assert code == 0, err
    pid = json.loads(out)["proposal"]["id"]
    code, _, err = cli(capsys, "apply", pid, str(root))
    assert code == 0, err
    o1 = sha(root)
    later = [
        call_trace(30 + i, o1[:7], "convert_units", {"value": 3, "unit": "mile"}, "4828.032", 1.0)
        for i in range(5)
    ]
    (root / "traces" / "later.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in later), encoding="utf-8"
    )
    units = load_toolset(load_config(root)).files["tools/units.py"]
    short = units.replace("return text.upper()", "return text.upper()[:1]")
    h1 = user_commit(root, "tools/units.py", short, "shorter shout")
    return {"root": str(root), "c0": c0, "o1": o1, "h1": h1, "pid": pid}


def test_review_reports_the_optimizer_commit_and_the_hand_edit(
    history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root = history["root"]
    code, md, err = cli(capsys, "review", "", root)  # "" = the default range
    assert code == 0, err
    o1, h1 = history["o1"][:7], history["h1"][:7]
    assert md.startswith("## funcforge review: `main..HEAD`")
    assert "⚠️ regressions found" in md
    # the summary table: one row per commit, in order, with both scores and the verdict
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows[0].startswith(f"| `{o1}` | optimizer") and "revise convert_units" in rows[0]
    assert "ok: `convert_units`: fixes 1 failing call(s) (logged 8 times)" in rows[0], rows[0]
    assert rows[1].startswith(f"| `{h1}` | hand edit") and "**regression**: `shout`" in rows[1]
    # the base version is resolved from the traces' content hash, with n and split
    assert "train 0.70 (n=10)" in rows[0] and "train 1.00 (n=5)" in rows[0]
    section = md.split(f"### `{o1}`", 1)[1].split("### `", 1)[0]
    assert "**Answered by:** replay of answers.jsonl" in section
    assert "Logged calls with unit 'mile' fail with KeyError; add miles." in section
    assert "tools/units.py | " in section  # the diff stat
    assert "convert_units(value=3, unit='mile')" in section and "traces/run.jsonl:1" in section
    assert "Funcforge-Proposal" not in section  # trailers are not evidence lines
    hand = md.split(f"### `{h1}`", 1)[1]
    assert "`funcforge check` on this edit:** **regression**" in hand
    assert "shout(text='hi')" in hand and "before HI, now H" in hand
    # JSON: the same facts
    code, out, _ = cli(capsys, "review", "main..HEAD", root, "--json")
    data = json.loads(out)
    assert [c["kind"] for c in data["commits"]] == ["optimizer", "hand edit"]
    assert data["commits"][0]["proposal"] == history["pid"]
    assert data["commits"][0]["base_score"]["split"] == "train"
    assert data["commits"][0]["base_score"]["n"] == 10
    assert data["has_regression"] is True and data["commits"][1]["has_regression"] is True


def test_check_sarif_is_valid_and_points_at_the_function(
    history: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = history["root"]
    out_file = tmp_path / "check.sarif"
    code, _, err = cli(
        capsys, "check", root, "--base", "main", "--format", "sarif", "-o", str(out_file)
    )
    assert code == 1, err  # a regression found
    log = json.loads(out_file.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)
    results = log["runs"][0]["results"]
    errors = [r for r in results if r["level"] == "error"]
    assert [r["ruleId"] for r in errors] == ["funcforge/regression"]
    where = errors[0]["locations"][0]["physicalLocation"]
    shout_line = UNITS.splitlines().index("def shout(text: str) -> str:") + 1
    text = (Path(root) / "tools" / "units.py").read_text()
    shout_line = text.splitlines().index("def shout(text: str) -> str:") + 1
    assert where["artifactLocation"]["uri"] == "tools/units.py"
    assert where["region"]["startLine"] == shout_line
    assert "shout(text='hi')" in errors[0]["message"]["text"]
    related = errors[0]["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"] == "traces/run.jsonl"
    fixes = [r for r in results if r["ruleId"] == "funcforge/verified-fix"]
    assert fixes and fixes[0]["level"] == "note"
    # the same between two refs, nothing checked out: o1 alone has no regression
    code, out, err = cli(
        capsys, "check", root, "--base", "main", "--head", history["o1"], "--format", "sarif"
    )
    assert code == 0, err
    jsonschema.Draft4Validator(schema).validate(json.loads(out))
    assert all(r["level"] != "error" for r in json.loads(out)["runs"][0]["results"])


def test_check_junit_parses_and_fails_the_regressed_function(
    history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "check", history["root"], "--base", "main", "--format", "junit")
    assert code == 1
    suites = ET.fromstring(out)
    suite = suites.find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) >= {"convert_units", "shout"}
    failure = cases["shout"].find("failure")
    assert failure is not None and "shout(text='hi')" in (failure.text or "")
    assert cases["convert_units"].find("failure") is None


def test_check_could_not_run_is_exit_2(
    history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys, "check", history["root"], "--base", "no-such-ref", "--format", "sarif"
    )
    assert code == EXIT_ERROR and "'no-such-ref' names no commit" in err
    code, _, err = cli(capsys, "review", "nope..HEAD", history["root"])
    assert code == EXIT_ERROR and "not a range" in err


def test_the_pre_commit_hook_runs_a_real_command() -> None:
    from funcforge.cli import build_parser

    text = (REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    entries = [
        line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("  entry:")
    ]
    assert entries == [["funcforge", "check"]]
    args = build_parser().parse_args(entries[0][1:])
    assert args.func.__name__ == "_check" and args.base is None  # HEAD vs what is committed
    assert "id: funcforge-check" in text and "pass_filenames: false" in text


def test_review_of_a_folder_alone_takes_it_as_the_workspace(
    history: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(history["root"])
    monkeypatch.chdir(root.parent)
    code, out, err = cli(capsys, "review", root.name, "--no-execute", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["range"] == "main..HEAD" and len(data["commits"]) == 2
    assert all(c["replay_checked"] is False for c in data["commits"])


def test_sarif_paths_are_repository_relative_for_a_workspace_in_a_subfolder() -> None:
    from funcforge.review.findings import Finding
    from funcforge.review.junit import junit_xml
    from funcforge.review.sarif import sarif_log

    findings = [
        Finding("broken", None, "tools/bad.py", 3, "tools/bad.py:3: syntax error"),
        Finding(
            "regression",
            "f",
            "tools/a.py",
            7,
            "`f`: 1 call(s)",
            ["f(x=1): before 1, now 2"],
            ["traces/run.jsonl:4"],
        ),
        Finding("removed", "g", "tools/a.py", 1, "`g` was removed"),
    ]
    log = sarif_log(findings, prefix="agent/", base="origin/main")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    ]
    assert uris == ["agent/tools/bad.py", "agent/tools/a.py", "agent/tools/a.py"]
    related = log["runs"][0]["results"][1]["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"] == "agent/traces/run.jsonl"
    assert related["region"]["startLine"] == 4
    xml = ET.fromstring(junit_xml(findings, [("f", "tools/a.py")]))
    suite = xml.find("testsuite")
    assert suite is not None and (suite.get("failures"), suite.get("errors")) == ("1", "1")
