"""`review` and `check --format sarif|junit` for a workspace in a subfolder of the repository.

GitHub code scanning places a SARIF result by its URI relative to the
checkout, so a workspace in `agents/my tools é/` must give
`agents/my%20tools%20%C3%A9/tools/units.py` (a URI, percent-encoded), and
`review` must see the commits that touch that folder whatever its name: git
quotes non-ASCII paths and a space split a name in two, so a hand edit that
regressed was left out of the report, which then said "no regression found".
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from funcforge.cli import main as cli_main
from funcforge.config import load_config
from funcforge.toolset.toolset import load_toolset
from tests.conftest import git
from tests.unit.test_history_support import make_workspace, user_commit
from tests.unit.test_review_check import SCHEMA, transcript, write_runs

# RFC 3986 relative-path reference: unreserved, sub-delims, ':' '@' '/', and %XX.
URI_PATH = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})+$")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def build_history(tmp_path: Path, capsys: pytest.CaptureFixture[str], sub: str) -> Path:
    """main: tools and traces; feature: an optimizer commit, then a hand edit that regresses."""
    config = make_workspace(tmp_path / "repo", sub)
    root = config.root
    (root / "funcforge.toml").write_text('tools = ["tools/**/*.py"]\n', encoding="utf-8")
    content = load_toolset(load_config(root)).content_hash()
    write_runs(root, content, "Error: KeyError")
    git(root, "add", ".")
    git(root, "commit", "-qm", "logged runs")
    git(root, "checkout", "-q", "-b", "feature")
    answers = transcript(tmp_path / "answers.jsonl")
    code, out, err = cli(capsys, "optimize", str(root), "--llm", f"replay:{answers}", "--json")
    assert code == 0, err
    code, _, err = cli(capsys, "apply", json.loads(out)["proposal"]["id"], str(root))
    assert code == 0, err
    units = (root / "tools" / "units.py").read_text(encoding="utf-8")
    user_commit(root, "tools/units.py", units.replace("text.upper()", "text.upper()[:1]"), "short")
    return root


@pytest.mark.parametrize("sub", ["agents/my tools", "agents/outils-é", "agents/a#b%c"])
def test_review_sees_the_commits_of_a_workspace_whose_folder_name_git_quotes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sub: str
) -> None:
    root = build_history(tmp_path, capsys, sub)
    code, out, err = cli(capsys, "review", "main", str(root), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["range"] == "main..HEAD"  # a lone base is said as the range it means
    # before: only the optimizer commit (found by its message), with no tool file, and
    # the hand edit that breaks shout(text='hi') left out: "no regression found"
    assert [(c["kind"], c["files"]) for c in data["commits"]] == [
        ("optimizer", ["tools/units.py"]),
        ("hand edit", ["tools/units.py"]),
    ]
    assert data["has_regression"] is True and data["commits"][1]["has_regression"] is True


@pytest.mark.parametrize("sub", ["agents/my tools", "agents/outils-é", "agents/a#b%c"])
def test_sarif_from_a_subfolder_points_at_the_function_by_a_repository_relative_uri(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sub: str
) -> None:
    root = build_history(tmp_path, capsys, sub)
    monkeypatch.chdir(root / "tools")  # as a reviewer would, deep in the workspace
    code, out, err = cli(capsys, "check", "--base", "main", "--format", "sarif", "-o", "x.sarif")
    assert code == 1, err  # the hand edit regressed shout
    assert out == ""  # notes go to stderr; the report to the file named where the user is
    log = json.loads((root / "tools" / "x.sarif").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(log)
    results = log["runs"][0]["results"]
    uris = [
        loc["physicalLocation"]["artifactLocation"]
        for r in results
        for loc in [*r.get("locations", []), *r.get("relatedLocations", [])]
    ]
    assert uris and all(u["uriBaseId"] == "%SRCROOT%" for u in uris)
    for u in uris:
        assert URI_PATH.match(u["uri"]), u["uri"]  # a URI, not a file name with a space in it
    regression = next(r for r in results if r["ruleId"] == "funcforge/regression")
    where = regression["locations"][0]["physicalLocation"]
    assert unquote(where["artifactLocation"]["uri"]) == f"{sub}/tools/units.py"
    text = (root / "tools" / "units.py").read_text(encoding="utf-8")
    assert (
        where["region"]["startLine"] == text.splitlines().index("def shout(text: str) -> str:") + 1
    )
    related = regression["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert unquote(related) == f"{sub}/traces/run.jsonl"
    # JUnit names the file as a path (what CI test reports show), from the repository root
    code, out, err = cli(capsys, "check", "--base", "main", "--format", "junit")
    assert code == 1, err
    files = {c.get("file") for c in ET.fromstring(out).iter("testcase")}
    assert files == {f"{sub}/tools/units.py"}


def test_review_checks_what_a_merge_itself_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A conflict resolved with new code: a regression in no commit of the range but the merge."""
    root = build_history(tmp_path, capsys, "agents/ws")
    units = root / "tools" / "units.py"
    text = units.read_text(encoding="utf-8")
    git(root, "checkout", "-q", "-b", "a")
    user_commit(root, "tools/units.py", text.replace("[:1]", "[:1] + ''"), "a")
    git(root, "checkout", "-q", "-b", "b", "feature")
    user_commit(root, "tools/units.py", text.replace("[:1]", "[:1].strip()"), "b")
    git(root, "checkout", "-q", "-b", "side", "feature")  # a side that merges cleanly
    user_commit(root, "tools/other.py", "def add(a: int, b: int) -> int:\n    return b + a\n")
    git(root, "checkout", "-q", "a")
    git(root, "merge", "-q", "--no-ff", "side", "-m", "merge side")
    with pytest.raises(subprocess.CalledProcessError):  # a conflict in shout
        git(root, "merge", "-q", "b", "-m", "merge b")
    resolved = text.replace('"km": 1000.0', '"km": 100.0')  # ... and an "evil" change
    units.write_text(resolved, encoding="utf-8")
    git(root, "commit", "-qam", "merge b")
    code, out, err = cli(capsys, "review", "feature", str(root), "--json")
    assert code == 0, err
    data = json.loads(out)
    kinds = [(c["subject"], c["kind"], c["files"]) for c in data["commits"]]
    # the clean merge adds nothing to review; the resolution is reviewed as what it is
    assert kinds[-1] == ("merge b", "merge", ["tools/units.py"]), kinds
    assert sorted(kinds[:-1]) == [
        ("a", "hand edit", ["tools/units.py"]),
        ("b", "hand edit", ["tools/units.py"]),
        ("user edit", "hand edit", ["tools/other.py"]),
    ], kinds
    merge = data["commits"][-1]
    # before: merges were left out, and the report said no regression
    assert merge["has_regression"] is True and data["has_regression"] is True
    assert "merge side" not in json.dumps(data["other_commits"])
