"""PREMA (token-based preemptive NPU scheduling, HPCA'20), at segment granularity.

Source: Choi and Rhu, "PREMA: A Predictive Multi-task Scheduling Algorithm For Preemptible Neural
Processing Units", HPCA 2020 (Algorithm 1). A job's token is its priority (1 unless the workload declares
one) times its normalized waiting, (now - release) / its isolated latency (remaining_best at release).
The threshold is the largest of the priority levels {1, 3, 9} that the largest token reaches (1 when
none does); jobs whose token reaches it are the candidates (every ready job if none does). The shortest
candidate by remaining_best (ties: release, then id) goes to the free accelerator where its next segment
is fastest, and the choice repeats over the jobs left, so free accelerators never idle while jobs wait.
Preemption happens at segment boundaries.
"""
from __future__ import annotations

from ..policy import Policy
from ..types import INF, Run
from ._registry import register


@register("prema")
class PREMA(Policy):
    name = "prema"

    LEVELS = (1.0, 3.0, 9.0)

    def __init__(self, priority: float = 1.0) -> None:
        self.priority = priority

    def pick(self, view, now: float) -> list:
        free = view.free_accs(now)

        def token(j) -> float:
            iso = j.rem_best[0]
            return self.priority * (now - j.release) / iso if iso > 0 else INF

        tokens = {j.id: token(j) for j in view.ready}
        top = max(tokens.values(), default=0.0)
        threshold = max((t for t in self.LEVELS if t <= top), default=self.LEVELS[0])
        waiting = sorted(view.ready, key=lambda j: (view.remaining_best(j), j.release, j.id))
        out = []
        while free and waiting:
            job = next((j for j in waiting if tokens[j.id] >= threshold), waiting[0])
            waiting.remove(job)
            a = min(free, key=lambda a: (view.latency(job, a), a))
            if view.latency(job, a) < INF:
                free.remove(a)
                out.append(Run(job, a))
        return out
