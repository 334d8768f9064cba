"""The store's JSON line decoder: orjson where it can, the standard library's results and
error reports everywhere else (the same as before orjson)."""

from __future__ import annotations

import json

import pytest

from funcforge.traces import store


@pytest.mark.parametrize(
    "line",
    [
        b'{"a": 1, "b": [true, null, 2.5], "c": "\\u00e9"}',
        b'  {"spaced": 1}  ',
        b'{"nan": NaN, "inf": -Infinity}',  # not JSON, but Python's json accepts it
        b'{"lone": "\\ud800"}',  # a lone surrogate escape
        b"\xef\xbb\xbf" + b'{"bom": 1}',  # a UTF-8 BOM
        '{"emoji": "\U0001f600"}'.encode(),
    ],
)
def test_values_equal_the_standard_library(line: bytes) -> None:
    expected = json.loads(line.decode("utf-8").removeprefix("\ufeff"))
    got = store._decode(line)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"a": 1,}', "bad JSON: Expecting property name enclosed in double quotes (column 9)"),
        (b'{"a": 1} x', "bad JSON: Extra data (column 10)"),
        (b'{"a": "\xff"}', "invalid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "bad JSON: nested too deeply"),
    ],
)
def test_error_reports_are_the_standard_librarys(line: bytes, reason: str) -> None:
    out: list = []
    bad: list = []
    from funcforge.traces.formats import get_format

    record = store._line_reader(get_format("native"), "t.jsonl", out, bad)
    record(line, 0, 7)
    assert not out and [str(b) for b in bad] == [f"t.jsonl:7: {reason}"]


def test_full_traces_keep_integers_past_64_bits(tmp_path) -> None:
    from funcforge.config import Config

    (tmp_path / "traces").mkdir()
    big = 123456789012345678901234567890
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "f", "arguments": json.dumps({"n": big})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    record = {"id": "r1", "messages": messages, "outcome": {}, "extra_number": big}
    (tmp_path / "traces" / "t.jsonl").write_text(json.dumps(record) + "\n")
    st = store.TraceStore(Config(root=tmp_path, traces=["traces/*.jsonl"]))
    st.refresh()
    trace = st.load(st.summaries()[0])
    assert trace.extra["extra_number"] == big and trace.tool_calls[0].arguments == {"n": big}
