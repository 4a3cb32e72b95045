"""PREMA (token-based preemptive NPU scheduling, HPCA'20), at segment granularity.

A job's token is its normalized waiting, (now - release) / its isolated latency (remaining_best at
release). Jobs whose token reaches ``threshold`` are candidates (all ready jobs if none does); the
shortest candidate by remaining_best (ties: release, then id) goes to the free accelerator where its
next segment is fastest, and the choice repeats over the jobs left, so free accelerators never idle
while jobs wait. Preemption happens at segment boundaries.
"""
from __future__ import annotations

from ..types import INF, Run
from ._registry import register


@register("prema")
class PREMA:
    name = "prema"

    def __init__(self, threshold: float = 1.0) -> None:
        self.threshold = threshold

    def pick(self, view, now: float) -> list:
        free = view.free_accs(now)

        def token(j) -> float:
            iso = j.rem_best[0]
            return (now - j.release) / iso if iso > 0 else INF

        waiting = sorted(view.ready, key=lambda j: (view.remaining_best(j), j.release, j.id))
        out = []
        while free and waiting:
            job = next((j for j in waiting if token(j) >= self.threshold), waiting[0])
            waiting.remove(job)
            a = min(free, key=lambda a: (view.latency(job, a), a))
            if view.latency(job, a) < INF:
                free.remove(a)
                out.append(Run(job, a))
        return out
