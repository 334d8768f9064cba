"""Content-hash versions resolved to commits; log, plot, roll-back agree; splits labelled."""

from __future__ import annotations

import json
from pathlib import Path

from funcforge.config import load_config
from funcforge.history.contents import commit_contents, files_at
from funcforge.history.git import open_repo
from funcforge.history.log import history_log, render_log
from funcforge.history.plot import figure_for
from funcforge.history.rollback import rollback
from funcforge.toolset.toolset import load_toolset
from tests.conftest import git
from tests.unit.test_history_support import (
    NEW_ADD,
    NEW_CONVERT,
    OLD_CONVERT,
    UNITS,
    make_proposal,
    make_workspace,
    optimizer_commit,
    revise,
    scores,
    sha,
    user_commit,
)


def write(
    root: Path,
    version: str,
    values: list[float],
    split: str | None = None,
    file: str = "traces/run.jsonl",
) -> None:
    path = root / file
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for i, v in enumerate(values):
            record = {
                "id": f"{version}-{split}-{i}-{len(values)}-{file}",
                "messages": [{"role": "user", "content": "q"}],
                "outcome": {"score": v, "passed": v >= 0.5},
                "toolset_version": version,
            }
            if split:
                record["split"] = split
            fh.write(json.dumps(record) + "\n")


def content(config) -> str:
    return load_toolset(config).content_hash()


def test_a_commits_content_hash_is_the_checkouts(tmp_path: Path) -> None:
    config = make_workspace(tmp_path / "repo", sub="agent")  # the workspace is a subfolder
    (config.root / "tools" / "nested").mkdir()
    (config.root / "tools" / "nested" / "deep.py").write_text("def deep() -> int:\n    return 1\n")
    (config.root / "tools" / "notes.txt").write_text("not a tool\n")
    git(tmp_path / "repo", "add", "-A")
    git(tmp_path / "repo", "commit", "-qm", "more tools")
    with open_repo(config) as repo:
        contents = commit_contents(repo, config)
        assert contents[sha(config.root)] == content(config)
        assert set(files_at(repo, config, "HEAD")) == set(load_toolset(config).data)
    # cached: a second look answers from the cache file, and a damaged cache is recomputed
    caches = list((config.state_path / "cache").glob("contents-*.json"))
    assert len(caches) == 1 and sha(config.root) in json.loads(caches[0].read_text())
    caches[0].write_text("{not json")
    from funcforge.history import contents as module

    module._memory.clear()
    with open_repo(config) as repo:
        assert commit_contents(repo, config)[sha(config.root)] == content(config)


def history(tmp_path: Path):
    """c0 -> o1 (step 1) -> o2 (step 2) -> a user commit that does not touch tools;
    traces name c0 and o2 by content hash (as the samples do), o1 by its sha."""
    config = make_workspace(tmp_path / "ws")
    root = config.root
    c0, h0 = sha(root), content(config)
    p1 = make_proposal(config, [revise()], pid="aaa111", step=1)
    o1 = optimizer_commit(root, "tools/units.py", UNITS.replace(OLD_CONVERT, NEW_CONVERT), p1)
    p2 = make_proposal(config, [revise("add", NEW_ADD)], pid="bbb222", step=2)
    o2 = optimizer_commit(root, "tools/other.py", NEW_ADD, p2)
    h2 = content(config)
    u3 = user_commit(root, "README.md", "more docs\n", "docs only")
    write(root, h0, scores(0.8, 30))
    write(root, f"dirty-{h0}", scores(0.8, 10))  # the same tools, run before they were committed
    write(root, h0, scores(0.4, 20), split="test")
    write(root, o1[:7], scores(0.7, 30))
    write(root, h2, scores(0.5, 30))
    return load_config(root), c0, o1, o2, u3, h0, h2


def test_content_hash_versions_resolve_and_everything_agrees(tmp_path: Path) -> None:
    config, c0, o1, o2, u3, h0, _ = history(tmp_path)
    log = history_log(config)
    assert log.best is not None and log.best.version == c0 and log.best.content == h0
    assert (log.best.scored, round(log.best.mean_score or 0, 2)) == (40, 0.8)  # train only
    assert (log.best.test_scored, log.best.test_score) == (20, 0.4)  # held out, labelled
    assert not log.other  # nothing left unresolved
    by_commit = {e.commit.sha: e for e in log.entries}
    assert by_commit[o2].measured is not None and by_commit[o2].measured.describe() == "0.50 (n=30)"
    # HEAD (u3) did not touch the tools: it is o2's version, and the decline is judged on it,
    # against the last accepted version o1 (0.70 -> 0.50 on 30 traces: not yet conclusive)
    assert log.decline is not None and log.decline.current is by_commit[o2].measured
    assert log.decline.best is not None and log.decline.best.version == o1
    assert not log.decline.declined and "< 20 (sequential test" in log.decline.reason
    text = render_log(log)
    assert f"best version: {c0[:7]} train 0.80 (n=40), test 0.40 (n=20)" in text
    assert "(unresolved)" not in text
    # the points: c0, o1, o2 and HEAD; not every commit that kept a measured content
    assert [p.commit for p in log.versions] == [c0, o1, o2, u3]
    assert log.versions[-1].score == 0.5 and log.versions[0].test_score == 0.4
    # roll-back chooses by the same table and names the scores in its message
    result = rollback(config, best=True)
    subject = result.message.splitlines()[0]
    assert subject == f"funcforge: roll back to {c0[:7]} (0.80, n=40) from 0.50 (n=30)"
    after = history_log(config)
    rb = after.versions[-1]
    assert rb.rollback and rb.score == 0.8 and rb.n == 40 and rb.is_best  # a point, c0's score
    assert after.best is not None and set(after.best.shas) >= {c0, rb.commit}


def test_the_plot_has_a_legend_in_words_a_whole_title_and_the_rollback(tmp_path: Path) -> None:
    config, c0, *_ = history(tmp_path)
    rollback(config, best=True)
    fig = figure_for(history_log(config))
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "roll-back commit (restores an earlier toolset)" in legend
    assert "commit not made by funcforge (e.g. the starting toolset)" in legend
    assert any(t.startswith("best version") for t in legend)
    assert any(t.startswith("test split (held out") for t in legend)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert any("roll-back" in t and f"to {c0[:7]}" in t for t in ticks)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    title = ax.title.get_window_extent(renderer)
    box = fig.bbox
    assert title.x0 >= box.x0 and title.x1 <= box.x1  # not cut off


def test_the_plot_draws_one_point_for_a_toolset_head_did_not_change(tmp_path: Path) -> None:
    """Traces logged with the tools' content hash; HEAD is a later commit that touched no
    tool file: one point (one best star), its tick naming HEAD, not two identical points."""
    config = make_workspace(tmp_path / "repo")
    root = config.root
    c0 = sha(root)
    write(root, content(config), scores(0.6, 30))
    user_commit(root, "README.md", "more words\n", "docs")
    head = sha(root)
    log = history_log(config)
    assert [p.commit for p in log.versions] == [c0, head]  # the text log keeps HEAD's line
    ax = figure_for(log).axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{c0[:7]}\n= HEAD {head[:7]}"]
    from matplotlib.collections import PathCollection

    stars = [c for c in ax.collections if isinstance(c, PathCollection) and 300 in c.get_sizes()]
    assert len(stars) == 1
