"""Which traces may be learned from: the train/test split semantics shared by every decision.

A trace whose `split` is `"test"` is *held out*: it is reported (test scores),
never learned from — not in the optimizer's prompt, the statistics a decision
reads, a selection or a per-version score a decision compares. Every other
split (`"train"`, none, anything else) is *learnable*. The comparison ignores
case and surrounding spaces (`"TEST"` and `" Test "` are held out too), and a
native trace without its own `split` takes its task's (`"task": {..., "split":
"test"}`, as a task file line copied into the trace carries it). Readers of the store
choose a view with `Which`; the default everywhere is `"learnable"`.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "HELD_OUT_SPLIT",
    "VIEWS",
    "Which",
    "check_view",
    "in_view",
    "is_held_out",
    "split_label",
    "view_label",
]

HELD_OUT_SPLIT = "test"
Which = Literal["learnable", "held_out", "all"]
VIEWS: tuple[str, ...] = get_args(Which)


def is_held_out(split: str | None) -> bool:
    """True for a trace kept out of learning (its split is "test", in any case or padding).

    `"TEST"` or `" Test "` is the test split as a person meant it: reading it as
    learnable would put held-out tasks and their expected answers into the prompt.
    """
    return split is not None and split.strip().casefold() == HELD_OUT_SPLIT


def in_view(which: Which, split: str | None) -> bool:
    """Whether a trace of `split` belongs to the view `which`."""
    if which == "all":
        return True
    return is_held_out(split) == (which == "held_out")


def split_label(held_out: bool) -> str:
    """The word a score's split is labelled with in reports, trailers and hovers."""
    return "test" if held_out else "train"


def view_label(which: Which) -> str:
    """The label of a view's scores: "train", "test" or "all"."""
    return {"learnable": "train", "held_out": "test", "all": "all"}[which]


def check_view(which: str) -> Which:
    """`which` as a `Which`; ValueError naming the choices otherwise."""
    if which not in VIEWS:
        raise ValueError(f"unknown trace view {which!r}; choose one of {', '.join(VIEWS)}")
    return which  # type: ignore[return-value]
