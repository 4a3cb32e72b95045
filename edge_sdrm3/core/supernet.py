"""Supernet selection (DESIGN.md §4): switch models to lighter variants under load, back up after.

Every ``window_ms`` the selector looks at the window's miss rate and the predicted utilisation of the
accelerators (each model's rate times its current variant's best-case latency, over the accelerators).
Overloaded (misses above ``miss_high`` or utilisation above ``util_high``): the model that loses the
least accuracy per millisecond of work saved per second steps one variant down, never below its
accuracy floor. Calm (no misses and, after the step, utilisation under ``util_low``) for ``calm_windows``
windows in a row: the model that gains the most accuracy per millisecond added steps back up. The gap
between the thresholds and the calm count are the hysteresis.
"""
from __future__ import annotations

from .types import Completion, Costs, Model


class SupernetSelector:
    def __init__(self, floor: float = 0.9, window_ms: float = 500.0, miss_high: float = 0.02,
                 util_high: float = 0.95, util_low: float = 0.75, calm_windows: int = 2) -> None:
        self.floor = floor
        self.window_ms = window_ms
        self.miss_high = miss_high
        self.util_high = util_high
        self.util_low = util_low
        self.calm_windows = calm_windows
        self.models: tuple[Model, ...] = ()
        self.costs: Costs | None = None
        self.n_acc = 1
        self.variant: list[int] = []
        self._window_end = window_ms
        self._done = self._missed = 0
        self._calm = 0
        self.changes: list[tuple[float, str, int]] = []  # (time, model, new variant)

    def bind(self, models: tuple[Model, ...], costs: Costs, n_acc: int) -> None:
        if models is not self.models:
            self.models, self.costs, self.n_acc = models, costs, max(1, n_acc)
            self.variant = [0] * len(models)

    def variant_of(self, m: int) -> int:
        return self.variant[m] if m < len(self.variant) else 0

    def utilization(self, variant: list[int] | None = None) -> float:
        """Predicted share of the accelerators' time the workload needs with these variants."""
        v = self.variant if variant is None else variant
        assert self.costs is not None
        rem = self.costs.rem_best
        return sum(m.fps * rem[i][v[i]][0] for i, m in enumerate(self.models)) / (1000.0 * self.n_acc)

    def observe(self, c: Completion, now: float) -> None:
        self._done += 1
        if c.status != "done":
            self._missed += 1
        if now >= self._window_end:
            self.step(now)

    def step(self, now: float) -> None:
        miss = self._missed / self._done if self._done else 0.0
        self._done = self._missed = 0
        self._window_end = now + self.window_ms
        if not self.models:
            return
        util = self.utilization()
        if miss > self.miss_high or util > self.util_high:
            self._calm = 0
            self._move(now, -1)
        elif miss == 0.0:
            self._calm += 1
            if self._calm >= self.calm_windows:
                self._calm = 0
                self._move(now, +1)
        else:
            self._calm = 0

    def _move(self, now: float, direction: int) -> None:
        assert self.costs is not None
        rem = self.costs.rem_best
        best = None
        for i, m in enumerate(self.models):
            v = self.variant[i]
            nv = v + (1 if direction < 0 else -1)  # variants are ordered largest first
            if not 0 <= nv < len(m.variants):
                continue
            if direction < 0 and m.variants[nv].accuracy < self.floor:
                continue
            d_acc = abs(m.variants[v].accuracy - m.variants[nv].accuracy)
            d_work = abs(rem[i][v][0] - rem[i][nv][0]) * m.fps  # ms of work per second
            if d_work <= 0:
                continue
            if direction > 0:
                trial = list(self.variant)
                trial[i] = nv
                if self.utilization(trial) > self.util_low:
                    continue
                key = -d_acc / d_work  # most accuracy back per ms added
            else:
                key = d_acc / d_work  # least accuracy lost per ms saved
            if best is None or key < best[0]:
                best = (key, i, nv)
        if best is not None:
            _, i, nv = best
            self.variant[i] = nv
            self.changes.append((now, self.models[i].name, nv))
