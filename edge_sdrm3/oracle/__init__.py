"""The clairvoyant optimum of a short window (DESIGN.md §4, "The optimum"): ``edge-sdrm3 oracle``.

``optimum(trace, spec)`` builds the instance from the trace exactly as the replay does (``instance``),
solves it with CP-SAT (``cpsat``, needs the optional extra ``oracle``), accounts the schedule's figures in
floats and has ``check`` verify the schedule and recompute its metrics with ``core.metrics.summarize``;
the two must agree. The service and the replay never import this package.
"""
from __future__ import annotations

from ..catalog import PlatformSpec
from ..core.supernet import DEFAULT_MIN_ACCURACY
from ..core.types import CoreError
from ..sim.trace import Trace
from .check import Checked, check
from .cpsat import Block, OracleUnavailable, Solution, cp_model, solve
from .instance import DEFAULT_FLOOR, Instance, build_instance

__all__ = ["DEFAULT_FLOOR", "Instance", "OracleCheckError", "OracleUnavailable", "blocks_of_segments", "build_instance",
           "check", "cp_model", "optimum", "schedule_records"]


class OracleCheckError(CoreError):
    """The oracle's schedule failed the independent check (a bug, never an input error)."""


def schedule_records(inst: Instance, blocks: list[Block]) -> list[dict]:
    accs = inst.spec.platform.accelerators
    return [{"model": inst.jobs[b.job].model, "frame": inst.jobs[b.job].frame, "variant": b.variant,
             "segment": b.segment, "accelerator": accs[b.acc].id, "start_ms": b.start_ms, "end_ms": b.end_ms,
             "energy_mj": b.energy_mj} for b in blocks]


def blocks_of_segments(trace: Trace, spec: PlatformSpec, segments: list[dict]) -> list[dict]:
    """A replay's segment records (``core.engine.Records().segments``; one may hold several segments run at once) as one
    block record per segment, e.g. to give the oracle a policy's schedule as its ``hint``."""
    inst = build_instance(trace, spec, supernet=True)
    m_of = {m.name: i for i, m in enumerate(inst.models)}
    ids = [a.id for a in spec.platform.accelerators]
    out = []
    for r in segments:
        m, a, t = m_of[r["model"]], ids.index(r["accelerator"]), r["start_ms"]
        for s in range(r["segment"], r["segment"] + r["segments"]):
            lat = inst.costs.lat[m][r["variant"]][a][s]
            out.append({"model": r["model"], "frame": r["frame"], "variant": r["variant"], "segment": s,
                        "accelerator": r["accelerator"], "start_ms": t, "end_ms": t + lat})
            t += lat
    return out


def accounted(inst: Instance, blocks: list[Block]) -> dict:
    """The schedule's UXCost, energy and misses as the solver's model counts them, in floats."""
    accs = inst.spec.platform.accelerators
    ran = {b.job for b in blocks}
    busy = [0.0] * len(accs)
    end = inst.duration_ms
    energy = 0.0
    for b in blocks:
        busy[b.acc] += b.end_ms - b.start_ms
        end = max(end, b.end_ms)
        energy += b.energy_mj
    energy += sum(inst.ref_mj(j) for j in inst.jobs if j.index not in ran)
    energy += sum(a.idle_power_mw * (end - t) for a, t in zip(accs, busy)) / 1e3  # mW x ms = uJ
    e_ref = sum(inst.ref_mj(j) for j in inst.jobs)
    n, missed = len(inst.jobs), len(inst.jobs) - len(ran)
    ux = (energy / e_ref if e_ref > 0 else 0.0) * (missed + 1) / (n + 1)
    return {"uxcost": ux, "energy_mj": energy, "energy_ref_mj": e_ref, "frames_due": n, "frames_missed": missed}


def optimum(trace: Trace, spec: PlatformSpec, *, supernet: bool = False, floor: float | None = None,
            min_accuracy: float | None = None,
            time_limit_s: float = 60.0, workers: int = 0, with_schedule: bool = False,
            hint: list[dict] | None = None) -> dict:
    """The least-UXCost schedule of the window; the keys of ``edge-sdrm3 oracle --json``. ``min_accuracy``: the
    least mean relative accuracy of the completed frames (with ``supernet``; default: the supernet selector's
    own bound, so that the optimum solves the problem the ``X+supernet`` policies are held to; 0: none, only
    the per-model floor), lowered to what the deadlines allow (``instance.reachable_accuracy``). ``hint``: a schedule
    to start from (block records as in ``schedule``, or a replay's segment records split per segment)."""
    if not supernet:
        min_accuracy = None
    elif min_accuracy is None:
        min_accuracy = DEFAULT_MIN_ACCURACY
    inst = build_instance(trace, spec, supernet=supernet, floor=floor,
                          min_accuracy=min_accuracy if min_accuracy else None)
    if inst.min_accuracy is not None:
        min_accuracy = inst.min_accuracy  # lowered where deadlines leave only less accurate variants
    sol: Solution = solve(inst, time_limit_s=time_limit_s, workers=workers, hint=hint)
    own = accounted(inst, sol.blocks)
    records = schedule_records(inst, sol.blocks)
    checked: Checked = check(inst, records)
    met = checked.metrics
    if checked.problems:
        raise OracleCheckError("the oracle's schedule fails the check: " + "; ".join(checked.problems[:5]))
    for key in ("frames_due", "frames_missed"):
        if own[key] != met[key]:
            raise OracleCheckError(f"the oracle counts {key} = {own[key]}, the metrics {met[key]}")
    if abs(own["uxcost"] - met["uxcost"]) > 1e-9 * max(1.0, met["uxcost"]):
        raise OracleCheckError(f"the oracle's UXCost {own['uxcost']!r} differs from the metrics' {met['uxcost']!r}")
    e_ref, n = own["energy_ref_mj"], own["frames_due"]
    scale = (e_ref * sol.energy_scale * (n + 1)) if e_ref > 0 else 0.0
    bound = min(met["uxcost"], sol.bound_product / scale) if scale else 0.0
    if sol.optimal:
        bound = met["uxcost"]
    out = {
        "scenario": trace.scenario.name, "platform": spec.platform.name, "duration_s": trace.duration_s,
        "seed": trace.seed, "supernet": supernet, "floor": inst.floor if supernet else None,
        "min_accuracy": min_accuracy,
        "uxcost": met["uxcost"], "optimal": sol.optimal, "bound": bound,
        "frames_due": met["frames_due"], "frames_missed": met["frames_missed"], "miss_rate": met["miss_rate"],
        "energy_mj": met["energy_mj"], "energy_ref_mj": met["energy_ref_mj"], "idle_energy_mj": met["idle_energy_mj"],
        "accuracy": met["accuracy"], "xrbench_score": met["xrbench_score"], "solve_s": sol.solve_s,
        "steps": [{"max_misses": s.k, "status": s.status, "objective": s.value, "bound": s.bound,
                   "wall_s": round(s.wall_s, 3)} for s in sol.steps],
        "checked": True,
    }
    if with_schedule:
        out["schedule"] = records
    return out
