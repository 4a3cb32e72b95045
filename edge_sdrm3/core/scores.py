"""SDRM3's score terms (DESIGN.md §4), as pure functions of plain numbers.

``MapScore(j, a) = U + alpha*F + beta*P + gamma*E``; the policy in ``policies/sdrm3.py`` calls these for
every ready job and (job, accelerator) pair.
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


def map_score(job_score: float, beta: float, best_end_ms: float, end_ms: float, gamma: float,
              best_energy_mj: float, energy_mj: float) -> float:
    """MapScore of a (job, accelerator) pair: the job's score (U, or its rank, plus alpha x F) plus beta x P
    plus gamma x E. P = the job's earliest end over its end with its next block here (times from now), E =
    the cheapest energy of the block over its energy here; both 1 at best."""
    return job_score + beta * best_end_ms / end_ms + gamma * best_energy_mj / energy_mj


def hopeless(best_finish_ms: float, deadline_ms: float, relative_deadline_ms: float, delta: float) -> bool:
    """A job whose best-case completion exceeds its deadline by more than delta (of its relative deadline)."""
    return delta >= 0 and best_finish_ms > deadline_ms + delta * relative_deadline_ms
