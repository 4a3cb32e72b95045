"""Which models of a workload could meet their deadline at all on a platform: the best case, from the costs.

A model is *infeasible alone* when even with the platform to itself it cannot finish by its deadline: its
best-case latency (each block on the accelerator where it runs fastest, a hand-off paid at every change of
accelerator), added to that of its upstream chain (a cascaded job starts after its upstream's job, and its
deadline counts from the frame's release), exceeds its relative deadline. A workload in which every model is
infeasible alone leaves nothing for a scheduler to do: any policy misses every frame, and the one that drops
them earliest scores best. Benchmarks name such cells instead of counting them as wins.

Computed from the cost tables, never from results. Pure: no files beyond the catalog's, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass

from .catalog import PlatformSpec, Scenario, build_costs, build_models
from .core.types import INF


@dataclass(frozen=True)
class ModelFeasibility:
    name: str
    deadline_ms: float  # relative to the frame's release
    best_case_ms: float  # largest variant, its upstream chain included
    best_case_any_variant_ms: float  # the fastest variant of each model in the chain

    @property
    def infeasible(self) -> bool:
        return self.best_case_ms > self.deadline_ms

    @property
    def infeasible_any_variant(self) -> bool:
        return self.best_case_any_variant_ms > self.deadline_ms


def best_case_ms(lat: list[list[float]], handoff_ms: float) -> float:
    """Least time to run every segment in order; ``lat[a][s]`` per accelerator and segment (``inf``: cannot)."""
    n_acc = len(lat)
    if not n_acc:
        return INF
    done = [0.0] * n_acc  # finished the segments so far, the last one on accelerator a
    for s in range(len(lat[0])):
        moved = min(done) + handoff_ms
        done = [lat[a][s] + min(done[a], moved) for a in range(n_acc)]
    return min(done)


def model_feasibility(scenario: Scenario, spec: PlatformSpec) -> list[ModelFeasibility]:
    """Per model of ``scenario`` (in its order): deadline and best-case latency on ``spec``."""
    models = build_models(scenario, None, spec)
    costs = build_costs(models, spec, scenario.cost_table)
    index = {m.name: i for i, m in enumerate(models)}
    hand = spec.platform.handoff_ms
    own = [[best_case_ms(costs.lat[i][v], hand) for v in range(len(m.variants))] for i, m in enumerate(models)]
    largest: list[float] = []
    fastest: list[float] = []
    for i, m in enumerate(models):  # an upstream is listed before its cascades
        up = index[m.upstream] if m.upstream is not None else None
        largest.append(own[i][0] + (largest[up] if up is not None else 0.0))
        fastest.append(min(own[i]) + (fastest[up] if up is not None else 0.0))
    return [ModelFeasibility(m.name, m.relative_deadline_ms, largest[i], fastest[i]) for i, m in enumerate(models)]


def infeasible(feas: list[ModelFeasibility], any_variant: bool = False) -> bool:
    """True when every model is infeasible alone (with ``any_variant``: even with its fastest variant)."""
    return bool(feas) and all(f.infeasible_any_variant if any_variant else f.infeasible for f in feas)
