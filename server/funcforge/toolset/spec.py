"""`FunctionSpec`: one tool function, as the agent sees it and as the source holds it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Location:
    """Where a function lives: `file` relative to the workspace root (POSIX form).

    Lines are 1-based, columns 0-based code points (libcst's convention); the
    language server converts to UTF-16 positions with the document text.
    """

    file: str
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    # The function's name token, for diagnostics and hovers.
    name_line: int = 0
    name_col: int = 0


@dataclass
class FunctionSpec:
    """One tool: name, description, JSON Schema parameters, packages, exact code, location."""

    name: str
    description: str
    parameters: dict[str, Any]
    packages: list[str] = field(default_factory=list)
    code: str = ""
    location: Location | None = None
    is_async: bool = False
    docstring: str | None = None
    # What the schema could not say, and why (a type not resolved statically).
    schema_hints: list[str] = field(default_factory=list)

    def to_openai_tool(self) -> dict[str, Any]:
        """The OpenAI tool schema a user would register with their agent."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def code_hash(self) -> str:
        """A short hash of the exact code: how proposals tell whether a function changed."""
        return hashlib.sha256(self.code.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionSpec:
        loc = data.get("location")
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            parameters=data.get("parameters", {"type": "object", "properties": {}}),
            packages=list(data.get("packages", [])),
            code=data.get("code", ""),
            location=Location(**loc) if loc else None,
            is_async=bool(data.get("is_async", False)),
            docstring=data.get("docstring"),
            schema_hints=list(data.get("schema_hints", [])),
        )
