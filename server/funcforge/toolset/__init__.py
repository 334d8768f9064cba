"""The agent's tool functions: extraction (libcst -> FunctionSpec), rewriting, schemas."""
