"""What the model is sent for each tool is visible: in hover, as a hint, and in `stats --json`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from funcforge.config import load_config
from funcforge.toolset.toolset import load_toolset
from tests.conftest import git
from tests.lsp.test_server import SERVER, diagnostics_for, open_doc, start

SHAPES = '''"""Shapes, with a named type and a type from a package that is not in the workspace."""

from typing import Literal

from geometry_sdk import Polygon

Kind = Literal["circle", "square"]


def area(kind: Kind, size: float, outline: Polygon | None = None) -> float:
    """Area of a shape.

    Squares and circles only: other shapes are rejected.

    Args:
        kind: Which shape.
        size: Side or radius.
    """
    return size * size
'''


def expected_tool(root: Path) -> dict:
    return load_toolset(load_config(root)).functions["area"].to_openai_tool()


def add_shapes(root: Path) -> Path:
    path = root / "tools" / "shapes.py"
    path.write_text(SHAPES, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shapes")
    return path


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, math_ws: Path):
    add_shapes(math_ws)
    await start(lsp_client, math_ws, {"allowExecution": False})
    lsp_client.root = math_ws  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_hover_shows_the_tool_definition_as_sent_and_hints(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    path = root / "tools" / "shapes.py"
    uri = open_doc(client, path)
    diags = await diagnostics_for(client, uri, "schema for `area`")
    hint = next(d for d in diags if d.code == "schema-hint")
    assert hint.severity == types.DiagnosticSeverity.Hint
    assert "'Polygon'" in hint.message and "geometry_sdk" in hint.message
    line = next(i for i, t in enumerate(SHAPES.splitlines()) if t.startswith("def area"))
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=5),
        )
    )
    assert hover is not None
    text = hover.contents.value
    block = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    tool = json.loads(block)
    assert tool == expected_tool(root)
    assert tool["function"]["parameters"]["properties"]["kind"]["enum"] == ["circle", "square"]
    assert "other shapes are rejected" in tool["function"]["description"]
    assert "geometry_sdk" in text.split("```", 3)[-1]  # the hint, under the definition


def test_stats_json_lists_each_tools_definition_and_hints(math_ws: Path) -> None:
    add_shapes(math_ws)
    out = subprocess.run(
        [sys.executable, "-m", "funcforge", "stats", "--json"],
        cwd=math_ws,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    tools = {t["name"]: t for t in json.loads(out.stdout)["tools"]}
    assert tools["area"]["definition"] == expected_tool(math_ws)
    assert any("geometry_sdk" in h for h in tools["area"]["schema_hints"])
    convert = tools["convert_units"]
    assert convert["definition"]["function"]["name"] == "convert_units"
    assert convert["schema_hints"] == []


def test_stats_text_names_the_schema_gaps(math_ws: Path) -> None:
    add_shapes(math_ws)
    out = subprocess.run(
        [sys.executable, "-m", "funcforge", "stats"],
        cwd=math_ws,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "tool schemas with gaps" in out.stdout
    line = next(i for i, t in enumerate(SHAPES.splitlines(), 1) if t.startswith("def area"))
    assert f"tools/shapes.py:{line}: area: parameter 'outline': type 'Polygon'" in out.stdout
