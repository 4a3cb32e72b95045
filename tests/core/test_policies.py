"""Each baseline policy on a small hand-made case whose right answer is worked out in the comments.

Platforms have two accelerators (acc0, acc1) unless said otherwise; latencies are lat[a][s] in ms,
energies equal latencies, no hand-off cost. Jobs are released into a real Dispatcher whose fallback
is FIFO, so a policy's decision that the dispatcher rejected would show up as an invalid decision.
"""
from __future__ import annotations

import random

import pytest

from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies import BASELINES, make_policy, policy_names
from edge_sdrm3.core.types import Accelerator, Costs, Job, Model, Platform, Variant


class Case:
    """A workload: ``lats[name] = lat[a][s]`` of the single variant of each model (energies: ``ens``, default
    the latencies; cascades: ``upstream[name]``)."""

    def __init__(self, lats: dict[str, list[list[float]]], fps: dict[str, float] | None = None,
                 ens: dict[str, list[list[float]]] | None = None, upstream: dict[str, str] | None = None) -> None:
        n_acc = len(next(iter(lats.values())))
        self.platform = Platform("test", tuple(Accelerator(f"acc{a}", "emulated") for a in range(n_acc)))
        fps = fps or {}
        upstream = upstream or {}
        self.models = tuple(
            Model(name, fps.get(name, 10.0), (Variant("full"),), len(lat[0]), upstream=upstream.get(name))
            for name, lat in lats.items()
        )
        self.index = {name: m for m, name in enumerate(lats)}
        table = [[[list(row) for row in lat]] for lat in lats.values()]
        en = {**lats, **(ens or {})}
        self.costs = Costs(table, [[[list(row) for row in en[name]]] for name in lats])
        self.ids = 0

    def dispatcher(self, policy: str, **config) -> Dispatcher:
        return Dispatcher(self.platform, self.models, self.costs, make_policy(policy, **config),
                          fallback=make_policy("fcfs"))

    def job(self, name: str, release: float, deadline: float = 1000.0) -> Job:
        m = self.index[name]
        j = Job(self.ids, self.models[m], m, 0, release, deadline, self.costs)
        self.ids += 1
        return j


def started(disp: Dispatcher, now: float) -> list[tuple[str, int, int]]:
    """(model name, accelerator, segments) of each start at ``now``, in the order the policy gave them."""
    starts, _ = disp.schedule(now)
    assert disp.counters.invalid_decisions == 0
    assert disp.counters.fallbacks == 0
    return [(s.job.model.name, s.acc, s.n) for s in starts]


def test_every_baseline_is_registered() -> None:
    assert policy_names()[:len(BASELINES)] == list(BASELINES)
    assert {"edf_firm", "planaria"} <= set(BASELINES)
    assert {"sdrm3+supernet", "edf_firm+supernet"} <= set(policy_names())


def test_fcfs_release_order_each_to_its_fastest_free() -> None:
    c = Case({"a": [[10], [5]], "b": [[10], [2]]})
    d = c.dispatcher("fcfs")
    d.release(c.job("b", release=1))
    d.release(c.job("a", release=0))
    # a (released first) takes acc1 (5 < 10) though b gains more there (2 vs 10); b gets acc0
    assert started(d, 2) == [("a", 1, 1), ("b", 0, 1)]


def test_round_robin_rotates_and_ignores_cost() -> None:
    c = Case({"a": [[10], [1]]})  # acc1 is ten times faster: round robin does not care
    d = c.dispatcher("round_robin")
    d.release(c.job("a", 0))
    assert started(d, 0) == [("a", 0, 1)]  # pointer at acc0 -> acc0 (FIFO: acc1); pointer moves to acc1
    d.segments_done(0, 10)
    d.release(c.job("a", 10))
    assert started(d, 10) == [("a", 1, 1)]  # pointer at acc1 -> acc1; pointer wraps to acc0
    d.segments_done(1, 11)
    d.release(c.job("a", 11))
    assert started(d, 11) == [("a", 0, 1)]  # both free: acc0 again, not the faster acc1


def test_round_robin_skips_busy_accelerators() -> None:
    c = Case({"a": [[10], [5], [10]]})
    d = c.dispatcher("round_robin")
    for r in range(3):
        d.release(c.job("a", r * 0.1))
    # one each in rotation: acc0 until 11, acc1 until 6, acc2 until 11; pointer back at acc0
    assert started(d, 1) == [("a", 0, 1), ("a", 1, 1), ("a", 2, 1)]
    d.segments_done(1, 6)
    d.release(c.job("a", 6))
    assert started(d, 6) == [("a", 1, 1)]  # acc0 (pointer) busy -> skipped -> acc1; pointer -> acc2
    d.segments_done(0, 11)
    d.segments_done(2, 11)
    d.release(c.job("a", 11))
    assert started(d, 11) == [("a", 2, 1)]


