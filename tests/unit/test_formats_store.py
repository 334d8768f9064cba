"""The trace store indexing imported formats in place (no `funcforge import` step)."""

from __future__ import annotations

import shutil
from pathlib import Path

from funcforge.config import load_config
from funcforge.traces.store import TraceStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


def test_the_store_reads_every_import_format_and_loads_traces_lazily(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in (
        "otlp_genai.jsonl",
        "openai_agents.jsonl",
        "openai_responses.jsonl",
        "autogen_agentchat.jsonl",
        "ag2_runtime.db",
        "outcomes.jsonl",
    ):
        shutil.copy(FIXTURES / name, logs / name)
    (logs / "broken.jsonl").write_bytes((FIXTURES / "otlp_genai.jsonl").read_bytes()[:-300])
    (tmp_path / "funcforge.toml").write_text('traces = ["logs/*.jsonl", "logs/*.db"]\n')
    store = TraceStore(load_config(tmp_path))
    store.refresh(final=True)
    stats = store.tool_stats()
    assert stats["convert_units"].calls == 2 + 3 + 2 + 2 + 3 + 2
    assert stats["convert_units"].errors == 1 + 2 + 1 + 1 + 1 + 1
    assert stats["evaluate_expression"].calls == 6
    assert [(m.file, m.line) for m in store.malformed] == [("logs/broken.jsonl", 12)]
    versions = store.version_stats()
    assert versions["3f2a9c1"].n == 3 + 4 + 2
    # whole-file formats are loaded again from disk, by their place in the file
    for summary in store.summaries(tool="convert_units"):
        trace = store.load(summary)
        assert trace.id == summary.id
        assert any(c.name == "convert_units" for c in trace.tool_calls)
