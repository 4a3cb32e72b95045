"""The optimum of an instance with OR-Tools CP-SAT (the optional extra ``oracle``).

Model: every block (segment) of a job is an optional interval on one accelerator (one per allowed variant
and accelerator; exactly one present when the job runs, none when it is dropped), the intervals of an
accelerator never overlap, a job's blocks run in order, a block that changes accelerator takes the
platform's hand-off (latency on the new accelerator, energy), a job that runs ends by its deadline (firm
deadlines: no late completions), a cascaded job runs only if its upstream job does and starts after it
ends. Energy is DESIGN.md §5's: what runs, the reference energy of every frame that does not complete,
and idle energy (idle power × (end of the run − busy time)) where the platform declares idle power.

UXCost = E / E_ref × (M + 1) / (N + 1) is a product, so it is minimised in steps: the least number of
misses ``k_min`` first, then for k = k_min, k_min + 1, ... the least energy with at most k misses, until
even the least energy any schedule could have (each frame at its cheapest, or charged its reference)
times (k + 1) cannot beat the best schedule found. Every step proven optimal = the optimum is proven.

Integers: times in nanoseconds (the XRBench cost table's cycles at 1 GHz are whole nanoseconds), rounded
so that a schedule feasible in integers is feasible in floats (latencies and releases up, deadlines
down); energies in nanojoules (picojoules when idle power counts, with idle power in whole milliwatts).
Only the choice between schedules uses the integers; every reported figure is computed in floats from the
schedule.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

from ..core.types import ConfigError
from .instance import Instance, OracleJob

NS_PER_MS = 1_000_000
ACC_SCALE = 1_000_000  # relative accuracy in millionths (rounded so that the float mean keeps to the least)


class OracleUnavailable(ConfigError):
    """OR-Tools is not installed."""


def cp_model():
    """OR-Tools' CP-SAT module, or a clear error saying how to install it."""
    try:
        from ortools.sat.python import cp_model as cp
    except ImportError:
        raise OracleUnavailable("the oracle needs OR-Tools CP-SAT, which is not installed: "
                                "pip install 'edge-sdrm3[oracle]' (or: pip install ortools)") from None
    return cp


@dataclass(frozen=True)
class Block:
    """One segment of a job as scheduled: on accelerator ``acc`` from ``start_ms`` to ``end_ms`` (the
    hand-off included when ``moved``), costing ``energy_mj``."""

    job: int
    variant: int
    segment: int
    acc: int
    start_ms: float
    end_ms: float
    energy_mj: float
    moved: bool = False


@dataclass
class Step:
    """One CP-SAT solve: ``k`` = None for the least-misses step, else the least energy with at most k misses."""

    k: int | None
    status: str
    value: int | None  # the objective (misses, or energy in integer units)
    bound: float
    wall_s: float


@dataclass
class Solution:
    blocks: list[Block]
    optimal: bool
    bound_product: float  # lower bound on E x (M + 1), integer energy units
    best_product: int
    energy_scale: float  # integer units per mJ
    steps: list[Step] = field(default_factory=list)
    solve_s: float = 0.0


def _ns(ms: float, up: bool) -> int:
    x = ms * NS_PER_MS
    r = round(x)
    if abs(x - r) < 1e-3:  # a whole number of nanoseconds up to float error
        return int(r)
    return math.ceil(x) if up else math.floor(x)


