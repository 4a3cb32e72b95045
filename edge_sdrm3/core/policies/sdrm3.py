"""SDRM3 (DESIGN.md §4): MapScore over (ready job, accelerator) pairs at segment granularity.

Job terms: urgency ``U`` (remaining best-case work over the time left before the deadline, less the
time its cascaded children will need) and fairness ``F`` (time since its last progress, in units of
its next segment). Pair terms, over every accelerator, free now or busy: preference ``P`` = earliest
finish of the next segment over its finish on this accelerator, waiting included (so a busy
accelerator that suits the segment can beat a poor free one), and energy ``E`` = cheapest energy over
this one's. The best pair is taken; on a busy accelerator the job waits for it and later jobs see that
accelerator booked; the step repeats while an accelerator is free. Placements that would make a job
late where another accelerator would not are skipped.

Drops: a job whose best-case completion misses its deadline by more than ``delta`` (hopeless), and,
under overload, the jobs shed by a Moore-Hodgson check (``overload_victims``).

Measured variant (kept, see docs/results/uxcost.md): ordering jobs by the urgency ratio, as the
published summary has it, lets short jobs with slack wait until one non-preemptible segment of a long
job makes them late; ordering by (cascade-adjusted) deadline rank, with ``U`` replaced by that rank and
``F``, ``P``, ``E`` as above, measured far better on the XR scenarios. ``order="urgency"`` keeps the
ratio for comparison.
"""
from __future__ import annotations

import inspect
from dataclasses import replace

from ..params_table import load_table, workload_of
from ..scores import EPS_MS, Theta
from ..tuner import Tuner
from ..types import INF, Completion, Drop, Run
from ._registry import register


RANK_STEP = 10.0  # score between neighbours in deadline order (larger than beta + gamma)


