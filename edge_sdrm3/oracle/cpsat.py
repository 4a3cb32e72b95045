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
from .schedules import Block, blocks_of, hint_from, ns

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


class _Builder:
    """The CP-SAT model of an instance, kept to be solved several times with other objectives."""

    def __init__(self, inst: Instance, cp) -> None:
        self.inst = inst
        self.cp = cp
        self._platform_units(inst.spec.platform)
        self.model = cp.CpModel()
        self.vars: list = []  # every variable, for solution hints
        self.present: dict[int, object] = {}
        self.opts: dict[int, list[list[tuple]]] = {}  # job -> per segment [(v, a, y, lat_ns)]
        self.start: dict[int, list] = {}
        self.end: dict[int, list] = {}
        self.moved: dict[tuple[int, int, int], object] = {}  # (job, segment, acc) -> moved onto acc
        self._intervals: list[list] = [[] for _ in range(self.n_acc)]
        self._energy_terms: list = []
        self._ref_terms = 0
        self.const_energy = 0
        self.lb_energy = 0  # least energy of any schedule: each frame at its cheapest or charged its reference
        self._busy_terms: list[list] = [[] for _ in range(self.n_acc)]
        self.start_lo: dict[int, int] = {}  # earliest start and latest end of each job that can run
        self.last_end_of: dict[int, int] = {}
        self.x: dict[int, dict] = {}  # job -> variant -> chosen
        self.ref_u: dict[int, int] = {}
        self.mk = None  # the end of the run, when idle energy counts
        est_end: dict[int, int] = {}  # earliest end of each job that can run
        for j in self._topological(inst.jobs):
            self._add_job(j, est_end)
        self._no_overlap()
        self._window_cuts()
        self._accuracy_bound()
        self._objective()

    # --- the model, step by step ------------------------------------------------------------------
    def _platform_units(self, plat) -> None:
        """The accelerators, the integer energy unit, idle power and the hand-off in integer units."""
        self.n_acc = len(plat.accelerators)
        idle = [a.idle_power_mw for a in plat.accelerators]
        self.with_idle = any(p > 0 for p in idle)
        self.scale = 1e9 if self.with_idle else 1e6  # pJ or nJ per mJ
        self.idle_coef = [round(p * self.scale * 1e-9) for p in idle]  # units per ns of idle
        self.h_ns = ns(plat.handoff_ms, True) if plat.handoff_ms > 0 else 0
        self.h_u = round(plat.handoff_mj * self.scale)

    def _add_job(self, j: OracleJob, est_end: dict[int, int]) -> None:
        """A job: charged its reference when it cannot run, else present or dropped, one variant, its blocks."""
        ref_u = round(self.inst.ref_mj(j) * self.scale)
        span = self._span(j, est_end)
        if span is None:
            self.const_energy += ref_u
            self.lb_energy += ref_u
            return
        est, lct, minlat, emin_u = span
        self.lb_energy += min(ref_u, emin_u)
        est_end[j.index] = est[-1] + minlat[-1]
        self.start_lo[j.index], self.last_end_of[j.index] = est[0], lct[-1]
        p = self._bool(f"p{j.index}")
        self.present[j.index] = p
        self._ref_terms += ref_u
        self._energy_terms.append(-ref_u * p)
        x = {v: (p if len(j.variants) == 1 else self._bool(f"x{j.index}_{v}")) for v in j.variants}
        self.x[j.index] = x
        self.ref_u[j.index] = ref_u
        if len(j.variants) > 1:
            self.model.add(sum(x.values()) == p)
        starts, ends, per_seg = self._job_blocks(j, est, lct, minlat, p, x)
        self._handoffs(j, per_seg, self._energy_terms, self._busy_terms)
        self._block_intervals(j, per_seg, starts, ends)
        if j.upstream is not None:
            self._cascade(j, p, starts)
        self.opts[j.index] = per_seg
        self.start[j.index], self.end[j.index] = starts, ends

    def _job_blocks(self, j: OracleJob, est: list, lct: list, minlat: list, p, x: dict):
        """Each block's start and end, in order, and its options (variant, accelerator) that fit its window:
        exactly one chosen when the job runs, of the job's variant."""
        inst, m = self.inst, self.model
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
                    lat = ns(inst.latency_ms(j, v, s, a), True)
                    if est[s] + lat > lct[s]:
                        continue
                    y = self._bool(f"y{j.index}_{v}_{s}_{a}")
                    opts.append((v, a, y, lat))
                    self._energy_terms.append(round(inst.energy_mj(j, v, s, a) * self.scale) * y)
                    self._busy_terms[a].append(lat * y)
            per_seg.append(opts)
            m.add(sum(o[2] for o in opts) == p)
            if len(j.variants) > 1:
                for v in j.variants:
                    m.add(sum(o[2] for o in opts if o[0] == v) == x[v])
        return starts, ends, per_seg

    def _block_intervals(self, j: OracleJob, per_seg: list, starts: list, ends: list) -> None:
        """Each option's optional interval on its accelerator (the hand-off included when it moved there)."""
        for s, opts in enumerate(per_seg):
            for v, a, y, lat in opts:
                mv = self.moved.get((j.index, s, a))
                size = lat + self.h_ns * mv if (mv is not None and self.h_ns) else lat
                self._intervals[a].append(self.model.new_optional_interval_var(starts[s], size, ends[s], y,
                                                                               f"i{j.index}_{s}"))

    def _cascade(self, j: OracleJob, p, starts: list) -> None:
        """A cascaded job runs only if its upstream job does, and starts after it ends."""
        up = self.present.get(j.upstream)
        if up is None:  # cannot happen: a job whose upstream cannot run has no span
            raise AssertionError(j)
        self.model.add_implication(p, up)
        self.model.add(starts[0] >= self.end[j.upstream][-1]).only_enforce_if(p)

    def _no_overlap(self) -> None:
        """The blocks of an accelerator never overlap."""
        for ivs in self._intervals:
            if len(ivs) > 1:
                self.model.add_no_overlap(ivs)

    def _accuracy_bound(self) -> None:
        """Mean accuracy of the completed frames >= the least asked for (when one is)."""
        inst = self.inst
        if inst.min_accuracy is not None:
            need = math.ceil(inst.min_accuracy * ACC_SCALE)
            self.model.add(sum(math.floor(inst.models[inst.jobs[i].m].variants[v].accuracy * ACC_SCALE) * xv
                               for i, x in self.x.items() for v, xv in x.items())
                           >= sum(need * p for p in self.present.values()))

    def _idle_terms(self) -> list:
        """Idle energy (idle power x (end of the run - busy time)), where the platform declares idle power."""
        idle_terms: list = []
        if self.with_idle:
            d_ns = ns(self.inst.duration_ms, True)
            horizon = max([d_ns, *self.last_end_of.values()])
            mk = self.mk = self._int(d_ns, horizon, "makespan")
            for i, p in self.present.items():
                self.model.add(mk >= self.end[i][-1]).only_enforce_if(p)
            for a, c in enumerate(self.idle_coef):
                if c:
                    idle_terms.append(c * mk)
                    idle_terms.extend(-c * t for t in self._busy_terms[a])
        return idle_terms

    def _objective(self) -> None:
        """The two objectives: the misses and the energy; and the energy of dropping every frame."""
        idle_terms = self._idle_terms()
        self.n_jobs = len(self.inst.jobs)
        self.misses = self._int(0, self.n_jobs, "misses")
        self.model.add(self.misses == self.n_jobs - sum(self.present.values()))
        self.energy = sum(self._energy_terms) + sum(idle_terms) + self._ref_terms + self.const_energy
        idle_all = sum(self.idle_coef) * ns(self.inst.duration_ms, True) if self.with_idle else 0
        self.drop_all = self.const_energy + self._ref_terms + idle_all  # energy of the schedule that drops every frame

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
            lats = [ns(inst.latency_ms(j, v, s, a), True) for v in j.variants for a in range(self.n_acc)
                    if inst.runs_on(j, v, s, a)]
            if not lats:
                return None
            minlat.append(min(lats))
        emin = min(sum(min(round(inst.energy_mj(j, v, s, a) * self.scale) for a in range(self.n_acc)
                           if inst.runs_on(j, v, s, a)) for s in range(n))
                   for v in j.variants if all(any(inst.runs_on(j, v, s, a) for a in range(self.n_acc))
                                              for s in range(n)))
        est = [ns(j.release_ms, True)]
        if j.upstream is not None:
            est[0] = max(est[0], est_end[j.upstream])
        for s in range(1, n):
            est.append(est[-1] + minlat[s - 1])
        lct = [ns(j.deadline_ms, False)]
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

    def values(self, solver) -> dict:
        return {v.Index(): solver.value(v) for v in self.vars}


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

    given = hint_from(b, hint) if hint else None
    # step 1: the least number of misses, in at most half the time (the other half improves the energy)
    solver, status, ok = run(b.misses, None, None, given[0] if given else None, 0.5)
    k_lb = max(0, math.ceil(solver.best_objective_bound - 1e-6))  # no schedule misses fewer
    if ok:
        k = int(solver.value(b.misses))
        hint = b.values(solver)
        best_blocks = blocks_of(b, solver)
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
                best, best_blocks = prod, blocks_of(b, solver)
        if status != cp.OPTIMAL:
            break
        k += 1
    if covered <= b.n_jobs:
        lb_parts.append(b.lb_energy * (covered + 1))  # schedules with more misses than any step covered
    bound = min([float(best)] + lb_parts)
    optimal = bound >= best - 0.5  # integer units: every bound reaches the best schedule
    return Solution(best_blocks, optimal, float(best) if optimal else bound, best, b.scale, steps,
                    time.monotonic() - t0)
