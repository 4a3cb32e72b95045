"""Earliest deadline first: ready jobs by deadline (ties: release, then id), each to the free
accelerator where its next segment is fastest (ties: lowest index)."""
from __future__ import annotations

from ..policy import Policy
from ._registry import each_to_fastest_free, register


@register("edf")
class EDF(Policy):
    name = "edf"

    def pick(self, view, now: float) -> list:
        return each_to_fastest_free(view, now, sorted(view.ready, key=lambda j: (j.deadline, j.release, j.id)))
