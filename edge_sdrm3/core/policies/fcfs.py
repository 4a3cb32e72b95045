"""First come, first served: ready jobs in release order, each to the free accelerator where its next
segment is fastest. Also the dispatcher's fallback."""
from __future__ import annotations

from ..policy import Policy
from ._registry import each_to_fastest_free, register


@register("fcfs")
class FCFS(Policy):
    name = "fcfs"

    def pick(self, view, now: float) -> list:
        return each_to_fastest_free(view, now, view.ready)