@register("sdrm3")
class SDRM3:
    name = "sdrm3"
    uses_variants = False

    def __init__(self, theta: Theta | None = None, shed: bool = True, order: str = "lst", tune: bool = True,
                 window_ms: float = 2000.0, slack_use: float = 0.3, urgent_speed: bool = True,
                 params_table: str | None = None, **params: float) -> None:
        self.order = order
        self.slack_use = slack_use
        self.urgent_speed = urgent_speed
        self.theta = theta or Theta(**params)
        self.shed = shed
        # δ stays as configured: with exact cost estimates a later drop only wastes work
        self.tuner = Tuner(self.theta, window_ms=window_ms, step=0.3, fields=("beta", "gamma", "alpha")) \
            if tune else None
        self._value: list[float] = []
        self._tail: list[float] = []
        self._rel_deadline: list[float] = []
        self._healthy: tuple = ()
        self._theta_seen: Theta | None = None
        self._theta_t: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        self._accs: list[int] = []

        self._checked_id = 0
        self._models = None
        # parameters learned offline (`edge-sdrm3 tune`): applied when the workload is first seen
        self.table = load_table(params_table) if params_table else None
        self.table_entry: tuple | None = None  # (entry, distance) used
        self.table_ignored: list[str] = []  # parameters of the entry this policy does not have

    def _cascades(self, view) -> None:
        """Per model: frames at stake per job (itself plus its expected cascaded descendants), and the
        time its descendants still need after it (so that an upstream job leaves them room)."""
        if self._models is view.models:
            return
        ms = view.models
        idx = {m.name: i for i, m in enumerate(ms)}
        val = [1.0] * len(ms)
        tail = [0.0] * len(ms)
        rem = view.costs.rem_best
        for i in reversed(range(len(ms))):  # an upstream is listed before its children
            up = ms[i].upstream
            if up is not None and up in idx and ms[i].trigger_probability > 0:
                u = idx[up]
                val[u] += ms[i].trigger_probability * val[i]
                tail[u] = max(tail[u], rem[i][0][0] + tail[i])
        self._models, self._value, self._tail = ms, val, tail
        self._rel_deadline = [m.relative_deadline_ms for m in ms]
        if self.table is not None and self.table_entry is None:
            self._start_from(view)
        if self.tuner is not None:
            ref = {m.name: view.costs.reference_energy(i) for i, m in enumerate(ms)}
            self.tuner.ref_energy = lambda name: ref.get(name, 0.0)

    def _start_from(self, view) -> None:
        """Take the table's parameters for this workload and platform (nearest entry): θ is where the
        online tuner starts; the others replace the constructor's."""
        found = self.table.lookup(workload_of(view.models), view.platform.name)
        if found is None:
            return
        self.table_entry = found
        params = dict(found[0].params)
        theta = {k: params.pop(k) for k in list(params) if k in Theta.__dataclass_fields__}
        self.theta = replace(self.theta, **theta)
        if not params.pop("tune", self.tuner is not None):
            self.tuner = None
        if self.tuner is not None:
            self.tuner.theta = self.theta
            self.tuner.window_ms = params.pop("window_ms", self.tuner.window_ms)
        params.pop("window_ms", None)
        args = inspect.signature(SDRM3.__init__).parameters
        for k, v in params.items():  # the other constructor arguments are kept as attributes of the same name
            if k in args and k not in ("theta", "params_table") and k in self.__dict__:
                setattr(self, k, v)
            else:
                self.table_ignored.append(k)

    def observe(self, c: Completion, now: float) -> None:
        """A due frame's outcome (from the driver): feeds the online tuner."""
        if self.tuner is not None and self.tuner.observe(c, now):
            self.theta = self.tuner.theta

    def pick(self, view, now: float) -> list:
        if self._models is not view.models:
            self._cascades(view)
        if self.theta is not self._theta_seen:
            self._theta_seen, self._theta_t = self.theta, self.theta.as_tuple()
        alpha, beta, gamma, delta = self._theta_t
        free_at = view.free_at
        healthy = view.healthy
        if healthy != self._healthy:
            self._healthy = healthy
            self._accs = [a for a in range(view.n_acc) if healthy[a]]
        accs = self._accs
        t_at = list(free_at)
        n_free = 0
        for a in accs:
            if free_at[a] <= now:
                t_at[a] = now
                n_free += 1
        if not n_free:
            return []
        latest = max([t_at[a] for a in accs])
        handoff = view.handoff_ms
        tail = self._tail
        tol = self._rel_deadline  # per model: its relative deadline (delta is a share of it)
        order = self.order
        out: list = []
        cands = []  # (order key, release, id, F, job, best-case rest after the next block)
        newest = 0
        for j in view.ready:
            s = j.seg
            rem = j.rem_best
            rb, rest, dl = rem[s], rem[s + 1], j.deadline
            if delta >= 0:  # scores.hopeless, inlined: best-case end beyond the tolerance
                lim = dl + delta * tol[j.m]
                if now + rb > lim:
                    out.append(Drop(j, "hopeless"))
                    continue
                if latest + rb > lim:  # it might be: the exact best finish of its next block decides
                    lat, moved = j.lat, j.acc
                    mf = min([t_at[a] + lat[a][s] + (handoff if 0 <= moved != a else 0.0) for a in accs])
                    if mf + rest > lim:
                        out.append(Drop(j, "hopeless"))
                        continue
            f_ = (now - j.last_progress) / max(EPS_MS, rb - rest)
            if order == "lst":  # latest start: deadline less its children's time less its best work
                key = dl - tail[j.m] - rb
            elif order == "edf":
                key = dl - tail[j.m]
            else:  # the urgency ratio, highest first
                key = -rb / max(EPS_MS, dl - tail[j.m] - now)
            cands.append((key, j.release, j.id, f_, j, rest))
            if j.id > newest:
                newest = j.id
        # shed only when work arrived since the last check: otherwise the load can only have fallen
        if self.shed and len(cands) > 1:
            if newest > self._checked_id:
                self._checked_id = newest
                victims = overload_victims(view, now, [c[4] for c in cands], self._value, accs)
                if victims:
                    out.extend(Drop(j, "overload") for j in victims)
                    gone = {j.id for j in victims}
                    cands = [c for c in cands if c[2] not in gone]
        n = len(cands)
        if n > 1:
            cands.sort()
        if order == "urgency":
            scored = [[alpha * c[3] - c[0], c[4], c[5]] for c in cands]
        else:  # rank in place of U (neighbours RANK_STEP apart); fairness still adds
            scored = [[RANK_STEP * (n - r) + alpha * c[3], c[4], c[5]] for r, c in enumerate(cands)]
        if alpha and n > 1:
            scored.sort(key=lambda c: -c[0])  # stable: ties keep the order above
        best_en = view.costs.best_en
        keep = self.slack_use
        bound = beta + gamma
        while scored and n_free:
            best = None
            best_score = -INF
            for c in scored:
                if c[0] + bound <= best_score:
                    break  # sorted by job score: no later job can win
                sj, j, rest = c
                s_, dl = j.seg, j.deadline
                lat, en, moved = j.lat, j.en, j.acc
                be = best_en[j.m][j.variant][s_]
                fins = [t_at[a] + lat[a][s_] + (handoff if 0 <= moved != a else 0.0) for a in accs]
                # the job's end if its next block starts on each accelerator and the rest follow
                # greedily on the accelerators as booked now (a block must not start where the rest
                # of its job cannot follow in time). Exact ends are computed lazily: each is at least
                # its block's finish plus the rest at best, which often settles the comparison.
                k = len(accs)
                last = s_ + 1 >= j.n_segs
                lbs = [f + rest for f in fins]
                ends: list = [None] * k
                me = INF
                for i in sorted(range(k), key=lbs.__getitem__):
                    if lbs[i] >= me:
                        break
                    f = fins[i]
                    e = f if last else (f + rest if f >= latest and handoff == 0.0
                                        else end_estimate(j, i, fins, t_at, accs, handoff, latest))
                    ends[i] = e
                    if e < me:
                        me = e
                # a slower end may use only part of the slack: the estimate cannot see the blocks
                # placed after this one in the same step, nor the next releases
                limit = me + keep * (dl - me) if me <= dl else INF
                # speed matters as much as the job is urgent: with slack to spare, energy decides
                b = beta * min(1.0, j.rem_best[s_] / max(EPS_MS, dl - now)) if self.urgent_speed else beta
                top = me - now + EPS_MS
                for i, a in enumerate(accs):
                    e = ends[i]
                    if e is None:
                        if lbs[i] > limit:
                            continue
                        ge = gamma * be / en[a][s_]
                        if sj + b * top / (lbs[i] - now + EPS_MS) + ge <= best_score:
                            continue  # even its lower bound cannot win
                        f = fins[i]
                        e = f + rest if f >= latest and handoff == 0.0 else \
                            end_estimate(j, i, fins, t_at, accs, handoff, latest)
                        if e > limit:
                            continue
                        score = sj + b * top / (e - now + EPS_MS) + ge
                    else:
                        if e > limit:
                            continue  # would end late, or too close to its deadline, where another would not
                        score = sj + b * top / (e - now + EPS_MS) + gamma * be / en[a][s_]
                    if score > best_score:
                        best_score, best = score, (c, a, fins[i])
            if best is None:
                break
            c, a, f = best
            scored.remove(c)
            if t_at[a] <= now:
                out.append(Run(c[1], a))
                n_free -= 1
            # else the job waits for the busy accelerator that suits it; later jobs see it booked
            t_at[a] = f
            if f > latest:
                latest = f
        return out


