"""The outcome sidecar (`outcomes.jsonl`) seen by the trace store: no traces, only checks.

A sidecar lives beside imported trace files and matches the same globs, so
without this format the store would read it as broken native traces. It
yields no trace; its bad lines are reported like any malformed record. The
outcomes themselves are joined by `funcforge import --outcomes` (see
`funcforge.traces.outcomes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from funcforge.traces.formats import JSONL_SUFFIXES, Malformed, TraceFormat, first_record
from funcforge.traces.model import Trace
from funcforge.traces.outcomes import load_outcomes, looks_like_sidecar


def parse_file(path: Path, rel: str) -> Iterator[Trace | Malformed]:
    """Check the sidecar's lines; a sidecar holds no traces."""
    yield from load_outcomes(path, rel).malformed


def sniff(path: Path, head: bytes) -> bool:
    """JSON Lines whose first object has `trace_id`/`task_id` and `score`/`passed`."""
    if not path.name.lower().endswith(JSONL_SUFFIXES):
        return False
    return looks_like_sidecar(first_record(head))


FORMAT = TraceFormat(
    name="outcomes",
    description="funcforge outcome sidecar (trace_id/task_id, score, passed): joined, not traces",
    sniff=sniff,
    parse_file=parse_file,
    priority=15,
)
