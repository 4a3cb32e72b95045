"""Schedules in and out of the oracle's CP-SAT model (``cpsat._Builder``): integer nanoseconds, a given
schedule (block records, e.g. a replayed policy's) as a solution hint, and the blocks of a solved schedule."""
from __future__ import annotations

import math
from dataclasses import dataclass

NS_PER_MS = 1_000_000


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


def ns(ms: float, up: bool) -> int:
    """``ms`` in whole nanoseconds, rounded up (``up``) or down unless whole up to float error."""
    x = ms * NS_PER_MS
    r = round(x)
    if abs(x - r) < 1e-3:  # a whole number of nanoseconds up to float error
        return int(r)
    return math.ceil(x) if up else math.floor(x)


def hint_from(b, records: list[dict]) -> tuple[dict, int, int]:
    """A given schedule (block records, e.g. a replayed policy's) as a hint: variable values, its misses and
    its energy without idle energy. Jobs it does not run whole on time-allowed options count as dropped;
    start times are moved as little as needed to fit the integer model (CP-SAT repairs what is left)."""
    inst, plat = b.inst, b.inst.spec.platform
    acc_ids = [a.id for a in plat.accelerators]
    proto = b.model.Proto().variables

    def lo(v) -> int:
        return proto[v.Index()].domain[0]

    def clamp(v, x: int) -> int:
        d = proto[v.Index()].domain
        return min(max(x, d[0]), d[len(d) - 1])

    vals = {v.Index(): lo(v) for v in b.vars}
    idx = {(j.model, j.frame): j.index for j in inst.jobs}
    per: dict[int, dict[int, dict]] = {}
    for r in records:
        i = idx.get((r["model"], r["frame"]))
        if i is not None and i in b.opts and r["accelerator"] in acc_ids:
            per.setdefault(i, {})[r["segment"]] = r
    energy, ran = b.const_energy, 0
    end_of: dict[int, int] = {}
    for i in sorted(b.opts, key=lambda i: inst.jobs[i].release_ms):
        per_seg, recs = b.opts[i], per.get(i, {})
        chosen = []
        for s_, opts in enumerate(per_seg):
            r = recs.get(s_)
            o = None if r is None else next((o for o in opts if o[0] == r["variant"]
                                              and o[1] == acc_ids.index(r["accelerator"])), None)
            chosen.append(o)
        up = inst.jobs[i].upstream
        if None in chosen or len({o[0] for o in chosen}) != 1 or (up is not None and up not in end_of):
            energy += b.ref_u[i]
            continue
        ran += 1
        vals[b.present[i].Index()] = 1
        vals[b.x[i][chosen[0][0]].Index()] = 1
        t = lo(b.start[i][0]) if up is None else max(lo(b.start[i][0]), end_of[up])
        prev = -1
        for s_, (v, a, y, lat) in enumerate(chosen):
            vals[y.Index()] = 1
            energy += round(inst.energy_mj(inst.jobs[i], v, s_, a) * b.scale)
            moved = prev >= 0 and prev != a
            mv = b.moved.get((i, s_, a))
            if mv is not None and moved:
                vals[mv.Index()] = 1
                energy += b.h_u
            st = clamp(b.start[i][s_], max(t, ns(recs[s_]["start_ms"], True)))
            t = st + lat + (b.h_ns if moved else 0)
            vals[b.start[i][s_].Index()] = st
            vals[b.end[i][s_].Index()] = clamp(b.end[i][s_], t)
            prev = a
        end_of[i] = t
    vals[b.misses.Index()] = b.n_jobs - ran
    if b.mk is not None:
        vals[b.mk.Index()] = clamp(b.mk, max([lo(b.mk), *end_of.values()]))
    return vals, b.n_jobs - ran, energy


def blocks_of(b, solver) -> list[Block]:
    """The blocks of the schedule ``solver`` found, in order of start (and accelerator)."""
    inst, plat = b.inst, b.inst.spec.platform
    out = []
    for i, per_seg in b.opts.items():
        if not solver.value(b.present[i]):
            continue
        j = inst.jobs[i]
        prev = -1
        for s, opts in enumerate(per_seg):
            v, a = next((o[0], o[1]) for o in opts if solver.value(o[2]))
            moved = prev >= 0 and prev != a
            start = solver.value(b.start[i][s]) / NS_PER_MS
            lat = inst.latency_ms(j, v, s, a) + (plat.handoff_ms if moved else 0.0)
            en = inst.energy_mj(j, v, s, a) + (plat.handoff_mj if moved else 0.0)
            out.append(Block(i, v, s, a, start, start + lat, en, moved))
            prev = a
    out.sort(key=lambda blk: (blk.start_ms, blk.acc))
    return out
