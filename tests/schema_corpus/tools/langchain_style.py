"""Tools in the style of langchain (`@tool`, injected arguments, enums, NumPy and Sphinx docstrings)."""

import enum
from typing import Annotated

from langchain_core.tools import InjectedToolArg, tool


class Priority(str, enum.Enum):
    """How urgent a ticket is."""

    LOW = "low"
    HIGH = "high"


class Level(enum.IntEnum):
    DEBUG = 10
    INFO = 20


@tool
def open_ticket(title: str, priority: Priority = Priority.LOW, user_id: Annotated[str, InjectedToolArg] = "") -> str:
    """Open a support ticket.

    Parameters
    ----------
    title : str
        A one-line summary of the problem.
    priority : Priority
        How urgent it is.
    """
    return ""


@tool
def set_log_level(level: Level, module: str = "root") -> str:
    """Set the log level of a module.

    :param level: The new level.
    :param module: The logger's name.
    :returns: What changed.
    """
    return ""
