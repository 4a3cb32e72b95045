"""Online tuning of SDRM3's θ = (α, β, γ, δ) from the UXCost of each window (DESIGN.md §4).

Sign steps with a decaying step size, one coordinate at a time: after a window measured with θ, the
tuner tries θ with one coordinate moved by ±step (multiplicatively for the weights, additively for
δ); a trial that lowers the window's UXCost is kept, otherwise the opposite direction is tried next
window, and after both the step shrinks. The θ learned for a workload (its models and their rates) is
remembered; a workload change restores that θ, or keeps the current one, and resets the step size.
Windows are ``window_ms`` of time or ``window_frames`` completed frames, whichever is set.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

from .scores import Theta
from .types import Completion

ALL_FIELDS = ("alpha", "beta", "gamma", "delta")


class Tuner:
    def __init__(self, theta: Theta, *, window_ms: float | None = 500.0, window_frames: int | None = None,
                 step: float = 0.5, decay: float = 0.5, min_step: float = 0.05,
                 ref_energy: Callable[[str], float] | None = None,
                 fields: tuple[str, ...] = ALL_FIELDS, detect: bool = True, explore: bool = True) -> None:
        self.fields = fields
        self.explore = explore  # False: only measure the windows (a fixed θ, for comparison)
        self.detect = detect  # a change in the set of models that ran in a window is a new workload
        self.theta = theta
        self.window_ms = window_ms
        self.window_frames = window_frames
        self.step0 = step
        self.step = step
        self.decay = decay
        self.min_step = min_step
        self.ref_energy = ref_energy or (lambda model: 1.0)
        self.learned: dict[tuple, Theta] = {}
        self.workload: tuple = ()
        self.history: list[tuple[float, float, Theta]] = []  # (window end, window UXCost, θ used)
        self._base: tuple[Theta, float] | None = None  # accepted θ and its UXCost
        self._coord = 0
        self._dir = 1
        self._tried_other = False
        self._reset_window(0.0)

    # --- feeding ----------------------------------------------------------------------------------
    def set_workload(self, key: tuple) -> None:
        """Tell the tuner which workload runs (by default it notices by itself: the models that ran)."""
        if key == self.workload:
            return
        if self.workload and self._base is not None:
            self.learned[self.workload] = self._base[0]
        self.workload = key
        self.theta = self.learned.get(key, self.theta)
        self.step = self.step0
        self._base = None
        self._tried_other = False  # a new search: a first losing trial is followed by the other direction

    def observe(self, c: Completion, now: float) -> bool:
        """Account one due frame's outcome; returns True when θ changed at a window end."""
        self._n += 1
        if c.status != "done":
            self._m += 1
        ref = self.ref_energy(c.model)
        self._e += c.energy_mj if c.completed else max(c.energy_mj, ref)
        self._eref += ref
        self._seen.add(c.model)
        end = (self.window_frames is not None and self._n >= self.window_frames) or \
              (self.window_ms is not None and now >= self._start + self.window_ms)
        if not end:
            return False
        cost = (self._e / self._eref if self._eref > 0 else 1.0) * (self._m + 1) / (self._n + 1)
        key = tuple(sorted(self._seen))
        self._reset_window(now)
        if self.detect and not self.workload:
            self.workload = key  # the first window: it measured θ on this workload
        elif self.detect and key != self.workload:
            # the models that ran changed: a new workload. This window mixed the two, so it measures
            # nothing; restore what was learned for the new workload (or keep θ) and start afresh
            old = self.theta
            self.history.append((now, cost, old))
            self.set_workload(key)
            return self.theta != old
        return self.update(cost, now)

    def _reset_window(self, now: float) -> None:
        self._seen: set[str] = set()
        self._start = now
        self._n = self._m = 0
        self._e = self._eref = 0.0

    # --- the search -------------------------------------------------------------------------------
    def update(self, cost: float, now: float = 0.0) -> bool:
        """One window's UXCost measured with ``self.theta``; choose the θ for the next window."""
        self.history.append((now, cost, self.theta))
        if not self.explore:
            return False
        if self._base is None:
            self._base = (self.theta, cost)
        elif cost < self._base[1]:
            self._base = (self.theta, cost)  # the trial won: keep it, keep the direction
            self._tried_other = False
            self._coord = (self._coord + 1) % len(self.fields)
        else:  # the trial lost: back to the accepted θ, other direction, then next coordinate
            if not self._tried_other:
                self._dir = -self._dir
                self._tried_other = True
            else:
                self._tried_other = False
                self._coord = (self._coord + 1) % len(self.fields)
                if self._coord == 0:
                    self.step = max(self.min_step, self.step * self.decay)
        if self.workload:
            self.learned[self.workload] = self._base[0]
        old = self.theta
        self.theta = self._trial(self._base[0])
        return self.theta != old

    def _trial(self, base: Theta) -> Theta:
        name = self.fields[self._coord]
        v = getattr(base, name)
        if name == "delta":
            nv = v + self._dir * self.step * 0.2
        else:
            nv = v * math.exp(self._dir * self.step) if v > 0 else (self.step if self._dir > 0 else 0.0)
        return replace(base, **{name: nv})
