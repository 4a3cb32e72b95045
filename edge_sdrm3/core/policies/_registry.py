from __future__ import annotations

from typing import Any, Callable

from ..types import INF, ConfigError, Run

POLICIES: dict[str, Callable[..., Any]] = {}
# the baselines of DESIGN.md §4: the "best baseline" of a cell is the lowest UXCost among these
BASELINES = ("fcfs", "round_robin", "edf", "lst", "sel", "heft", "prema", "herald", "xrbench", "edf_firm", "planaria")
# POLICY+supernet works for every policy; these are the ones listed (and run by --policies all), so that
# SDRM3's selector is compared with the strongest baseline's under the same selector
LISTED_WITH_SUPERNET = ("edf_firm", "sdrm3")


def register(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        POLICIES[name] = cls
        return cls
    return deco


def policy_names() -> list[str]:
    """Every registered policy, baselines first, then the others and the listed ``X+supernet``, in a
    stable order (any other ``X+supernet`` is made on request by ``make_policy``)."""
    from .with_supernet import SUFFIX

    rest = sorted([n for n in POLICIES if n not in BASELINES]
                  + [n + SUFFIX for n in LISTED_WITH_SUPERNET if n in POLICIES])
    return [n for n in BASELINES if n in POLICIES] + rest


def make_policy(name: str, **config: Any) -> Any:
    """The policy called ``name``; ``X+supernet`` is policy ``X`` wrapped with the supernet selector (the
    selector's parameters ``floor``, ``min_accuracy`` and ``selector_window_ms`` go to it, the rest to ``X``)."""
    from .with_supernet import SELECTOR_PARAMS, SUFFIX, WithSupernet

    if name.endswith(SUFFIX) and name[: -len(SUFFIX)] in POLICIES:
        sel = {k: config.pop(k) for k in SELECTOR_PARAMS if k in config}
        return WithSupernet(make_policy(name[: -len(SUFFIX)], **config), **sel)
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ConfigError(f"unknown policy {name!r} (known: {', '.join(policy_names())}; "
                          f"and any of them followed by {SUFFIX})") from None
    try:
        return cls(**config)
    except TypeError as e:  # a parameter this policy does not take
        raise ConfigError(f"policy {name!r}: {e}") from None


def each_to_fastest_free(view, now: float, jobs) -> list:
    """The rule several baselines share: jobs in the given order, each to the free accelerator where
    its next segment is fastest (ties: lowest index); a job whose segment runs nowhere free waits."""
    free = view.free_accs(now)
    out: list = []
    handoff = view.handoff_ms
    for job in jobs:
        if not free:
            break
        # ``view.latency`` written out (the hand-off where the job moves); ``free`` is in index order and a later
        # accelerator wins only where strictly faster: the lowest index on ties
        lat, s, moved = job.lat, job.seg, job.acc
        best, fastest = -1, INF
        for a in free:
            t = lat[a][s] + handoff if 0 <= moved != a else lat[a][s]
            if t < fastest:
                best, fastest = a, t
        if best >= 0:
            free.remove(best)
            out.append(Run(job, best))
    return out
