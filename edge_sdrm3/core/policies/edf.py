"""Earliest deadline first: ready jobs by deadline (ties: release, then id), each to the free
accelerator where its next segment is fastest (ties: lowest index)."""
from __future__ import annotations

from ..types import INF, Run
from ._registry import register


@register("edf")
class EDF:
    name = "edf"

    def pick(self, view, now: float) -> list:
        free = view.free_accs(now)
        out = []
        for job in sorted(view.ready, key=lambda j: (j.deadline, j.release, j.id)):
            if not free:
                break
            a = min(free, key=lambda a: (view.latency(job, a), a))
            if view.latency(job, a) < INF:
                free.remove(a)
                out.append(Run(job, a))
        return out
