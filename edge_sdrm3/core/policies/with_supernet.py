"""``POLICY+supernet``: any policy with the supernet selector (DESIGN.md §4), so that variant switching is
compared like with like. The selector chooses each new job's variant (the dispatcher asks ``variant_of`` at
release) from the load and the recent misses; the wrapped policy schedules the jobs as they are. Whatever
else the wrapped policy has (SDRM3's ``theta``, ``tuner``) is read and set through the wrapper.
"""
from __future__ import annotations

from typing import Any

from ..policy import Policy, as_policy
from ..supernet import SupernetSelector
from ..types import Completion

SUFFIX = "+supernet"
SELECTOR_PARAMS = ("floor", "selector_window_ms")  # make_policy hands these to the wrapper, the rest to the policy


class WithSupernet(Policy):
    uses_variants = True

    def __init__(self, inner: Any, floor: float = 0.9, selector_window_ms: float = 500.0) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "name", inner.name + SUFFIX)
        object.__setattr__(self, "selector", SupernetSelector(floor=floor, window_ms=selector_window_ms))
        object.__setattr__(self, "_observe", as_policy(inner).observe)

    def pick(self, view, now: float) -> list:
        self.selector.bind(view.models, view.costs, sum(view.healthy))
        return self.inner.pick(view, now)

    def variant_of(self, m: int) -> int:
        """The variant a new job of model ``m`` should run (the dispatcher asks at release)."""
        return self.selector.variant_of(m)

    def observe(self, c: Completion, now: float) -> None:
        self._observe(c, now)
        self.selector.observe(c, now)

    def params(self) -> dict[str, float]:
        return self.inner.params()

    def set_params(self, values: dict[str, float]) -> None:
        self.inner.set_params(values)

    def tuning_history(self) -> list:
        return self.inner.tuning_history()

    def __getattr__(self, key: str) -> Any:  # only for what the wrapper itself does not have
        return getattr(self.inner, key)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self.__dict__:
            object.__setattr__(self, key, value)
        else:  # e.g. the service setting SDRM3's theta
            setattr(self.inner, key, value)
