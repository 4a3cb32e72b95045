"""SDRM3 (DESIGN.md §4): MapScore over (ready job, accelerator) pairs at segment granularity.

Job terms: urgency ``U`` (remaining best-case work over the time left before the deadline, less the
time its cascaded children will need) and fairness ``F`` (time since its last progress, in units of
its next segment). Pair terms, over every accelerator, free now or busy: preference ``P`` = earliest
finish of the next segment over its finish on this accelerator, waiting included (so a busy
accelerator that suits the segment can beat a poor free one), and energy ``E`` = cheapest energy over
this one's. The best pair is taken; on a busy accelerator the job waits for it and later jobs see that
accelerator booked; the step repeats while an accelerator is free. Placements that would make a job
late where another accelerator would not are skipped, and a slower placement chosen for its energy must
leave every job on time by the estimate (``_energy_is_safe``: the queue, the running jobs and the known
next releases): energy is never bought with a deadline.

Drops: a job whose best-case completion misses its deadline by more than ``delta`` (hopeless), and,
under overload, the jobs shed by Moore-Hodgson checks: first against a bound every schedule obeys, over
the queue and the known next periodic releases (``overload_victims``: sure misses, so a long job gives way
to the frames about to arrive), then against an estimate of the queue's schedule
(``overload_victims_list``: likely misses on heterogeneous accelerators, which the bound cannot see).
Measured on the 42 cells (5 s, seeds 0 and 1, against the best of all baselines including ``edf_firm``):
the geomean UXCost reduction went from +6.5% to +10.8% (+15.0% to +23.1% over the loaded cells), and the
cells more than 1% worse than the best baseline from 21 to 1.

Measured variant (kept, see docs/results/uxcost.md): ordering jobs by the urgency ratio, as the
published summary has it, lets short jobs with slack wait until one non-preemptible segment of a long
job makes them late; ordering by (cascade-adjusted) deadline rank, with ``U`` replaced by that rank and
``F``, ``P``, ``E`` as above, measured far better on the XR scenarios. ``order="urgency"`` keeps the
ratio for comparison.
"""
from __future__ import annotations

from ..scores import EPS_MS, Theta
from ..tuner import Tuner
from ..types import INF, Completion, Drop, Run
from ._registry import register
from bisect import insort


RANK_STEP = 10.0  # score between neighbours in deadline order (larger than beta + gamma)


