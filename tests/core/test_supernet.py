"""The supernet selector (edge_sdrm3/core/supernet.py, DESIGN.md §4) on hand-made model sets, and the
``X+supernet`` wrapper on a replayed XRBench cell.

One segment per variant; four variants per model, largest first, with relative accuracies 1.0, 0.97, 0.90,
0.72 (the last below the 0.9 floor). Windows are 100 ms; a test feeds one frame outcome per window, at the
window's end, so every observe() closes a window.
"""
from __future__ import annotations

import pytest

from edge_sdrm3.catalog import load_platform, load_scenario
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.supernet import SupernetSelector
from edge_sdrm3.core.types import Completion, Costs, Model, Variant
from edge_sdrm3.sim.replay import replay
from edge_sdrm3.sim.trace import generate

ACC = (1.0, 0.97, 0.90, 0.72)


def models_and_costs(spec: dict, speeds: tuple[float, ...] = (1.0,), deadline_ms: float = 50.0
                     ) -> tuple[tuple[Model, ...], Costs]:
    """``spec[name] = (fps, latency of each variant in ms[, energy of each variant in mJ])`` (energy: the
    latency's numbers when not given); ``speeds``: one accelerator per entry, latency / speed on it."""
    models = tuple(Model(n, s[0], tuple(Variant(f"v{i}", 1.0 - 0.25 * i, a) for i, a in enumerate(ACC)), 1,
                         deadline_ms=deadline_ms) for n, s in spec.items())
    lat = [[[[x / sp] for sp in speeds] for x in s[1]] for s in spec.values()]  # [m][v][a][s]
    en = [[[[x] for _ in speeds] for x in (s[2] if len(s) > 2 else s[1])] for s in spec.values()]
    return models, Costs(lat, en)


def outcome(status: str, model: str = "a") -> Completion:
    return Completion(model, 0, 0, "acc0", 0.0, 0.0, 1.0, 10.0, 1.0, status)


class Driver:
    def __init__(self, sel: SupernetSelector) -> None:
        self.sel, self.now = sel, 0.0

    def window(self, status: str = "done", models: tuple[str, ...] = ("a",)) -> list[int]:
        """One window whose frames (one per model in ``models``) all end ``status``."""
        self.now += self.sel.window_ms
        for k, name in enumerate(models):  # the last one closes the window
            self.sel.observe(outcome(status, name), self.now - (len(models) - 1 - k))
        return list(self.sel.variant)


def two_models(min_accuracy: float = 1.0) -> tuple[SupernetSelector, Driver]:
    # a: 20 fps, 10 / 8 / 6 / 4 ms -> work per second 200 / 160 / 120 / 80 ms
    # b: 20 fps, 10 / 9.5 / 9 / 2 ms -> 200 / 190 / 180 / 40 ms
    # utilisation at full size (200 + 200) / 1000 = 0.4: only misses make it overloaded
    models, costs = models_and_costs({"a": (20, [10, 8, 6, 4]), "b": (20, [10, 9.5, 9, 2])})
    sel = SupernetSelector(floor=0.9, window_ms=100.0, calm_windows=2, min_accuracy=min_accuracy)
    sel.bind(models, costs, 1)
    return sel, Driver(sel)


# --- the accuracy budget buys energy ------------------------------------------------------------------------

def test_the_accuracy_budget_goes_to_the_model_that_saves_most_energy_per_accuracy_lost() -> None:
    # same latencies, different energies: a saves 5 mJ for its first 0.03 of accuracy, b only 0.1 mJ
    spec = {"a": (20, [10, 8, 6, 4], [10, 5, 4, 1]), "b": (20, [10, 9.5, 9, 2], [10, 9.9, 9.8, 1])}
    models, costs = models_and_costs(spec)
    sel = SupernetSelector(floor=0.9, min_accuracy=0.96)
    sel.bind(models, costs, 1)
    # budget 40 frames/s x 0.04 = 1.6: a v0 -> v1 costs 20 x 0.03 = 0.6 (166 mJ per unit, b's 3.3), then
    # a v1 -> v2 would cost 1.4 (14.3 mJ per unit) of the 1.0 left: 5/7 of a's jobs run v2, b stays whole
    assert sel.variant == [1, 0] and sel.lighter == [2, 0]
    assert sel.share[0] == pytest.approx(5 / 7)
    assert sel.mean_accuracy() == pytest.approx(0.96)
    # the plan is there before any window closed: the first jobs already run it
    assert [sel.variant_of(m) for m in range(2)] == [1, 0]
    # variant_of only predicts; assign fixes a job's variant. Jobs of a and b in turn: of a's 70, 50 run v2
    # (0.97 x 2/7 + 0.90 x 5/7 = 0.92), b's all run v0, and the mean accuracy of the jobs started so far never
    # falls under the bound
    assert [sel.variant_of(0) for _ in range(5)] == [1] * 5
    got = []
    for _ in range(70):
        got += [(0, sel.assign(0)), (1, sel.assign(1))]
    a = [v for m, v in got if m == 0]
    assert 49 <= a.count(2) <= 50 and set(a) == {1, 2}  # 50 but where the sums round under 0.96 and {v for m, v in got if m == 1} == {0}
    for k in range(1, len(got) + 1):
        assert sum(ACC[v] for _, v in got[:k]) / k >= 0.96 - 1e-9
    assert all(ACC[v] >= 0.9 for v in sel.variant + sel.lighter)
    # only a's jobs: its lighter ones wait while they would take the mean under 0.96
    alone = [sel.assign(0) for _ in range(20)]
    assert 0 < alone.count(2) < 20 * 5 / 7


