"""funcforge: train an LLM agent's tools (functions) instead of its weights."""

__version__ = "0.1.0"
