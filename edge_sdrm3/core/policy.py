"""The policy contract (DESIGN.md §3): :class:`Policy`, one method to write, ``pick(view, now)``, and optional hooks
declared with their no-op defaults:

- ``observe(completion, now)``: a due frame's outcome (a tuner, a supernet selector learn from it);
- ``variant_of(m) -> int``: the variant a new job of model ``m`` starts with (default 0, the largest);
- ``bind(view)``: the workload, once, before the first job is released (a supernet selector plans from it);
- ``uses_variants``: whether the policy picks variants (a replay then builds every variant of each model);
- ``params() -> dict`` / ``set_params(values)``: its tunable parameters (default: none);
- ``tuning_history() -> list``: ``(window end ms, window UXCost, θ)`` of each online tuning window (default: none).

Every policy file subclasses :class:`Policy` and overrides what it has. :func:`as_policy` binds a policy once,
into a :class:`Bound` that checks ``set_params``'s values, so that the engine and the dispatcher look nothing
up while running. An object with only ``pick`` and ``name`` (a test's ad-hoc policy) is bound with the defaults.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .types import Completion, ConfigError

Decisions = list  # of Run | Drop | Wake (core.types)


class Policy:
    """A scheduling policy: ``pick`` (required) and the optional hooks, here with their no-op defaults."""

    name: str = "policy"
    uses_variants: bool = False

    def pick(self, view: Any, now: float) -> Decisions:
        """The decisions (Run, Drop, Wake) for the ready jobs of ``view`` at ``now``."""
        raise NotImplementedError(f"{type(self).__name__}.pick")

    def observe(self, c: Completion, now: float) -> None:
        """A due frame's outcome (default: ignored)."""

    def variant_of(self, m: int) -> int:
        """The variant a new job of model ``m`` starts with (default: 0, the largest)."""
        return 0

    def bind(self, view: Any) -> None:
        """The workload (``view``'s models, costs, platform), once, before the first job is released (default:
        ignored)."""

    def params(self) -> dict[str, float]:
        """The tunable parameters (default: none)."""
        return {}

    def set_params(self, values: dict[str, float]) -> None:
        """Take new values of some of ``params()``, already checked by :class:`Bound`."""
        raise ConfigError(f"policy {self.name} has no parameters")

    def tuning_history(self) -> list:
        """``(window end ms, window UXCost, θ)`` of each online tuning window (default: none)."""
        return []


class _PickOnly(Policy):
    """An object with ``pick`` (and ``name``) that is not a :class:`Policy`: every hook has its default."""

    def __init__(self, obj: Any) -> None:
        self.name = getattr(obj, "name", type(obj).__name__)
        self.pick = obj.pick  # type: ignore[method-assign]


class Bound:
    """A policy bound to the contract: its hooks as attributes, and ``set_params`` checked."""

    __slots__ = ("bind", "name", "observe", "pick", "policy", "tuning_history", "uses_variants", "variant_of")

    def __init__(self, policy: Any) -> None:
        if not isinstance(policy, Policy):
            if not callable(getattr(policy, "pick", None)):
                raise ConfigError(f"{type(policy).__name__} is not a policy: it has no pick(view, now)")
            policy = _PickOnly(policy)
        self.policy: Policy = policy
        self.name: str = policy.name
        self.pick: Callable[[Any, float], Decisions] = policy.pick
        self.observe: Callable[[Completion, float], None] = policy.observe
        self.variant_of: Callable[[int], int] = policy.variant_of
        self.bind: Callable[[Any], None] = policy.bind
        self.uses_variants: bool = bool(policy.uses_variants)
        self.tuning_history: Callable[[], list] = policy.tuning_history

    def params(self) -> dict[str, float]:
        """The policy's tunable parameters (``{}``: none)."""
        return dict(self.policy.params())

    def set_params(self, values: dict[str, float]) -> dict[str, float]:
        """Set some of the parameters; returns them all. ConfigError names a parameter that is unknown or not a
        finite number (nothing is changed then)."""
        known = self.params()
        if not known:
            raise ConfigError(f"policy {self.name} has no parameters")
        for k, v in values.items():
            if k not in known:
                raise ConfigError(f"unknown parameter {k!r} of policy {self.name} (known: {', '.join(known)})")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"parameter {k} must be a finite number, got {v!r}")
        self.policy.set_params({k: float(v) for k, v in values.items()})
        return self.params()


def as_policy(policy: Any) -> Bound:
    """``policy`` bound to the whole contract (a Bound is returned as it is)."""
    return policy if isinstance(policy, Bound) else Bound(policy)