def test_no_budget_keeps_every_model_whole_while_the_load_fits() -> None:
    sel, d = two_models(min_accuracy=1.0)
    assert sel.utilization() == 0.4 and sel.variant == [0, 0] and sel.share == [0.0, 0.0]
    assert d.window("done") == [0, 0]


# --- the load -------------------------------------------------------------------------------------------------

def test_a_load_above_util_high_reaches_the_needed_variant_at_once() -> None:
    # a alone at 120 fps: 10 / 8 / 6 ms -> utilisation 1.2 / 0.96 / 0.72 of one accelerator
    models, costs = models_and_costs({"a": (120, [10, 8, 6, 4])})
    sel = SupernetSelector(floor=0.9, min_accuracy=0.99)
    sel.bind(models, costs, 1, (True,))
    # the budget alone (a third of the jobs at v1) leaves 1.12 > util_high 0.85; v1 leaves 0.96: v2 from the first job
    assert sel.variant == [2] and sel.share == [0.0] and sel.variant_of(0) == 2
    assert sel.utilization() == pytest.approx(0.72)
    assert sel.changes == [(0.0, "a", 2)]


def test_an_accelerator_failing_replans_at_the_next_pick() -> None:
    models, costs = models_and_costs({"a": (120, [10, 8, 6, 4])}, speeds=(1.0, 1.0))
    sel = SupernetSelector(floor=0.9, min_accuracy=0.99)
    sel.bind(models, costs, 2, (True, True))
    assert sel.utilization() < 0.85 and sel.variant == [0] and sel.share[0] == pytest.approx(1 / 3)
    sel.bind(models, costs, 1, (True, False), now=250.0)  # acc1 failed: 1.2 of one accelerator
    assert sel.variant == [2] and sel.variant_of(0) == 2 and sel.changes[-1] == (250.0, "a", 2)
    sel.bind(models, costs, 2, (True, True), now=900.0)  # it came back
    assert sel.variant == [0] and sel.share[0] == pytest.approx(1 / 3)


def test_a_variant_too_slow_for_the_deadline_alone_is_never_used() -> None:
    # a deadline of 9 ms: v0 (10 ms at best) can never make it, whatever the load; v1 (8 ms) can
    models, costs = models_and_costs({"a": (10, [10, 8, 6, 4])}, deadline_ms=9.0)
    sel = SupernetSelector(floor=0.9, min_accuracy=1.0)
    sel.bind(models, costs, 1, (True,))
    assert sel.utilization() == pytest.approx(0.08) and sel.variant == [1] and sel.variant_of(0) == 1
    # none fast enough: the lightest at or above the floor
    models, costs = models_and_costs({"a": (10, [10, 8, 6, 4])}, deadline_ms=5.0)
    sel.bind(models, costs, 1, (True,))
    assert sel.variant == [2]


def test_a_slower_accelerator_counts_for_its_speed() -> None:
    # acc1 runs everything 3x slower: capacity 1 + 1/3 of the fastest, not 2
    models, costs = models_and_costs({"a": (100, [10, 8, 6, 4])}, speeds=(1.0, 1 / 3))
    sel = SupernetSelector(floor=0.9, min_accuracy=1.0)
    sel.bind(models, costs, 2, (True, True))
    assert sel.utilization([0]) == pytest.approx(1.0 / (4 / 3))
    assert sel.variant == [0]  # 0.75 fits
    models, costs = models_and_costs({"a": (130, [10, 8, 6, 4])}, speeds=(1.0, 1 / 3))
    sel.bind(models, costs, 2, (True, True))
    assert sel.variant == [1]  # 1.3 / 1.33 = 0.975 > 0.85; at v1 0.78