def test_edf_later_job_with_earlier_deadline_goes_first() -> None:
    c = Case({"a": [[10], [5]], "b": [[10], [5]]})
    d = c.dispatcher("edf")
    d.release(c.job("a", release=0, deadline=100))
    d.release(c.job("b", release=1, deadline=50))
    # b's deadline 50 < a's 100 -> b first, to its fastest acc1 (5 < 10); a gets acc0. FIFO: a on acc1
    assert started(d, 1) == [("b", 1, 1), ("a", 0, 1)]


def _slack_case() -> tuple[Case, list[Job]]:
    # a: one segment, 10 on acc0, 5 on acc1 -> remaining_best 5, deadline 40 -> slack 40 - 0 - 5 = 35
    # b: two segments, acc0 [30, 20], acc1 [10, 20] -> remaining_best 10 + 20 = 30, deadline 45
    #    -> slack 45 - 0 - 30 = 15
    c = Case({"a": [[10], [5]], "b": [[30, 20], [10, 20]]})
    return c, [c.job("a", 0, deadline=40), c.job("b", 0, deadline=45)]


def test_lst_least_slack_first_differs_from_edf() -> None:
    c, jobs = _slack_case()
    d = c.dispatcher("lst")
    for j in jobs:
        d.release(j)
    # slack b 15 < a 35 -> b first to acc1 (10 < 30), then a to acc0
    assert started(d, 0) == [("b", 1, 1), ("a", 0, 1)]
    c, jobs = _slack_case()
    d = c.dispatcher("edf")
    for j in jobs:
        d.release(j)
    # EDF on the same jobs: a's deadline 40 < b's 45 -> a takes acc1 (5 < 10), b gets acc0
    assert started(d, 0) == [("a", 1, 1), ("b", 0, 1)]


def test_sel_shortest_remaining_work_first() -> None:
    # long: two segments, acc0 [20, 20], acc1 [10, 10] -> remaining_best 20; short: acc0 8, acc1 4 -> 4
    c = Case({"long": [[20, 20], [10, 10]], "short": [[8], [4]]})
    d = c.dispatcher("sel")
    d.release(c.job("long", 0))
    d.release(c.job("short", 1))
    # short (4 < 20) first to its fastest acc1; long gets acc0. FIFO would give long acc1
    assert started(d, 1) == [("short", 1, 1), ("long", 0, 1)]


def test_heft_rank_order_and_earliest_finish() -> None:
    # a: [25, 10] -> rank (25 + 10) / 2 = 17.5; b: [60, 20] -> rank 40 -> b first although released later
    c = Case({"a": [[25], [10]], "b": [[60], [20]]})
    d = c.dispatcher("heft")
    d.release(c.job("a", 0))
    d.release(c.job("b", 0.5))
    # b: finish acc0 1 + 60 = 61, acc1 1 + 20 = 21 -> acc1 (booked until 21)
    # a: finish acc0 1 + 25 = 26, acc1 21 + 10 = 31 -> acc0
    assert started(d, 1) == [("b", 1, 1), ("a", 0, 1)]


def test_heft_waits_for_a_busy_fast_accelerator() -> None:
    c = Case({"a": [[100], [10]], "b": [[50], [10]]})
    d = c.dispatcher("heft")
    d.release(c.job("a", 0))
    assert started(d, 0) == [("a", 1, 1)]  # finish acc0 100, acc1 10 -> acc1, busy until 10
    d.release(c.job("b", 2))
    # b: acc0 (free) finishes 2 + 50 = 52, acc1 (busy) finishes max(10, 2) + 10 = 20 -> waits for acc1
    assert started(d, 2) == []  # FIFO would start b on acc0 now
    d.segments_done(1, 10)
    assert started(d, 10) == [("b", 1, 1)]


def test_heft_two_jobs_do_not_plan_on_the_same_slot() -> None:
    c = Case({"a": [[31], [10]], "b": [[60], [20]]})
    d = c.dispatcher("heft")
    d.release(c.job("a", 0))
    d.release(c.job("b", 0))
    # b (rank 40) books acc1 until 20; a (rank 20.5): acc0 31 vs acc1 20 + 10 = 30 -> acc1: a waits
    assert started(d, 0) == [("b", 1, 1)]


