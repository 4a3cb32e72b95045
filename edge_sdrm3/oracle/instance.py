"""The oracle's instance: a window's due frames as jobs, with the costs the replay uses.

Built from the same trace, platform and cost tables as ``edge_sdrm3.sim.replay`` (its ``setup``), so that
the optimum and a replayed policy are judged on identical costs. A frame is due by the replay's rules
(DESIGN.md §6): it fired, and for a cascaded model its upstream frame — the one whose period holds its
release — fired too; a due cascaded frame runs only after its upstream job completed on time.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from ..catalog import PlatformSpec
from ..core.supernet import SupernetSelector
from ..core.types import INF, Costs, Model
from ..sim.replay import setup
from ..sim.trace import Trace

DEFAULT_FLOOR = SupernetSelector().floor  # the selector's own accuracy floor


@dataclass(frozen=True)
class OracleJob:
    """One due frame. ``upstream``: index of the job it waits for (cascades); ``runnable`` is False for a due
    frame that can never be released (no upstream frame before it, or one that was not due itself)."""

    index: int
    model: str
    m: int
    frame: int
    release_ms: float
    deadline_ms: float
    upstream: int | None
    variants: tuple[int, ...]
    runnable: bool = True


@dataclass(frozen=True)
class Instance:
    trace: Trace
    spec: PlatformSpec
    models: tuple[Model, ...]
    costs: Costs
    jobs: tuple[OracleJob, ...]
    supernet: bool
    floor: float
    min_accuracy: float | None = None  # least mean relative accuracy of the completed frames

    @property
    def duration_ms(self) -> float:
        return self.trace.duration_s * 1000.0

    def ref_mj(self, j: OracleJob) -> float:
        """The reference energy a frame is charged when it does not complete (DESIGN.md §5)."""
        return self.costs.reference_energy(j.m)

    def latency_ms(self, j: OracleJob, v: int, s: int, a: int) -> float:
        return self.costs.lat[j.m][v][a][s]

    def energy_mj(self, j: OracleJob, v: int, s: int, a: int) -> float:
        return self.costs.en[j.m][v][a][s]

    def runs_on(self, j: OracleJob, v: int, s: int, a: int) -> bool:
        return self.costs.lat[j.m][v][a][s] != INF


def allowed_variants(model: Model, supernet: bool, floor: float) -> tuple[int, ...]:
    """The largest variant; with ``supernet`` every variant whose relative accuracy is at least ``floor``
    (the largest alone if none is)."""
    if not supernet:
        return (0,)
    ok = tuple(v for v, var in enumerate(model.variants) if var.accuracy >= floor)
    return ok or (0,)


def build_instance(trace: Trace, spec: PlatformSpec, *, supernet: bool = False,
                   floor: float | None = None, min_accuracy: float | None = None) -> Instance:
    floor = DEFAULT_FLOOR if floor is None else float(floor)
    st = setup(trace, spec, supernet)
    models, index = st.models, st.index
    by_model: dict[str, list] = {}
    for fr in trace.frames:
        by_model.setdefault(fr.model, []).append(fr)
    releases = {name: [f.release_ms for f in frs] for name, frs in by_model.items()}
    due: list = []  # (frame, upstream frame or None, runnable)
    for fr in trace.frames:
        if not fr.fired:
            continue
        m = models[index[fr.model]]
        if m.upstream is None:
            due.append((fr, None, True))
            continue
        k = bisect_right(releases.get(m.upstream, []), fr.release_ms + 1e-9) - 1
        if k < 0:
            due.append((fr, None, False))
            continue
        up = by_model[m.upstream][k]
        if up.fired:
            due.append((fr, up, True))
    pos = {(fr.model, fr.frame): i for i, (fr, _, _) in enumerate(due)}
    jobs = []
    for i, (fr, up, runnable) in enumerate(due):
        m = models[index[fr.model]]
        upstream = None
        if up is not None:
            upstream = pos.get((up.model, up.frame))
            runnable = upstream is not None  # an upstream frame that was not due itself never runs
        jobs.append(OracleJob(i, fr.model, index[fr.model], fr.frame, fr.release_ms,
                              fr.release_ms + m.relative_deadline_ms, upstream,
                              allowed_variants(m, supernet, floor), runnable))
    if min_accuracy is not None:
        min_accuracy = min(min_accuracy, reachable_accuracy(jobs, models, st.costs))
    return Instance(trace, spec, models, st.costs, tuple(jobs), supernet, floor, min_accuracy)


def reachable_accuracy(jobs: list[OracleJob], models: tuple[Model, ...], costs) -> float:
    """The mean, over the jobs that can be released, of the most accurate allowed variant fast enough to meet the
    job's deadline alone (at its best): a bound on the mean accuracy above it could only be kept by dropping
    frames. The supernet selector never plans such a variant either, so the bound held is the lower of the two
    (jobs with no such variant can never complete and do not count)."""
    best = []
    for j in jobs:
        if not j.runnable:
            continue
        rel = j.deadline_ms - j.release_ms
        fits = [models[j.m].variants[v].accuracy for v in j.variants if costs.rem_best[j.m][v][0] <= rel + 1e-9]
        if fits:
            best.append(max(fits))
    return sum(best) / len(best) if best else 1.0
