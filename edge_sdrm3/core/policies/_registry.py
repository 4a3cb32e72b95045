from __future__ import annotations

from typing import Any, Callable

from ..types import ConfigError

POLICIES: dict[str, Callable[..., Any]] = {}
# the nine baselines of DESIGN.md §4: the "best baseline" of a cell is the lowest UXCost among these
BASELINES = ("fcfs", "round_robin", "edf", "lst", "sel", "heft", "prema", "herald", "xrbench")


def register(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        POLICIES[name] = cls
        return cls
    return deco


def policy_names() -> list[str]:
    """Every registered policy, baselines first, in a stable order."""
    rest = sorted(n for n in POLICIES if n not in BASELINES)
    return [n for n in BASELINES if n in POLICIES] + rest


def make_policy(name: str, **config: Any) -> Any:
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ConfigError(f"unknown policy {name!r} (known: {', '.join(policy_names())})") from None
    try:
        return cls(**config)
    except TypeError as e:  # a parameter this policy does not take
        raise ConfigError(f"policy {name!r}: {e}") from None


def each_to_fastest_free(view, now: float, jobs) -> list:
    """The rule several baselines share: jobs in the given order, each to the free accelerator where
    its next segment is fastest (ties: lowest index); a job whose segment runs nowhere free waits."""
    from ..types import INF, Run

    free = view.free_accs(now)
    out = []
    for job in jobs:
        if not free:
            break
        a = min(free, key=lambda a: (view.latency(job, a), a))
        if view.latency(job, a) < INF:
            free.remove(a)
            out.append(Run(job, a))
    return out
