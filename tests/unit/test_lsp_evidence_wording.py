"""The failing-calls diagnostic's figures add up: a rate of one version is said with its own
counts when the summary counts every version's calls."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from funcforge.lsp.evidence import failure_message
from funcforge.lsp.provenance import Provenance


def stats(calls: int, errors: int) -> SimpleNamespace:
    return SimpleNamespace(
        calls=calls,
        errors=errors,
        error_types=Counter({"KeyError": errors}),
        recent_errors=[("t", "KeyError", "'mile'")] * errors,
    )


def test_a_rate_of_one_version_names_its_counts_beside_all_calls() -> None:
    # 4 of 13 calls failed on the old version; 38 later calls (training runs) passed.
    origin = Provenance("7946404a6be6", 4 / 13, 1, True, calls=13, errors=4)
    message = failure_message(stats(51, 4), origin)
    assert message == (
        "31% errors on 7946404a6be6 (before your change): "
        "4 of 51 logged calls failed (4 of 13 on 7946404a6be6): KeyError 'mile' (4)"
    )


def test_when_every_call_is_of_that_version_the_message_stays_short() -> None:
    origin = Provenance("7946404a6be6", 4 / 13, 1, True, calls=13, errors=4)
    assert failure_message(stats(13, 4), origin) == (
        "31% errors on 7946404a6be6 (before your change): "
        "4 of 13 logged calls failed: KeyError 'mile' (4)"
    )


def test_a_resolved_version_is_named_by_its_label_everywhere_in_the_message() -> None:
    # 7946404a6be6 is the tools' content hash; 2fbb9da the commit that had those tools
    origin = Provenance("7946404a6be6", 4 / 13, 1, True, calls=13, errors=4, label="2fbb9da")
    assert failure_message(stats(51, 4), origin) == (
        "31% errors on 2fbb9da (before your change): "
        "4 of 51 logged calls failed (4 of 13 on 2fbb9da): KeyError 'mile' (4)"
    )
    current = Provenance("7946404a6be6", 4 / 13, 2, False, calls=13, errors=4, label="2fbb9da")
    assert failure_message(stats(13, 4), current) == (
        "4 of 13 logged calls failed on 2fbb9da and 1 earlier version: KeyError 'mile' (4)"
    )
