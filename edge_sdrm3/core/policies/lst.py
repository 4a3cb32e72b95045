"""Least slack time first: ready jobs by slack = deadline - now - remaining_best (the time to spare
if every remaining segment ran on its fastest accelerator; ties: release, then id), each to the free
accelerator where its next segment is fastest (ties: lowest index)."""
from __future__ import annotations

from ..types import INF, Run
from ._registry import register


@register("lst")
class LST:
    name = "lst"

    def pick(self, view, now: float) -> list:
        free = view.free_accs(now)
        out = []
        order = sorted(view.ready, key=lambda j: (j.deadline - now - view.remaining_best(j), j.release, j.id))
        for job in order:
            if not free:
                break
            a = min(free, key=lambda a: (view.latency(job, a), a))
            if view.latency(job, a) < INF:
                free.remove(a)
                out.append(Run(job, a))
        return out
