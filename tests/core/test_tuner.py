"""The online tuner of SDRM3's θ (edge_sdrm3/core/tuner.py, DESIGN.md §4) on synthetic objectives."""
from __future__ import annotations

import math

import pytest

from edge_sdrm3.core.scores import Theta
from edge_sdrm3.core.tuner import Tuner
from edge_sdrm3.core.types import Completion


def cost(th: Theta) -> float:
    # minimum 0.1 at gamma = 2; at the start gamma = 0.5: (ln 0.25)^2 + 0.1 = 1.922 + 0.1 = 2.022
    return (math.log(th.gamma) - math.log(2.0)) ** 2 + 0.1


def test_tuner_lowers_the_cost_within_its_step_budget() -> None:
    t = Tuner(Theta(gamma=0.5), window_ms=None, fields=("gamma",))
    t.set_workload(("A",))
    start = cost(t.theta)
    assert start == pytest.approx(2.0218, abs=1e-3)
    for _ in range(10):
        t.update(cost(t.theta))
    # steps of e^0.5: 0.5 -> 0.824 -> 1.359 -> 2.241 (each kept: cost 2.02 > 0.886 > 0.249 > 0.113);
    # 3.69 (0.475) loses, 1.359 (0.249) loses -> step 0.25: 1.745 (0.119) and 2.877 (0.232) lose ->
    # step 0.125: 2.539 (0.157) loses, 1.978 (0.1001) wins on the 10th window
    best = t.learned[("A",)]
    assert cost(best) < start
    assert abs(math.log(best.gamma / 2.0)) < abs(math.log(0.5 / 2.0))  # moved toward 2
    assert best.gamma == pytest.approx(0.5 * math.exp(1.375))  # 1.978
    assert cost(best) == pytest.approx(0.1001, abs=1e-4)
    assert t.step < 0.5  # both directions lost at least once: the step shrank
    # only gamma was searched
    assert (best.alpha, best.beta, best.delta) == (Theta().alpha, Theta().beta, Theta().delta)
    assert len(t.history) == 10 and t.history[0][1] == pytest.approx(start)


def test_first_trial_moves_one_coordinate_multiplicatively() -> None:
    t = Tuner(Theta(alpha=0.1, beta=1.0, gamma=0.5, delta=0.0), window_ms=None, step=0.5)
    assert t.update(1.0)  # first window sets the base; trial alpha * e^0.5
    assert t.theta == Theta(alpha=pytest.approx(0.1 * math.exp(0.5)), beta=1.0, gamma=0.5, delta=0.0)
    assert t.update(1.0)  # no better than the base: the trial lost -> the other direction
    assert t.theta.alpha == pytest.approx(0.1 * math.exp(-0.5))


def test_delta_moves_additively() -> None:
    t = Tuner(Theta(delta=0.0), window_ms=None, step=0.5, fields=("delta",))
    t.update(1.0)
    assert t.theta.delta == pytest.approx(0.5 * 0.2)  # step * 0.2 added, not multiplied (0 * e^x = 0)


def test_theta_is_remembered_per_workload_and_the_step_resets() -> None:
    t = Tuner(Theta(gamma=0.5), window_ms=None, fields=("gamma",))
    t.set_workload(("A",))
    for _ in range(7):
        t.update(cost(t.theta))
    theta_a = t.learned[("A",)]
    assert theta_a.gamma == pytest.approx(0.5 * math.exp(1.5))
    assert t.step < t.step0  # decayed on A
    assert t.theta.gamma == pytest.approx(0.5 * math.exp(1.75))  # A's pending trial, 2.877
    t.set_workload(("B",))
    assert t.step == t.step0  # a workload change resets the step size
    assert t.theta.gamma == pytest.approx(0.5 * math.exp(1.75))  # B is new: the current θ is kept

    def cost_b(th: Theta) -> float:  # B wants gamma 0.1
        return (math.log(th.gamma) - math.log(0.1)) ** 2

    t.update(cost_b(t.theta))  # base 2.877; trial up (the direction last used): 2.877 e^0.5 = 4.74
    assert t.theta.gamma == pytest.approx(0.5 * math.exp(2.25))
    t.update(cost_b(t.theta))  # 4.74 loses -> the other direction at the full step: 2.877 e^-0.5 = 1.745
    assert t.theta.gamma == pytest.approx(0.5 * math.exp(1.25))
    assert t.step == t.step0
    t.update(cost_b(t.theta))  # 1.745 wins (cost 8.18 < 11.3): kept for B
    assert t.learned[("B",)].gamma == pytest.approx(0.5 * math.exp(1.25))
    assert t.learned[("A",)] == theta_a  # A's accepted θ is untouched by B's search
    assert t.theta != theta_a
    t.set_workload(("A",))
    assert t.theta == theta_a  # A's θ restored
    assert t.step == t.step0
    t.set_workload(("A",))  # same workload again: nothing changes
    assert t.theta == theta_a


