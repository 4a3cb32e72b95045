"""``POLICY+supernet``: any policy with the supernet selector (DESIGN.md §4), so that variant switching is
compared like with like. The selector chooses each job's variant from its plan (accuracy budget, load, recent
misses): the dispatcher asks ``variant_of`` at release, and when the wrapped policy starts a job's first block
the selector's choice for it is fixed (``assign``: a model planned to run a share of its jobs lighter gets that
share exactly); the wrapped policy schedules the jobs as they are. Whatever
else the wrapped policy has (SDRM3's ``theta``, ``tuner``) is read and set through the wrapper.
"""
from __future__ import annotations

from typing import Any

from ..policy import Policy, as_policy
from ..supernet import DEFAULT_MIN_ACCURACY, SupernetSelector
from ..types import INF, Completion, Run

SUFFIX = "+supernet"
# make_policy hands these to the wrapper, the rest to the policy
SELECTOR_PARAMS = ("floor", "selector_window_ms", "min_accuracy")


class WithSupernet(Policy):
    uses_variants = True

    def __init__(self, inner: Any, floor: float = 0.9, selector_window_ms: float = 500.0,
                 min_accuracy: float = DEFAULT_MIN_ACCURACY) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "name", inner.name + SUFFIX)
        object.__setattr__(self, "selector", SupernetSelector(floor=floor, window_ms=selector_window_ms,
                                                              min_accuracy=min_accuracy))
        object.__setattr__(self, "_observe", as_policy(inner).observe)

    def bind(self, view) -> None:
        """The workload, before the first release: the selector plans the first jobs' variants too."""
        self.selector.bind(view.models, view.costs, sum(view.healthy), view.healthy)

    def pick(self, view, now: float) -> list:
        sel = self.selector
        sel.bind(view.models, view.costs, sum(view.healthy), view.healthy, now)
        out = self.inner.pick(view, now)
        copied = False
        for k, d in enumerate(out):  # a job's variant is fixed when its first block starts
            if d.__class__ is Run and d.job.seg == 0 and d.job.start < 0 and d.variant is None:
                job = d.job
                v = sel.assign(job.m)
                if v != job.variant and view.costs.lat[job.m][v][d.acc][0] != INF:
                    if not copied:
                        out, copied = list(out), True
                    out[k] = d._replace(variant=v)
        return out

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
