"""Tools in the style of Letta: an agent state first, usage rules in the description."""

from typing import Optional


def core_memory_append(agent_state: "AgentState", label: str, content: str) -> Optional[str]:  # noqa: F821
    """
    Append to the contents of core memory.

    Use this to remember something about the user that will matter later, not
    for facts you can look up again.

    Keep each entry short: one fact per call.

    Args:
        label (str): Section of the memory to be edited (persona or human).
        content (str): Content to write to the memory. All unicode (including emojis) are supported.

    Returns:
        Optional[str]: None is always returned as this function does not produce a response.
    """
    return None


def send_message(self: "Agent", message: str) -> Optional[str]:  # noqa: F821
    """
    Sends a message to the human user.

    Args:
        message (str): Message contents. All unicode (including emojis) are supported.
    """
    return None
