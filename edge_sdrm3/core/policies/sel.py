"""Shortest expected latency first: ready jobs by remaining work at best (remaining_best: every
remaining segment on its fastest accelerator; ties: release, then id), each to the free accelerator
where its next segment is fastest (ties: lowest index)."""
from __future__ import annotations

from ..policy import Policy
from ._registry import each_to_fastest_free, register


@register("sel")
class SEL(Policy):
    name = "sel"

    def pick(self, view, now: float) -> list:
        order = sorted(view.ready, key=lambda j: (view.remaining_best(j), j.release, j.id))
        return each_to_fastest_free(view, now, order)
