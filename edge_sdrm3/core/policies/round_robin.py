"""Round robin: ready jobs in release order; accelerators handed out in a rotating order that carries
over between picks, ignoring cost. An accelerator that is busy (or cannot run the job's next segment)
is skipped and the rotation moves on."""
from __future__ import annotations

from ..policy import Policy
from ..types import INF, Run
from ._registry import register


@register("round_robin")
class RoundRobin(Policy):
    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0  # the accelerator to try first at the next hand-out

    def pick(self, view, now: float) -> list:
        free = set(view.free_accs(now))
        n = view.n_acc
        out = []
        for job in view.ready:  # already in release order
            if not free:
                break
            for k in range(n):
                a = (self._next + k) % n
                if a in free and job.lat[a][job.seg] < INF:
                    free.discard(a)
                    out.append(Run(job, a))
                    self._next = (a + 1) % n
                    break
        return out
