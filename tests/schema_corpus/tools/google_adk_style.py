"""Tools in the style of google-adk: a `ToolContext`, dict results, dates and enums."""

import datetime
from enum import Enum, auto

from google.adk.tools import ToolContext


class Status(Enum):
    OPEN = auto()
    CLOSED = auto()


def book_meeting(
    day: datetime.date,
    attendees: list[str],
    status: Status,
    tool_context: ToolContext,
    minutes: float = 30,
) -> dict:
    """Book a meeting room.

    Args:
        day: The day of the meeting.
        attendees: E-mail addresses of the attendees.
        status: Whether the booking is open.
        tool_context: Filled in by the runner.
        minutes: How long.
    """
    return {}
