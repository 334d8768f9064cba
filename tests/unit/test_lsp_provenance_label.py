"""The server names a toolset version as `funcforge log` does: a content hash (as the
samples log it, `dirty-` too) by the short sha of the commit whose tools had that content;
a sha, an unknown hash or a non-hex version as the trace says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from funcforge.lsp.evidence import failure_message, hover_plaintext
from funcforge.lsp.provenance import CodeAtVersion, FailureVersions, provenance
from funcforge.toolset.toolset import load_toolset
from tests.conftest import git, log_label
from tests.unit.test_history_support import NEW_CONVERT, UNITS, make_workspace, write_traces

FILE = "tools/units.py"


def failing(version: str, calls: int = 13, errors: int = 4) -> FailureVersions:
    return FailureVersions(
        calls=Counter({version: calls}), errors=Counter({version: errors}), order=[version]
    )


def stats(calls: int = 13, errors: int = 4) -> SimpleNamespace:
    return SimpleNamespace(
        calls=calls,
        errors=errors,
        traces=calls,
        tasks=calls,
        pass_rate=None,
        error_types=Counter({"KeyError": errors}),
        recent_errors=[("t", "KeyError", "'mile'")] * errors,
    )


def short(root: Path, rev: str = "HEAD") -> str:
    return git(root, "rev-parse", "--short=7", rev).strip()


def fixed(config) -> str:  # type: ignore[no-untyped-def]
    """The code hash of convert_units as the user has it now (fixed since the traces)."""
    toolset = load_toolset(config)
    return toolset.functions["convert_units"].code_hash()


def test_a_content_hash_is_named_by_its_commit_as_log_names_it(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    content = load_toolset(config).content_hash()  # what a sample's traces log
    traced = short(root)  # the commit whose tools have that content (git, not funcforge)
    write_traces(root, content, [0.0, 1.0, 1.0])
    (root / FILE).write_text(UNITS.split("def convert_units")[0] + NEW_CONVERT)
    git(root, "commit", "-qam", "fix convert_units")
    code = CodeAtVersion()

    origin = provenance(config, "convert_units", FILE, fixed(config), failing(content), code)
    assert origin is not None and origin.before_change and origin.version == content
    assert origin.shown == traced != content
    assert failure_message(stats(), origin) == (
        f"31% errors on {traced} (before your change): "
        "4 of 13 logged calls failed: KeyError 'mile' (4)"
    )
    hover = hover_plaintext("convert_units", stats(), [], origin)
    assert f"Failures logged on {traced}, before your change" in hover
    assert content not in failure_message(stats(), origin) + hover
    # `funcforge log --json` names that version the same
    assert log_label(root, content) == traced

    # A dirty version with that content is the same version.
    dirty = provenance(
        config, "convert_units", FILE, fixed(config), failing(f"dirty-{content}"), code
    )
    assert dirty is not None and dirty.shown == traced

    # Every hover and publish after the first reads nothing more from git.
    reads = code.reads
    for _ in range(5):
        again = provenance(config, "convert_units", FILE, fixed(config), failing(content), code)
        assert again is not None and again.shown == traced
    assert code.reads == reads


def test_after_a_roll_back_restores_the_content_the_newest_commit_is_named(
    tmp_path: Path,
) -> None:
    """As `log`: a content hash names the newest commit on HEAD with that content, also for
    a server that resolved it before the roll-back (HEAD moved: asked once more)."""
    config = make_workspace(tmp_path / "ws")
    root = config.root
    content = load_toolset(config).content_hash()
    write_traces(root, content, [0.0, 1.0, 1.0])
    first = short(root)
    (root / FILE).write_text(UNITS.split("def convert_units")[0] + NEW_CONVERT)
    git(root, "commit", "-qam", "fix convert_units")
    code = CodeAtVersion()
    before = provenance(config, "convert_units", FILE, fixed(config), failing(content), code)
    assert before is not None and before.shown == first
    (root / FILE).write_text(UNITS)
    git(root, "commit", "-qam", "restore convert_units")
    restored = short(root)
    assert restored != first
    after = provenance(config, "convert_units", FILE, fixed(config), failing(content), code)
    assert after is not None and after.shown == restored
    assert log_label(root, content) == restored
    reads = code.reads
    provenance(config, "convert_units", FILE, fixed(config), failing(content), code)
    assert code.reads == reads  # HEAD unchanged: cached


def test_a_sha_an_unknown_hash_and_a_non_hex_version_are_shown_as_logged(
    tmp_path: Path,
) -> None:
    config = make_workspace(tmp_path / "ws")
    root = config.root
    head = git(root, "rev-parse", "HEAD").strip()
    code = CodeAtVersion()
    for version in (head[:9], head, "0123456789ab", "dirty-0123456789ab", "v0"):
        origin = provenance(config, "convert_units", FILE, fixed(config), failing(version), code)
        assert origin is not None and origin.shown == version, version
        assert f"failed on {version}: KeyError" in failure_message(stats(), origin)


def test_without_git_a_content_hash_stays_as_logged(tmp_path: Path) -> None:
    from funcforge.config import load_config

    ws = tmp_path / "plain"
    (ws / "tools").mkdir(parents=True)
    (ws / FILE).write_text(UNITS)
    config = load_config(ws)
    content = load_toolset(config).content_hash()
    origin = provenance(
        config, "convert_units", FILE, fixed(config), failing(content), CodeAtVersion()
    )
    assert origin is not None and origin.shown == content
