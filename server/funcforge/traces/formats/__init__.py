"""Trace file formats: one module per format, each registered here."""
