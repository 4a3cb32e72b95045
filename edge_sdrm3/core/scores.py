"""SDRM3's score terms (DESIGN.md §4), as pure functions of plain numbers.

``MapScore(j, a) = U + alpha*F + beta*P + gamma*E``; the policy in ``policies/sdrm3.py`` evaluates these
for every (ready job, accelerator) pair.
"""
from __future__ import annotations

from dataclasses import dataclass

EPS_MS = 1e-3


@dataclass(frozen=True)
class Theta:
    """SDRM3's tunable weights: fairness ``alpha``, preference ``beta``, energy ``gamma``, and the drop
    tolerance ``delta`` (a fraction of the job's relative deadline; negative disables early drops)."""

    alpha: float = 0.05
    beta: float = 1.0
    gamma: float = 4.0
    delta: float = 0.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.alpha, self.beta, self.gamma, self.delta)


def urgency(remaining_best_ms: float, deadline_ms: float, now: float) -> float:
    """Share of the time left that the job still needs at best; above 1 it is predicted late."""
    return remaining_best_ms / max(EPS_MS, deadline_ms - now)


def fairness(now: float, last_progress_ms: float, next_latency_ms: float) -> float:
    """How long the job has waited, in units of its own next step."""
    return (now - last_progress_ms) / max(EPS_MS, next_latency_ms)


def preference(best_cost: float, cost: float) -> float:
    """How well this accelerator suits the segment, in (0, 1]: 1 on the best one."""
    return best_cost / cost if cost > 0 else 1.0


def energy_score(best_energy_mj: float, energy_mj: float) -> float:
    """Energy of the segment's cheapest accelerator over this one's, in (0, 1]."""
    return best_energy_mj / energy_mj if energy_mj > 0 else 1.0


def map_score(u: float, f: float, p: float, e: float, theta: Theta) -> float:
    return u + theta.alpha * f + theta.beta * p + theta.gamma * e


def hopeless(best_finish_ms: float, deadline_ms: float, relative_deadline_ms: float, delta: float) -> bool:
    """A job whose best-case completion exceeds its deadline by more than delta (of its relative deadline)."""
    return delta >= 0 and best_finish_ms > deadline_ms + delta * relative_deadline_ms
