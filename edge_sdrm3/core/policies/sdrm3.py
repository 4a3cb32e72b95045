"""SDRM3 (DESIGN.md §4): MapScore over (ready job, accelerator) pairs at segment granularity.

Job terms: urgency ``U`` (remaining best-case work over the time left before the deadline, less the
time its cascaded children will need) and fairness ``F`` (time since its last progress, in units of
its next segment). Pair terms, over every accelerator, free now or busy: preference ``P`` = earliest
finish of the next segment over its finish on this accelerator, waiting included (so a busy
accelerator that suits the segment can beat a poor free one), and energy ``E`` = cheapest energy over
this one's. The best pair is taken; on a busy accelerator the job waits for it and later jobs see that
accelerator booked (and, ``book_running``, at light load a busy one for the next blocks of a running job that comes
first and cannot give way: ``sdrm3_hold.booked_for_running``); the step repeats while an accelerator is free.
Placements that would make a job late where another would not are skipped; the energy side is in ``sdrm3_energy.py``.

Drops: a job whose best-case completion misses its deadline by more than ``delta`` (hopeless), and,
under overload, the jobs shed by Moore-Hodgson checks where shedding them pays (``sdrm3_shedding.py``); a running
job may be among them where that sheds as many frames at stake and saves more energy than shedding queued ones only
(``shed_running``): it is dropped at its next block boundary.
Order: latest start on several accelerators, deadline order while only one is healthy (EDF is optimal on
one processor; latest start lets a long job take an accelerator before it is too late on several).
Measured with tools/bench_uxcost.py (seed 0, against the best of all baselines including ``edf_firm``; each rule's
ablation row in docs/results/uxcost.md): on the 41 feasible XRBench cells (10 s) +17.4% geomean UXCost reduction, no
cell more than 1% worse; on 60 random mixes x 6 platforms (5 s) +15.2%, 15 of 360 cells more than 1% worse.
Where it still loses: overloaded big.LITTLE mixes where a long job (e.g. a 108-ms segmentation model with a 68-ms last
block) starts, holds the big accelerator from tight frames and is then given up (the value hold) or where the shedding
keeps the job that costs the most, and light cells where the per-block slack margin costs 1-4% energy.

Measured variant (kept, see docs/results/uxcost.md): ordering jobs by the urgency ratio, as the
published summary has it, lets short jobs with slack wait until one non-preemptible segment of a long
job makes them late; ordering by (cascade-adjusted) deadline rank, with ``U`` replaced by that rank and
``F``, ``P``, ``E`` as above, measured far better on the XR scenarios. ``order="urgency"`` keeps the
ratio for comparison.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, replace
from operator import itemgetter
from typing import NamedTuple

from ..params_table import load_table, workload_of
from ..policy import Policy
from ..scores import EPS_MS, Theta, map_score, urgency
from ..tuner import Tuner
from ..types import INF, Completion, Drop, Job, Run, Wake
from ._registry import register
from .edf_firm import cascade_cuts
from .sdrm3_estimate import _first_ends, blocks_first_where_they_fit, end_estimate
from .sdrm3_energy import allowances, energy_is_safe, observe, stay_is_safe, suffix_memo
from .sdrm3_hold import booked_for_running, cascade_chains, holds_release, unbooked
from .sdrm3_shedding import root_periods, shed_victims


RANK_STEP = 10.0  # score between neighbours in deadline order (larger than beta + gamma)


class Candidate(NamedTuple):
    """A ready job that may run now (``SDRM3._candidates``); sorted by ``key``, then release, then id."""

    key: float  # order key, smallest first: latest start, deadline, or minus the urgency (``order``)
    release: float
    id: int
    fairness: float  # F: time since its last progress, in units of its next block
    job: Job
    rest: float  # best-case time of its blocks after the next
    work: float  # best-case time of its blocks from the next on


class Ranked(NamedTuple):
    """A candidate with its job score: rank in the order (or urgency) plus alpha x fairness."""

    score: float
    job: Job
    rest: float


_score = itemgetter(0)  # a Ranked's score
_tuple = tuple.__new__  # builds a Candidate or Ranked from a tuple of its fields without a Python-level call


class Placement(NamedTuple):
    """The best accelerator found for a ranked job's next block (``SDRM3._best_pair``)."""

    ranked: Ranked
    acc: int
    finish: float  # its next block's finish there
    end: float  # the job's estimated end
    fast_acc: int  # where the job ends first
    fast_finish: float  # its next block's finish there
    stay: float  # past the slack share: when its blocks from the next on end, all on ``acc`` (else 0)


