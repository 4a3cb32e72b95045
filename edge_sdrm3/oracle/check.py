"""An independent check of a schedule of an instance: feasibility, then its metrics by ``core.metrics``.

A schedule is a list of block records (``model``, ``frame``, ``variant``, ``segment``, ``accelerator``,
``start_ms``, ``end_ms``; the oracle's ``schedule``). Checked against the cost tables and the due frames
alone: every block's duration is its latency from the costs (with the hand-off when the job changed
accelerator), blocks on one accelerator never overlap, a job runs all its segments in order with one
variant among those allowed, after its release and — when cascaded — after its upstream job completed,
and ends by its deadline; a frame with no block is dropped. The metrics come from
``core.metrics.summarize`` over one completion per due frame, with the energy recomputed from the costs.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from ..core.metrics import model_infos, summarize
from ..core.types import DONE, DROPPED, Completion
from .instance import Instance

TOL_MS = 1e-6  # one nanosecond: the oracle's integer time unit


@dataclass
class Checked:
    problems: list[str]
    completions: list[Completion]
    metrics: dict

    @property
    def ok(self) -> bool:
        return not self.problems


def check(inst: Instance, schedule: list[dict]) -> Checked:
    plat = inst.spec.platform
    acc_ids = [a.id for a in plat.accelerators]
    problems: list[str] = []
    per_job = _blocks_per_job(inst, schedule, acc_ids, problems)
    end_of: dict[int, float] = {}  # completed jobs: end of the last block
    energy: dict[int, float] = {}
    busy = [0.0] * len(acc_ids)
    on_acc: list[list[tuple[float, float, str]]] = [[] for _ in acc_ids]
    for i in sorted(per_job, key=lambda i: _depth(inst, i)):  # upstream jobs first
        ran = _run_job(inst, i, per_job[i], end_of, acc_ids, busy, on_acc, problems)
        if ran is not None:
            end_of[i], energy[i] = ran
    problems += _overlaps(on_acc, acc_ids)
    comps = _completions(inst, per_job, end_of, energy)
    ref = [inst.costs.reference_energy(m) for m in range(len(inst.models))]
    metrics = summarize(comps, model_infos(inst.models, ref), accelerators=acc_ids, busy_ms=busy,
                        idle_power_mw=[a.idle_power_mw for a in plat.accelerators], duration_ms=inst.duration_ms)
    if inst.min_accuracy is not None and metrics["accuracy"] < inst.min_accuracy - 1e-12 and any(
            c.completed for c in comps):
        problems.append(f"mean accuracy {metrics['accuracy']} is below the least asked for, {inst.min_accuracy}")
    return Checked(problems, comps, metrics)


def _blocks_per_job(inst: Instance, schedule: list[dict], acc_ids: list[str],
                    problems: list[str]) -> dict[int, list[dict]]:
    """The schedule's blocks by job index; a block of no due frame or on no accelerator is a problem."""
    job_of = {(j.model, j.frame): j for j in inst.jobs}
    per_job: dict[int, list[dict]] = {}
    for r in schedule:
        j = job_of.get((r["model"], r["frame"]))
        if j is None:
            problems.append(f"{r['model']}#{r['frame']}: not a due frame")
            continue
        if r["accelerator"] not in acc_ids:
            problems.append(f"{r['model']}#{r['frame']}: no accelerator {r['accelerator']!r}")
            continue
        per_job.setdefault(j.index, []).append(r)
    return per_job


def _run_job(inst: Instance, i: int, blocks: list[dict], end_of: dict[int, float], acc_ids: list[str],
             busy: list[float], on_acc: list[list[tuple[float, float, str]]],
             problems: list[str]) -> tuple[float, float] | None:
    """Job ``i``'s blocks timed from the costs: (its end, its energy), each block's time added to its accelerator's
    ``busy`` and ``on_acc``; None when the job cannot count as run (wrong segments or variant, not released)."""
    plat = inst.spec.platform
    j = inst.jobs[i]
    name = f"{j.model}#{j.frame}"
    blocks = sorted(blocks, key=lambda r: r["segment"])
    n = inst.models[j.m].n_segments
    if [r["segment"] for r in blocks] != list(range(n)):
        problems.append(f"{name}: segments {[r['segment'] for r in blocks]}, expected 0..{n - 1} once each")
        return None
    variants = {r["variant"] for r in blocks}
    if len(variants) != 1 or next(iter(variants)) not in j.variants:
        problems.append(f"{name}: variants {sorted(variants)}, expected one of {list(j.variants)}")
        return None
    if not j.runnable:
        problems.append(f"{name}: runs, but is never released (no upstream frame)")
        return None
    ready = j.release_ms
    if j.upstream is not None:
        if j.upstream not in end_of:
            problems.append(f"{name}: runs, but its upstream job did not complete")
            return None
        ready = max(ready, end_of[j.upstream])
    v = blocks[0]["variant"]
    prev_acc, t, e = -1, ready, 0.0
    for r in blocks:
        s, a = r["segment"], acc_ids.index(r["accelerator"])
        lat = inst.latency_ms(j, v, s, a)
        en = inst.energy_mj(j, v, s, a)
        if prev_acc >= 0 and prev_acc != a:
            lat += plat.handoff_ms
            en += plat.handoff_mj
        if r["start_ms"] < t - TOL_MS:
            problems.append(f"{name} segment {s}: starts at {r['start_ms']} ms, before {t} ms")
        if abs(r["end_ms"] - r["start_ms"] - lat) > TOL_MS:
            problems.append(f"{name} segment {s}: lasts {r['end_ms'] - r['start_ms']} ms, its latency is {lat} ms")
        t = r["start_ms"] + lat
        e += en
        busy[a] += lat
        on_acc[a].append((r["start_ms"], t, f"{name} segment {s}"))
        prev_acc = a
    if t > j.deadline_ms + TOL_MS:
        problems.append(f"{name}: ends at {t} ms, after its deadline {j.deadline_ms} ms")
    return t, e


def _overlaps(on_acc: list[list[tuple[float, float, str]]], acc_ids: list[str]) -> list[str]:
    """Blocks that overlap on one accelerator, one problem per pair in start order."""
    problems = []
    for a, xs in enumerate(on_acc):
        xs.sort()
        for (_, e0, n0), (s1, _, n1) in pairwise(xs):
            if e0 > s1 + TOL_MS:
                problems.append(f"{acc_ids[a]}: {n0} (until {e0} ms) overlaps {n1} (from {s1} ms)")
    return problems


def _completions(inst: Instance, per_job: dict[int, list[dict]], end_of: dict[int, float],
                 energy: dict[int, float]) -> list[Completion]:
    """One completion per due frame: done when its job ran, else dropped by the oracle."""
    comps = []
    for j in inst.jobs:
        if j.index in end_of:
            rs = per_job[j.index]
            last = max(rs, key=lambda r: r["segment"])
            start = min(r["start_ms"] for r in rs)
            release = j.release_ms if j.upstream is None else max(j.release_ms, end_of[j.upstream])
            comps.append(Completion(j.model, j.frame, rs[0]["variant"], last["accelerator"], release, start,
                                    end_of[j.index], j.deadline_ms, energy[j.index], DONE))
        else:
            comps.append(Completion(j.model, j.frame, 0, "", j.release_ms, -1.0, j.release_ms, j.deadline_ms, 0.0,
                                    DROPPED, "oracle"))
    return comps


def _depth(inst: Instance, i: int) -> int:
    d = 0
    while inst.jobs[i].upstream is not None:
        i = inst.jobs[i].upstream
        d += 1
    return d
