"""First come, first served: ready jobs in release order, each to the free accelerator where its next
segment is fastest. Also the dispatcher's fallback."""
from __future__ import annotations

from ..types import Run
from ._registry import register


@register("fcfs")
class FCFS:
    name = "fcfs"

    def pick(self, view, now: float) -> list:
        free = view.free_accs(now)
        out = []
        for job in view.ready:  # already in release order
            if not free:
                break
            a = min(free, key=lambda a: (view.latency(job, a), a))
            free.remove(a)
            out.append(Run(job, a))
        return out