# --- the misses -----------------------------------------------------------------------------------------------

def test_the_models_that_miss_step_down_at_once_and_calm_windows_give_back_one_step_each() -> None:
    sel, d = two_models(min_accuracy=1.0)
    assert d.window("late", ("a", "b")) == [1, 1]  # both missed: both step down in the same window
    assert d.window("late", ("a",)) == [2, 1]  # only a missed: only a
    assert d.window("done") == [2, 1]  # one calm window: calm_windows = 2
    assert d.window("done") == [1, 1]  # the second: a step given back (a had taken the most)
    for _ in range(4):
        d.window("done")
    assert sel.variant == [0, 0] and sel.own == [0, 0] and sel.extra == 0


def test_a_model_at_its_floor_that_misses_makes_the_others_step_down() -> None:
    sel, d = two_models(min_accuracy=1.0)
    d.window("late")
    assert d.window("late") == [2, 0]  # a steps down for its own misses, to its floor
    # a misses again but cannot step further: a miss rate of 1.0 asks for ten steps of the others, b has two
    assert d.window("late") == [2, 2]
    assert sel.extra == 2 and all(ACC[v] >= 0.9 for v in sel.variant)
    assert d.window("done") == [2, 2]
    assert d.window("done") == [2, 1]  # the others' steps are given back first
    assert d.window("done") == [2, 1]
    assert d.window("done") == [2, 0]
    for _ in range(4):
        d.window("done")
    assert sel.variant == [0, 0]


def test_a_miss_rate_under_miss_high_changes_nothing() -> None:
    sel, _ = two_models(min_accuracy=1.0)
    for k in range(60):  # one miss in 60 frames (1.7% <= 2%) in the first window
        sel.observe(outcome("late" if k == 0 else "done"), 100.0 if k == 59 else 50.0)
    assert sel.variant == [0, 0] and sel.extra == 0


def test_a_window_closes_only_at_its_end() -> None:
    sel, _ = two_models(min_accuracy=1.0)
    sel.observe(outcome("late"), 50.0)  # the first window ends at 100
    assert sel.variant == [0, 0]
    sel.observe(outcome("done"), 100.0)  # 1 miss of 2 = 0.5 > 0.02: a steps down
    assert sel.variant == [1, 0]


def test_rebinding_the_same_models_keeps_the_choice() -> None:
    sel, d = two_models(min_accuracy=1.0)
    d.window("late")
    sel.bind(sel.models, sel.costs, 1)  # the policy binds on every pick
    assert sel.variant == [1, 0]
    models, costs = models_and_costs({"a": (20, [10, 8, 6, 4])})
    sel.bind(models, costs, 1)  # another workload: plan afresh
    assert sel.variant == [0] and sel.extra == 0


# --- X+supernet on a replayed cell ----------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["edf_firm", "sdrm3"])
def test_supernet_policy_keeps_the_accuracy_bound_and_beats_the_whole_models(base: str) -> None:
    # ar_gaming on the big.LITTLE pair: the whole models overload it (edf_firm misses frames)
    tr = generate(load_scenario("ar_gaming"), 2.0, 0)
    spec = load_platform("dual_4k_biglittle_ws_os")
    plain, _ = replay(tr, spec, base)
    p = make_policy(f"{base}+supernet")
    sn, done = replay(tr, spec, f"{base}+supernet", policy=p, keep_completions=True)
    assert plain["miss_rate"] > 0.05
    assert sn["miss_rate"] == 0.0 and sn["accuracy"] >= 0.95
    assert sn["uxcost"] < plain["uxcost"] / 10
    # every job, the first ones included, ran a planned variant: none ran the largest
    assert {c.variant for c in done} <= {1, 2}
    planned = {p.selector.models[i].name: {p.selector.variant[i], p.selector.lighter[i]}
               for i in range(len(p.selector.models))}
    assert all(c.variant in planned[c.model] for c in done)


def test_sdrm3_looks_ahead_at_the_variants_the_selector_will_start() -> None:
    # ar_assistant on one accelerator: at the largest variants the next releases overload it; at the
    # selector's plan they fit. SDRM3's look-ahead must count them at the plan's variants (view.variants_of),
    # else it sheds frames for an overload that is not there (5 in these 3 s)
    tr = generate(load_scenario("ar_assistant"), 3.0, 0)
    spec = load_platform("single_4k_ws")
    sn, done = replay(tr, spec, "sdrm3+supernet", keep_completions=True)
    firm, _ = replay(tr, spec, "edf_firm+supernet")
    assert [c for c in done if c.reason == "overload"] == []
    assert sn["miss_rate"] <= firm["miss_rate"]
