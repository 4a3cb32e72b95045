"""Run metrics from completions (DESIGN.md §5): UXCost, XRBench score, miss rate, energy, accuracy,
per-model latency percentiles, accelerator utilisation. One function, ``summarize``; pure."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .types import Completion, Model

XRBENCH_K_PER_MS = 15.0
XRBENCH_EMAX_MJ = 1500.0


@dataclass(frozen=True)
class ModelInfo:
    """What the metrics need of a model: its variants' relative accuracy and reference energy per frame."""

    name: str
    accuracy: tuple[float, ...]
    ref_energy_mj: float


def model_infos(models: tuple[Model, ...], ref_energy: list[float]) -> list[ModelInfo]:
    return [ModelInfo(m.name, tuple(v.accuracy for v in m.variants), e) for m, e in zip(models, ref_energy)]


def percentile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_xs:
        return 0.0
    k = max(0, min(len(sorted_xs) - 1, math.ceil(q / 100.0 * len(sorted_xs)) - 1))
    return sorted_xs[k]


def rt_score(delay_ms: float, k: float = XRBENCH_K_PER_MS) -> float:
    x = k * delay_ms
    if x > 700:
        return 0.0
    return 1.0 / (1.0 + math.exp(x))


def summarize(completions: list[Completion], models: list[ModelInfo], *, accelerators: list[str],
              busy_ms: list[float], idle_power_mw: list[float] | None = None, duration_ms: float = 0.0,
              k: float = XRBENCH_K_PER_MS, e_max_mj: float = XRBENCH_EMAX_MJ) -> dict:
    """Metrics of a run. ``completions`` holds exactly one record per due frame."""
    by_model: dict[str, list[Completion]] = {m.name: [] for m in models}
    for c in completions:
        by_model.setdefault(c.model, []).append(c)
    info = {m.name: m for m in models}
    end = max([duration_ms] + [c.end_ms for c in completions])
    n = m_missed = 0
    e_total = e_ref = 0.0
    acc_sum = 0.0
    acc_n = 0
    scores = []
    per_model = {}
    for name, cs in by_model.items():
        mi = info.get(name)
        ref = mi.ref_energy_mj if mi else 0.0
        due = len(cs)
        missed = 0
        energy = 0.0
        lat = []
        score = 0.0
        completed = 0
        for c in cs:
            if c.status != "done":
                missed += 1
            if c.completed:
                completed += 1
                energy += c.energy_mj
                lat.append(c.end_ms - c.release_ms)
                score += rt_score(c.end_ms - c.deadline_ms, k) * (e_max_mj - c.energy_mj) / e_max_mj
                if mi:
                    acc_sum += mi.accuracy[c.variant] if c.variant < len(mi.accuracy) else 0.0
                    acc_n += 1
            else:
                energy += max(c.energy_mj, ref)  # skipping work is never free
        lat.sort()
        drop_rate = (due - completed) / due if due else 0.0
        xs = 100.0 * score / due * (1.0 - drop_rate) if due else 0.0
        if due:
            scores.append(xs)
        n += due
        m_missed += missed
        e_total += energy
        e_ref += ref * due
        per_model[name] = {
            "due": due, "missed": missed, "miss_rate": missed / due if due else 0.0,
            "energy_mj": energy, "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "xrbench_score": xs,
        }
    idle_mj = 0.0
    if idle_power_mw:
        idle_mj = sum(p * max(0.0, end - b) for p, b in zip(idle_power_mw, busy_ms)) / 1e3  # mW*ms = uJ
        e_total += idle_mj
    ux = (e_total / e_ref if e_ref > 0 else 0.0) * (m_missed + 1) / (n + 1)
    return {
        "uxcost": ux,
        "xrbench_score": sum(scores) / len(scores) if scores else 0.0,
        "miss_rate": m_missed / n if n else 0.0,
        "energy_mj": e_total,
        "energy_ref_mj": e_ref,
        "idle_energy_mj": idle_mj,
        "accuracy": acc_sum / acc_n if acc_n else 0.0,
        "frames_due": n,
        "frames_missed": m_missed,
        "makespan_ms": end,
        "utilization": {a: (b / end if end > 0 else 0.0) for a, b in zip(accelerators, busy_ms)},
        "models": per_model,
    }
