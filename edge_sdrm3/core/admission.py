"""Admission at release (``Engine(admission=True)``): the estimate of whether a job can still make its deadline given
the work admitted before it (or once queued jobs with more work, none of it run, give way to it: Moore-Hodgson),
and the cascade-aware refusal of the frames held on an admitted job.

Owned by the :class:`~edge_sdrm3.core.engine.Engine`, which hands it its parts (the dispatcher, the costs, the models,
the cascaded frames it holds, the policy's variant choice and a way to refuse a frame). Pure: no clock, no asyncio,
no zmq, no hal; ``now`` is always an argument.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .dispatcher import Dispatcher
from .frames import FrameInfo
from .types import DONE, INF, Completion, Costs, Job, Model


class Admission:
    def __init__(self, disp: Dispatcher, costs: Costs, models: tuple[Model, ...], index: dict[str, int],
                 held: dict[tuple[str, int], list[FrameInfo]], variant_of: Callable[[int], int],
                 refuse: Callable[[FrameInfo, float], None]) -> None:
        """``held``: the engine's cascaded frames by upstream frame (the same dict, kept up to date by the engine);
        ``variant_of(m)``: the variant the policy would start model ``m`` with; ``refuse(frame, now)``: the engine
        misses a frame at ``now`` with reason ``admission``."""
        self.disp = disp
        self.costs = costs
        self.models = models
        self.index = index
        self.held = held
        self.variant_of = variant_of
        self.refuse = refuse
        self.counts: Counter = Counter()  # admitted jobs by fate: on time, missed
        self.displaced: list[Job] = []  # the queued jobs the last job admitted displaces (:meth:`finish`)
        # per model: the frames at stake per job, itself and its expected cascaded descendants (an upstream is
        # listed before its children)
        self.value = [1.0] * len(models)
        for i in reversed(range(len(models))):
            up = models[i].upstream
            if up is not None and up in index and models[i].trigger_probability > 0:
                self.value[index[up]] += models[i].trigger_probability * self.value[i]

    def admits(self, job: Job, now: float) -> bool:
        """Admission at release: can ``job`` still make its deadline (:meth:`finish`)?"""
        return self.finish(job, now) <= job.deadline

    def _variant(self, m: int, fallback: int = 0) -> int:
        v = self.variant_of(m)
        return v if 0 <= v < len(self.models[m].variants) else fallback

    def finish(self, job: Job, now: float) -> float:
        """The estimated finish of ``job`` released at ``now`` (``INF``: refused). The work before it is that of
        every job due no later than it (it would run first by deadline): the blocks in flight, the rest of the
        running jobs, the queued jobs and the cascaded frames held on an admitted job, each spread over the healthy
        accelerators at their speeds for it (:func:`fluid`); then the job itself at its best, with the variant the
        policy would start it with and the costs as learned. Optimistic on the queue (no idle gaps, work split
        freely), so a refused frame could hardly have made it; counting the cascades held, the rest of the running
        jobs and the accelerators' speeds keeps it from admitting work that could only be dropped after part of it
        ran (measured with tools/soak.py).

        The jobs admitted earlier that this estimate has on time must stay so, or give way (Moore-Hodgson, the rule
        that keeps the most jobs on time on one machine): taken in deadline order with this one, at the first that
        would end late the job with the most work per frame at stake (cascaded children count) among those due no
        later, this one or a queued job none of which has run, gives way, and the check starts over. This one
        giving way: it is refused. Queued jobs giving way: it is admitted and they are dropped before any of
        them runs (:attr:`displaced`, reason ``displaced``), where they would otherwise take the place of the
        cheaper job and still miss, or be shed by the policy after taking it (measured with tools/flood.py)."""
        self.displaced = []
        disp = self.disp
        healthy = [a for a in range(disp.n_acc) if disp.healthy[a]]
        if not healthy:
            return now  # nothing can run it now; the dispatcher's rules decide when one recovers
        v = self._variant(job.m, job.variant)
        rem_on, rem_best = self.costs.rem_on[job.m][v], self.costs.rem_best[job.m][v]
        d = job.deadline
        inv = [1.0 / rem_on[a][0] if 0.0 < rem_on[a][0] < INF else 0.0 for a in healthy]
        total = sum(inv)
        busy = sum(w * max(0.0, disp.free_at[a] - now) for a, w in zip(healthy, inv)) / total if total else 0.0
        work = self.work_ahead(healthy)
        tail = rem_best[0]
        # what this job cannot make give way (started or held work) already leaves it no time: refused at once
        if now + busy + sum(t for dl, t, _, j in work if dl <= d and j is None) + tail > d:
            return INF
        if not work:  # nothing admitted waits (a lone frame on an idle service): nothing to protect or displace
            return now + busy + tail
        # [deadline, order, fluid time, best time, job that may give way (else None), its key, checked]
        items = [[dl, k, t, b, j, b / self.value[j.m] if j is not None else 0.0, True]
                 for k, (dl, t, b, j) in enumerate(work)]
        items.sort(key=lambda it: (it[0], it[1]))
        cum = busy
        for it in items:  # a job the estimate has late already is the policy's business, not this one's
            it[6] = now + cum + it[3] <= it[0]
            cum += it[2]
        new = [d, len(items), fluid(rem_on, rem_best, 0, healthy), tail, job, tail / self.value[job.m], True]
        at = next((k for k, it in enumerate(items) if it[0] > d), len(items))
        items.insert(at, new)
        victims = []
        while True:
            cum, late = busy, -1
            for k, it in enumerate(items):
                if it[6] and now + cum + it[3] > it[0]:
                    late = k
                    break
                cum += it[2]
            if late < 0:
                break
            cand = [it for it in items[:late + 1] if it[4] is not None]
            if not cand:
                items[late][6] = False  # late whatever gives way: not this job's to fix
                continue
            out = max(cand, key=lambda it: (it[5], it[0], it[1]))
            if out is new:
                return INF
            items.remove(out)
            victims.append(out[4])
        self.displaced = victims
        return now + busy + sum(it[2] for it in items[:items.index(new)]) + tail

    def work_ahead(self, healthy: list[int]) -> list[tuple[float, float, float, Job | None]]:
        """``(deadline, fluid time, best time, job)`` of the work admitted and not done: the queued jobs, the rest of
        the running ones (after their block in flight), and the fired cascaded frames held on any of these;
        ``job`` is the queued job where none of it has run (it may give way to a new one: :meth:`finish`), else
        None."""
        out: list[tuple[float, float, float, Job | None]] = []
        live = []
        for j in self.disp.ready:
            out.append((j.deadline, fluid(j.rem_on, j.rem_best, j.seg, healthy), j.rem_best[j.seg],
                        j if j.start < 0 else None))
            live.append((j.model.name, j.frame))
        for j in self.disp.running:
            if j is not None:
                live.append((j.model.name, j.frame))
                if j.seg < j.n_segs:
                    out.append((j.deadline, fluid(j.rem_on, j.rem_best, j.seg, healthy), j.rem_best[j.seg], None))
        held = self.held
        while live and held:
            kids = held.get(live.pop())
            for k in kids or ():
                m = self.index[k.model]
                v = self._variant(m)
                rb = self.costs.rem_best[m][v]
                out.append((k.deadline_ms, fluid(self.costs.rem_on[m][v], rb, 0, healthy), rb[0], None))
                live.append((k.model, k.frame))
        return out

    def outcome(self, c: Completion) -> None:
        """An admitted job's fate, counted (``status``: admission): on time, or missed for a reason of its own."""
        if c.status == DONE:
            self.counts["on time"] += 1
        elif not c.reason.startswith("upstream"):
            self.counts["missed"] += 1

    def cascade(self, info: FrameInfo, finish: float, now: float) -> None:
        """Cascade-aware admission: the fired frames held on an admitted job that could not make their deadline
        even if it ends at its estimated ``finish`` and they run at once at their best are refused now (reason
        ``admission``, their own cascades ``upstream dropped``), not when it ends."""
        kids = self.held.get((info.model, info.frame))
        if not kids:
            return
        keep = []
        for k in kids:
            m = self.index[k.model]
            end = finish + self.costs.rem_best[m][self._variant(m)][0]
            if end > k.deadline_ms:
                self.refuse(k, now)
            else:
                keep.append(k)
                self.cascade(k, end, now)
        if keep:
            kids[:] = keep
        else:
            del self.held[(info.model, info.frame)]


def fluid(rem_on: list[list[float]], rem_best: list[float], s: int, healthy: list[int]) -> float:
    """The time of a job's blocks from ``s`` spread over the ``healthy`` accelerators at once, each at its speed
    for them (``1 / sum(1 / t_a)``); their best time where no accelerator runs them all."""
    inv = 0.0
    for a in healthy:
        t = rem_on[a][s]
        if t <= 0.0:
            return 0.0
        if t < INF:
            inv += 1.0 / t
    return 1.0 / inv if inv > 0.0 else rem_best[s]
