"""Tools registered by a call (AG2 `register_function`, LlamaIndex `FunctionTool`, langchain `args_schema`)."""

from typing import Annotated

from autogen import register_function
from langchain_core.tools import StructuredTool, tool
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field, conint


def calculator(a: Annotated[int, "First operand."], b: Annotated[int, "Second operand."], operator: Annotated[str, "One of + - * /."]) -> int:
    """Not what the model sees: AG2 sends register_function's description."""
    return 0


register_function(calculator, caller=None, executor=None, name="calculator", description="A simple calculator.")


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the result."""
    return a * b


multiply_tool = FunctionTool.from_defaults(fn=multiply, description="Multiply two integers.")


class SearchInput(BaseModel):
    """What to search."""

    query: str = Field(description="The search query.")
    top_k: conint(ge=1, le=20) = 5  # type: ignore[valid-type]
    sites: tuple[str, ...] = ()


@tool("search", args_schema=SearchInput)
def search(query: str, top_k: int = 5, sites: tuple[str, ...] = ()) -> str:
    """Search the web."""
    return ""


def lookup(key: str) -> str:
    """Look a key up."""
    return ""


lookup_tool = StructuredTool.from_function(func=lookup, name="kv_lookup", description="Look up a key in the store.")
