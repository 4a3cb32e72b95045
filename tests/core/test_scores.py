"""SDRM3's score terms (edge_sdrm3/core/scores.py) on worked examples (DESIGN.md §4)."""
from __future__ import annotations

import pytest

from edge_sdrm3.core.scores import EPS_MS, Theta, fairness, hopeless, map_score, urgency


def test_urgency_is_the_share_of_the_time_left_still_needed() -> None:
    # 10 ms of work, deadline 50, now 30 -> 20 ms left -> 10 / 20 = 0.5 (on time with slack)
    assert urgency(10.0, 50.0, 30.0) == pytest.approx(0.5)
    # exactly the time left -> 1.0
    assert urgency(20.0, 50.0, 30.0) == pytest.approx(1.0)
    # 30 ms of work, 20 ms left -> 1.5: above 1 means it is predicted late
    assert urgency(30.0, 50.0, 30.0) == pytest.approx(1.5)
    assert urgency(30.0, 50.0, 30.0) > 1.0 > urgency(10.0, 50.0, 30.0)


def test_urgency_eps_guard_when_no_time_is_left() -> None:
    # deadline == now: 10 / max(1e-3, 0) = 10 / 1e-3 = 1e4 (finite, no division by zero)
    assert urgency(10.0, 50.0, 50.0) == pytest.approx(10.0 / EPS_MS) == pytest.approx(1e4)
    # past the deadline the time left is negative; the guard keeps the urgency large and positive
    assert urgency(10.0, 50.0, 60.0) == pytest.approx(1e4)


def test_fairness_counts_waiting_in_units_of_the_next_step() -> None:
    # waited 30 - 10 = 20 ms, next segment 5 ms -> 4 segments' worth of waiting
    assert fairness(30.0, 10.0, 5.0) == pytest.approx(4.0)
    # the same wait for a job whose next step is 40 ms -> 0.5: a short step weighs a wait more
    assert fairness(30.0, 10.0, 40.0) == pytest.approx(0.5)
    # a zero-length step is guarded: 20 / 1e-3 = 2e4
    assert fairness(30.0, 10.0, 0.0) == pytest.approx(2e4)


def test_map_score_adds_preference_and_energy_to_the_job_score() -> None:
    # job score 20 (its rank); earliest end 10 ms from now, 20 ms on this accelerator -> P = 0.5;
    # cheapest energy 2 mJ, 8 mJ here -> E = 0.25. beta 2, gamma 4: 20 + 2 x 0.5 + 4 x 0.25 = 22
    assert map_score(20.0, 2.0, 10.0, 20.0, 4.0, 2.0, 8.0) == pytest.approx(22.0)
    # the accelerator where it ends first and spends least scores the full beta + gamma
    assert map_score(20.0, 2.0, 10.0, 10.0, 4.0, 2.0, 2.0) == pytest.approx(26.0)
    # zero weights leave only the job score
    assert map_score(0.7, 0.0, 10.0, 30.0, 0.0, 1.0, 5.0) == pytest.approx(0.7)
    th = Theta(alpha=0.1, beta=2.0, gamma=0.5, delta=0.0)
    assert th.as_tuple() == (0.1, 2.0, 0.5, 0.0)


def test_hopeless_with_delta_tolerance() -> None:
    # delta 0: any predicted lateness is hopeless; finishing exactly at the deadline is not
    assert hopeless(105.0, 100.0, 50.0, 0.0)
    assert not hopeless(100.0, 100.0, 50.0, 0.0)
    # delta 0.2 of a 50 ms relative deadline tolerates 10 ms: 109 is kept, 111 is dropped
    assert not hopeless(109.0, 100.0, 50.0, 0.2)
    assert hopeless(111.0, 100.0, 50.0, 0.2)


def test_negative_delta_disables_drops() -> None:
    # a job a second late is still not hopeless when delta < 0
    assert not hopeless(1100.0, 100.0, 50.0, -0.1)
    assert not hopeless(1e9, 100.0, 50.0, -1.0)
