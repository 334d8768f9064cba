"""Every tool in `tests/schema_corpus` gets the tool definition in `expected.json`.

The corpus holds tool functions in the styles of eight agent frameworks;
the expected definitions were read one by one against the functions. Run
`python tests/unit/test_schema_corpus.py --write` to regenerate them after a
deliberate change (and read the diff).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent / "schema_corpus"
EXPECTED = ROOT / "expected.json"


def corpus() -> dict[str, Any]:
    """`file::function` -> {"tool": to_openai_tool(), "hints": [...]} for the whole corpus."""
    from funcforge.toolset.extract import extract_functions
    from funcforge.toolset.types import workspace_loader

    loader = workspace_loader(ROOT)
    out: dict[str, Any] = {}
    for path in sorted((ROOT / "tools").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for spec in extract_functions(path.read_text(encoding="utf-8"), rel, loader):
            out[f"{rel}::{spec.name}"] = {"tool": spec.to_openai_tool(), "hints": spec.schema_hints}
    return out


@pytest.fixture(scope="module")
def tools() -> dict[str, Any]:
    return corpus()


def test_every_tool_matches_its_expected_definition(tools: dict[str, Any]) -> None:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert sorted(tools) == sorted(expected)
    for key, want in expected.items():
        assert tools[key] == want, key


def _params(tools: dict[str, Any], key: str) -> dict[str, Any]:
    return tools[key]["tool"]["function"]["parameters"]


def _description(tools: dict[str, Any], key: str) -> str:
    return tools[key]["tool"]["function"]["description"]


def test_descriptions_keep_all_prose_before_the_sections(tools: dict[str, Any]) -> None:
    sql = _description(tools, "tools/smolagents_style.py::sql_engine")
    assert "- customer_name: VARCHAR(16)" in sql and "Args" not in sql
    duck = _description(tools, "tools/pydantic_ai_style.py::run_duckdb")
    assert "the virtual table name must be `dataset`" in duck.lower()
    letta = _description(tools, "tools/letta_style.py::core_memory_append")
    assert "one fact per call" in letta and "Returns" not in letta


def test_framework_context_parameters_are_not_shown_to_the_model(tools: dict[str, Any]) -> None:
    for key, hidden in [
        ("tools/openai_agents_style.py::fetch_weather", "ctx"),
        ("tools/pydantic_ai_style.py::run_duckdb", "ctx"),
        ("tools/mcp_style.py::send_letter", "ctx"),
        ("tools/mcp_style.py::long_task", "ctx"),
        ("tools/letta_style.py::core_memory_append", "agent_state"),
        ("tools/letta_style.py::send_message", "self"),
        ("tools/google_adk_style.py::book_meeting", "tool_context"),
        ("tools/langchain_style.py::open_ticket", "user_id"),
    ]:
        assert hidden not in _params(tools, key)["properties"], key


def test_named_types_fields_and_imports(tools: dict[str, Any]) -> None:
    weather = _params(tools, "tools/openai_agents_style.py::fetch_weather")
    assert weather["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert weather["$defs"]["Location"]["required"] == ["lat", "long"]  # NotRequired label
    letter = _params(tools, "tools/mcp_style.py::send_letter")
    assert letter["required"] == ["to", "body"]  # body = Field(description=...) is required
    assert letter["properties"]["copies"]["maximum"] == 5
    order = _params(tools, "tools/shop/orders.py::place_order")
    parent = order["$defs"]["Order"]["properties"]["parent"]
    assert {"$ref": "#/$defs/Order"} in parent["anyOf"]  # a cycle, by reference
    configure = tools["tools/shop/orders.py::configure"]
    assert configure["tool"]["function"]["parameters"]["properties"]["widget"] == {}
    assert any("vendor_sdk.types" in h for h in configure["hints"])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        sys.path.insert(0, str(ROOT.parent.parent / "server"))
        EXPECTED.write_text(json.dumps(corpus(), indent=2, ensure_ascii=False) + "\n", "utf-8")
