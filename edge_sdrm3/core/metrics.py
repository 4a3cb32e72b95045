"""Run metrics from completions (DESIGN.md §5): UXCost, XRBench score, miss rate, energy, accuracy,
per-model latency percentiles, accelerator utilisation: ``summarize`` for a run, ``Accumulator`` for
figures kept up to date as completions come. Pure."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

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


@dataclass
class _ModelTally:
    due: int = 0
    missed: int = 0
    completed: int = 0
    energy_mj: float = 0.0  # charged: a frame that did not complete at least its reference energy
    score: float = 0.0  # sum over completed frames of real-time score x energy score
    acc_sum: float = 0.0
    acc_n: int = 0
    latencies: list[float] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)


class Accumulator:
    """The metrics of DESIGN.md §5 gathered one completion at a time: ``summarize`` feeds it a whole run,
    the live service its completions as they come (``keep_latencies=False`` keeps its memory flat)."""

    def __init__(self, models: list[ModelInfo], *, keep_latencies: bool = True,
                 k: float = XRBENCH_K_PER_MS, e_max_mj: float = XRBENCH_EMAX_MJ) -> None:
        self.info = {m.name: m for m in models}
        self.per: dict[str, _ModelTally] = {m.name: _ModelTally() for m in models}
        self.keep_latencies = keep_latencies
        self.k = k
        self.e_max_mj = e_max_mj

    def add(self, c: Completion) -> None:
        st = self.per.get(c.model)
        if st is None:
            st = self.per[c.model] = _ModelTally()
        mi = self.info.get(c.model)
        st.due += 1
        if c.status != "done":
            st.missed += 1
        if c.completed:
            st.completed += 1
            st.energy_mj += c.energy_mj
            if self.keep_latencies:
                st.latencies.append(c.end_ms - c.release_ms)
            st.score += rt_score(c.end_ms - c.deadline_ms, self.k) * (self.e_max_mj - c.energy_mj) / self.e_max_mj
            if mi:
                st.acc_sum += mi.accuracy[c.variant] if c.variant < len(mi.accuracy) else 0.0
                st.acc_n += 1
        else:
            st.energy_mj += max(c.energy_mj, mi.ref_energy_mj if mi else 0.0)  # skipping work is never free
            st.drops[c.reason or c.status] += 1

    def result(self, *, drops: bool = False, extra_energy_mj: float = 0.0) -> dict:
        """The run's figures; ``drops`` adds each model's misses by reason, ``extra_energy_mj`` (idle
        energy) counts in the energy and UXCost."""
        n = m_missed = acc_n = 0
        e_total = e_ref = acc_sum = 0.0
        scores = []
        per_model = {}
        for name, st in self.per.items():
            mi = self.info.get(name)
            due = st.due
            drop_rate = (due - st.completed) / due if due else 0.0
            xs = 100.0 * st.score / due * (1.0 - drop_rate) if due else 0.0
            if due:
                scores.append(xs)
            n += due
            m_missed += st.missed
            e_total += st.energy_mj
            e_ref += (mi.ref_energy_mj if mi else 0.0) * due
            acc_sum += st.acc_sum
            acc_n += st.acc_n
            d: dict = {"due": due, "missed": st.missed, "miss_rate": st.missed / due if due else 0.0,
                       "energy_mj": st.energy_mj}
            if self.keep_latencies:
                lat = sorted(st.latencies)
                d.update(p50_ms=percentile(lat, 50), p99_ms=percentile(lat, 99))
            d["xrbench_score"] = xs
            if drops:
                d["drops"] = dict(st.drops)
            per_model[name] = d
        e_total += extra_energy_mj
        return {
            "uxcost": (e_total / e_ref if e_ref > 0 else 0.0) * (m_missed + 1) / (n + 1),
            "xrbench_score": sum(scores) / len(scores) if scores else 0.0,
            "miss_rate": m_missed / n if n else 0.0,
            "energy_mj": e_total,
            "energy_ref_mj": e_ref,
            "accuracy": acc_sum / acc_n if acc_n else 0.0,
            "frames_due": n,
            "frames_missed": m_missed,
            "models": per_model,
        }


def summarize(completions: list[Completion], models: list[ModelInfo], *, accelerators: list[str],
              busy_ms: list[float], idle_power_mw: list[float] | None = None, duration_ms: float = 0.0,
              k: float = XRBENCH_K_PER_MS, e_max_mj: float = XRBENCH_EMAX_MJ) -> dict:
    """Metrics of a run. ``completions`` holds exactly one record per due frame."""
    acc = Accumulator(models, k=k, e_max_mj=e_max_mj)
    for c in completions:
        acc.add(c)
    end = max([duration_ms] + [c.end_ms for c in completions])
    return run_figures(acc, accelerators=accelerators, busy_ms=busy_ms, idle_power_mw=idle_power_mw, end_ms=end)


def run_figures(acc: Accumulator, *, accelerators: list[str], busy_ms: list[float],
                idle_power_mw: list[float] | None, end_ms: float) -> dict:
    """A run's figures from the accumulator of its completions: idle energy to ``end_ms`` (the later of the
    run's duration and its last completion), accelerator utilisation."""
    end = end_ms
    idle_mj = 0.0
    if idle_power_mw:
        idle_mj = sum(p * max(0.0, end - b) for p, b in zip(idle_power_mw, busy_ms)) / 1e3  # mW*ms = uJ
    out = acc.result(extra_energy_mj=idle_mj)
    per_model = out.pop("models")
    out.update(idle_energy_mj=idle_mj, makespan_ms=end,
               utilization={a: (b / end if end > 0 else 0.0) for a, b in zip(accelerators, busy_ms)},
               models=per_model)
    return out
