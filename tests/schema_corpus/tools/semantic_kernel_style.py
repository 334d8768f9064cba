"""Tools in the style of Semantic Kernel (`@kernel_function`, descriptions in the decorator and `Annotated`)."""

from typing import Annotated, Literal

from semantic_kernel.functions import kernel_function


@kernel_function(name="get_weather", description="Gets the current weather for a city.")
def get_weather(
    city: Annotated[str, "The city, e.g. 'Paris'."],
    unit: Annotated[Literal["C", "F"], "Temperature unit."] = "C",
) -> Annotated[str, "The weather report."]:
    """Internal notes the model never sees."""
    return ""


@kernel_function(description="Books a table.")
def book_table(guests: Annotated[int, "Number of guests."], when: Annotated[str, "ISO date-time."]) -> str:
    return ""
