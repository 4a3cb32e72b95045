"""Herald: layer blocks mapped to sub-accelerators by dataflow affinity, with the load balanced.

Source: Kwon et al., "Heterogeneous Dataflow Accelerators for Multi-DNN Workloads" (Herald), HPCA 2021:
its scheduler assigns each layer to the sub-accelerator whose dataflow suits it, balancing the load across
the sub-accelerators so that none becomes the bottleneck.

On the first pick (and again whenever the cost tables or the set of healthy accelerators change) each
(model, segment) pair, taken in descending fps x best latency (ties: model index, segment), is mapped to
the accelerator with the least resulting load: its static load so far (the sum of fps x latency of the
pairs it holds) plus fps x this segment's latency there — affinity enters through that latency, the
balance through the load (ties: the faster there, then lowest index). The largest variant's latencies
build the map. Ready jobs in release order; a job's next segment runs only on its mapped accelerator,
and waits while that one is busy.
"""
from __future__ import annotations

from ..policy import Policy
from ..types import INF, Run
from ._registry import register


@register("herald")
class Herald(Policy):
    name = "herald"

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._map: dict[tuple[int, int], int] = {}

    def _build(self, view) -> None:
        lat = view.costs.lat
        usable = [a for a in range(view.n_acc) if view.healthy[a]]
        pairs = []
        for m, model in enumerate(view.models):
            for s in range(len(lat[m][0][0])):
                best = min((lat[m][0][a][s] for a in usable), default=INF)
                pairs.append((-model.fps * best, m, s, best))
        load = [0.0] * view.n_acc
        self._map = {}
        for _, m, s, best in sorted(pairs):
            if best == INF:
                continue
            fps = view.models[m].fps
            a = min(usable, key=lambda a: (load[a] + fps * lat[m][0][a][s], lat[m][0][a][s], a))
            load[a] += fps * lat[m][0][a][s]
            self._map[(m, s)] = a

    def pick(self, view, now: float) -> list:
        key = (id(view.costs), view.healthy)
        if key != self._key:
            self._build(view)
            self._key = key
        free = set(view.free_accs(now))
        out = []
        for job in view.ready:  # already in release order
            a = self._map.get((job.m, job.seg))
            if a in free and job.lat[a][job.seg] < INF:
                free.discard(a)
                out.append(Run(job, a))
        return out
