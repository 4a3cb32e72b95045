"""The XRBench runtime's scheduler: whole models, non-preemptive, greedily to an idle accelerator.

In passes over the models in alphabetical (byte-wise) order, each model's oldest ready job goes to
the idle accelerator with the lowest whole-model latency (ties: lowest index); a pass dispatches at
most one job per model, and passes repeat until one dispatches nothing. A busy, faster accelerator is
never waited for. Queued jobs are dropped at their deadline by the dispatcher.
"""
from __future__ import annotations

from ..policy import Policy
from ..types import Run
from ._registry import register


@register("xrbench")
class XRBench(Policy):
    name = "xrbench"

    def pick(self, view, now: float) -> list:
        free = view.free_accs(now)
        if not free:
            return []
        queues: dict[str, list] = {}
        for job in view.ready:  # release order, so each list is oldest first
            queues.setdefault(job.model.name, []).append(job)
        order = sorted(queues, key=lambda n: n.encode())
        out = []
        progress = True
        while progress and free:
            progress = False
            for name in order:
                q = queues[name]
                if not q or not free:
                    continue
                job = q.pop(0)
                a = min(free, key=lambda a: (view.remaining(job, a), a))
                free.remove(a)
                out.append(Run(job, a, whole=True))
                progress = True
        return out