def test_prema_threshold_is_the_largest_level_the_largest_token_reaches() -> None:
    # one accelerator; token = (now - release) / isolated latency. Candidates: tokens >= the threshold,
    # the largest of {1, 3, 9} that the largest token reaches; the shortest candidate runs.
    iso = {"long": [[20]], "mid": [[10]], "short": [[2]]}
    # at 25: long (release 0) 25/20 = 1.25, mid (release 20) 0.5, short (release 24) 0.5 -> threshold 1
    # -> only long is a candidate -> long runs although it is the longest
    c = Case(iso)
    d = c.dispatcher("prema")
    for name, rel in (("long", 0), ("mid", 20), ("short", 24)):
        d.release(c.job(name, rel))
    assert started(d, 25) == [("long", 0, 1)]
    # at 60: long 60/20 = 3.0, mid (release 35) 2.5, short (release 58) 1.0 -> threshold 3 -> long runs
    # (with the threshold fixed at 1 all three would be candidates and short would run)
    c = Case(iso)
    d = c.dispatcher("prema")
    for name, rel in (("long", 0), ("mid", 35), ("short", 58)):
        d.release(c.job(name, rel))
    assert started(d, 60) == [("long", 0, 1)]
    # at 190: long 190/20 = 9.5, mid (release 100) 9.0, short (release 188) 1.0 -> threshold 9 ->
    # candidates long and mid -> the shorter, mid, runs
    c = Case(iso)
    d = c.dispatcher("prema")
    for name, rel in (("long", 0), ("mid", 100), ("short", 188)):
        d.release(c.job(name, rel))
    assert started(d, 190) == [("mid", 0, 1)]
    # at 1: every token below 1 -> every job is a candidate -> the shortest, short, runs
    c = Case(iso)
    d = c.dispatcher("prema")
    for name, rel in (("long", 0), ("mid", 0), ("short", 0)):
        d.release(c.job(name, rel))
    assert started(d, 1) == [("short", 0, 1)]


def test_prema_fills_every_free_accelerator() -> None:
    # tokens at 25: long 1.25 (candidate), short 0.6 -> long first to its fastest acc1 (20 < 40),
    # then short, the only job left, to acc0
    c = Case({"long": [[40], [20]], "short": [[5], [5]]})
    d = c.dispatcher("prema")
    d.release(c.job("long", 0))
    d.release(c.job("short", 22))
    assert started(d, 25) == [("long", 1, 1), ("short", 0, 1)]


def test_herald_balances_the_load_by_affinity() -> None:
    # a, b, c at 30 fps: 12 ms on acc0, 10 on acc1; d at 1 fps: 100 on acc0, 10 on acc1. Pairs by fps x best
    # latency: a, b, c (300 each; model order), d (10). Each to the least resulting load (fps x latency):
    #   a: acc0 0 + 360, acc1 0 + 300 -> acc1 (300)      b: acc0 360, acc1 600 -> acc0 (360)
    #   c: acc0 720, acc1 600 -> acc1 (600)               d: acc0 360 + 100 = 460, acc1 610 -> acc0
    # (mapping each to its fastest accelerator would put all four on acc1, leaving acc0 idle)
    c = Case({"a": [[12], [10]], "b": [[12], [10]], "c": [[12], [10]], "d": [[100], [10]]},
             fps={"a": 30, "b": 30, "c": 30, "d": 1})
    d = c.dispatcher("herald")
    for name in "abcd":
        d.release(c.job(name, 0))
    # release order: a -> acc1, b -> acc0; c waits for acc1, d for acc0
    assert started(d, 0) == [("a", 1, 1), ("b", 0, 1)]
    d.segments_done(1, 10)
    assert started(d, 10) == [("c", 1, 1)]
    d.segments_done(0, 12)
    assert started(d, 12) == [("d", 0, 1)]


def test_herald_maps_each_segment_and_rebuilds_on_new_costs() -> None:
    c = Case({"a": [[5, 30], [10, 10]]})  # segment 0 fastest on acc0, segment 1 on acc1
    d = c.dispatcher("herald")
    j = c.job("a", 0)
    d.release(j)
    assert started(d, 0) == [("a", 0, 1)]
    d.segments_done(0, 5)
    assert started(d, 5) == [("a", 1, 1)]  # moves to acc1 for segment 1
    d.segments_done(1, 15)
    c2 = Costs([[[[50, 30], [10, 10]]]], [[[[50, 30], [10, 10]]]])  # new tables: segment 0 now on acc1
    d.costs = d.view.costs = c2
    d.release(Job(9, c.models[0], 0, 1, 20, 1000, c2))
    assert started(d, 20) == [("a", 1, 1)]


