"""Replay a trace in simulated time on an emulated platform: the workload engine (``core.engine``) on a
virtual clock.

The engine holds every rule (DESIGN.md §6: releases, cascades, firm deadlines, the drain, the records); this driver
builds the workload of a platform, loads the trace, steps the engine until nothing is left, and drains it
(a job still waiting then can never run: dropped as ``stalled``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import FileFormatError, PlatformSpec, build_costs, build_models
from ..core.engine import OVERRUN_MS, Engine, Sink
from ..core.policies import make_policy
from ..core.policy import as_policy
from ..core.records import result
from ..core.types import Completion, Costs, Model, Start
from .trace import Trace


@dataclass
class Setup:
    models: tuple[Model, ...]
    costs: Costs
    index: dict[str, int]


def setup(trace: Trace, spec: PlatformSpec, uses_variants: bool) -> Setup:
    """The trace's models on the platform: every variant for a policy that picks them, else the largest."""
    widths = None if uses_variants else (1.0,)
    models = build_models(trace.scenario, widths, spec)
    costs = build_costs(models, spec, trace.scenario.cost_table)
    return Setup(models, costs, {m.name: i for i, m in enumerate(models)})


def replay(trace: Trace, spec: PlatformSpec, policy_name: str, *, policy_config: dict | None = None,
           progress: Callable[[float], None] | None = None, policy: Any = None,
           records: Sink | None = None, keep_completions: bool = False, learned: list[dict] | None = None,
           measured: list[dict] | None = None) -> tuple[dict, list[Completion] | None]:
    """Run ``trace`` natively; returns the metrics dict and, with ``keep_completions``, one completion per due frame
    (else None: the run's memory does not grow with its length, the trace is read as the clock reaches its frames).

    ``policy`` is an already made policy object (its state, e.g. a tuner's history, stays readable).
    ``records`` receives the run's job and segment records (``core.engine.Records`` keeps them).
    ``learned``: cost records of a live log (``replay --costs learned``): each replaces its entry of the platform's
    cost table from its ``t_ms`` on, as the service learned it. A live log is replayed with the service's engine
    rules (its header's ``engine``: admission at release, chained blocks).
    ``measured``: segment records of a live log (``replay --costs measured``, with ``learned``): a block the replay
    runs as the service did (same job, segments, accelerator and variant) takes the time it took live, the rest
    their learned cost; the policy plans with the learned costs, as live, and an accelerator past its predicted end
    counts busy as the service counts it. Timing noise then plays no part: what still differs from the live run
    is a decision the replay takes otherwise."""
    if policy is None:
        policy = make_policy(policy_name, **(policy_config or {}))
    st = setup(trace, spec, as_policy(policy).uses_variants)
    eng = Engine(spec.platform, st.models, st.costs, policy, fallback=make_policy("fcfs"), records=records,
                 keep_completions=keep_completions,
                 overrun_ms=OVERRUN_MS if measured else 0.0,
                 **trace.engine)  # a live log's rules (admission, chained blocks), as the service ran them
    if measured:
        eng.measured = measured_times(measured, [a.id for a in spec.platform.accelerators])
    eng.add_trace(trace.iter_frames())
    updates = cost_updates(learned or [], st, spec)
    k = 0
    duration_ms = trace.duration_s * 1000.0
    last_report = 0.0
    while (t := eng.next_time()) is not None:
        if k < len(updates) and updates[k][0] <= t:
            while k < len(updates) and updates[k][0] <= t:
                _, m, v, a, sg, lat, en = updates[k]
                st.costs.lat[m][v][a][sg], st.costs.en[m][v][a][sg] = lat, en
                k += 1
            st.costs.refresh()  # derived tables updated in place: queued jobs see the new costs
        now = eng.step()
        if progress is not None and now - last_report >= 1000.0:
            last_report = now
            progress(min(1.0, now / duration_ms) if duration_ms else 1.0)
    eng.drain(eng.now, "stalled")  # nothing left that could run them
    return (result(as_policy(policy).name, trace.scenario.name, spec.platform.name, trace.duration_s, trace.seed,
                   eng.figures(duration_ms)), eng.completions)


def cost_updates(records: list[dict], st: Setup, spec: PlatformSpec) -> list[tuple]:
    """A log's cost records as ``(t_ms, m, v, a, s, latency_ms, energy_mj)`` in time order. A variant the replay
    does not build (a policy that keeps the largest) is skipped; a model, accelerator or segment the replay does not
    know means the log was recorded elsewhere (FileFormatError)."""
    accs = {a.id: i for i, a in enumerate(spec.platform.accelerators)}
    out = []
    for r in records:
        m = st.index.get(r["model"])
        a = accs.get(r["accelerator"])
        if m is None or a is None:
            raise FileFormatError(f"cost record at {r['t_ms']} ms: model {r['model']!r} on {r['accelerator']!r} is "
                                  f"not in this replay (platform {spec.platform.name}): the log was recorded on "
                                  "another")
        vs = [v for v, var in enumerate(st.models[m].variants) if var.name == r["variant_name"]]
        if not vs:
            continue
        if r["segment"] >= st.models[m].n_segments:
            raise FileFormatError(f"cost record at {r['t_ms']} ms: {r['model']} has no segment {r['segment']}")
        out.append((float(r["t_ms"]), m, vs[0], a, r["segment"], float(r["latency_ms"]), float(r["energy_mj"])))
    out.sort(key=lambda u: u[0])
    return out


def measured_times(records: list[dict], acc_ids: list[str]) -> Callable[[Start, int], float | None]:
    """``Engine.measured`` from a live log's segment records: ``(start, n) ->`` the end of that block of ``n``
    segments, as long as it took live (its live end itself when it starts when it did live: the cost records of
    that instant then apply as they did live), None where the service did not run it so (another accelerator,
    variant or split)."""
    live = {(r["model"], r["frame"], r["variant"], r["segment"], r["segments"], r["accelerator"]):
            (float(r["start_ms"]), float(r["end_ms"])) for r in records}

    def end(s: Start, n: int) -> float | None:
        j = s.job
        run = live.get((j.model.name, j.frame, j.variant, s.first_seg, n, acc_ids[s.acc]))
        if run is None:
            return None
        return run[1] if abs(s.start_ms - run[0]) <= 1e-6 else s.start_ms + (run[1] - run[0])
    return end