def _comp(status: str = "done", energy: float = 1.0) -> Completion:
    return Completion("m", 0, 0, "acc0", 0.0, 0.0, 1.0, 10.0, energy, status)


def test_observe_closes_frame_windows_and_updates() -> None:
    t = Tuner(Theta(gamma=0.5), window_ms=None, window_frames=3, fields=("gamma",))
    assert not t.observe(_comp(), 1.0)
    assert not t.observe(_comp(), 2.0)
    assert t.history == []
    # third frame closes the window: energy 3 / reference 3 (default 1 per frame) * (0 + 1) / (3 + 1)
    assert t.observe(_comp(), 3.0)  # first window: θ moves to the first trial
    assert t.history[0][1] == pytest.approx(0.25)
    assert t.theta.gamma == pytest.approx(0.5 * math.exp(0.5))
    # next window: one late frame (energy 1) and one dropped (energy 0, charged its reference 1):
    # 3 / 3 * (2 + 1) / (3 + 1) = 0.75 > 0.25 -> the trial lost: the other direction
    t.observe(_comp("late"), 4.0)
    t.observe(_comp("dropped", 0.0), 5.0)
    assert t.observe(_comp(), 6.0)
    assert t.history[1][1] == pytest.approx(0.75)
    assert t.theta.gamma == pytest.approx(0.5 * math.exp(-0.5))


def test_observe_closes_time_windows() -> None:
    t = Tuner(Theta(), window_ms=100.0)
    assert not t.observe(_comp(), 50.0)
    assert t.observe(_comp(), 100.0)  # 100 >= 0 + 100: the window ends
    assert len(t.history) == 1 and t.history[0][0] == 100.0
    assert not t.observe(_comp(), 150.0)  # the next window runs to 200
    assert t.observe(_comp(), 200.0)
    assert len(t.history) == 2


def test_a_change_in_the_models_that_run_is_a_new_workload() -> None:
    # windows of 2 frames; workload A (model "a") then B (model "b") then A again
    t = Tuner(Theta(gamma=0.5), window_ms=None, window_frames=2, fields=("gamma",))

    def window(model: str, status: str, now: float) -> bool:
        c = Completion(model, 0, 0, "acc0", 0.0, 0.0, 1.0, 10.0, 1.0, status)
        t.observe(c, now)
        return t.observe(c, now + 1)

    window("a", "done", 0.0)  # first window: learns it runs ("a",) and starts a trial
    assert t.workload == ("a",)
    window("a", "done", 2.0)
    learned_a = t.learned[("a",)]
    moved = window("b", "late", 4.0)  # the models changed: a new workload, this window measures nothing
    assert t.workload == ("b",)
    assert t.history[-1][1] == pytest.approx(1.0 * 3 / 3)  # energy 2/2 * (2 + 1) / (2 + 1)
    assert t.step == t.step0 and not moved or t.theta != learned_a
    window("b", "late", 6.0)
    window("a", "done", 8.0)  # back to A: its learned θ is restored
    assert t.workload == ("a",)
    assert t.theta == learned_a