def test_xrbench_whole_models_in_alphabetical_passes() -> None:
    # three accelerators; whole-model latency: alpha 10 / 6 / 8, zeta 8 / 4 / 6
    c = Case({"zeta": [[4, 4], [2, 2], [3, 3]], "alpha": [[5, 5], [3, 3], [4, 4]]})
    d = c.dispatcher("xrbench")
    d.release(c.job("zeta", 0))
    d.release(c.job("alpha", 1))
    d.release(c.job("alpha", 2))
    # pass 1: alpha (first alphabetically) -> acc1 (6); zeta -> best of acc0 8 / acc2 6 -> acc2
    # pass 2: the second alpha -> acc0. Each runs its whole model (2 segments)
    # (FIFO: zeta first to acc1, one segment only)
    assert started(d, 2) == [("alpha", 1, 2), ("zeta", 2, 2), ("alpha", 0, 2)]


def test_fcfs_and_xrbench_differ_on_the_same_case() -> None:
    c = Case({"zeta": [[4, 4], [2, 2]], "alpha": [[5, 5], [3, 3]]})
    d = c.dispatcher("fcfs")
    d.release(c.job("zeta", 0))
    d.release(c.job("alpha", 1))
    assert started(d, 2) == [("zeta", 1, 1), ("alpha", 0, 1)]


# --- every policy: valid decisions only, deterministic, nothing left behind ------------------------

def _drive(policy: str, seed: int) -> list[tuple]:
    """Run a small random workload to the end with the dispatcher alone (a hand-rolled event loop)."""
    rng = random.Random(seed)
    lats = {n: [[rng.choice([2.0, 5.0, 9.0, 14.0]) for _ in range(3)] for _ in range(3)]
            for n in ("eye", "hand", "kws")}
    c = Case(lats, fps={"eye": 60, "hand": 30, "kws": 10})
    d = c.dispatcher(policy)
    releases = sorted((rng.uniform(0, 100), rng.choice(list(lats))) for _ in range(30))
    out: list[tuple] = []
    running: dict[int, float] = {}  # accelerator -> end
    now, i = 0.0, 0
    while i < len(releases) or running or d.ready:
        nxt = min([*running.values(), releases[i][0] if i < len(releases) else float("inf"), d.wake_at])
        assert nxt < float("inf"), f"{policy}: stuck with {d.ready}"
        now = max(now, nxt)
        for a, end in sorted(running.items()):
            if end <= now:
                del running[a]
                comp = d.segments_done(a, end)
                if comp:
                    out.append((comp.model, comp.status, comp.end_ms))
        while i < len(releases) and releases[i][0] <= now:
            r, name = releases[i]
            d.release(c.job(name, r, deadline=r + 40))
            i += 1
        starts, ended = d.schedule(now)
        out += [(e.model, e.status, e.end_ms) for e in ended]
        for s in starts:
            running[s.acc] = s.end_ms
    assert d.counters.invalid_decisions == 0
    assert len(out) == 30
    return out


@pytest.mark.parametrize("policy", BASELINES)
def test_policy_is_valid_and_deterministic(policy: str) -> None:
    for seed in range(3):
        assert _drive(policy, seed) == _drive(policy, seed)


def test_a_cost_change_reaches_the_jobs_already_queued() -> None:
    # Costs.set_segment (an estimator's update) rebuilds the derived tables in place: a queued job's
    # best remaining time follows the new latency
    from edge_sdrm3.core.types import Costs, Job, Model, Variant

    costs = Costs([[[[1.0, 2.0], [3.0, 4.0]]]], [[[[1.0, 1.0], [1.0, 1.0]]]])
    job = Job(1, Model("m", 10.0, (Variant("v"),), 2), 0, 0, 0.0, 100.0, costs)
    assert job.rem_best[0] == 3.0
    costs.set_segment(0, 0, 0, 1, 5.0)  # segment 1 on acc0: 2 -> 5 ms; acc1 (4 ms) is now the best
    assert job.rem_best[0] == 1.0 + 4.0
    assert job.rem_on[0][0] == 1.0 + 5.0


# ---- edf_firm, planaria, POLICY+supernet ---------------------------------------------------------------------