@register("sdrm3")
class SDRM3(Policy):
    name = "sdrm3"
    uses_variants = False

    def __init__(self, theta: Theta | None = None, shed: bool = True, order: str = "lst", tune: bool = True,
                 window_ms: float = 2000.0, slack_use: float = 0.3, urgent_speed: bool = True, lookahead: bool = True,
                 safe_energy: bool = True, nonpreemptive: bool = True, shed_check: bool = True,
                 single_edf: bool = True, shed_list: bool = True, hold_place: bool = True,
                 fit_estimate: bool = True, hold_value: bool = True, stay_slack: bool = False,
                 hold_running: bool = True, energy_worth: bool = True, hold_cascades: bool = True,
                 shed_running: bool = True, book_running: bool = True, spill: bool = True,
                 params_table: str | None = None, **params: float) -> None:
        self.order = order
        self.lookahead = lookahead  # the known next releases count when shedding and when trading speed for energy
        self.safe_energy = safe_energy  # a slower, cheaper placement only if no job becomes late by the estimate
        self.nonpreemptive = nonpreemptive  # a job whose block would make a later-ranked one late lets it go first
        self.slack_use = slack_use
        self.urgent_speed = urgent_speed
        self.theta = theta or Theta(**params)
        self.shed = shed
        self.single_edf = single_edf  # ``order="lst"``: deadline order while one accelerator is healthy
        self._lst = order == "lst"  # the order in force (``order="lst"``: see single_edf)
        self.shed_list = shed_list  # also shed by the estimate of the schedule, not only by the bound
        self.shed_check = shed_check  # shed only where the schedule estimate shows the kept jobs fare better
        # a block that would hold an accelerator a known release about to arrive needs waits (``sdrm3_hold``)
        self.hold_place = hold_place
        # shed only if the estimate also with blocks that would wait taking a free accelerator instead, where their
        # job still ends in time there, shows every job kept faring worse (``_first_late(fit=True)``)
        self.fit_estimate = fit_estimate
        # a block whose job cannot wait for the releases it would make late waits anyway if those have more frames
        # at stake than its job (``sdrm3_hold``)
        self.hold_value = hold_value
        # a cheaper placement may use all the slack when no other job waits and the job's remaining blocks fit on
        # that free accelerator by its due time (``_best_pair``, ``sdrm3_energy.stay_is_safe``)
        self.stay_slack = stay_slack
        # the next blocks of the running jobs count in the release hold like known releases (``sdrm3_hold``)
        self.hold_running = hold_running
        # the cascaded children of the known next releases count in the release hold too (``sdrm3_hold``)
        self.hold_cascades = hold_cascades
        # no block on an accelerator where its job would cost more energy than a frame on time is worth in UXCost
        # (``_worth``: the energy per missed frame lately)
        self.energy_worth = energy_worth
        self.spill = spill  # under overload, speed where the frames on time are worth the energy (``allowances``)
        # a running job may be the one shed (``overload_victims_list``): it is dropped at its next block boundary
        self.shed_running = shed_running
        self.book_running = book_running  # a running job that comes first keeps its accelerator, at light load
        self._doomed: set[int] = set()  # ids of running jobs shed, dropped when their block in flight ends
        self._window_ms = window_ms
        # lately (decayed over window_ms): energy (mJ), misses; last update, first outcome (ms); due; misses that count
        self._ux = [0.0, 0.0, 0.0, INF, 0.0, 0.0]
        self._ref: list[float] = []  # per model: its reference energy (what a missed frame costs, at least)
        self._ref_of: dict[str, float] = {}
        # δ stays as configured: with exact cost estimates a later drop only wastes work
        self.tuner = Tuner(self.theta, window_ms=window_ms, step=0.3, fields=("beta", "gamma", "alpha")) \
            if tune else None
        self._value: list[float] = []
        self._cut: list[float] = []  # per model: how long before its deadline its children need (cascade_cuts)
        self._rel_deadline: list[float] = []
        self._healthy: tuple = ()
        self._theta_seen: Theta | None = None
        self._theta_t: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        self._accs: list[int] = []
        self._speed: list[float] = []
        self._checked_id, self._suffix_seed = 0, None  # (the seed: ``sdrm3_energy.suffix_memo``'s)
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
        rem = view.costs.rem_best
        for i in reversed(range(len(ms))):  # an upstream is listed before its children
            up = ms[i].upstream
            if up is not None and up in idx and ms[i].trigger_probability > 0:
                u = idx[up]
                val[u] += ms[i].trigger_probability * val[i]
        self._models, self._value, self._cut = ms, val, cascade_cuts(ms, view.costs)
        self._look = root_periods(ms), cascade_chains(ms)  # (look-ahead tables: release hold, energy guard)
        # per accelerator: its best speed for any model of the workload, relative to that model's
        # best-case time (1.0 where some model runs fastest there)
        ro = view.costs.rem_on
        self._speed = [max([rem[m][0][0] / ro[m][0][a][0] for m in range(len(ms)) if 0 < ro[m][0][a][0] < INF],
                           default=0.0) for a in range(view.n_acc)]
        self._rel_deadline = [m.relative_deadline_ms for m in ms]
        self._ref = [view.costs.reference_energy(i) for i in range(len(ms))]
        self._ref_of = {m.name: r for m, r in zip(ms, self._ref)}
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

    def params(self) -> dict[str, float]:
        """The tunable parameters: θ's fields."""
        return asdict(self.theta)

    def set_params(self, values: dict[str, float]) -> None:
        """Replace θ with ``values`` merged in (checked by the contract); the online tuner continues from it."""
        self.theta = replace(self.theta, **values)
        if self.tuner is not None:
            self.tuner.theta = self.theta

    def tuning_history(self) -> list:
        """``(window end ms, window UXCost, θ used)`` of each window the online tuner measured."""
        return list(self.tuner.history) if self.tuner is not None else []

    def observe(self, c: Completion, now: float) -> None:
        """A due frame's outcome (from the driver): feeds the online tuner, and the energy and misses of late
        (``sdrm3_energy.observe``)."""
        observe(self, c, now)
        if self.tuner is not None and self.tuner.observe(c, now):
            self.theta = self.tuner.theta

    def pick(self, view, now: float) -> list:
        """The decisions for this instant: drops (hopeless, overload), then runs: MapScore placements while an
        accelerator is free (``_candidates``, ``shed_victims``, ``_ranked``, ``_place``)."""
        if self._models is not view.models:
            self._cascades(view)
        if self.theta is not self._theta_seen:
            self._theta_seen, self._theta_t = self.theta, self.theta.as_tuple()
        healthy = view.healthy
        if healthy != self._healthy:
            self._healthy = healthy
            self._accs = [a for a in range(view.n_acc) if healthy[a]]
            # deadline order on one accelerator, where it is optimal; latest start on several, where deadline
            # order can leave a long job without an accelerator until it is too late
            self._lst = self.order == "lst" and (len(self._accs) > 1 or not self.single_edf)
        free_at, accs = view.free_at, self._accs
        t_at = list(free_at)  # per accelerator: when it is free (now for the free ones), booked as placed
        n_free = 0
        for a in accs:
            if free_at[a] <= now:
                t_at[a] = now
                n_free += 1
        if not n_free:
            return []
        out, cands, newest = self._candidates(view, now, t_at)
        if self._doomed:  # running jobs shed earlier, back between blocks: dropped (their next blocks never run)
            doomed = self._doomed
            running = {r.id for r in view.running if r is not None}
            out.extend(Drop(c.job, "overload") for c in cands if c.id in doomed)
            cands = [c for c in cands if c.id not in doomed]
            self._doomed = {i for i in doomed if i in running}
        # shed only when work arrived since the last check: otherwise the load can only have fallen
        if self.shed and cands and newest > self._checked_id:
            self._checked_id = newest
            victims = shed_victims(view, now, [c.job for c in cands], self._accs, self._value, self._cut,
                                   self._rel_deadline, self._speed, lookahead=self.lookahead,
                                   shed_list=self.shed_list, shed_check=self.shed_check,
                                   fit_estimate=self.fit_estimate, lst=self._lst, shed_running=self.shed_running,
                                   ref=self._ref, seed=suffix_memo(self, view.costs))
            if victims:
                self._doomed.update(j.id for j in victims if j.running)
                victims = [j for j in victims if not j.running]
                out.extend(Drop(j, "overload") for j in victims)
                gone = {j.id for j in victims}
                cands = [c for c in cands if c.id not in gone]
        booked = booked_for_running(view, now, t_at, min(cands), self._accs, self._cut, self._doomed) \
            if self.book_running and self._lst and cands and self._ux[1] < 1.0 else {}
        out += self._place(view, now, self._ranked(cands, now), t_at, n_free, booked)
        return out

    def _candidates(self, view, now: float, t_at: list[float]) -> tuple[list, list[Candidate], int]:
        """The ready jobs that can still make their deadlines, as candidates ordered by ``order``; the drops
        of the hopeless ones; the newest job id seen."""
        delta = self._theta_t[3]
        accs, handoff, cut = self._accs, view.handoff_ms, self._cut
        tol = self._rel_deadline  # per model: its relative deadline (delta is a share of it)
        latest = max([t_at[a] for a in accs])
        by_start = self.order == "lst" and self._lst  # latest start: deadline less its children's time less
        by_due = self.order in ("lst", "edf")  # its best work; else deadline, or the urgency ratio, highest first
        drops: list = []
        cands: list[Candidate] = []
        add = cands.append
        newest = 0
        check = delta >= 0
        t_accs = [(t_at[a], a) for a in accs]
        for j in view.ready:
            s, m = j.seg, j.m
            rem = j.rem_best
            work, rest, dl = rem[s], rem[s + 1], j.deadline
            if check:  # hopeless (scores.hopeless): best-case end past the deadline by more than delta
                late_by = dl + delta * tol[m]
                if now + work > late_by:
                    drops.append(Drop(j, "hopeless"))
                    continue
                if latest + work > late_by:  # it might be: its block's best finish decides
                    lat, moved = j.lat, j.acc
                    if handoff == 0.0 or moved < 0:
                        first = min([ta + lat[a][s] for ta, a in t_accs])
                    else:
                        first = min([ta + lat[a][s] + (handoff if moved != a else 0.0) for ta, a in t_accs])
                    if first + rest > late_by:
                        drops.append(Drop(j, "hopeless"))
                        continue
            due = dl - cut[m]  # the end that leaves its cascaded children their time
            if now + work > due:
                due = dl  # its children cannot make theirs any more: its own deadline is what counts
            if by_start:
                key = due - work
            elif by_due:
                key = due
            else:
                key = -urgency(work, due, now)
            step = work - rest  # fairness (scores.fairness): the wait in units of its next block
            i = j.id
            add(_tuple(Candidate, (key, j.release, i, (now - j.last_progress) / (step if step > EPS_MS else EPS_MS),
                                   j, rest, work)))
            if i > newest:
                newest = i
        return drops, cands, newest

    def _ranked(self, cands: list[Candidate], now: float) -> list[Ranked]:
        """The candidates with their job score (rank in the order, or the urgency, plus alpha x fairness),
        highest first."""
        alpha = self._theta_t[0]
        n = len(cands)
        if n > 1:
            cands.sort()
            if self._lst and self.nonpreemptive:
                # (fields by index: key 0, rest 5, work 6)
                fixed = blocks_first_where_they_fit([(c[0], c[6] - c[5], c[6], c) for c in cands], now)
                cands = [x[3] for x in fixed]
        if self.order == "urgency":
            ranked = [_tuple(Ranked, (alpha * c.fairness - c.key, c.job, c.rest)) for c in cands]
        else:  # rank in place of U (neighbours RANK_STEP apart); fairness still adds
            ranked = [_tuple(Ranked, (RANK_STEP * (n - r) + alpha * c[3], c[4], c[5]))  # fairness, job, rest
                      for r, c in enumerate(cands)]
        if alpha and n > 1:
            ranked.sort(key=_score, reverse=True)  # stable (reverse too): ties keep the order above
        return ranked

    def _place(self, view, now: float, ranked: list[Ranked], t_at: list[float], n_free: int, booked: dict) -> list:
        """Placement: the best (job, accelerator) pair by MapScore, repeated while an accelerator is free. On a
        busy accelerator the job waits for it and later jobs see it booked (``booked``: ``booked_for_running``)."""
        accs = self._accs
        latest = max([t_at[a] for a in accs])
        bound = self._theta_t[1] + self._theta_t[2]  # the most the pair terms add to a job's score
        out: list = []
        while ranked and n_free:
            best, best_score = None, -INF
            alone = len(ranked) == 1  # no other job waits: one that did could need what a stay would hold
            for r in ranked:
                if r.score + bound <= best_score:
                    break  # sorted by job score: no later job can win
                found = self._best_pair(view, now, r, t_at, latest, best_score, alone)
                if found is not None:
                    best_score, best = found
            if best is None:
                break
            a, f = best.acc, best.finish
            ranked.remove(best.ranked)
            est = unbooked(t_at, booked)  # (the estimates below count the running jobs' next blocks)
            if best.stay and not stay_is_safe(self, view, now, best.ranked.job, a, best.stay, ranked, est, accs):
                a, f = best.fast_acc, best.fast_finish  # holding it that long would make another job late
            elif a != best.fast_acc and self.safe_energy and not energy_is_safe(
                    self, view, now, best.ranked.job, a, f, best.fast_acc, best.fast_finish, ranked, est, accs):
                a, f = best.fast_acc, best.fast_finish  # the slower one would make a job behind it late
            if t_at[a] <= now and self.hold_place and self.lookahead:
                r = holds_release(view, now, best.ranked.job, a, f, est, accs, self._cut, self._value,
                                  self._rel_deadline, self.hold_value, self.hold_running, self.hold_cascades, booked,
                                  *self._look)
                if r:  # its block would hold the accelerator a frame about to arrive needs: it waits
                    out.append(Wake(r + EPS_MS))  # (consulted again once that frame is released)
                    continue
            if t_at[a] <= now:
                out.append(Run(best.ranked.job, a))
                n_free -= 1
            t_at[a] = f
            if f > latest:
                latest = f
        return out

    def _best_pair(self, view, now: float, r: Ranked, t_at: list[float], latest: float,
                   best_score: float, alone: bool = False) -> tuple[float, Placement] | None:
        """The accelerator for ``r``'s next block with the highest MapScore above ``best_score``, or None. Only ends
        within the allowed share of the slack count (``slack_use``; all of it under ``spill``), or (``stay_slack``,
        ``alone``: no other job waits) a free accelerator on which the job's blocks from this one on all end in time."""
        j, rest = r.job, r.rest
        accs, handoff = self._accs, view.handoff_ms
        beta, gamma = self._theta_t[1], self._theta_t[2]
        s, dl = j.seg, j.deadline
        lat, en, moved = j.lat, j.en, j.acc
        best_en = view.costs.best_en[j.m][j.variant][s]
        fins = [t_at[a] + lat[a][s] + (handoff if 0 <= moved != a else 0.0) for a in accs]
        lower = [f + rest for f in fins]  # each end is at least its block's finish plus the rest at best
        ends, first, fast_i = _first_ends(j, fins, lower, rest, t_at, accs, handoff, latest)
        # the slack is counted to the deadline less what its cascaded children need
        due = dl - self._cut[j.m]
        limit = first + self.slack_use * (due - first) if first <= due else (first if first <= dl else INF)
        # speed matters as much as the job is urgent: with slack to spare, energy decides
        b = beta * min(1.0, urgency(j.rem_best[s], dl, now)) if self.urgent_speed else beta
        to_first = first - now + EPS_MS
        allow, spill, cheapest, as_cheap = allowances(self, view, j, t_at, now)  # what its energy is worth (spill)
        if allow < INF and fast_i >= 0 and sum(en[accs[fast_i]][s:]) > allow:
            fast_i = -1  # not worth it there: the energy guard does not fall back to it
        if spill >= 0 and fast_i >= 0 and first <= due and sum(en[accs[fast_i]][s:]) - cheapest > spill:
            limit = dl  # (``spill``) where it ends first is not worth its energy: a cheaper end may use all the slack
        stay = self.stay_slack and alone and first <= due
        best = None
        for i, a in enumerate(accs):
            if allow < INF and sum(en[a][s:]) > allow:
                continue  # the rest of the job there (where its next blocks tend to stay) is not worth its energy
            e = ends[i]
            if e is None:  # not computed yet: its lower bound may settle it
                if (lower[i] > limit and (not stay or t_at[a] > now)) or map_score(
                        r.score, b, to_first, lower[i] - now + EPS_MS, gamma, best_en, en[a][s]) <= best_score:
                    continue
                f = fins[i]
                e = f + rest if f >= latest and handoff == 0.0 else \
                    end_estimate(j, i, fins, t_at, accs, handoff, latest)
            if e > limit:
                # would end late, or too close to its deadline, where another would not; unless this accelerator
                # is free now and the job's blocks from this one on all fit on it by its due time (``stay_slack``)
                if not stay or t_at[a] > now or fins[i] + j.rem_on[a][s + 1] > due:
                    continue
                held = fins[i] + j.rem_on[a][s + 1]
            else:
                held = 0.0
            spent = best_en if a in as_cheap else en[a][s]  # (``spill``: worth its energy, it scores as the cheapest)
            score = map_score(r.score, b, to_first, e - now + EPS_MS, gamma, best_en, spent)
            if score > best_score:
                best_score = score
                if fast_i >= 0:
                    best = (score, Placement(r, a, fins[i], e, accs[fast_i], fins[fast_i], held))
                else:
                    best = (score, Placement(r, a, fins[i], e, a, fins[i], held))
        return best
