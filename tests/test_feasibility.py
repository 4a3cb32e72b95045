"""Which models could meet their deadline even alone on a platform (edge_sdrm3.feasibility), from the costs."""
import itertools

import pytest

from edge_sdrm3.catalog import Scenario, ScenarioModel, load_platform, load_scenario
from edge_sdrm3.feasibility import best_case_ms, infeasible, model_feasibility

INF = float("inf")


def brute_force(lat: list[list[float]], handoff: float) -> float:
    n_acc, n_seg = len(lat), len(lat[0])
    best = INF
    for place in itertools.product(range(n_acc), repeat=n_seg):
        t = sum(lat[a][s] for s, a in enumerate(place))
        t += handoff * sum(1 for x, y in zip(place, place[1:]) if x != y)
        best = min(best, t)
    return best


def test_best_case_matches_every_placement_tried():
    tables = [
        [[4.0, 1.0, 4.0, 1.0], [1.0, 4.0, 1.0, 4.0]],
        [[2.0, INF, 2.0], [3.0, 3.0, 3.0], [INF, 1.0, 9.0]],
        [[5.0, 5.0], [1.0, 1.0]],
    ]
    for lat in tables:
        for handoff in (0.0, 0.5, 2.5, 10.0):
            assert best_case_ms(lat, handoff) == brute_force(lat, handoff)
    assert best_case_ms([[4.0, 1.0, 4.0, 1.0], [1.0, 4.0, 1.0, 4.0]], 0.0) == 4.0  # switch at every block
    assert best_case_ms([[4.0, 1.0, 4.0, 1.0], [1.0, 4.0, 1.0, 4.0]], 10.0) == 10.0  # stay on one


def test_the_xrbench_cell_where_nothing_fits_is_infeasible_and_the_others_are_not():
    quad = load_platform("quad_4k_ws_os_ws_os")
    feas = model_feasibility(load_scenario("ar_gaming"), quad)
    assert [f.name for f in feas] == ["HT_hand_graph_cnn_half", "DE_midas_v21_small", "PD_Plane_RCNN_Quarter"]
    assert all(f.best_case_ms > f.deadline_ms for f in feas) and infeasible(feas)
    assert not infeasible(feas, any_variant=True)  # the narrowest variants would fit
    for sc in ("social_a", "social_b", "outdoor_a", "outdoor_b", "ar_assistant", "vr_gaming"):
        assert not infeasible(model_feasibility(load_scenario(sc), quad)), sc
    assert not infeasible(model_feasibility(load_scenario("ar_gaming"), load_platform("dual_8k_ws_os")))


def test_a_cascade_counts_its_upstream_and_a_short_deadline_can_make_a_model_infeasible():
    spec = load_platform("single_4k_ws")
    alone = model_feasibility(Scenario("a", (ScenarioModel("GE_FBNet_C", 10.0),)), spec)[0]
    up = model_feasibility(Scenario("u", (ScenarioModel("ES_RITNet", 10.0),)), spec)[0]
    sc = Scenario("c", (ScenarioModel("ES_RITNet", 10.0),
                        ScenarioModel("GE_FBNet_C", 10.0, "ES_RITNet", 0.5, deadline_ms=alone.best_case_ms + 0.01)))
    es, ge = model_feasibility(sc, spec)
    assert ge.best_case_ms == pytest.approx(up.best_case_ms + alone.best_case_ms)
    assert not es.infeasible and ge.infeasible  # it would fit alone, not after its upstream
    assert not infeasible([es, ge])
