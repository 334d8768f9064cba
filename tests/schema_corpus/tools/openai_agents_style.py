"""Tools in the style of openai-agents (`@function_tool`, griffe-read docstrings)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from agents import RunContextWrapper, function_tool
from typing_extensions import NotRequired

Unit = Literal["celsius", "fahrenheit"]


class Location(TypedDict):
    """A place on Earth."""

    lat: float
    long: float
    label: NotRequired[str]


@function_tool
async def fetch_weather(ctx: RunContextWrapper[Any], location: Location, unit: Unit = "celsius") -> str:
    """Fetch the weather for a given location.

    Uses the cached forecast when one is less than ten minutes old.

    Args:
        ctx: The run context (not shown to the model).
        location: The location to fetch the weather for.
        unit: The temperature unit.
    """
    return "sunny"


@function_tool(name_override="read_file")
def read_file(path: str, directory: str | None = None) -> str:
    """Read the contents of a file.
    Args:
        path: The path to the file to read.
        directory: The directory to read the file from.
    Returns:
        The file's text.
    """
    return ""