@register("sdrm3")
class SDRM3:
    name = "sdrm3"
    uses_variants = False

    def __init__(self, theta: Theta | None = None, shed: bool = True, order: str = "lst", tune: bool = True,
                 window_ms: float = 2000.0, slack_use: float = 0.3, urgent_speed: bool = True, lookahead: bool = True,
                 safe_energy: bool = True, **params: float) -> None:
        self.order = order
        self.lookahead = lookahead  # the known next releases count when shedding and when trading speed for energy
        self.safe_energy = safe_energy  # a slower, cheaper placement only if no job becomes late by the estimate
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
        self._speed: list[float] = []

        self._checked_id = 0
        self._models = None

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
        # per accelerator: its best speed for any model of the workload, relative to that model's
        # best-case time (1.0 where some model runs fastest there)
        ro = view.costs.rem_on
        self._speed = [max([rem[m][0][0] / ro[m][0][a][0] for m in range(len(ms)) if 0 < ro[m][0][a][0] < INF],
                           default=0.0) for a in range(view.n_acc)]
        self._rel_deadline = [m.relative_deadline_ms for m in ms]
        if self.tuner is not None:
            ref = {m.name: view.costs.reference_energy(i) for i, m in enumerate(ms)}
            self.tuner.ref_energy = lambda name: ref.get(name, 0.0)

    def _energy_is_safe(self, view, now: float, job, a: int, f: float, fast_a: int, fast_f: float, scored: list,
                        t_at: list[float], accs: list[int]) -> bool:
        """Never trade a deadline for energy: placing ``job``'s next block on ``a`` (ending at ``f``) rather
        than on the accelerator where the job ends first (``fast_a``, ending at ``fast_f``) is allowed only if
        the estimate (``_first_late``: the jobs still queued, the rest of the running ones and of this one,
        and the known next releases, in deadline order) has no more late jobs than with the faster choice."""
        items = [(c[1].deadline, c[1].id, c[1], 0.0, False, 0.0, now, [la[c[1].seg:] for la in c[1].lat])
                 for c in scored]
        for b, r in enumerate(view.running):
            if r is not None and r.seg < r.n_segs:
                items.append((r.deadline, r.id, r, 0.0, False, 0.0, view.free_at[b], [la[r.seg:] for la in r.lat]))
        horizon = max(it[0] for it in items) if items else job.deadline
        if self.lookahead:
            items += [(dl, INF, None, 0.0, False, 0.0, r, lat) for r, dl, lat, _ in self._upcoming(view, now, horizon)]
        rest = [la[job.seg + 1:] for la in job.lat]
        counts = []
        for acc, end in ((a, f), (fast_a, fast_f)):
            start = list(t_at)
            start[acc] = end
            mine = [(job.deadline, job.id, job, 0.0, False, 0.0, end, rest)] if rest[0] else []
            its = sorted(items + mine, key=lambda it: (it[0], it[1]))
            n_late = _first_late(its, start, accs, count=True)
            if not rest[0] and end > job.deadline:
                n_late += 1
            counts.append(n_late)
        return counts[0] <= counts[1]

    def _upcoming(self, view, now: float, horizon: float) -> list:
        """The known releases of the uncascaded models after ``now`` whose deadlines fall by ``horizon``:
        ``(release, deadline, block latencies [accelerator][block], work per frame at stake)``. Models that
        cannot meet their deadline even alone are left out (their jobs are dropped as hopeless)."""
        out = []
        rem_best, lat = view.costs.rem_best, view.costs.lat
        for m, model in enumerate(view.models):
            if model.upstream is not None:
                continue
            rel, best = self._rel_deadline[m], rem_best[m][0][0]
            if best > rel or best <= 0:
                continue
            period = model.period_ms
            r = (int(now / period + 1e-9) + 1) * period
            key = best / self._value[m]
            while r + rel <= horizon:
                out.append((r, r + rel, lat[m][0], key))
                r += period
        return out

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
        if self.shed and cands and newest > self._checked_id:
            self._checked_id = newest
            jobs = [c[4] for c in cands]
            horizon = max(j.deadline for j in jobs)
            # sure misses first: a bound every schedule obeys, over the queue and the known next releases;
            # then likely ones: an estimate of the schedule of the queue
            upcoming = self._upcoming(view, now, horizon) if self.lookahead else ()
            victims = []
            if len(jobs) > 1 or upcoming:
                victims = overload_victims(view, now, jobs, self._value, accs, upcoming, self._speed)
            rest = [j for j in jobs if j not in victims]
            if len(rest) > 1:
                victims += overload_victims_list(view, now, rest, self._value, accs)
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
                me, fast_i = INF, -1
                for i in sorted(range(k), key=lbs.__getitem__):
                    if lbs[i] >= me:
                        break
                    f = fins[i]
                    e = f if last else (f + rest if f >= latest and handoff == 0.0
                                        else end_estimate(j, i, fins, t_at, accs, handoff, latest))
                    ends[i] = e
                    if e < me:
                        me, fast_i = e, i
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
                        best_score, best = score, (c, a, fins[i], e, accs[fast_i], fins[fast_i])
            if best is None:
                break
            c, a, f, e, fast_a, fast_f = best
            scored.remove(c)
            if a != fast_a and self.safe_energy and \
                    not self._energy_is_safe(view, now, c[1], a, f, fast_a, fast_f, scored, t_at, accs):
                a, f = fast_a, fast_f  # the slower placement would make a job behind it late: the fastest
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


