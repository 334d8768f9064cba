"""An optimizer action on the function list, in the paper's schema."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ActionKind = Literal["add_function", "revise_function", "remove_function"]
ACTION_KINDS: tuple[str, ...] = ("add_function", "revise_function", "remove_function")


@dataclass
class Action:
    """`add_function` / `revise_function` / `remove_function` with the paper's fields.

    `arguments` is the JSON Schema of the parameters; `code` the full source of
    the function (empty for remove).
    """

    kind: ActionKind
    name: str
    description: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)
    code: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        return cls(
            kind=data["kind"],
            name=data["name"],
            description=data.get("description", ""),
            arguments=dict(data.get("arguments") or {}),
            packages=list(data.get("packages") or []),
            code=data.get("code", ""),
        )

    def summary(self) -> str:
        """`revise convert_units` style, for titles and commit subjects."""
        verb = self.kind.split("_")[0]
        return f"{verb} {self.name}"
