"""Planaria's task score, as re-implemented in multi-DNN scheduling studies.

Source: Ghodrati et al., "Planaria: Dynamic Architecture Fission for Spatial Multi-Tenant Acceleration of
Deep Neural Networks", MICRO 2020; its scheduler ranks tasks by ``priority / (slack x resource estimate)``,
which is how later multi-DNN scheduling work (e.g. DREAM, MICRO 2023) re-implements it as a baseline on
accelerators that cannot be fissioned.

Per pick: ``priority`` is 1 (a workload declares none here); ``slack = deadline - now - remaining best-case
time``; the resource estimate is the job's remaining work relative to the platform: its remaining best-case
time over the number of healthy accelerators. Jobs by score, highest first (ties: release, then id); a job
with no slack left (it cannot end in time even at best) goes after every job that still can, least late
first. Each goes to the free accelerator where its next block is fastest (ties: lowest index).
"""
from __future__ import annotations

from ..policy import Policy
from ..scores import EPS_MS
from ._registry import each_to_fastest_free, register


@register("planaria")
class Planaria(Policy):
    name = "planaria"

    def __init__(self, priority: float = 1.0) -> None:
        self.priority = priority

    def pick(self, view, now: float) -> list:
        n = max(1, sum(view.healthy))

        def key(j) -> tuple:
            rem = view.remaining_best(j)
            slack = j.deadline - now - rem
            if slack <= 0:
                return (1, -slack, j.release, j.id)
            return (0, -self.priority / (slack * max(EPS_MS, rem / n)), j.release, j.id)

        return each_to_fastest_free(view, now, sorted(view.ready, key=key))