class _Builder:
    """The CP-SAT model of an instance, kept to be solved several times with other objectives."""

    def __init__(self, inst: Instance, cp) -> None:
        self.inst = inst
        self.cp = cp
        plat = inst.spec.platform
        self.n_acc = len(plat.accelerators)
        idle = [a.idle_power_mw for a in plat.accelerators]
        self.with_idle = any(p > 0 for p in idle)
        self.scale = 1e9 if self.with_idle else 1e6  # pJ or nJ per mJ
        self.idle_coef = [round(p * self.scale * 1e-9) for p in idle]  # units per ns of idle
        self.h_ns = _ns(plat.handoff_ms, True) if plat.handoff_ms > 0 else 0
        self.h_u = round(plat.handoff_mj * self.scale)
        m = self.model = cp.CpModel()
        self.vars: list = []  # every variable, for solution hints
        self.present: dict[int, object] = {}
        self.opts: dict[int, list[list[tuple]]] = {}  # job -> per segment [(v, a, y, lat_ns)]
        self.start: dict[int, list] = {}
        self.end: dict[int, list] = {}
        self.moved: dict[tuple[int, int, int], object] = {}  # (job, segment, acc) -> moved onto acc
        intervals: list[list] = [[] for _ in range(self.n_acc)]
        energy_terms: list = []
        ref_terms = 0
        const_energy = 0
        self.lb_energy = 0  # least energy of any schedule: each frame at its cheapest or charged its reference
        busy_terms: list[list] = [[] for _ in range(self.n_acc)]
        self.start_lo: dict[int, int] = {}  # earliest start and latest end of each job that can run
        self.last_end_of: dict[int, int] = {}
        self.x: dict[int, dict] = {}  # job -> variant -> chosen
        self.ref_u: dict[int, int] = {}
        self.mk = None  # the end of the run, when idle energy counts
        est_end: dict[int, int] = {}  # earliest end of each job that can run
        for j in self._topological(inst.jobs):
            ref_u = round(inst.ref_mj(j) * self.scale)
            span = self._span(j, est_end)
            if span is None:
                const_energy += ref_u
                self.lb_energy += ref_u
                continue
            est, lct, minlat, emin_u = span
            self.lb_energy += min(ref_u, emin_u)
            est_end[j.index] = est[-1] + minlat[-1]
            self.start_lo[j.index], self.last_end_of[j.index] = est[0], lct[-1]
            p = self._bool(f"p{j.index}")
            self.present[j.index] = p
            ref_terms += ref_u
            energy_terms.append(-ref_u * p)
            x = {v: (p if len(j.variants) == 1 else self._bool(f"x{j.index}_{v}")) for v in j.variants}
            self.x[j.index] = x
            self.ref_u[j.index] = ref_u
            if len(j.variants) > 1:
                m.add(sum(x.values()) == p)
            starts, ends, per_seg = [], [], []
            for s in range(len(est)):
                st = self._int(est[s], lct[s] - minlat[s], f"s{j.index}_{s}")
                en = self._int(est[s] + minlat[s], lct[s], f"e{j.index}_{s}")
                if s:
                    m.add(st >= ends[-1])
                starts.append(st)
                ends.append(en)
                opts = []
                for v in j.variants:
                    for a in range(self.n_acc):
                        if not inst.runs_on(j, v, s, a):
                            continue
                        lat = _ns(inst.latency_ms(j, v, s, a), True)
                        if est[s] + lat > lct[s]:
                            continue
                        y = self._bool(f"y{j.index}_{v}_{s}_{a}")
                        opts.append((v, a, y, lat))
                        energy_terms.append(round(inst.energy_mj(j, v, s, a) * self.scale) * y)
                        busy_terms[a].append(lat * y)
                per_seg.append(opts)
                m.add(sum(o[2] for o in opts) == p)
                if len(j.variants) > 1:
                    for v in j.variants:
                        m.add(sum(o[2] for o in opts if o[0] == v) == x[v])
            self._handoffs(j, per_seg, energy_terms, busy_terms)
            for s, opts in enumerate(per_seg):
                for v, a, y, lat in opts:
                    mv = self.moved.get((j.index, s, a))
                    size = lat + self.h_ns * mv if (mv is not None and self.h_ns) else lat
                    intervals[a].append(m.new_optional_interval_var(starts[s], size, ends[s], y, f"i{j.index}_{s}"))
            if j.upstream is not None:
                up = self.present.get(j.upstream)
                if up is None:  # cannot happen: a job whose upstream cannot run has no span
                    raise AssertionError(j)
                m.add_implication(p, up)
                m.add(starts[0] >= self.end[j.upstream][-1]).only_enforce_if(p)
            self.opts[j.index] = per_seg
            self.start[j.index], self.end[j.index] = starts, ends
        for ivs in intervals:
            if len(ivs) > 1:
                m.add_no_overlap(ivs)
        self._window_cuts()
        if inst.min_accuracy is not None:  # mean accuracy of the completed frames >= the least asked for
            need = math.ceil(inst.min_accuracy * ACC_SCALE)
            m.add(sum(math.floor(inst.models[inst.jobs[i].m].variants[v].accuracy * ACC_SCALE) * xv
                      for i, x in self.x.items() for v, xv in x.items())
                  >= sum(need * p for p in self.present.values()))
        idle_terms: list = []
        if self.with_idle:
            d_ns = _ns(inst.duration_ms, True)
            horizon = max([d_ns, *self.last_end_of.values()])
            mk = self.mk = self._int(d_ns, horizon, "makespan")
            for i, p in self.present.items():
                m.add(mk >= self.end[i][-1]).only_enforce_if(p)
            for a, c in enumerate(self.idle_coef):
                if c:
                    idle_terms.append(c * mk)
                    idle_terms.extend(-c * t for t in busy_terms[a])
        self.n_jobs = len(inst.jobs)
        self.misses = self._int(0, self.n_jobs, "misses")
        m.add(self.misses == self.n_jobs - sum(self.present.values()))
        self.energy = sum(energy_terms) + sum(idle_terms) + ref_terms + const_energy
        self.const_energy = const_energy
        idle_all = sum(self.idle_coef) * _ns(inst.duration_ms, True) if self.with_idle else 0
        self.drop_all = const_energy + ref_terms + idle_all  # energy of the schedule that drops every frame

    # --- pieces ---------------------------------------------------------------------------------
    def _bool(self, name: str):
        v = self.model.new_bool_var(name)
        self.vars.append(v)
        return v

    def _int(self, lo: int, hi: int, name: str):
        v = self.model.new_int_var(lo, hi, name)
        self.vars.append(v)
        return v

    @staticmethod
    def _topological(jobs: tuple[OracleJob, ...]) -> list[OracleJob]:
        """Jobs with each upstream before its children (frames of equal release may list a child first)."""
        out, seen = [], set()

        def visit(j: OracleJob) -> None:
            if j.index in seen:
                return
            if j.upstream is not None:
                visit(jobs[j.upstream])
            seen.add(j.index)
            out.append(j)

        for j in jobs:
            visit(j)
        return out

    def _span(self, j: OracleJob, est_end: dict[int, int]):
        """Earliest start and latest end of each block, the least latency of each block and the least energy of
        the job (integer units); None when the job cannot complete on time whatever runs."""
        inst = self.inst
        if not j.runnable or (j.upstream is not None and j.upstream not in est_end):
            return None
        n = self.inst.models[j.m].n_segments
        minlat = []
        for s in range(n):
            lats = [_ns(inst.latency_ms(j, v, s, a), True) for v in j.variants for a in range(self.n_acc)
                    if inst.runs_on(j, v, s, a)]
            if not lats:
                return None
            minlat.append(min(lats))
        emin = min(sum(min(round(inst.energy_mj(j, v, s, a) * self.scale) for a in range(self.n_acc)
                           if inst.runs_on(j, v, s, a)) for s in range(n))
                   for v in j.variants if all(any(inst.runs_on(j, v, s, a) for a in range(self.n_acc))
                                              for s in range(n)))
        est = [_ns(j.release_ms, True)]
        if j.upstream is not None:
            est[0] = max(est[0], est_end[j.upstream])
        for s in range(1, n):
            est.append(est[-1] + minlat[s - 1])
        lct = [_ns(j.deadline_ms, False)]
        for s in range(n - 1, 0, -1):
            lct.insert(0, lct[0] - minlat[s])
        if any(e + ml > lc for e, ml, lc in zip(est, minlat, lct)):
            return None
        return est, lct, minlat, emin

    def _window_cuts(self) -> None:
        """Redundant capacity constraints: the blocks an accelerator runs of the jobs whose whole span lies in
        a window [t1, t2] take at most t2 - t1 of it. They give the LP relaxation what the no-overlap
        constraints alone do not (a cheap accelerator is also a busy one), which is what lets CP-SAT prove
        least energy: on social_a / dual_4k_ws_os at 0.7 s the energy step went from no proof in 53 s to a
        proof in 6 s. Windows from each release to each deadline, up to twice the longest job span."""
        span = {i: (self.start_lo[i], self.last_end_of[i]) for i in self.opts}
        if not span:
            return
        longest = max(d - r for r, d in span.values())
        rs = sorted({r for r, _ in span.values()})
        ds = sorted({d for _, d in span.values()})
        for t1 in rs:
            for t2 in ds:
                if t2 <= t1 or t2 - t1 > 2 * longest:
                    continue
                inside = [i for i, (r, d) in span.items() if r >= t1 and d <= t2]
                if len(inside) < 2:
                    continue
                for a in range(self.n_acc):
                    terms = [lat * y for i in inside for opts in self.opts[i] for (_, aa, y, lat) in opts if aa == a]
                    if terms:
                        self.model.add(sum(terms) <= t2 - t1)

    def _handoffs(self, j: OracleJob, per_seg: list, energy_terms: list, busy_terms: list) -> None:
        """moved[s, a] = block s on a and block s-1 elsewhere: it pays the hand-off on a."""
        if not (self.h_ns or self.h_u):
            return
        m = self.model
        for s in range(1, len(per_seg)):
            for a in range(self.n_acc):
                here = [o[2] for o in per_seg[s] if o[1] == a]
                if not here:
                    continue
                before = [o[2] for o in per_seg[s - 1] if o[1] == a]
                mv = self._bool(f"mv{j.index}_{s}_{a}")
                m.add(mv >= sum(here) - sum(before))
                m.add(mv <= sum(here))
                m.add(mv <= 1 - sum(before))
                self.moved[(j.index, s, a)] = mv
                if self.h_u:
                    energy_terms.append(self.h_u * mv)
                if self.h_ns:
                    busy_terms[a].append(self.h_ns * mv)

    # --- solving --------------------------------------------------------------------------------
    def solve(self, objective, max_misses: int | None, time_s: float, workers: int, hint: dict | None):
        m = self.model
        dom = m.Proto().variables[self.misses.Index()].domain  # [lo, hi]
        dom[1] = self.n_jobs if max_misses is None else max_misses
        m.minimize(objective)
        m.clear_hints()
        if hint:
            for v in self.vars:
                m.add_hint(v, hint[v.Index()])
        solver = self.cp.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.01, time_s)
        solver.parameters.num_workers = workers
        status = solver.solve(m)
        return solver, status

    def hint_from(self, records: list[dict]) -> tuple[dict, int, int]:
        """A given schedule (block records, e.g. a replayed policy's) as a hint: variable values, its misses and
        its energy without idle energy. Jobs it does not run whole on time-allowed options count as dropped;
        start times are moved as little as needed to fit the integer model (CP-SAT repairs what is left)."""
        inst, plat = self.inst, self.inst.spec.platform
        acc_ids = [a.id for a in plat.accelerators]
        proto = self.model.Proto().variables

        def lo(v) -> int:
            return proto[v.Index()].domain[0]

        def clamp(v, x: int) -> int:
            d = proto[v.Index()].domain
            return min(max(x, d[0]), d[len(d) - 1])

        vals = {v.Index(): lo(v) for v in self.vars}
        idx = {(j.model, j.frame): j.index for j in inst.jobs}
        per: dict[int, dict[int, dict]] = {}
        for r in records:
            i = idx.get((r["model"], r["frame"]))
            if i is not None and i in self.opts and r["accelerator"] in acc_ids:
                per.setdefault(i, {})[r["segment"]] = r
        energy, ran = self.const_energy, 0
        end_of: dict[int, int] = {}
        for i in sorted(self.opts, key=lambda i: inst.jobs[i].release_ms):
            per_seg, recs = self.opts[i], per.get(i, {})
            chosen = []
            for s_, opts in enumerate(per_seg):
                r = recs.get(s_)
                o = None if r is None else next((o for o in opts if o[0] == r["variant"]
                                                  and o[1] == acc_ids.index(r["accelerator"])), None)
                chosen.append(o)
            up = inst.jobs[i].upstream
            if None in chosen or len({o[0] for o in chosen}) != 1 or (up is not None and up not in end_of):
                energy += self.ref_u[i]
                continue
            ran += 1
            vals[self.present[i].Index()] = 1
            vals[self.x[i][chosen[0][0]].Index()] = 1
            t = lo(self.start[i][0]) if up is None else max(lo(self.start[i][0]), end_of[up])
            prev = -1
            for s_, (v, a, y, lat) in enumerate(chosen):
                vals[y.Index()] = 1
                energy += round(inst.energy_mj(inst.jobs[i], v, s_, a) * self.scale)
                moved = prev >= 0 and prev != a
                mv = self.moved.get((i, s_, a))
                if mv is not None and moved:
                    vals[mv.Index()] = 1
                    energy += self.h_u
                st = clamp(self.start[i][s_], max(t, _ns(recs[s_]["start_ms"], True)))
                t = st + lat + (self.h_ns if moved else 0)
                vals[self.start[i][s_].Index()] = st
                vals[self.end[i][s_].Index()] = clamp(self.end[i][s_], t)
                prev = a
            end_of[i] = t
        vals[self.misses.Index()] = self.n_jobs - ran
        if self.mk is not None:
            vals[self.mk.Index()] = clamp(self.mk, max([lo(self.mk), *end_of.values()]))
        return vals, self.n_jobs - ran, energy

    def values(self, solver) -> dict:
        return {v.Index(): solver.value(v) for v in self.vars}

    def blocks(self, solver) -> list[Block]:
        inst, plat = self.inst, self.inst.spec.platform
        out = []
        for i, per_seg in self.opts.items():
            if not solver.value(self.present[i]):
                continue
            j = inst.jobs[i]
            prev = -1
            for s, opts in enumerate(per_seg):
                v, a = next((o[0], o[1]) for o in opts if solver.value(o[2]))
                moved = prev >= 0 and prev != a
                start = solver.value(self.start[i][s]) / NS_PER_MS
                lat = inst.latency_ms(j, v, s, a) + (plat.handoff_ms if moved else 0.0)
                en = inst.energy_mj(j, v, s, a) + (plat.handoff_mj if moved else 0.0)
                out.append(Block(i, v, s, a, start, start + lat, en, moved))
                prev = a
        out.sort(key=lambda b: (b.start_ms, b.acc))
        return out


