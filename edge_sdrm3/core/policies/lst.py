"""Least slack time first: ready jobs by slack = deadline - now - remaining_best (the time to spare
if every remaining segment ran on its fastest accelerator; ties: release, then id), each to the free
accelerator where its next segment is fastest (ties: lowest index)."""
from __future__ import annotations

from ..policy import Policy
from ._registry import each_to_fastest_free, register


@register("lst")
class LST(Policy):
    name = "lst"

    def pick(self, view, now: float) -> list:
        order = sorted(view.ready, key=lambda j: (j.deadline - now - view.remaining_best(j), j.release, j.id))
        return each_to_fastest_free(view, now, order)
