"""SDRM3 (DESIGN.md §4) on small hand-made cases whose right answer is worked out in the comments.

Latencies are lat[a][s] in ms; energies are given separately where they matter (else equal to the
latencies); no hand-off cost. Jobs go into a real Dispatcher whose fallback is FCFS. The policy runs
with ``tune=False`` (fixed θ, default alpha 0.05, beta 1, gamma 4, delta 0) unless said otherwise.
In the default (EDF-rank) ordering the job score is RANK_STEP (10) per place in cascade-adjusted
deadline order plus alpha * F; the pair score adds beta * P + gamma * E.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from edge_sdrm3.catalog import build_models, load_platform, load_scenario
from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.policies.sdrm3 import SDRM3
from edge_sdrm3.core.policies.sdrm3_shedding import overload_victims, overload_victims_list
from edge_sdrm3.core.policies.with_supernet import WithSupernet
from edge_sdrm3.core.types import DONE, DROPPED, INF, Accelerator, Completion, Costs, Job, Model, Platform, Variant
from edge_sdrm3.sim import trace as T
from edge_sdrm3.sim.replay import replay


class Case:
    """One variant per model: ``lats[name] = lat[a][s]``, ``ens[name] = en[a][s]`` (default: = lat)."""

    def __init__(self, lats: dict[str, list[list[float]]], ens: dict[str, list[list[float]]] | None = None,
                 fps: dict[str, float] | None = None, upstream: dict[str, str] | None = None) -> None:
        n_acc = len(next(iter(lats.values())))
        self.platform = Platform("test", tuple(Accelerator(f"acc{a}", "emulated") for a in range(n_acc)))
        fps, ens, upstream = fps or {}, ens or {}, upstream or {}
        self.models = tuple(
            Model(name, fps.get(name, 10.0), (Variant("full"),), len(lat[0]), upstream=upstream.get(name))
            for name, lat in lats.items())
        self.index = {name: m for m, name in enumerate(lats)}
        self.costs = Costs([[[list(r) for r in lat]] for lat in lats.values()],
                           [[[list(r) for r in ens.get(n, lat)]] for n, lat in lats.items()])
        self.ids = 0

    def dispatcher(self, policy: str = "sdrm3", **config) -> Dispatcher:
        if policy.startswith("sdrm3"):
            config.setdefault("tune", False)
        return Dispatcher(self.platform, self.models, self.costs, make_policy(policy, **config),
                          fallback=make_policy("fcfs"))

    def job(self, name: str, release: float, deadline: float = 1000.0) -> Job:
        m = self.index[name]
        j = Job(self.ids, self.models[m], m, self.ids, release, deadline, self.costs)
        self.ids += 1
        return j


def started(disp: Dispatcher, now: float) -> list[tuple[str, int, int]]:
    starts, _ = disp.schedule(now)
    assert disp.counters.invalid_decisions == 0
    assert disp.counters.fallbacks == 0
    return [(s.job.model.name, s.acc, s.n) for s in starts]


def simulate(case: Case, disp: Dispatcher, releases: list[tuple[float, str, float]]) -> list[Completion]:
    """Event loop over the dispatcher alone: ``releases`` are (time, model, absolute deadline).
    Returns one completion per job."""
    releases = sorted(releases)
    out: list[Completion] = []
    running: dict[int, float] = {}
    now, i = 0.0, 0
    while i < len(releases) or running or disp.ready:
        nxt = min([*running.values(), releases[i][0] if i < len(releases) else INF, disp.wake_at])
        assert nxt < INF, f"stuck with {disp.ready}"
        now = max(now, nxt)
        for a, end in sorted(running.items()):
            if end <= now:
                del running[a]
                comp = disp.segments_done(a, end)
                if comp:
                    out.append(comp)
        while i < len(releases) and releases[i][0] <= now:
            r, name, dl = releases[i]
            disp.release(case.job(name, r, dl))
            i += 1
        starts, ended = disp.schedule(now)
        out += ended
        for s in starts:
            running[s.acc] = s.end_ms
    assert disp.counters.invalid_decisions == 0
    assert len(out) == len(releases)
    return out


# --- urgency (deadline order) over FIFO -------------------------------------------------------------

def test_earlier_deadline_beats_release_order() -> None:
    c = Case({"a": [[10]], "b": [[10]]})  # one accelerator
    d = c.dispatcher()
    d.release(c.job("a", release=0, deadline=100))
    d.release(c.job("b", release=1, deadline=50))
    # b's deadline 50 < a's 100: b is first in deadline order and takes the single accelerator
    # (no shedding: EDF b ends 1 + 10 = 11 <= 50, a 21 <= 100; nothing hopeless)
    assert started(d, 1) == [("b", 0, 1)]
    assert [j.model.name for j in d.ready] == ["a"]
    # the same jobs under FCFS: a, released first, gets it
    c = Case({"a": [[10]], "b": [[10]]})
    d = c.dispatcher("fcfs")
    d.release(c.job("a", release=0, deadline=100))
    d.release(c.job("b", release=1, deadline=50))
    assert started(d, 1) == [("a", 0, 1)]


def test_urgency_order_variant_also_prefers_the_urgent_job() -> None:
    c = Case({"a": [[10]], "b": [[10]]})
    d = c.dispatcher(order="urgency")
    d.release(c.job("a", release=0, deadline=100))
    d.release(c.job("b", release=1, deadline=50))
    # U_a = 10 / (100 - 1) = 0.10, U_b = 10 / (50 - 1) = 0.20 -> b
    assert started(d, 1) == [("b", 0, 1)]


# --- fairness ---------------------------------------------------------------------------------------

def _starvation_misses(alpha: float) -> tuple[int, int]:
    """One accelerator. slow: 3 fps, one 50 ms segment, deadline = period 333.3 ms. fast: 60 fps, one
    17 ms segment, deadline 50 ms after release. Demand 17/16.67 + 50/333 > 1: fast jobs keep one
    another ready (fast k ends at 17 (k + 1) >= its successor's release 16.67 (k + 1)), and each has an
    earlier deadline than slow's until fast's releases pass 333.3 - 50 = 283.3 ms. At 272 ms (fast 15
    ends) the overload check takes fast 16 (released 266.7, deadline 316.7): 272 + 17 = 289 <= 316.7,
    then slow: 289 + 50 = 339 > 333.3 -> the longest (slow) is shed; the same every period.
    With alpha, slow's fairness F = waited / 50 grows while a fast job's F = waited / 17 stays small
    (a few ms of backlog); slow moves ahead of the fast job once alpha * (F_slow - F_fast) > RANK_STEP
    = 10. alpha 10: at 68 ms (fast 3 ends), F_slow = 68 / 50 = 1.36, fast 4 (released 66.7) F = 0.08
    -> 12.8 > 10 -> slow runs 68-118 (at 51 ms: 10 * (1.02 - 0.06) = 9.6 < 10, not yet). The fast
    jobs queued behind it pay instead. Returns (slow misses, fast misses) over 1 s."""
    c = Case({"slow": [[50.0]], "fast": [[17.0]]}, fps={"slow": 3, "fast": 60})
    rel = [(k * 1000 / 3, "slow", (k + 1) * 1000 / 3) for k in range(3)]
    rel += [(k * 1000 / 60, "fast", k * 1000 / 60 + 50) for k in range(60)]
    comps = simulate(c, c.dispatcher(alpha=alpha), rel)
    slow = [x for x in comps if x.model == "slow"]
    if alpha == 0.0:
        assert [(x.status, x.reason, x.end_ms) for x in slow][0] == (DROPPED, "overload", 272.0)
    else:
        assert (slow[0].start_ms, slow[0].end_ms) == (68.0, 118.0)
    return (sum(1 for x in slow if x.status != "done"),
            sum(1 for x in comps if x.model == "fast" and x.status != "done"))


def test_fairness_prevents_starvation_of_a_slow_model() -> None:
    # pure deadline order: slow is shed in each of its 3 periods, the 60 fast frames all make it
    assert _starvation_misses(0.0) == (3, 0)
    # fairness gets every slow frame through; 3 fast frames per slow frame are lost instead
    assert _starvation_misses(10.0) == (0, 9)


# --- preference and energy --------------------------------------------------------------------------

def test_preference_waits_for_a_busy_accelerator_that_suits_the_job() -> None:
    # acc0 slow (50 ms), acc1 fast (10 ms). busy runs on acc1 until 5.
    c = Case({"busy": [[INF], [5]], "j": [[50], [10]]})
    d = c.dispatcher()
    d.release(c.job("busy", 0))
    assert started(d, 0) == [("busy", 1, 1)]
    d.release(c.job("j", 0, deadline=100))
    # j: acc0 (free) finishes 50, acc1 (busy) 5 + 10 = 15. P: acc1 1, acc0 15/50 = 0.3;
    # E (energy = latency): acc1 10/10 = 1, acc0 10/50 = 0.2 -> acc1: j waits, acc0 stays idle
    assert started(d, 0) == []
    d.segments_done(1, 5)
    assert started(d, 5) == [("j", 1, 1)]
    # FCFS starts j on the free slow accelerator at once (ends 50 instead of 15)
    c = Case({"busy": [[INF], [5]], "j": [[50], [10]]})
    d = c.dispatcher("fcfs")
    d.release(c.job("busy", 0))
    started(d, 0)
    d.release(c.job("j", 0, deadline=100))
    assert started(d, 0) == [("j", 0, 1)]


def _suited_but_later(deadline: float) -> list[tuple[str, int, int]]:
    # acc0: free, 20 ms, 40 mJ; acc1: busy until 15, 10 ms, 4 mJ. j: acc0 ends 20, acc1 15 + 10 = 25.
    # Scores: acc0 P 1 + 0.5 * E (4/40 = 0.1) = 1.05; acc1 P (20/25 = 0.8) + 0.5 * E 1 = 1.3 -> acc1
    c = Case({"busy": [[INF], [15]], "j": [[20], [10]]}, ens={"j": [[40], [4]]})
    d = c.dispatcher()
    d.release(c.job("busy", 0))
    assert started(d, 0) == [("busy", 1, 1)]
    d.release(c.job("j", 0, deadline=deadline))
    return started(d, 0)


def test_waits_for_the_suiting_accelerator_only_when_the_deadline_allows() -> None:
    assert _suited_but_later(100.0) == []  # waits for acc1: ends 25 <= 100, a tenth of the energy
    # deadline 22: acc1 (25) would make it late while acc0 (20) would not -> runs on acc0 now
    assert _suited_but_later(22.0) == [("j", 0, 1)]


@pytest.mark.parametrize("ens, acc", [([[8.0], [4.0]], 1), ([[4.0], [8.0]], 0)])
def test_energy_picks_the_cheaper_of_equally_fast_accelerators(ens, acc) -> None:
    # both free, 10 ms each: P = 1 on both; E = 4/4 = 1 on the cheap one, 4/8 = 0.5 on the other
    c = Case({"j": [[10.0], [10.0]]}, ens={"j": ens})
    d = c.dispatcher()
    d.release(c.job("j", 0))
    assert started(d, 0) == [("j", acc, 1)]


def test_energy_zero_gamma_falls_back_to_lowest_index() -> None:
    # with gamma 0 the two accelerators tie: the first one (acc0) wins although it costs twice as much
    c = Case({"j": [[10.0], [10.0]]}, ens={"j": [[8.0], [4.0]]})
    d = c.dispatcher(gamma=0.0)
    d.release(c.job("j", 0))
    assert started(d, 0) == [("j", 0, 1)]


# --- drops ------------------------------------------------------------------------------------------

def _hopeless_run(policy: str) -> tuple[list[Completion], Dispatcher]:
    # one accelerator; a: 30 ms, 30 mJ, deadline 100; b: 10 ms, 10 mJ, released 25, deadline 38
    c = Case({"a": [[30]], "b": [[10]]})
    d = c.dispatcher(policy)
    comps = simulate(c, d, [(0, "a", 100), (25, "b", 38)])
    return comps, d


def test_hopeless_job_is_dropped_before_it_wastes_energy() -> None:
    # at 30 (a done) b's best finish is 30 + 10 = 40 > 38: sdrm3 drops it; FCFS runs it 30-40, late
    comps, d = _hopeless_run("sdrm3")
    b = next(x for x in comps if x.model == "b")
    assert (b.status, b.reason, b.end_ms, b.energy_mj) == (DROPPED, "hopeless", 30.0, 0.0)
    assert d.counters.drops_policy == 1
    fc, _ = _hopeless_run("fcfs")
    fb = next(x for x in fc if x.model == "b")
    assert (fb.status, fb.end_ms, fb.energy_mj) == ("late", 40.0, 10.0)
    # both miss b; sdrm3 spends 30 mJ, FCFS 30 + 10 = 40 mJ
    assert sum(x.energy_mj for x in comps) == pytest.approx(30.0)
    assert sum(x.energy_mj for x in fc) == pytest.approx(40.0)


def test_negative_delta_keeps_the_hopeless_job() -> None:
    c = Case({"a": [[30]], "b": [[10]]})
    comps = simulate(c, c.dispatcher(delta=-1.0), [(0, "a", 100), (25, "b", 38)])
    b = next(x for x in comps if x.model == "b")
    assert (b.status, b.end_ms) == ("late", 40.0)


def _view(now_free: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(free_at=(now_free,), running=(None,))


def test_overload_sheds_the_longest_job_not_the_late_one() -> None:
    c = Case({"a": [[10]], "b": [[30]], "c": [[5]]})
    a, b, cc = c.job("a", 0, 15), c.job("b", 0, 40), c.job("c", 0, 44)
    # EDF on one accelerator: a ends 10 <= 15, b 40 <= 40, c 45 > 44 -> c is late.
    # Shed the longest of a, b, c (30 ms: b); then a 10, c 15 <= 44
    assert overload_victims(_view(), 0.0, [a, b, cc], [1.0, 1.0, 1.0], [0]) == [b]
    # the accelerator busy until 2 pushes everything 2 ms later: a 12, b 42 > 40 -> b again, then fine
    assert overload_victims(_view(2.0), 0.0, [a, b, cc], [1.0, 1.0, 1.0], [0]) == [b]
    # c with 1 ms more room: nothing is late, nothing is shed
    c2 = c.job("c", 0, 45)
    assert overload_victims(_view(), 0.0, [a, b, c2], [1.0, 1.0, 1.0], [0]) == []


def test_overload_protects_a_job_with_a_cascaded_child() -> None:
    # x and y are equally long (30 ms); y's model has a child (2 frames at stake: value 2)
    c = Case({"x": [[30]], "y": [[30]], "z": [[10]]})
    x, y, z = c.job("x", 0, 30), c.job("y", 0, 60), c.job("z", 0, 65)
    # EDF: x 30 <= 30, y 60 <= 60, z 70 > 65 -> shed one. Per frame at stake: x 30, y 30, z 10.
    # Equal values: the tie goes to the later deadline -> y
    assert overload_victims(_view(), 0.0, [x, y, z], [1.0, 1.0, 1.0], [0]) == [y]
    # y's child makes it 30 / 2 = 15 per frame -> x (30) is shed instead; then y 30, z 40 on time
    assert overload_victims(_view(), 0.0, [x, y, z], [1.0, 2.0, 1.0], [0]) == [x]


def test_policy_values_cascades_when_shedding() -> None:
    # the same jobs through the policy: y's model has a child 'yc' (trigger probability 1) -> value 2
    c = Case({"x": [[30]], "y": [[30]], "z": [[10]], "yc": [[5]]}, upstream={"yc": "y"})
    d = c.dispatcher()
    d.release(c.job("x", 0, 30))
    d.release(c.job("y", 0, 60))
    d.release(c.job("z", 0, 65))
    starts, ended = d.schedule(0)
    assert [(e.model, e.reason) for e in ended] == [("x", "overload")]
    # y (cascade-adjusted deadline 60 - 5 = 55) before z (65)
    assert [(s.job.model.name, s.acc) for s in starts] == [("y", 0)]
    # without the child: y is shed, x runs
    c = Case({"x": [[30]], "y": [[30]], "z": [[10]]})
    d = c.dispatcher()
    d.release(c.job("x", 0, 30))
    d.release(c.job("y", 0, 60))
    d.release(c.job("z", 0, 65))
    starts, ended = d.schedule(0)
    assert [(e.model, e.reason) for e in ended] == [("y", "overload")]
    assert [s.job.model.name for s in starts] == ["x"]


def test_no_shedding_when_disabled() -> None:
    c = Case({"a": [[10]], "b": [[30]], "c": [[5]]})
    d = c.dispatcher(shed=False)
    d.release(c.job("a", 0, 15))
    d.release(c.job("b", 0, 40))
    d.release(c.job("c", 0, 44))
    starts, ended = d.schedule(0)
    assert ended == [] and [s.job.model.name for s in starts] == ["a"]


# --- cascades ---------------------------------------------------------------------------------------

def _cascade_first(child_trigger: bool) -> list[tuple[str, int, int]]:
    # u (10 ms) triggers uc (20 ms); v (10 ms) has no child. u's deadline 50, v's 45.
    c = Case({"u": [[10]], "uc": [[20]], "v": [[10]]}, upstream={"uc": "u"} if child_trigger else None)
    d = c.dispatcher()
    d.release(c.job("u", 0, 50))
    d.release(c.job("v", 0, 45))
    return started(d, 0)


def test_upstream_job_leaves_room_for_its_child() -> None:
    # u's child needs 20 ms after it: u's effective deadline 50 - 20 = 30 < v's 45 -> u first
    # (EDF order would run v; no shedding: v 10 <= 45, u 20 <= 50)
    assert _cascade_first(True) == [("u", 0, 1)]
    # the same models without the cascade: v (45 < 50) first
    assert _cascade_first(False) == [("v", 0, 1)]


# --- supernet ---------------------------------------------------------------------------------------

def test_supernet_uses_lighter_variants_under_overload_and_misses_less() -> None:
    tr = T.generate(load_scenario("ar_gaming"), 3.0, 0)
    spec = load_platform("single_4k_ws")
    base, _ = replay(tr, spec, "sdrm3")
    sn, comps = replay(tr, spec, "sdrm3+supernet", keep_completions=True)
    assert base["accuracy"] == 1.0 and base["frames_missed"] > 0  # overloaded with full models
    assert 0.9 <= sn["accuracy"] < 1.0
    assert sn["frames_missed"] < base["frames_missed"]
    models = {m.name: m for m in build_models(tr.scenario, None)}
    used = {(x.model, x.variant) for x in comps if x.completed}
    assert any(v > 0 for _, v in used)
    assert all(models[m].variants[v].accuracy >= 0.9 for m, v in used)  # the floor


def test_registered_names() -> None:
    assert isinstance(make_policy("sdrm3"), SDRM3)
    p = make_policy("sdrm3+supernet")
    assert isinstance(p, WithSupernet) and isinstance(p.inner, SDRM3) and p.uses_variants
    assert p.selector.floor == 0.9 and p.name == "sdrm3+supernet"


# --- looking ahead, estimating the schedule, never trading a deadline for energy ---------------------------


def test_the_known_next_releases_make_a_long_job_give_way() -> None:
    # one accelerator. "long" (60 ms, deadline 100) and "short" #0 (10 ms, deadline 20) are queued at 0;
    # short is released every 20 ms (50 fps), each due 20 ms later. The queue alone fits (10 + 60 = 70 <= 100),
    # but with the shorts released at 20, 40, 60 and 80 (due by 100) the work due by 100 is 60 + 5 x 10 = 110:
    # someone must miss. The most work per frame is long's: it is shed at once, and the five shorts make it.
    # Without looking ahead, long runs 10-70 and the shorts released at 20 and 40 miss (two frames, not one).
    releases = [(0, "long", 100), *[(20 * k, "short", 20 * k + 20) for k in range(5)]]
    for lookahead, missed in ((True, {"long"}), (False, {"short#1", "short#2"})):
        c = Case({"long": [[60]], "short": [[10]]}, fps={"long": 1, "short": 50})
        comps = simulate(c, c.dispatcher(lookahead=lookahead), [(t, n, dl) for t, n, dl in releases])
        got = {(x.model if x.model == "long" else f"short#{int(x.release_ms // 20)}") for x in comps
               if x.status != "done"}
        assert got == missed, (lookahead, got)
        if lookahead:
            assert [(x.model, x.reason, x.end_ms) for x in comps if x.status != "done"] == [("long", "overload", 0.0)]


def test_the_schedule_estimate_sheds_what_a_bound_would_keep() -> None:
    # two accelerators, each job fast on one only: x 20 ms on acc0 (100 on acc1), y and z 20 on acc1 (100 on
    # acc0); deadlines x 25, y 25, z 30. The estimate: x on acc0 0-20, y on acc1 0-20, z on acc1 20-40 > 30:
    # late. Shed the one with the most work among x, y, z (equal: 20 each; the latest deadline, z)
    c = Case({"x": [[20], [100]], "y": [[100], [20]], "z": [[100], [20]]})
    x, y, z = c.job("x", 0, 25), c.job("y", 0, 25), c.job("z", 0, 30)
    view = SimpleNamespace(free_at=(0.0, 0.0), running=(None, None), n_acc=2)
    assert overload_victims_list(view, 0.0, [x, y, z], [1.0, 1.0, 1.0], [0, 1]) == [z]
    z2 = c.job("z", 0, 40)  # with 10 ms more, z fits after y: nothing is shed
    assert overload_victims_list(view, 0.0, [x, y, z2], [1.0, 1.0, 1.0], [0, 1]) == []


def test_energy_is_saved_only_where_no_job_becomes_late() -> None:
    # two accelerators: "a" runs 10 ms / 10 mJ on acc0, 14 ms / 2 mJ on acc1; "b" runs 10 ms on acc0 only
    # (inf on acc1). Alone, a (deadline 100) takes the cheap acc1: ends 14, well within its slack.
    c = Case({"a": [[10], [14]], "b": [[10], [INF]]}, ens={"a": [[10], [2]], "b": [[10], [INF]]})
    d = c.dispatcher()
    d.release(c.job("a", 0, 100))
    assert started(d, 0) == [("a", 1, 1)]
    # with b (deadline 12) queued behind it in deadline order, acc1 for a is still safe: b runs on acc0 now
    c = Case({"a": [[10], [14]], "b": [[10], [INF]]}, ens={"a": [[10], [2]], "b": [[10], [INF]]})
    d = c.dispatcher()
    d.release(c.job("a", 0, 100))
    d.release(c.job("b", 0, 12))
    assert sorted(started(d, 0)) == [("a", 1, 1), ("b", 0, 1)]
    # a two-block job: "p" (deadline 100) block 0 10 ms / 10 mJ on acc0 or 30 ms / 1 mJ on acc1, block 1 10 ms
    # on acc0 only. Fastest: acc0, ends at 20; on acc1 it ends at 40, within its limit 20 + 0.3 x 80 = 44, for
    # 9 mJ less. "q" (5 ms, acc1 only) is released every 10 ms, due 10 ms later: its next releases (10, 20,
    # ...) are known. With acc1 held until 30, q's frames released at 10 and 20 would end late: p's block 0
    # runs on acc0. When q comes only every 100 ms (next release 100, after p's deadline), acc1 is safe.
    lat = {"p": [[10, 10], [30, INF]], "q": [[INF], [5]]}
    for fps, acc in ((100.0, 0), (10.0, 1)):
        c = Case(lat, ens={"p": [[10, 10], [1, INF]]}, fps={"p": 10.0, "q": fps})
        d = c.dispatcher()
        d.release(c.job("p", 0, 100))
        assert started(d, 0) == [("p", acc, 1)]
    c = Case(lat, ens={"p": [[10, 10], [1, INF]]}, fps={"p": 10.0, "q": 100.0})
    d = c.dispatcher(safe_energy=False, hold_place=False)
    d.release(c.job("p", 0, 100))
    assert started(d, 0) == [("p", 1, 1)]  # without the rules, the cheap placement


def test_a_long_block_waits_for_a_tight_frame_about_to_arrive() -> None:
    # one accelerator. "tick": 6 ms, every 10 ms, due at the next release; "long": one 12-ms block, deadline 100.
    # tick@0 runs 0-6; long (released at 5) could start at 6 and end at 18, but tick@10 (known: periodic) would then
    # end at 24 > 20 and is dropped. Waiting costs long nothing: tick@10 runs 10-16, long 16-28 <= 100.
    releases = [(0.0, "tick", 10.0), (5.0, "long", 100.0), (10.0, "tick", 20.0), (20.0, "tick", 30.0)]
    for hold, missed in ((True, []), (False, [("tick", 10.0)])):
        c = Case({"tick": [[6]], "long": [[12]]}, fps={"tick": 100.0, "long": 10.0})
        done = simulate(c, c.dispatcher(hold_place=hold), releases)
        assert sorted((x.model, x.release_ms) for x in done if x.status != "done") == missed
        assert [x.status for x in done if x.model == "long"] == ["done"]


def test_a_long_block_that_cannot_wait_gives_way_to_more_frames_than_it_saves() -> None:
    # one accelerator. "tick": 6 ms, every 10 ms, due at the next release; "long": one 25-ms block, deadline 31, so
    # its latest start is 6. tick@0 runs 0-6. Started at 6, long would hold the accelerator until 31: tick@10 and
    # tick@20 (known: periodic) would end at 37 and 43, both late, to save one frame of long; long cannot wait for
    # them (it would be late). Two frames at stake against one: long gives way and is dropped, every tick is on
    # time. Without the rule, long runs and the two ticks are dropped. (Shedding off: the overload check over the
    # known releases sheds long here on its own; the rule covers the blocks started before such a check.)
    releases = [(0.0, "tick", 10.0), (0.0, "long", 31.0), (10.0, "tick", 20.0), (20.0, "tick", 30.0),
                (30.0, "tick", 40.0)]
    for value, missed in ((True, [("long", 0.0)]), (False, [("tick", 10.0), ("tick", 20.0)])):
        c = Case({"tick": [[6]], "long": [[25]]}, fps={"tick": 100.0, "long": 10.0})
        done = simulate(c, c.dispatcher(hold_value=value, shed=False), releases)
        assert sorted((x.model, x.release_ms) for x in done if x.status != "done") == missed
    # with tick every 20 ms only tick@20 is at stake: one frame against one, long runs (and tick@20 is dropped)
    releases = [(0.0, "tick", 10.0), (0.0, "long", 31.0), (20.0, "tick", 30.0), (40.0, "tick", 50.0)]
    c = Case({"tick": [[6]], "long": [[25]]}, fps={"tick": 50.0, "long": 10.0})
    done = simulate(c, c.dispatcher(shed=False), releases)
    assert [x.status for x in done if x.model == "long"] == ["done"]


def test_a_block_waits_for_the_accelerator_a_running_job_needs_next() -> None:
    # two accelerators. "chain": block 0 runs only on acc0 (5 ms; 50 on acc1), block 1 takes 4 ms on acc1 and 10 on
    # acc0; due at 10. Released at 0, it runs block 0 on acc0 until 5 and is on time only if acc1 is free at 5
    # (5 + 4 = 9; on acc0 5 + 10 = 15). "bulk" (one block: 20 ms on acc0, 8 on acc1, due at 100) arrives at 1 with
    # acc1 free. Started there it holds acc1 until 9: chain's next block ends at 13 at best and is dropped. The rest of
    # a running job is known as surely as a periodic release, so bulk waits for it: chain 5-9 on acc1, bulk after it
    # (9-17), both on time. Without the rule, bulk runs 1-9 and chain is lost.
    releases = [(0.0, "chain", 10.0), (1.0, "bulk", 100.0)]
    for rule, missed in ((True, []), (False, [("chain", 0.0)])):
        c = Case({"chain": [[5, 10], [50, 4]], "bulk": [[20], [8]]}, fps={"chain": 10.0, "bulk": 10.0})
        done = simulate(c, c.dispatcher(hold_running=rule), releases)
        assert sorted((x.model, x.release_ms) for x in done if x.status != "done") == missed
        assert [x.status for x in done if x.model == "bulk"] == ["done"]


def test_a_long_block_waits_for_the_cascaded_child_of_a_frame_about_to_arrive() -> None:
    # one accelerator. "root": 1 ms every 10 ms; "child" (triggered by root, probability 1): 6 ms, due with its
    # frame at the next release; "long": one 12-ms block, due at 100. Started at 7 (after child@0), long would hold
    # the accelerator until 19: root@10 still ends in time (20), but its child, released when root@10 ends, could
    # not (19 + 6 > 20). The release hold sees only root@10, on time either way; counting the cascaded child of each
    # known release (released when its upstream would end at best, 11, due at 20), long can wait for it (its latest
    # start is 88), and every frame is on time. Without the rule, child@10 is dropped.
    releases = [(0.0, "root", 10.0), (1.0, "child", 10.0), (5.0, "long", 100.0), (10.0, "root", 20.0),
                (11.0, "child", 20.0), (20.0, "root", 30.0), (21.0, "child", 30.0)]
    for rule, missed in ((True, []), (False, [("child", 11.0)])):
        c = Case({"root": [[1]], "child": [[6]], "long": [[12]]}, fps={"root": 100.0, "child": 100.0, "long": 10.0},
                 upstream={"child": "root"})
        done = simulate(c, c.dispatcher(hold_cascades=rule), releases)
        assert sorted((x.model, x.release_ms) for x in done if x.status != "done") == missed
        assert [x.status for x in done if x.model == "long"] == ["done"]


def test_a_frame_is_not_made_on_time_at_more_energy_than_a_miss_costs() -> None:
    # two accelerators: acc0 cheap (x: 10 ms, 10 mJ), acc1 as fast but costly (x: 10 ms, 500 mJ). "y" holds acc0
    # from 0 to 30; "x" arrives at 1, due at 15: only acc1 makes it. UXCost is energy x (missed + 1) / (due + 1) over
    # the reference energy. With nothing missed yet, the frame is worth any energy: x runs on acc1. After 9 missed
    # frames that cost 900 mJ (E = 900, M = 9), running x adds 500 mJ where missing it costs its reference energy
    # (10 mJ) anyway: (900 + 500) x 10 = 14000 against (900 + 10) x 11 = 10010 when it is missed, so x waits for acc0
    # (and is missed). The bound: a frame pays while its energy above what a miss costs is below E / (M + 1) = 90.
    # The rule waits until the outcomes seen span a whole window (window_ms, 2 s): the same 9 misses with nothing
    # seen before them leave x on acc1. (The outcome 2 s earlier cost nothing: E and M stay 900 and 9.)
    from edge_sdrm3.core.types import Completion

    for history, since, runs in ((0, 0.0, [("x", 1, 1)]), (9, -2000.0, []), (9, 0.0, [("x", 1, 1)])):
        c = Case({"x": [[10], [10]], "y": [[30], [1000]]}, ens={"x": [[10], [500]], "y": [[30], [1000]]})
        pol = make_policy("sdrm3", tune=False)
        if since < 0.0:
            pol.observe(Completion("y", -1, 0, "acc0", since, since, since, since + 100.0, 0.0, DONE), since)
        for k in range(history):
            pol.observe(Completion("y", k, 0, "acc0", 0.0, 0.0, 1.0, 1.0, 100.0, DROPPED, "hopeless"), 0.0)
        d = Dispatcher(c.platform, c.models, c.costs, pol, fallback=make_policy("fcfs"))
        d.release(c.job("y", 0, 1000))
        assert started(d, 0) == [("y", 0, 1)]
        d.release(c.job("x", 1, 15))
        assert started(d, 1) == runs
    # without the rule, x runs on acc1 whatever was missed before
    d = Dispatcher(c.platform, c.models, c.costs, make_policy("sdrm3", tune=False, energy_worth=False),
                   fallback=make_policy("fcfs"))
    d.policy.observe(Completion("y", -1, 0, "acc0", -2000.0, -2000.0, -2000.0, -1900.0, 0.0, DONE), -2000.0)
    for k in range(9):
        d.policy.observe(Completion("y", k, 0, "acc0", 0.0, 0.0, 1.0, 1.0, 100.0, DROPPED, "hopeless"), 0.0)
    d.release(c.job("y", 0, 1000))
    started(d, 0)
    d.release(c.job("x", 1, 15))
    assert started(d, 1) == [("x", 1, 1)]


def _random_mix_runs(seed: int, platform: str, rule: str) -> tuple[dict, dict, dict]:
    """The first 0.5 s of random mix ``seed`` on ``platform``: edf_firm, sdrm3, and sdrm3 without ``rule``."""
    from edge_sdrm3.sweep.runner import random_scenario

    tr = T.generate(random_scenario(seed), 0.5, 0)
    spec = load_platform(platform)
    return (replay(tr, spec, "edf_firm")[0], replay(tr, spec, "sdrm3")[0],
            replay(tr, spec, "sdrm3", policy_config={rule: False})[0])


def test_on_a_random_mix_a_block_leaves_the_accelerator_a_running_frame_needs() -> None:
    # random_0035 on quad_8k: a 20-fps depth model due 28.5 ms after release whose best case (28.42 ms) needs its
    # last block on an OS accelerator (2.64 ms; 2.84 on WS) the moment its third block ends. A 72-fps segmentation
    # frame with 9 ms to spare took that accelerator a few hundred microseconds before, and the depth frame was lost
    # (fcfs, by chance, kept it). With the running job's next block counted in the release hold, none is lost.
    firm, ours, old = _random_mix_runs(35, "quad_8k_ws_os_ws_os", "hold_running")
    assert old["frames_missed"] > 0
    assert ours["frames_missed"] == 0
    assert ours["uxcost"] <= firm["uxcost"] * 1.01


def test_on_a_random_mix_sdrm3_misses_no_frame_that_edf_firm_makes() -> None:
    # random_0046 on big.LITTLE: a 90-fps gaze model (6.6 ms on the big accelerator, due 8.9 ms after release)
    # beside two 3-fps models with long blocks. edf_firm misses nothing; without the rule that a block must not
    # hold the accelerator a tight frame about to arrive needs, sdrm3 started a long block just before a gaze
    # release and dropped that frame.
    firm, ours, old = _random_mix_runs(46, "dual_4k_biglittle_ws_os", "hold_place")
    assert firm["frames_missed"] == 0 and old["frames_missed"] > 0
    assert ours["frames_missed"] == 0
    assert ours["uxcost"] <= firm["uxcost"] * 1.01


def test_on_big_little_a_frame_is_not_shed_that_sharing_the_accelerators_makes() -> None:
    # random_0043 on big.LITTLE: hand tracking and a detector, both at 45 fps, each fastest on the big accelerator
    # and together too much for it alone. The schedule estimate that waits for the big one sees one of them late
    # at every release and shed the hand-tracking frames (23 of 48 frames missed in 0.5 s, edf_firm 6); with the
    # second estimate (a block takes the free little accelerator where its job still ends in time there) the
    # frames are kept and sdrm3 misses fewer than edf_firm.
    firm, ours, old = _random_mix_runs(43, "dual_4k_biglittle_ws_os", "fit_estimate")
    assert old["frames_missed"] > 2 * firm["frames_missed"]
    assert ours["frames_missed"] <= firm["frames_missed"]
    assert ours["uxcost"] < firm["uxcost"]


def test_a_block_that_cannot_be_interrupted_lets_a_tighter_job_go_first() -> None:
    # one accelerator. long: one 40-ms block, deadline 70 (latest start 30); short: 10 ms, deadline 45 (latest
    # start 35). By latest start long goes first, but its block cannot be interrupted: short would end at 50,
    # late. Short fits in long's slack (30 >= 10), so short goes first (0-10) and long still ends at 50 <= 70.
    # (latest-start order kept: single_edf=False)
    for fix, first in ((True, "short"), (False, "long")):
        c = Case({"long": [[40]], "short": [[10]]})
        d = c.dispatcher(nonpreemptive=fix, single_edf=False)
        d.release(c.job("long", 0, 70))
        d.release(c.job("short", 0, 45))
        assert started(d, 0) == [(first, 0, 1)]
    # by default one accelerator runs in deadline order: short first, whether or not blocks are corrected for
    c = Case({"long": [[40]], "short": [[10]]})
    d = c.dispatcher(nonpreemptive=False)
    d.release(c.job("long", 0, 70))
    d.release(c.job("short", 0, 45))
    assert started(d, 0) == [("short", 0, 1)]


def test_a_child_with_a_shorter_deadline_leaves_its_parent_less_slack_for_energy() -> None:
    # parent p: 10 ms / 10 mJ on acc0, 14 ms / 2 mJ on acc1, deadline 100; its cascaded child k (10 ms) is due
    # 23 ms after the frame time: p must end by 23 - 10 = 13 (cut 87). Fastest end 10; limit 10 + 0.3 x 3 = 10.9
    # < 14, and 14 > 13 (p does not fit on acc1 by its due time either): p runs on acc0 (without the child, acc1
    # would save 8 mJ: 14 <= 10 + 0.3 x 90).
    from edge_sdrm3.core.policies.edf_firm import cascade_cuts

    for child_deadline, acc in ((23.0, 0), (None, 1)):
        models = (Model("p", 10.0, (Variant("full"),), 1),
                  Model("k", 10.0, (Variant("full"),), 1, deadline_ms=child_deadline, upstream="p"))
        costs = Costs([[[[10.0], [14.0]]], [[[10.0], [10.0]]]], [[[[10.0], [2.0]]], [[[10.0], [10.0]]]])
        assert cascade_cuts(models, costs) == [87.0 if child_deadline else 10.0, 0.0]
        for policy in ("sdrm3", "edf_firm"):
            disp = Dispatcher(Platform("two", (Accelerator("acc0", "emulated"), Accelerator("acc1", "emulated"))),
                              models, costs, make_policy(policy, **({"tune": False} if policy == "sdrm3" else {})),
                              fallback=make_policy("fcfs"))
            disp.release(Job(1, models[0], 0, 0, 0.0, 100.0, costs))
            assert [(s.job.model.name, s.acc) for s in disp.schedule(0.0)[0]] == [("p", acc)], policy


def test_a_parent_whose_child_cannot_make_it_any_more_ranks_by_its_own_deadline() -> None:
    # one accelerator. p (30 ms, deadline 100) has a cascaded child k (10 ms) due 25 ms after the frame time:
    # p would have to end by 15, which it cannot (30 > 15): k will miss whatever happens, so p ranks by its own
    # latest start (100 - 30 = 70), after o (10 ms, deadline 40: latest start 30), which goes first. Were the
    # child's cut kept, p's latest start would be -15, ahead of o, and p would take the accelerator first (o
    # would then end at 40, with no margin left).
    models = (Model("p", 10.0, (Variant("full"),), 1),
              Model("k", 10.0, (Variant("full"),), 1, deadline_ms=25.0, upstream="p"),
              Model("o", 10.0, (Variant("full"),), 1))
    costs = Costs([[[[30.0]]], [[[10.0]]], [[[10.0]]]], [[[[30.0]]], [[[10.0]]], [[[10.0]]]])
    disp = Dispatcher(Platform("one", (Accelerator("acc0", "emulated"),)), models, costs,
                      make_policy("sdrm3", tune=False, shed=False), fallback=make_policy("fcfs"))
    disp.release(Job(1, models[0], 0, 0, 0.0, 100.0, costs))
    disp.release(Job(2, models[2], 2, 0, 0.0, 40.0, costs))
    assert [s.job.model.name for s in disp.schedule(0.0)[0]] == ["o"]


def test_a_job_whose_remaining_blocks_fit_on_a_free_cheaper_accelerator_may_use_its_whole_slack() -> None:
    # h (deadline 20): two blocks of 4 ms / 10 mJ on acc0 or 9 ms / 6 mJ on acc1. Fastest end 8; the slack share
    # allows 8 + 0.3 x 12 = 11.6, and block 0 on acc1 ends at best at 9 + 4 = 13: without the rule h runs on acc0
    # (20 mJ in all). Both blocks on the free acc1 end at 18 <= 20, 8 mJ less: with the rule h takes acc1,
    # since nothing else needs acc1 before 18 (q, 3 ms on acc1 only, next released at 100).
    lat, ens = {"h": [[4, 4], [9, 9]], "q": [[INF], [3]]}, {"h": [[10, 10], [6, 6]]}
    c = Case(lat, ens=ens, fps={"h": 10.0, "q": 10.0})
    d = c.dispatcher(stay_slack=True)
    d.release(c.job("h", 0, 20))
    assert started(d, 0) == [("h", 1, 1)]
    c = Case(lat, ens=ens, fps={"h": 10.0, "q": 10.0})
    d = c.dispatcher(stay_slack=False)
    d.release(c.job("h", 0, 20))
    assert started(d, 0) == [("h", 0, 1)]
    # q every 10 ms (next released at 10, due 20): with acc1 held until 18 it would start at 18 and end at 21,
    # late: h keeps to its slack share and runs on acc0
    c = Case(lat, ens=ens, fps={"h": 10.0, "q": 100.0})
    d = c.dispatcher(stay_slack=True)
    d.release(c.job("h", 0, 20))
    assert started(d, 0) == [("h", 0, 1)]
    # the whole run: h ends on time on acc1 at 18 and q's frames make theirs
    c = Case(lat, ens=ens, fps={"h": 10.0, "q": 10.0})
    out = simulate(c, c.dispatcher(stay_slack=True), [(0.0, "h", 20.0)])
    assert [(o.model, o.accelerator, o.end_ms, o.status) for o in out] == [("h", "acc1", 18.0, "done")]


def test_a_running_job_is_shed_at_its_block_boundary_where_that_saves_more_energy() -> None:
    # two accelerators; every job is fast on acc0 only (acc1: 100 ms a block). At 0, d (three 10-ms blocks on acc0,
    # 50 mJ each there, 20 on acc1: reference energy 60 mJ; due 35) starts its first block on acc0 and e (3 ms) runs on
    # acc1. At 1, h (15 ms, 10 mJ anywhere, due 35) and g (5 ms, due 20) arrive (checked at 3, when acc1 is free): acc0
    # is free at 10, and g, then the 20 ms d has left and h cannot all end in time (g 15, then 35 and 50 > 35). One
    # frame is lost either way. Over the queued jobs alone, h is shed: that saves nothing (a missed frame is charged
    # its reference energy, 10 mJ). With d a candidate (it has 20 ms left after its block in flight, h 15, the
    # longest goes), d is shed: 50 + 100 mJ if it runs on, 60 if missed: 90 mJ saved, for as many frames at stake.
    # So d is dropped when its block ends (10; its first 50 mJ are spent), and g and h run.
    c = Case({"d": [[10, 10, 10], [100, 100, 100]], "e": [[100], [3]], "h": [[15], [100]], "g": [[5], [100]]},
             ens={"d": [[50, 50, 50], [20, 20, 20]], "e": [[1], [1]], "h": [[10], [10]], "g": [[1], [1]]})
    releases = [(0.0, "d", 35.0), (0.0, "e", 40.0), (1.0, "h", 35.0), (1.0, "g", 20.0)]
    comps = {x.model: x for x in simulate(c, c.dispatcher(), releases)}
    assert (comps["d"].status, comps["d"].reason, comps["d"].end_ms, comps["d"].energy_mj) == \
        (DROPPED, "overload", 10.0, 50.0)
    assert all(comps[m].status == DONE for m in "egh")
    assert comps["h"].end_ms <= 35.0 and comps["g"].end_ms <= 20.0
    # without the rule only queued jobs may be shed: h goes (charged 10 mJ), d runs on and spends its 150 mJ
    old = {x.model: x for x in simulate(c, c.dispatcher(shed_running=False), releases)}
    assert (old["h"].status, old["h"].reason) == (DROPPED, "overload")
    assert all(old[m].status == DONE for m in "deg")
    assert sum(x.energy_mj for x in comps.values()) < sum(x.energy_mj for x in old.values()) - 80.0


def test_a_waiting_job_sees_the_next_blocks_of_a_running_job_that_comes_first() -> None:
    # two accelerators. "runner" (blocks of 10 and 30 ms on acc0, 100 each on acc1, due at 45) starts at 0 on acc0;
    # at 10 it has 5 ms of slack left, less than any block it could let go first, so it keeps acc0 until 40.
    # "wait" (one block: 20 ms on acc0, 40 on acc1, due at 45) arrives at 1. Counting acc0 free at 10 (the end of the
    # block in flight) it would wait for it (end 30; acc1's 41 is past the share of the slack a slower end may use),
    # then find acc0 taken until 40 and acc1 too late (50) and be dropped. With runner's next block booked, acc1 is
    # its only way: both on time.
    releases = [(0.0, "runner", 45.0), (1.0, "wait", 45.0)]
    for rule, missed in ((True, []), (False, [("wait", 1.0)])):
        c = Case({"runner": [[10, 30], [100, 100]], "wait": [[20], [40]]}, fps={"runner": 10.0, "wait": 10.0})
        done = simulate(c, c.dispatcher(book_running=rule), releases)
        assert sorted((x.model, x.release_ms) for x in done if x.status != "done") == missed
        assert [x.status for x in done if x.model == "runner"] == ["done"]


def test_a_booked_accelerator_is_busy_for_the_frames_its_running_job_comes_before() -> None:
    # random_0011 on dual_8k_ws_os: a plane-detection job runs three more blocks on acc0, booked for them. A depth
    # block that would wait for acc0 (3.4 ms there) takes the free acc1 instead (18.5 ms). The release hold must see
    # that a 60-fps keyword frame about to arrive finds acc0 busy too (the plane detection comes before it), else the
    # depth block holds acc1 from it, its cascaded child is missed, and sdrm3 loses to edf_firm on a light cell.
    firm, ours, old = _random_mix_runs(11, "dual_8k_ws_os", "book_running")
    assert old["frames_missed"] == 0
    assert ours["frames_missed"] == 0
    assert ours["uxcost"] <= firm["uxcost"] * 1.01


def _spill_pick(misses: int, busy: float = 15.0, ens: tuple[float, float] = (40.0, 4.0), missed: str = "busy",
                **config) -> list[tuple[str, int, int]]:
    # acc0: free, 20 ms, 40 mJ; acc1: busy until 15, 10 ms, 4 mJ (as _suited_but_later). j, due at 100, waits for the
    # frugal acc1 (ends 25 <= 100). Before it, 10 frames ended over the last window (2 s), ``misses`` of them (of model
    # ``missed``) missed, 1000 mJ in all (decayed over the window). "lost" cannot make its 100-ms deadline even alone.
    c = Case({"busy": [[INF], [busy]], "j": [[20], [10]], "lost": [[200], [200]]},
             ens={"j": [[ens[0]], [ens[1]]]})
    d = c.dispatcher(**config)
    d.release(c.job("busy", 0))
    assert started(d, 0) == [("busy", 1, 1)]
    d.policy.observe(Completion("busy", -1, 0, "acc1", -2000.0, -2000.0, -1999.0, -1900.0, 0.0, DONE), -2000.0)
    for k in range(10):
        status, reason = (DROPPED, "hopeless") if k < misses else (DONE, "")
        d.policy.observe(Completion(missed if k < misses else "busy", k, 0, "acc1", 0.0, 0.0, 1.0, 100.0, 100.0,
                                    status, reason), 0.0)
    d.release(c.job("j", 0, deadline=100.0))
    return started(d, 0)


def test_under_overload_a_faster_costlier_placement_is_taken_where_its_frame_is_worth_the_energy() -> None:
    # UXCost is E x (M + 1) up to constants: a frame made pays while the energy it adds is below E / (M + 1), here
    # discounted by the share of frames on time lately, squared (sdrm3_energy.spill_allowance). With 2 of 10 frames
    # missed: 1000 / 3 x 0.8^2 = 213 mJ, above the 36 mJ that acc0 costs more: j runs on acc0 now (ends 20, leaving
    # acc1 to the frames behind it) as if it were as cheap.
    assert _spill_pick(2) == [("j", 0, 1)]
    assert _spill_pick(2, spill=False) == []  # without the rule: energy decides, j waits for acc1
    assert _spill_pick(0) == []  # nothing missed: no overload, energy decides
    assert _spill_pick(1) == []  # one miss lately is not overload (SPILL_MISSES)
    assert _spill_pick(2, missed="lost") == []  # nor are misses that no schedule could avoid
    # 8 of 10 missed: 1000 / 9 x 0.2^2 = 4.4 mJ, below 36: a frame made here is seldom on time, j waits for acc1
    assert _spill_pick(8) == []


def test_under_overload_a_job_waits_to_its_deadline_for_a_frugal_accelerator_where_speed_is_not_worth_it() -> None:
    # acc1 busy until 70: j would end there at 80, past the share of its slack a slower end may use (20 + 0.3 x 80 =
    # 44), so it runs on acc0 now whatever acc0 costs. Under overload, where acc0 costs more above acc1 than the frame
    # is worth (300 - 4 = 296 mJ against 213, 2 of 10 missed; energy_worth would allow 337 mJ), j may use its slack to
    # its deadline: it waits for acc1 (80 <= 100), leaving acc0 to work that is worth its energy.
    assert _spill_pick(2, busy=70.0, ens=(300.0, 4.0)) == []
    assert _spill_pick(2, busy=70.0, ens=(300.0, 4.0), spill=False) == [("j", 0, 1)]
    assert _spill_pick(0, busy=70.0, ens=(300.0, 4.0)) == [("j", 0, 1)]  # no overload: the slack share holds
    assert _spill_pick(2, busy=70.0, ens=(40.0, 4.0)) == [("j", 0, 1)]  # 36 mJ more is worth it: acc0 now


def test_on_the_live_workload_at_1_5x_capacity_sdrm3_uses_the_costly_accelerators_and_beats_edf() -> None:
    # mediapipe_xr_slow on headset_placement as tools/bench_live.py offers it at 1.5x its capacity, replayed (12 s):
    # the frugal NPU cannot carry the load; edf runs every block on the fastest free accelerator, the slow CPU
    # included, and misses far fewer frames than sdrm3 did without the rule, which waited for the frugal NPU.
    import dataclasses

    sc = load_scenario("mediapipe_xr_slow")
    rate = 1.5 * 1.53
    models = tuple(dataclasses.replace(m, fps=rate, deadline_ms=1000.0 / m.fps) for m in sc.models)
    tr = T.generate(dataclasses.replace(sc, models=models), 12.0, 0)
    tr.engine = {"admission": True, "chain_ms": 10.0}
    spec = load_platform("headset_placement")
    ux = {name: replay(tr, spec, name.split(":")[0], policy_config=cfg)[0]["uxcost"]
          for name, cfg in (("edf", {}), ("edf_firm", {}), ("sdrm3", {}), ("sdrm3:old", {"spill": False}))}
    assert ux["sdrm3"] < ux["edf"] < ux["sdrm3:old"]
    assert ux["sdrm3"] < ux["edf_firm"]