def _status_name(cp, status) -> str:
    return {cp.OPTIMAL: "optimal", cp.FEASIBLE: "feasible", cp.INFEASIBLE: "infeasible"}.get(status, "unknown")


def solve(inst: Instance, *, time_limit_s: float = 60.0, workers: int = 0,
          hint: list[dict] | None = None) -> Solution:
    """The schedule of least UXCost of ``inst`` found within ``time_limit_s`` (all steps together), whether it
    is proven optimal, and a lower bound on E × (M + 1). ``workers``: CP-SAT's parallel workers (0: the CPUs,
    at most 8). ``hint``: a schedule (block records) to start from, e.g. a replayed policy's; it changes how
    fast a good schedule is found, never what is optimal."""
    cp = cp_model()
    t0 = time.monotonic()
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    b = _Builder(inst, cp)
    steps: list[Step] = []

    def left() -> float:
        return time_limit_s - (time.monotonic() - t0)

    def run(objective, max_misses, k, hint, share: float = 1.0):
        ts = time.monotonic()
        solver, status = b.solve(objective, max_misses, left() * share, workers, hint)
        ok = status in (cp.OPTIMAL, cp.FEASIBLE)
        steps.append(Step(k, _status_name(cp, status), int(solver.objective_value) if ok else None,
                          solver.best_objective_bound, time.monotonic() - ts))
        return solver, status, ok

    given = b.hint_from(hint) if hint else None
    # step 1: the least number of misses, in at most half the time (the other half improves the energy)
    solver, status, ok = run(b.misses, None, None, given[0] if given else None, 0.5)
    k_lb = max(0, math.ceil(solver.best_objective_bound - 1e-6))  # no schedule misses fewer
    if ok:
        k = int(solver.value(b.misses))
        hint = b.values(solver)
        best_blocks = b.blocks(solver)
        best = int(solver.value(b.energy)) * (k + 1)
    else:  # no schedule within the time (a loaded machine): dropping every frame is one; go on from the hint
        k = given[1] if given else b.n_jobs
        hint = given[0] if given else None
        best_blocks = []
        best = b.drop_all * (b.n_jobs + 1)
    # lower bounds on E x (M + 1), each over the schedules one step covers; together they cover every M
    lb_parts: list[float] = []
    covered = k_lb  # the smallest M no step has covered yet
    if ok and given and given[1] <= k and given[2] < int(solver.value(b.energy)):
        hint = given[0]  # the given schedule misses no more and costs less energy than step 1's
    while k <= b.n_jobs and b.lb_energy * (k + 1) < best and left() > 0:
        solver, status, ok = run(b.energy, k, k, hint)
        lb_parts.append(solver.best_objective_bound * (covered + 1))  # schedules with covered <= M <= k
        covered = k + 1
        if ok:
            prod = int(solver.objective_value) * (int(solver.value(b.misses)) + 1)
            hint = b.values(solver)
            if prod < best:
                best, best_blocks = prod, b.blocks(solver)
        if status != cp.OPTIMAL:
            break
        k += 1
    if covered <= b.n_jobs:
        lb_parts.append(b.lb_energy * (covered + 1))  # schedules with more misses than any step covered
    bound = min([float(best)] + lb_parts)
    optimal = bound >= best - 0.5  # integer units: every bound reaches the best schedule
    return Solution(best_blocks, optimal, float(best) if optimal else bound, best, b.scale, steps,
                    time.monotonic() - t0)
