"""Agent traces: the model, the incremental store, and one module per import format."""