def test_edf_firm_least_energy_among_the_accelerators_that_meet_the_deadline() -> None:
    # one block: 10 ms / 10 mJ on acc0, 20 ms / 4 mJ on acc1. The fastest end is 10; a slower one may spend at
    # most 0.3 of the slack left after it. Deadline 100: limit 10 + 0.3 x 90 = 37 >= 20 -> acc1 (4 mJ).
    # Deadline 30: limit 10 + 0.3 x 20 = 16 < 20 -> only acc0 meets it -> acc0.
    for deadline, acc in ((100.0, 1), (30.0, 0)):
        c = Case({"m": [[10], [20]]}, ens={"m": [[10], [4]]})
        d = c.dispatcher("edf_firm")
        d.release(c.job("m", 0, deadline))
        assert started(d, 0) == [("m", acc, 1)]


def test_edf_firm_orders_by_deadline_less_the_childrens_time_and_drops_the_hopeless() -> None:
    # one accelerator. up (10 ms) has a child kid (30 ms): its key is its deadline 60 less 30 = 30, before
    # o's 50 -> up runs first although o's deadline is earlier. late needs 10 ms but its deadline is 5 ms
    # away: its best-case end (10) is past it -> dropped at once (hopeless), not left to the deadline.
    c = Case({"up": [[10]], "kid": [[30]], "o": [[10]], "late": [[10]]}, upstream={"kid": "up"})
    d = c.dispatcher("edf_firm")
    d.release(c.job("o", 0, 50))
    d.release(c.job("up", 0, 60))
    d.release(c.job("late", 0, 5))
    starts, ended = d.schedule(0)
    assert [(s.job.model.name, s.acc) for s in starts] == [("up", 0)]
    assert [(e.model, e.status, e.reason) for e in ended] == [("late", "dropped", "hopeless")]
    assert d.counters.invalid_decisions == d.counters.fallbacks == 0


def test_edf_firm_waits_for_a_busy_accelerator_and_later_jobs_see_it_booked() -> None:
    # acc0 runs "busy" until 5. x (deadline 30): 10 ms on acc0, 40 on acc1 -> ends 15 on acc0 (waiting), 40 on
    # acc1 (late) -> x books acc0 until 15 and waits. y (deadline 35): 10 ms / 10 mJ on acc0, 12 ms / 12 mJ on
    # acc1. With acc0 booked by x, y would end at 25 there, past its limit 12 + 0.3 x 23 = 18.9 -> y runs on
    # acc1 now (without the booking acc0 would end it at 15 for less energy, and y would wait too).
    c = Case({"busy": [[5], [5]], "x": [[10], [40]], "y": [[10], [12]]})
    d = c.dispatcher("edf_firm")
    d.release(c.job("busy", 0, 1000))
    assert started(d, 0) == [("busy", 0, 1)]
    d.release(c.job("x", 0, 30))
    d.release(c.job("y", 0, 35))
    assert started(d, 1) == [("y", 1, 1)]
    d.segments_done(0, 5)
    assert started(d, 5) == [("x", 0, 1)]


def test_planaria_ranks_by_priority_over_slack_times_resources() -> None:
    # four identical accelerators; score = 1 / (slack x remaining / 4) at now 0:
    #   p: 10 ms, deadline 40 -> slack 30, score 1 / (30 x 2.5) = 0.0133
    #   q: 2 ms, deadline 100 -> slack 98, score 1 / (98 x 0.5) = 0.0204
    #   r: 1 ms, deadline 4 -> slack 3, score 1 / (3 x 0.25) = 1.33
    #   h: 20 ms, deadline 10 -> no slack left: after every job that can still make it
    # -> r, q, p, h to acc0..acc3 (EDF and least slack would put p before q)
    c = Case({n: [[t]] * 4 for n, t in (("p", 10), ("q", 2), ("r", 1), ("h", 20))})
    d = c.dispatcher("planaria")
    for n, dl in (("h", 10), ("p", 40), ("q", 100), ("r", 4)):
        d.release(c.job(n, 0, dl))
    assert started(d, 0) == [("r", 0, 1), ("q", 1, 1), ("p", 2, 1), ("h", 3, 1)]


@pytest.mark.parametrize("base", ["fcfs", "edf_firm", "sdrm3"])
def test_any_policy_takes_the_supernet_selector(base: str) -> None:
    from edge_sdrm3.core.policies.with_supernet import WithSupernet

    p = make_policy(f"{base}+supernet", floor=0.8)
    assert isinstance(p, WithSupernet) and p.name == f"{base}+supernet" and p.uses_variants
    assert p.inner.name == base and p.selector.floor == 0.8
    with pytest.raises(Exception, match="unknown policy 'nope\\+supernet'"):
        make_policy("nope+supernet")
