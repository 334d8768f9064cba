"""Fixtures for language-server tests: a sample workspace in a real git repo, a transcript."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, git, init_repo

FIXED_CONVERT = '''def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length or a mass from one unit to another.

    Args:
        value: The quantity to convert.
        from_unit: The unit of `value`: mm, cm, m, km, inch, ft, yard, mile,
            g, kg, lb or oz.
        to_unit: The unit to convert to, of the same kind as `from_unit`.

    Returns:
        The quantity expressed in `to_unit`.
    """
    lengths = dict(_LENGTH, mile=1609.344)
    table = lengths if from_unit in lengths else _MASS
    if from_unit not in table or to_unit not in table:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return value * table[from_unit] / table[to_unit]
'''

CONVERT_ARGS = {
    "type": "object",
    "properties": {
        "value": {"type": "number"},
        "from_unit": {"type": "string"},
        "to_unit": {"type": "string"},
    },
    "required": ["value", "from_unit", "to_unit"],
}


def completion(message: dict) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }


def revise_reply(name: str = "convert_units", code: str = FIXED_CONVERT) -> dict:
    args = {
        "name": name,
        "description": "Convert a length or a mass.",
        "arguments": CONVERT_ARGS,
        "packages": [],
        "code": code,
        "rationale": "KeyError 'mile': the length table had no miles",
    }
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "revise_function", "arguments": json.dumps(args)},
            }
        ],
    }


def write_transcript(path: Path, messages: list[dict]) -> Path:
    lines = [
        {"type": "header", "format": 1, "note": "hand-written scripted stand-in for a model (test)"}
    ]
    lines += [{"type": "exchange", "response": completion(m)} for m in messages]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture
def math_ws(tmp_path: Path) -> Path:
    """samples/math-tools copied into a fresh git repository."""
    dest = tmp_path / "math-tools"
    shutil.copytree(SAMPLES / "math-tools", dest, ignore=shutil.ignore_patterns(".funcforge"))
    init_repo(dest)
    git(dest, "config", "user.name", "Ada Lovelace")
    git(dest, "config", "user.email", "ada@example.com")
    write_transcript(
        dest.parent / "transcript.jsonl",
        [revise_reply(), {"role": "assistant", "content": "TERMINATE"}],
    )
    return dest
