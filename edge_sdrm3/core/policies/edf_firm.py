"""EDF for firm deadlines, as a competent engineer would deploy it on heterogeneous accelerators.

Source: the sentence of DESIGN.md §4 (issue 13) — EDF ordered by deadline less the cascaded children's
best-case time; drops jobs whose best-case end is past the deadline (started or not); places each block on
any healthy accelerator, free or busy, choosing the least energy among those that meet the deadline, else
the earliest finish. Written from that sentence; the bar SDRM3 must clear.

Per pick: jobs by (deadline - cut, release, id), ``cut`` being the time the job's cascaded children need after
it (``cascade_cuts``: their best-case time, against their own deadlines). A job whose best-case end (its next
block's earliest finish given what the accelerators run now, then the rest each on its fastest accelerator) is
past its deadline is dropped (``hopeless``). Otherwise each healthy accelerator ``a`` gives an end estimate:
the block's finish there (waiting for ``a`` if busy, or booked earlier in this pick; hand-off included) plus
the rest at best case. Among the accelerators whose estimate meets the deadline less the cut with a margin —
at most ``slack_use`` of the slack left after the fastest end may be spent on energy, since the estimate
cannot see the jobs released later — the least energy wins (ties: earliest finish, lowest index); if none
meets it, the earliest finish. A busy winner is booked (the job waits for it; later jobs of the pick see it
booked). The pick stops when no accelerator is free now.
"""
from __future__ import annotations

from ..policy import Policy
from ..types import INF, Drop, Run
from ._registry import register


def cascade_cuts(models, costs) -> list[float]:
    """Per model: how long before its own deadline a job must end so that its cascaded descendants (released
    when it completes, due by their own deadlines from the same frame time) can still end in time at best
    case. With the default deadlines (the period, the same for parent and child) it is the best-case time of
    the longest chain of descendants; a child with a shorter deadline than its parent's cuts deeper."""
    idx = {m.name: i for i, m in enumerate(models)}
    latest = [m.relative_deadline_ms for m in models]  # latest end after the frame time
    for i in reversed(range(len(models))):  # an upstream is listed before its children
        up = models[i].upstream
        if up is not None and up in idx and models[i].trigger_probability > 0:
            u = idx[up]
            latest[u] = min(latest[u], latest[i] - costs.rem_best[i][0][0])
    return [m.relative_deadline_ms - t for m, t in zip(models, latest)]


@register("edf_firm")
class EDFFirm(Policy):
    name = "edf_firm"

    def __init__(self, slack_use: float = 0.3) -> None:
        self.slack_use = slack_use
        self._models = None
        self._cut: list[float] = []

    def pick(self, view, now: float) -> list:
        if self._models is not view.models:
            self._models, self._cut = view.models, cascade_cuts(view.models, view.costs)
        accs = [a for a in range(view.n_acc) if view.healthy[a]]
        t_at = [max(t, now) for t in view.free_at]
        handoff, handoff_mj = view.handoff_ms, view.platform.handoff_mj
        out: list = []
        for j in sorted(view.ready, key=lambda j: (j.deadline - self._cut[j.m], j.release, j.id)):
            s, rest = j.seg, j.rem_best[j.seg + 1]
            moved = [0 <= j.acc != a for a in range(view.n_acc)]
            best_end = min((max(view.free_at[a], now) + j.lat[a][s] + handoff * moved[a] for a in accs),
                           default=INF) + rest
            if best_end > j.deadline:
                out.append(Drop(j, "hopeless"))
                continue
            if not any(t_at[a] <= now for a in accs):
                continue  # nothing can start now; the drops above still apply to every job
            fin = {a: t_at[a] + j.lat[a][s] + handoff * moved[a] for a in accs}
            fastest = min(fin.values()) + rest
            due = j.deadline - self._cut[j.m]  # its children must still make theirs
            limit = fastest + self.slack_use * (due - fastest) if fastest <= due else -INF
            meets = [a for a in accs if fin[a] + rest <= limit]
            if meets:
                a = min(meets, key=lambda a: (j.en[a][s] + handoff_mj * moved[a], fin[a], a))
            else:
                a = min(accs, key=lambda a: (fin[a], a))
            if fin[a] == INF:
                continue
            if t_at[a] <= now and view.free_at[a] <= now:
                out.append(Run(j, a))
            t_at[a] = max(fin[a], now + 1e-9)  # booked: later jobs of this pick see it busy
        return out
