"""HEFT (heterogeneous earliest finish time), at segment granularity.

Ready jobs by upward rank, largest first: the job's remaining latency averaged over the accelerators
(per segment, over those that can run it; ties: release, then id). Each job is planned on the
accelerator where its next segment would finish earliest, max(free_at, now) + latency, busy ones
included (ties: lowest index); the plan books that slot in a local copy of the free times, so two
jobs never plan on the same one. A job planned on a busy accelerator waits for it.
"""
from __future__ import annotations

from ..policy import Policy
from ..types import INF, Run
from ._registry import register


def upward_rank(job) -> float:
    rank = 0.0
    for s in range(job.seg, job.n_segs):
        lats = [la[s] for la in job.lat if la[s] < INF]
        rank += sum(lats) / len(lats) if lats else INF
    return rank


@register("heft")
class HEFT(Policy):
    name = "heft"

    def pick(self, view, now: float) -> list:
        free_at = [max(t, now) for t in view.free_at]
        usable = [a for a in range(view.n_acc) if view.healthy[a]]
        out = []
        for job in sorted(view.ready, key=lambda j: (-upward_rank(j), j.release, j.id)):
            if all(free_at[a] > now or view.free_at[a] > now for a in usable):
                break  # nothing left to start now; later jobs would only plan behind these
            finish = {a: free_at[a] + view.latency(job, a) for a in usable}
            a = min(usable, key=lambda a: (finish[a], a), default=None)
            if a is None or finish[a] == INF:
                continue
            if free_at[a] <= now and view.free_at[a] <= now:
                out.append(Run(job, a))
            free_at[a] = max(finish[a], now + 1e-9)  # book the slot (even a zero-length one)
        return out
