"""Unicode-safe writes: lone surrogates escaped, absurd nesting cut, atomicity kept."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.fsutil import (
    TOO_DEEP,
    clean_json,
    clean_text,
    dumps,
    has_surrogates,
    json_depth,
    write_atomic,
    write_json_atomic,
)

LONE = "ok \ud800 and \udfff end"


def test_clean_text_escapes_lone_surrogates_and_keeps_the_rest() -> None:
    assert has_surrogates(LONE)
    cleaned = clean_text(LONE)
    assert cleaned == "ok \\ud800 and \\udfff end"
    assert not has_surrogates(cleaned)
    cleaned.encode("utf-8")
    assert clean_text("naïve ✓ 😀") == "naïve ✓ 😀"  # real non-ASCII untouched


def test_clean_json_walks_keys_values_and_lists() -> None:
    value = {"k\udc80": [LONE, {"x": "\ud83d"}], "n": 1, "f": 1.5, "b": None}
    cleaned = clean_json(value)
    assert cleaned == {
        "k\\udc80": ["ok \\ud800 and \\udfff end", {"x": "\\ud83d"}],
        "n": 1,
        "f": 1.5,
        "b": None,
    }
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


def test_dumps_never_fails_on_depth() -> None:
    deep: list = []
    cur = deep
    for _ in range(5000):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    text = dumps({"deep": deep, "s": LONE})
    assert TOO_DEEP in text
    assert json.loads(text)["s"] == "ok \\ud800 and \\udfff end"


def test_json_depth_is_iterative_and_bounded() -> None:
    deep: dict = {}
    cur = deep
    for _ in range(5000):
        cur["a"] = {}
        cur = cur["a"]
    assert json_depth(deep, 64) == 65  # stops counting past the limit
    assert json_depth({"a": [1, {"b": 2}]}, 64) == 3
    assert json_depth("x", 5) == 0


def test_write_atomic_and_json_escape_instead_of_failing(tmp_path: Path) -> None:
    text_file = tmp_path / "report.md"
    write_atomic(text_file, f"# report\n{LONE}\n")
    assert text_file.read_text(encoding="utf-8") == "# report\nok \\ud800 and \\udfff end\n"
    json_file = tmp_path / "state" / "proposal.json"
    write_json_atomic(json_file, {"rationale": LONE})
    assert json.loads(json_file.read_text(encoding="utf-8")) == {
        "rationale": "ok \\ud800 and \\udfff end"
    }
    assert [p.name for p in json_file.parent.iterdir()] == ["proposal.json"]  # no temp left
