"""The language server: LSP in front of the core (no optimizer logic here)."""
