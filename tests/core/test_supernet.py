"""The supernet selector (edge_sdrm3/core/supernet.py, DESIGN.md §4) on a hand-made model set.

One accelerator, one segment per variant; four variants per model, largest first, with relative
accuracies 1.0, 0.97, 0.90, 0.72. Windows are 100 ms; each test feeds one frame outcome per window,
at the window's end, so every observe() closes a window.
"""
from __future__ import annotations

from edge_sdrm3.core.supernet import SupernetSelector
from edge_sdrm3.core.types import Completion, Costs, Model, Variant

ACC = (1.0, 0.97, 0.90, 0.72)


def models_and_costs(spec: dict[str, tuple[float, list[float]]]) -> tuple[tuple[Model, ...], Costs]:
    """``spec[name] = (fps, latency of each variant in ms)``."""
    models = tuple(Model(n, fps, tuple(Variant(f"v{i}", 1.0 - 0.25 * i, a) for i, a in enumerate(ACC)), 1)
                   for n, (fps, _) in spec.items())
    lat = [[[[x]] for x in lats] for _, lats in spec.values()]  # [m][v][a][s]
    return models, Costs(lat, [[[[x]] for x in lats] for _, lats in spec.values()])


def outcome(status: str) -> Completion:
    return Completion("a", 0, 0, "acc0", 0.0, 0.0, 1.0, 10.0, 1.0, status)


class Driver:
    def __init__(self, sel: SupernetSelector) -> None:
        self.sel, self.now = sel, 0.0

    def window(self, status: str = "done") -> list[int]:
        self.now += self.sel.window_ms
        self.sel.observe(outcome(status), self.now)
        return list(self.sel.variant)


def two_models() -> tuple[SupernetSelector, Driver]:
    # a: 20 fps, 10 / 8 / 6 / 4 ms -> work per second 200 / 160 / 120 / 80 ms
    # b: 20 fps, 10 / 9.5 / 9 / 2 ms -> 200 / 190 / 180 / 40 ms
    # utilisation at full size (200 + 200) / 1000 = 0.4: only misses make it overloaded
    models, costs = models_and_costs({"a": (20, [10, 8, 6, 4]), "b": (20, [10, 9.5, 9, 2])})
    sel = SupernetSelector(floor=0.9, window_ms=100.0, calm_windows=2)
    sel.bind(models, costs, 1)
    return sel, Driver(sel)


def test_steps_down_cheapest_accuracy_per_ms_first_and_never_below_the_floor() -> None:
    sel, d = two_models()
    assert sel.utilization() == 0.4
    assert d.window("done") == [0, 0]  # no misses, utilisation 0.4: nothing to do
    # a miss rate of 1 > 0.02: overloaded. Accuracy lost per ms of work saved per second:
    #   a v0 -> v1: 0.03 / 40 = 0.00075; b v0 -> v1: 0.03 / 10 = 0.003 -> a
    assert d.window("late") == [1, 0]
    # a v1 -> v2: 0.07 / 40 = 0.00175 < b 0.003 -> a again
    assert d.window("dropped") == [2, 0]
    # a v2 -> v3 would reach 0.72 < floor 0.9 -> b v0 -> v1 (0.003)
    assert d.window("late") == [2, 1]
    assert d.window("late") == [2, 2]  # b v1 -> v2: 0.07 / 10
    # both at 0.90; the next step would be 0.72 for either (though b v3 saves 140 ms/s): no move
    assert d.window("late") == [2, 2]
    assert d.window("late") == [2, 2]
    assert [sel.variant_of(m) for m in range(2)] == [2, 2]
    assert [(name, v) for _, name, v in sel.changes] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert all(sel.models[i].variants[v].accuracy >= 0.9 for i, v in enumerate(sel.variant))


def test_steps_back_up_after_calm_windows_with_hysteresis() -> None:
    sel, d = two_models()
    for status in ("late", "late", "late", "late"):
        d.window(status)
    assert sel.variant == [2, 2]  # utilisation (120 + 180) / 1000 = 0.3
    # one calm window: calm_windows = 2 -> no step up yet
    assert d.window("done") == [2, 2]
    # second calm window in a row: step up the model that gains most accuracy per ms added:
    #   a v2 -> v1: 0.07 / 40 = 0.00175; b v2 -> v1: 0.07 / 10 = 0.007 -> b; utilisation 0.31 <= 0.75
    assert d.window("done") == [2, 1]
    # the calm count restarts after a step: one calm window does nothing
    assert d.window("done") == [2, 1]
    # a miss steps down again (a is at the floor, so b v1 -> v2) and clears the calm count
    assert d.window("late") == [2, 2]
    assert d.window("done") == [2, 2]  # one calm window after the miss: no step up
    assert d.window("done") == [2, 1]  # the second one: b up again


def test_utilisation_blocks_a_step_up_and_forces_a_step_down() -> None:
    # a alone at 100 fps: 10 / 8 / 6 / 4 ms -> utilisation 1.0 / 0.8 / 0.6 / 0.4
    models, costs = models_and_costs({"a": (100, [10, 8, 6, 4])})
    sel = SupernetSelector(floor=0.9, window_ms=100.0, calm_windows=2)
    sel.bind(models, costs, 1)
    d = Driver(sel)
    assert sel.utilization() == 1.0
    assert d.window("done") == [1]  # no miss, but utilisation 1.0 > 0.95: overloaded -> v1 (0.8)
    # calm (0.8 <= 0.95, no miss) twice, but back at v0 utilisation would be 1.0 > 0.75: stays
    assert d.window("done") == [1]
    assert d.window("done") == [1]
    assert d.window("done") == [1]
    # on two accelerators the same model at v0 needs 1.0 / 2 = 0.5 <= 0.75: it may step back up
    sel2 = SupernetSelector(floor=0.9, window_ms=100.0, calm_windows=2)
    sel2.bind(models, costs, 2)
    sel2.variant = [1]
    d2 = Driver(sel2)
    assert d2.window("done") == [1]
    assert d2.window("done") == [0]


def test_a_window_closes_only_at_its_end() -> None:
    sel, _ = two_models()
    sel.observe(outcome("late"), 50.0)  # the first window ends at 100
    assert sel.variant == [0, 0]
    sel.observe(outcome("done"), 100.0)  # 1 miss of 2 = 0.5 > 0.02 -> step down
    assert sel.variant == [1, 0]


def test_rebinding_the_same_models_keeps_the_choice() -> None:
    sel, d = two_models()
    d.window("late")
    sel.bind(sel.models, sel.costs, 1)  # the policy binds on every pick
    assert sel.variant == [1, 0]
    models, costs = models_and_costs({"a": (20, [10, 8, 6, 4])})
    sel.bind(models, costs, 1)  # another workload: start again at the largest variants
    assert sel.variant == [0]
