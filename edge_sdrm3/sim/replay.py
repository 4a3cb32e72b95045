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

from ..catalog import PlatformSpec, build_costs, build_models
from ..core.engine import Engine, Sink
from ..core.policies import make_policy
from ..core.policy import as_policy
from ..core.records import result
from ..core.types import Completion, Costs, Model
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
           records: Sink | None = None) -> tuple[dict, list[Completion]]:
    """Run ``trace`` natively; returns the metrics dict and one completion per due frame.

    ``policy`` is an already made policy object (its state, e.g. a tuner's history, stays readable).
    ``records`` receives the run's job and segment records (``core.engine.Records`` keeps them)."""
    if policy is None:
        policy = make_policy(policy_name, **(policy_config or {}))
    st = setup(trace, spec, as_policy(policy).uses_variants)
    eng = Engine(spec.platform, st.models, st.costs, policy, fallback=make_policy("fcfs"), records=records)
    eng.add_trace(trace.frames)
    duration_ms = trace.duration_s * 1000.0
    last_report = 0.0
    while eng.next_time() is not None:
        now = eng.step()
        if progress is not None and now - last_report >= 1000.0:
            last_report = now
            progress(min(1.0, now / duration_ms) if duration_ms else 1.0)
    eng.drain(eng.now, "stalled")  # nothing left that could run them
    assert eng.completions is not None
    return (result(as_policy(policy).name, trace.scenario.name, spec.platform.name, trace.duration_s, trace.seed,
                   eng.figures(duration_ms)), eng.completions)