def end_estimate(j, i: int, fins: list[float], t_at: list[float], accs: list[int], handoff: float,
                 latest: float) -> float:
    """When job ``j`` would end if its next block runs on ``accs[i]`` (ending at ``fins[i]``) and each
    later block then goes, in turn, to the accelerator that finishes it first given ``t_at`` (the
    accelerators the job itself used are free again when its previous block ends). ``latest`` is the
    largest ``t_at``: from then on every accelerator is free and the rest takes its best-case time."""
    lat = j.lat
    t = fins[i]
    prev = accs[i]
    for s in range(j.seg + 1, j.n_segs):
        if t >= latest and handoff == 0.0:
            return t + j.rem_best[s]
        bt, ba = INF, prev
        for a in accs:
            ta = t_at[a]
            f = (ta if ta > t else t) + lat[a][s]
            if a != prev:
                f += handoff
            if f < bt:
                bt, ba = f, a
        t = bt
        prev = ba
    return t


def overload_victims(view, now: float, jobs: list, value: list[float], accs: list[int]) -> list:
    """Jobs to shed so that the rest can meet their deadlines (Moore-Hodgson, generalised).

    The ready jobs and the rest of the running ones are taken in deadline order against an optimistic
    (fluid) bound of when each could finish: the work ahead of it, each job's share being the time the
    whole platform would need for it if every accelerator worked on it at its own speed for that job
    (1 / sum over accelerators of 1 / its remaining time there), plus what the accelerators are busy
    with spread over them. At the first job that misses its deadline even so, the queued job with the
    most remaining work per frame at stake (cascaded children count) is shed, and the check starts
    over. Exact on one accelerator, optimistic on several. Running jobs count but are never shed."""
    free_at = view.free_at
    n = len(accs)
    busy = sum(free_at[a] - now for a in accs if free_at[a] > now) / n

    def share(j) -> float:
        s = j.seg
        rate = 0.0
        for a in accs:
            r = j.rem_on[a][s]
            if 0 < r < INF:
                rate += 1.0 / r
        return 1.0 / rate if rate > 0 else INF

    items = [(j.deadline, j.id, j, share(j), True) for j in jobs]
    items += [(j.deadline, j.id, j, share(j), False) for j in view.running if j is not None and j.seg < j.n_segs]
    items.sort(key=lambda it: (it[0], it[1]))
    victims = []
    while True:
        work = now + busy
        late = -1
        for k, it in enumerate(items):
            work += it[3]
            if work > it[0]:
                late = k
                break
        if late < 0:
            return victims
        cand = [it for it in items[:late + 1] if it[4]]
        if not cand:
            return victims
        v = max(cand, key=lambda it: (it[2].rem_best[it[2].seg] / value[it[2].m], it[0], it[1]))
        items.remove(v)
        victims.append(v[2])
