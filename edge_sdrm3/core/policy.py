"""The policy contract (DESIGN.md §3): one required method, ``pick(view, now)``, and optional hooks.

A policy is any object with a ``name`` and ``pick``. The optional hooks have no-op defaults:

- ``observe(completion, now)``: a due frame's outcome (a tuner, a supernet selector learn from it);
- ``variant_of(m) -> int``: the variant a new job of model ``m`` starts with (default 0, the largest);
- ``bind(view)``: the workload, once, before the first job is released (a supernet selector plans from it);
- ``uses_variants``: whether the policy picks variants (a replay then builds every variant of each model);
- ``params() -> dict`` / ``set_params(values)``: its tunable parameters (default: none);
- ``tuning_history() -> list``: ``(window end ms, window UXCost, θ)`` of each online tuning window (default: none).

The engine and the dispatcher never look a hook up while running: :func:`as_policy` wraps a policy once,
at binding, in a :class:`Bound` whose hooks are the policy's own or the defaults. A wrapper rather than a
base class, so that every policy file (and a test's ad-hoc policy) keeps the contract without inheriting
anything.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .types import Completion, ConfigError

Decisions = list  # of Run | Drop | Wake (core.types)


@runtime_checkable
class Policy(Protocol):
    """The required part: a name and ``pick``."""

    name: str

    def pick(self, view: Any, now: float) -> Decisions: ...


class Hooks(Protocol):
    """The optional part; :class:`Bound` gives every policy all of it."""

    uses_variants: bool

    def observe(self, c: Completion, now: float) -> None: ...

    def variant_of(self, m: int) -> int: ...

    def params(self) -> dict[str, float]: ...

    def tuning_history(self) -> list: ...

    def set_params(self, values: dict[str, float]) -> dict[str, float]: ...


def _no_observe(c: Completion, now: float) -> None:
    return None


def _no_history() -> list:
    return []


def _largest(m: int) -> int:
    return 0


def _no_bind(view: Any) -> None:
    return None


class Bound:
    """A policy with every hook of the contract: its own where it has one, else the default."""

    __slots__ = ("_params", "_set_params", "bind", "name", "observe", "pick", "policy", "tuning_history", "uses_variants",
                 "variant_of")

    def __init__(self, policy: Any) -> None:
        if not callable(getattr(policy, "pick", None)):
            raise ConfigError(f"{type(policy).__name__} is not a policy: it has no pick(view, now)")
        self.policy = policy
        self.name: str = getattr(policy, "name", type(policy).__name__)
        self.pick: Callable[[Any, float], Decisions] = policy.pick
        self.observe: Callable[[Completion, float], None] = getattr(policy, "observe", None) or _no_observe
        self.variant_of: Callable[[int], int] = getattr(policy, "variant_of", None) or _largest
        self.bind: Callable[[Any], None] = getattr(policy, "bind", None) or _no_bind
        self.uses_variants: bool = bool(getattr(policy, "uses_variants", False))
        self._params = getattr(policy, "params", None)
        self._set_params = getattr(policy, "set_params", None)
        self.tuning_history: Callable[[], list] = getattr(policy, "tuning_history", None) or _no_history

    def params(self) -> dict[str, float]:
        """The policy's tunable parameters (``{}``: none)."""
        return dict(self._params()) if self._params is not None else {}

    def set_params(self, values: dict[str, float]) -> dict[str, float]:
        """Set some of the parameters; returns them all. ConfigError names a parameter that is unknown or not a
        finite number (nothing is changed then)."""
        known = self.params()
        if not known or self._set_params is None:
            raise ConfigError(f"policy {self.name} has no parameters")
        for k, v in values.items():
            if k not in known:
                raise ConfigError(f"unknown parameter {k!r} of policy {self.name} (known: {', '.join(known)})")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"parameter {k} must be a finite number, got {v!r}")
        self._set_params({k: float(v) for k, v in values.items()})
        return self.params()


def as_policy(policy: Any) -> Bound:
    """``policy`` bound to the whole contract (a Bound is returned as it is)."""
    return policy if isinstance(policy, Bound) else Bound(policy)
