"""A cascade's value is its expected frames: an upstream job counts for itself plus its child's trigger
probability (times the child's own value), so under overload SDRM3 sheds by remaining work per *expected* frame."""
from __future__ import annotations

import pytest

from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.types import Accelerator, Costs, Job, Model, Platform, Variant

PLATFORM = Platform("one", (Accelerator("acc0", "emulated"),))
LAT = {"x": 24.0, "y": 30.0, "z": 10.0, "yc": 5.0}  # one segment each, one accelerator


def shed(p: float) -> tuple[list[str], list[str]]:
    """x (24 ms, deadline 24), y (30 ms, deadline 54; its child yc fires with probability p), z (10 ms, deadline
    59): in deadline order z would end at 64, so one job is shed — the one with the most remaining work per
    expected frame: x 24 / 1, y 30 / (1 + p), z 10 / 1."""
    models = tuple(Model(n, 10.0, (Variant("full"),), 1, upstream="y" if n == "yc" else None,
                         trigger_probability=p if n == "yc" else 1.0) for n in LAT)
    costs = Costs([[[[LAT[n]]]] for n in LAT], [[[[LAT[n]]]] for n in LAT])
    disp = Dispatcher(PLATFORM, models, costs, make_policy("sdrm3", tune=False), fallback=make_policy("fcfs"))
    for i, (name, deadline) in enumerate((("x", 24.0), ("y", 54.0), ("z", 59.0))):
        disp.release(Job(i, models[list(LAT).index(name)], list(LAT).index(name), 0, 0.0, deadline, costs))
    starts, ended = disp.schedule(0.0)
    assert disp.counters.invalid_decisions == 0
    return [c.model for c in ended if c.reason == "overload"], [s.job.model.name for s in starts]


@pytest.mark.parametrize("p, victim", [
    (1.0, "x"),  # y: 30 / 2 = 15 per expected frame < x's 24
    (0.5, "x"),  # y: 30 / 1.5 = 20 < 24
    (0.1, "y"),  # y: 30 / 1.1 = 27.3 > 24: its rarely firing child does not save it
    (0.0, "y"),  # a child that never fires adds nothing
])
def test_shedding_weighs_the_childs_trigger_probability(p: float, victim: str) -> None:
    victims, started = shed(p)
    assert victims == [victim]
    assert started and victim not in started
