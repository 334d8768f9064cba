"""Who really answered: the name a proposal and its commit credit (never the configured default).

A live endpoint names its model in each response (`LLMReply.model`, e.g.
`gpt-4o-2024-08-06` for a request of `gpt-4o`); a replayed transcript is not a
model at all, so it is credited as `replay of FILE`. Used by the optimizer step
for `Proposal.model`, which becomes the commit's `Co-authored-by` trailer.
"""

from __future__ import annotations

from collections.abc import Iterable

from funcforge.optimizer.llm import ChatClient, LLMReply
from funcforge.optimizer.proposal import clean_name


def _innermost(client: ChatClient) -> ChatClient:
    """The client that produced the answers, under recording and rate-limiting wrappers."""
    seen = 0
    while seen < 10:
        inner = getattr(client, "inner", None)
        if not isinstance(inner, ChatClient):
            return client
        client, seen = inner, seen + 1
    return client


def answered_by(client: ChatClient, reply: LLMReply) -> str:
    """`replay of FILE` for transcript answers, else the model the response names.

    A response that names no model (some local servers) is credited to the
    model that was requested from that endpoint, the closest known truth.
    """
    from funcforge.optimizer.transcript import ReplayClient

    source = _innermost(client)
    if isinstance(source, ReplayClient):
        return clean_name(f"replay of {source.path.name}")
    return clean_name(reply.model or source.model) or clean_name(source.model)


def credit(names: Iterable[str]) -> str | None:
    """One credit line for several answers: distinct names in order, comma-separated."""
    unique = list(dict.fromkeys(n for n in names if n))
    return ", ".join(unique) or None