def overload_victims(view, now: float, jobs: list, value: list[float], accs: list[int],
                     upcoming: list | tuple = (), speed: list[float] | None = None) -> list:
    """Jobs to shed so that the rest can meet their deadlines (Moore-Hodgson, generalised).

    The ready jobs and the rest of the running ones are taken in deadline order against an optimistic
    (fluid) bound of when each could finish: the work ahead of it, each job's share being the time the
    whole platform would need for it if every accelerator worked on it at its own speed for that job
    (1 / sum over accelerators of 1 / its remaining time there), plus what the accelerators are busy
    with spread over them. At the first job that misses its deadline even so, the queued job with the
    most remaining work per frame at stake (cascaded children count) is shed, and the check starts
    over. Exact on one accelerator, optimistic on several. Running jobs count but are never shed.

    ``speed``: per accelerator, its best speed for the workload relative to a job's best-case time; given,
    a job's share is its best-case time over the sum of the speeds (a bound that heterogeneous accelerators
    obey too: no accelerator works faster than its best speed).
    ``upcoming``: known future releases, ``(release, deadline, block latencies, work per frame at stake)``
    each (``speed`` needed). They count as demand like queued jobs (releases are periodic, so the work that
    will compete for the same window is known); when one of them is the job to shed, nothing is shed for it
    now (it is decided at its release)."""
    free_at = view.free_at
    n = len(accs)
    if speed is None:
        busy = sum(free_at[a] - now for a in accs if free_at[a] > now) / n
    else:
        n = sum(speed[a] for a in accs)
        busy = sum((free_at[a] - now) * speed[a] for a in accs if free_at[a] > now) / n

    def share(j) -> float:
        if speed is None:
            s = j.seg
            rate = 0.0
            for a in accs:
                r = j.rem_on[a][s]
                if 0 < r < INF:
                    rate += 1.0 / r
            return 1.0 / rate if rate > 0 else INF
        return j.rem_best[j.seg] / n

    # (deadline, order, job or None for an upcoming release, share, may be shed, shedding key)
    items = [(j.deadline, j.id, j, share(j), True, j.rem_best[j.seg] / value[j.m]) for j in jobs]
    items += [(j.deadline, j.id, j, share(j), False, 0.0)
              for j in view.running if j is not None and j.seg < j.n_segs]
    items += [(dl, INF, None, sum(min(la[s] for la in lat) for s in range(len(lat[0]))) / n, True, key)
              for _r, dl, lat, key in upcoming]
    items.sort(key=lambda it: (it[0], it[1]))

    def first_late(items: list) -> int:
        work = now + busy
        for k, it in enumerate(items):
            work += it[3]
            if work > it[0]:
                return k
        return -1

    return _shed_until_on_time(items, first_late)


def _shed_until_on_time(items: list, first_late) -> list:
    """Moore-Hodgson: while ``first_late(items)`` finds an item late (its index; -1: none), take out the
    item that may be shed (``it[4]``) with the largest shedding key (``it[5]``; ties: later deadline, then
    order) among those up to it. Returns the jobs taken out (items without a job are not returned)."""
    victims = []
    while True:
        late = first_late(items)
        if late < 0:
            return victims
        cand = [it for it in items[:late + 1] if it[4]]
        if not cand:
            return victims
        v = max(cand, key=lambda it: (it[5], it[0], it[1]))
        items.remove(v)
        if v[2] is not None:
            victims.append(v[2])


def overload_victims_list(view, now: float, jobs: list, value: list[float], accs: list[int]) -> list:
    """Jobs to shed so that the rest can meet their deadlines: Moore-Hodgson over an estimate of the
    schedule rather than a bound. The queued jobs and the rest of the running ones are placed in deadline
    order, block by block, each block in the earliest gap (not before the job's previous block) where it
    ends first on any accelerator. At the first job that ends late, the queued job with the most remaining
    work per frame at stake among those placed so far is shed (running jobs are never shed), and the
    estimate starts over."""
    free_at = view.free_at
    # (deadline, order, job, share (unused), may be shed, shedding key, ready time, block latencies)
    items = [(j.deadline, j.id, j, 0.0, True, j.rem_best[j.seg] / value[j.m], now, [la[j.seg:] for la in j.lat])
             for j in jobs]
    for a, j in enumerate(view.running):
        if j is not None and j.seg < j.n_segs:
            items.append((j.deadline, j.id, j, 0.0, False, 0.0, free_at[a], [la[j.seg:] for la in j.lat]))
    items.sort(key=lambda it: (it[0], it[1]))
    start = [max(free_at[a], now) for a in range(view.n_acc)]
    return _shed_until_on_time(items, lambda items: _first_late(items, start, accs))


def _first_late(items: list, start: list[float], accs: list[int], count: bool = False) -> int:
    """Place ``items`` (sorted by deadline; ``it[6]`` the ready time, ``it[7]`` the block latencies
    [accelerator][block]) block by block, each block in the earliest gap where it ends
    first, from accelerator free times ``start``; the index of the first that ends past its deadline, or -1
    (``count``: how many end past their deadlines)."""
    late = 0
    busy: list[list[tuple[float, float]]] = [[] for _ in start]  # per accelerator: booked (start, end), sorted
    for k, it in enumerate(items):
        end, lat = it[6], it[7]
        for s in range(len(lat[0])):
            fin, best, at = INF, -1, 0.0
            for a in accs:
                d = lat[a][s]
                if d == INF:
                    continue
                t = start[a] if start[a] > end else end
                for b0, b1 in busy[a]:
                    if b1 <= t:
                        continue
                    if t + d <= b0:
                        break
                    t = b1
                if t + d < fin:
                    fin, best, at = t + d, a, t
            if best < 0:
                break
            insort(busy[best], (at, fin))
            end = fin
        if end > it[0] or best < 0:
            if not count:
                return k
            late += 1
    return late if count else -1
