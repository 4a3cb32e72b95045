"""SDRM3's look-ahead and estimate inputs, as the policy reckons them on its hot path, against plain re-statements.

The release hold asks only for the arrivals before its block lets go (``before``) and passes the workload's
cascade chains it keeps (``cascade_chains``); the energy guard seeds the estimate with the cost table's own
best-case suffixes (``suffix_memo``). None of these may change what the policy decides: the arrivals must be
those of the unbounded look-ahead cut at ``before``, in the same order, and the seeded suffixes exactly those the
estimate would reckon, also after a cost changes.
"""
from __future__ import annotations

import copy
import random

import pytest

from edge_sdrm3.catalog import build_costs, build_models, load_cost_table, load_platform, load_scenario
from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.policies import sdrm3_energy
from edge_sdrm3.core.policies.sdrm3_energy import suffix_memo
from edge_sdrm3.core.policies.sdrm3_estimate import _best_suffixes
from edge_sdrm3.core.policies.sdrm3_hold import cascade_chains, running_next_blocks, upcoming_cascades
from edge_sdrm3.core.policies.sdrm3_shedding import root_periods, upcoming_releases
from edge_sdrm3.core.types import INF, Job
from edge_sdrm3.random_scenarios import random_scenario


def workload(scenario: str, platform: str, widths=(1.0,)):
    """The models, costs and a dispatcher of a shipped scenario, or of a random mix (``random:SEED``)."""
    sc = random_scenario(int(scenario[7:]), load_cost_table("xrbench")) if scenario.startswith("random:") \
        else load_scenario(scenario)
    spec = load_platform(platform)
    models = build_models(sc, widths, spec)
    costs = build_costs(models, spec, sc.cost_table)
    return models, costs, Dispatcher(spec.platform, models, costs, policy=None)


def plain_cascades(view, now: float, horizon: float, rel: list[float], value: list[float]) -> list:
    """The cascaded children of the next releases, recomputing every chain from the models at every call."""
    ms, rem_best, lat = view.models, view.costs.rem_best, view.costs.lat
    idx = {m.name: i for i, m in enumerate(ms)}
    chain: dict[int, tuple[float, float]] = {}
    out = []
    for i, m in enumerate(ms):
        u = idx.get(m.upstream) if m.upstream is not None else None
        if u is None or m.trigger_probability <= 0:
            continue
        if ms[u].upstream is not None and u not in chain:
            continue
        off, p = chain[u] if ms[u].upstream is not None else (0.0, 1.0)
        off += rem_best[u][view.variants_of(u)][0]
        p *= m.trigger_probability
        chain[i] = (off, p)
        v = view.variants_of(i)
        best = rem_best[i][v][0]
        if off + best > rel[i] or best <= 0:
            continue
        r = (int(now / m.period_ms + 1e-9) + 1) * m.period_ms
        while r + rel[i] <= horizon:
            out.append((r + off, r + rel[i], lat[i][v], best / (p * value[i])))
            r += m.period_ms
    return out


@pytest.mark.parametrize("scenario,platform", [("ar_assistant", "quad_8k_ws_os_ws_os"),
                                               ("social_a", "dual_4k_biglittle_ws_os"),
                                               ("random:29", "dual_4k_ws_os")])  # cascades two deep
def test_arrivals_before_a_time_are_the_unbounded_ones_cut_there(scenario: str, platform: str) -> None:
    models, costs, disp = workload(scenario, platform)
    view = disp.view
    rel = [m.relative_deadline_ms for m in models]
    value = [1.0 + 0.5 * i for i in range(len(models))]
    chains, roots = cascade_chains(models), root_periods(models)
    rng = random.Random(3)
    found = 0
    for _ in range(300):
        now = rng.choice([rng.uniform(0, 5000), float(rng.randint(0, 50)) * 100.0 / 3.0])
        horizon = now + rng.uniform(0, 3000)
        before = rng.choice([INF, now + rng.uniform(0, 1500)])
        every = plain_cascades(view, now, horizon, rel, value)
        cut = [u for u in every if u[0] < before]
        assert upcoming_cascades(view, now, horizon, rel, value) == every
        assert upcoming_cascades(view, now, horizon, rel, value, before=before) == cut
        assert upcoming_cascades(view, now, horizon, rel, value, before=before, chains=chains) == cut
        assert upcoming_releases(view, now, horizon, rel, value, before=before, roots=roots) == \
            [u for u in upcoming_releases(view, now, horizon, rel, value) if u[0] < before]
        found += len(cut)
    if any(m.upstream for m in models):
        assert found > 20
    else:
        assert chains == [] and found == 0


def test_running_blocks_before_a_time_are_the_others_cut_there() -> None:
    models, costs, disp = workload("ar_assistant", "quad_8k_ws_os_ws_os")
    value = [1.0] * len(models)
    for a in range(disp.n_acc):
        job = Job(a + 1, models[a], a, 0, 0.0, 100.0, costs)
        job.seg = min(1, job.n_segs - 1)
        disp.running[a] = job
        disp.free_at[a] = 10.0 * (a + 1)
    view = disp.view
    view.running, view.free_at = tuple(disp.running), tuple(disp.free_at)
    every = running_next_blocks(view, value)
    assert len(every) == disp.n_acc
    for before in (0.0, 15.0, 25.0, 1e9):
        assert running_next_blocks(view, value, before=before) == [u for u in every if u[0] < before]


@pytest.mark.parametrize("scenario,platform", [("ar_assistant", "quad_8k_ws_os_ws_os"),
                                               ("mediapipe_xr", "headset_placement"),
                                               ("vr_gaming", "dual_4k_biglittle_ws_os")])
def test_seeded_suffixes_are_the_estimates_own_also_after_a_cost_changes(scenario: str, platform: str,
                                                                         monkeypatch) -> None:
    monkeypatch.setattr(sdrm3_energy, "COMPILED", False)  # the pure estimate's memo (the compiled one takes none)
    models, costs, _ = workload(scenario, platform, widths=None)  # every variant, as a supernet policy sees them
    pol = make_policy("sdrm3")
    rows = [lv for lm in costs.lat for lv in lm]
    memo = suffix_memo(pol, costs)
    assert len(memo) == len(rows)
    for lv in rows:
        assert memo[id(lv)] == _best_suffixes(lv)
    memo[0] = "an estimate's own entry"  # each call gets a fresh copy: entries added by one never reach another
    assert 0 not in suffix_memo(pol, costs)
    lv = costs.lat[0][0]
    costs.set_segment(0, 0, 0, 0, lv[0][0] * 0.25 + 0.01)  # a learned cost: the table is refreshed in place
    assert suffix_memo(pol, costs)[id(lv)] == _best_suffixes(lv)


def test_seeded_suffixes_of_a_copied_policy_are_reckoned_for_the_copy(monkeypatch) -> None:
    """A policy copied with its table (deep-copied together) does not keep ids of the original."""
    monkeypatch.setattr(sdrm3_energy, "COMPILED", False)
    _, costs, _ = workload("ar_assistant", "dual_4k_ws_os")
    pol = make_policy("sdrm3")
    suffix_memo(pol, costs)
    pol2, costs2 = copy.deepcopy((pol, costs))
    memo = suffix_memo(pol2, costs2)
    assert sorted(memo) == sorted(id(lv) for lm in costs2.lat for lv in lm)
    for lm in costs2.lat:
        for lv in lm:
            assert memo[id(lv)] == _best_suffixes(lv)
