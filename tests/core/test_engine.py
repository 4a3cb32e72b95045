"""The workload engine, once for both clocks: the same workload driven by the replay's virtual clock
(``add_trace`` + ``step``) and by the live service's calls on a clock of its own (``admit`` per frame message,
``advance`` at each instant, ``complete`` when a block ends, ``next_time`` for the wake-up) ends in the same
outcomes, records and figures — and the workload rules hold in both."""
from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from edge_sdrm3.core.engine import Engine, Records
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.policy import as_policy
from edge_sdrm3.core.types import INF, Accelerator, ConfigError, Costs, Model, Platform, Variant

PLATFORM = Platform("two", (Accelerator("acc0", "emulated", idle_power_mw=50.0), Accelerator("acc1", "emulated")),
                    handoff_ms=0.2, handoff_mj=0.01)
# a (30 fps, two blocks) triggers b (same rate, p = 0.5, two blocks) which triggers bb (p = 0.7); c is on its own
MODELS = (
    Model("a", 30.0, (Variant("full"),), 2),
    Model("b", 30.0, (Variant("full"),), 2, upstream="a", trigger_probability=0.5),
    Model("bb", 30.0, (Variant("full"),), 1, upstream="b", trigger_probability=0.7),
    Model("c", 20.0, (Variant("full"),), 1),
)
# latency per [model][acc][segment]: busy enough that some frames are late or dropped, and their cascades missed
LAT = {"a": [[12.0, 11.0], [16.0, 14.0]], "b": [[9.0, 10.0], [12.0, INF]], "bb": [[6.0], [5.0]], "c": [[26.0], [21.0]]}
EN = {"a": [[3.0, 2.0], [1.0, 1.5]], "b": [[2.0, 2.0], [1.0, INF]], "bb": [[1.0], [2.0]], "c": [[4.0], [3.0]]}
DURATION_MS = 2000.0


@dataclass(frozen=True)
class F:
    model: str
    frame: int
    release_ms: float
    fired: bool
    ready_ms: float | None = None


def costs() -> Costs:
    return Costs([[[list(r) for r in LAT[m.name]]] for m in MODELS], [[[list(r) for r in EN[m.name]]] for m in MODELS])


def trace(seed: int = 3) -> list[F]:
    """Every model's frames; the cascades' outcomes drawn once, nested (as sim.trace.generate does)."""
    rng = random.Random(seed)
    frames, fired = [], {}
    for m in MODELS:
        for f in range(int(DURATION_MS * m.fps / 1000.0)):
            up = fired.get((m.upstream, f), True) if m.upstream else True
            fired[(m.name, f)] = up and (m.upstream is None or rng.random() < m.trigger_probability)
            frames.append(F(m.name, f, f * 1000.0 / m.fps, fired[(m.name, f)]))
    return sorted(frames, key=lambda x: (x.release_ms, x.model, x.frame))


def engine(policy: str, **kw) -> Engine:
    return Engine(PLATFORM, MODELS, costs(), make_policy(policy), fallback=make_policy("fcfs"), records=Records(),
                  **kw)


def virtual_clock(policy: str, frames: list[F]) -> Engine:
    eng = engine(policy)
    eng.add_trace(frames)
    while eng.next_time() is not None:
        eng.step()
    eng.drain(eng.now, "stalled")
    return eng


def driver_clock(policy: str, frames: list[F]) -> Engine:
    """The service's way: a frame message per root frame admitted when it arrives, blocks run by the driver and
    reported when they end (here: when the cost model says), the engine woken when it asks."""
    eng = engine(policy, simulated=False)
    fired = {(f.model, f.frame): f.fired for f in frames}
    arrivals = [f for f in frames if MODELS[eng.index[f.model]].upstream is None]
    running: list[tuple[float, int, int]] = []  # (end, order started, accelerator)
    n = 0
    now = 0.0
    while arrivals or running or eng.next_time() is not None:
        now = min(x for x in ([arrivals[0].release_ms] if arrivals else []) + [r[0] for r in running]
                  + ([eng.next_time()] if eng.next_time() is not None else []))
        for end, _, a in sorted(r for r in running if r[0] == now):  # blocks that end now, in the order they began
            eng.complete(a, now)
        running = [r for r in running if r[0] != now]
        while arrivals and arrivals[0].release_ms == now:
            fr = arrivals.pop(0)
            plan = eng.plan([fr.model], lambda child, f=fr.frame: 0.0 if fired[(child, f)] else 1.0)
            eng.admit(now, plan, {name: None for name, ok, _ in plan if ok})
        for s in eng.advance(now):
            n += 1
            running.append((s.end_ms, n, s.acc))
    eng.drain(now, "stalled")
    return eng


@pytest.mark.parametrize("policy", ["fcfs", "edf", "heft", "sdrm3"])
def test_both_clocks_give_the_same_run(policy: str) -> None:
    frames = trace()
    v, d = virtual_clock(policy, frames), driver_clock(policy, frames)
    assert [c[:11] for c in v.completions] == [c[:11] for c in d.completions]
    assert v.records.jobs == d.records.jobs and v.records.segments == d.records.segments
    assert v.figures(DURATION_MS) == d.figures(DURATION_MS)
    # the live side also wrote the frames it was sent, as a trace has them
    assert [(r["model"], r["frame"], r.get("fired", True)) for r in d.records.other] == \
        [(f.model, f.frame, f.fired) for f in sorted(frames, key=lambda f: (f.release_ms, MODELS.index(
            next(m for m in MODELS if m.name == f.model)), f.frame))]


@pytest.mark.parametrize("clock", [virtual_clock, driver_clock])
@pytest.mark.parametrize("policy, missed_because", [("fcfs", "upstream late"), ("sdrm3", "upstream dropped")])
def test_the_workload_rules_hold(clock, policy: str, missed_because: str) -> None:
    frames = trace()
    eng = clock(policy, frames)
    due = {(f.model, f.frame) for f in frames if f.fired}
    out = {(c.model, c.frame): c for c in eng.completions}
    assert len(eng.completions) == len(due) and set(out) == due  # every due frame: exactly one outcome
    assert [(r["model"], r["frame"]) for r in eng.records.jobs] == [(c.model, c.frame) for c in eng.completions]
    statuses = {c.status for c in eng.completions}
    assert "done" in statuses and statuses & {"late", "dropped"}, statuses  # the workload is loaded
    cascaded = 0
    for (model, frame), c in out.items():
        up = MODELS[eng.index[model]].upstream
        if up is None:
            continue
        u = out[(up, frame)]
        if u.status == "done":  # released when its upstream completed on time, never before
            cascaded += 1
            assert c.release_ms == pytest.approx(u.end_ms) and (c.start_ms < 0 or c.start_ms >= u.end_ms)
        else:  # missed without running, when the upstream ended
            assert (c.status, c.reason, c.start_ms, c.energy_mj) == ("dropped", f"upstream {u.status}", -1.0, 0.0)
            assert c.end_ms == u.end_ms and c.deadline_ms == u.deadline_ms
    assert cascaded > 0 and any(c.reason == missed_because for c in eng.completions)
    assert not eng  # drained: nothing running, waiting or held


def test_a_frame_whose_upstream_never_ran_is_missed_at_its_release() -> None:
    # bb's upstream frame (b #0) has no frame of a before it in the trace: b #0 is missed ("no upstream frame"),
    # and bb #0, held on it, is missed at the end of the run
    frames = [F("b", 0, 0.0, True), F("bb", 0, 0.0, True), F("c", 0, 0.0, True)]
    eng = virtual_clock("fcfs", frames)
    got = [(c.model, c.status, c.reason, c.end_ms) for c in eng.completions]
    assert got == [("b", "dropped", "no upstream frame", 0.0), ("c", "done", "", 21.0),
                   ("bb", "dropped", "upstream never ran", 0.0)]


def test_the_policy_contract_has_defaults_and_checks_parameters() -> None:
    class Bare:
        name = "bare"

        def pick(self, view, now):
            return []

    p = as_policy(Bare())
    assert (p.variant_of(3), p.uses_variants, p.params(), p.observe(None, 0.0)) == (0, False, {}, None)
    with pytest.raises(ConfigError, match="has no parameters"):
        p.set_params({"alpha": 1.0})
    s = as_policy(make_policy("sdrm3"))
    assert s.params() == {"alpha": 0.05, "beta": 1.0, "gamma": 4.0, "delta": 0.0}
    assert s.set_params({"alpha": 0.2})["alpha"] == 0.2
    assert s.policy.theta.alpha == 0.2 and s.policy.tuner.theta.alpha == 0.2  # the tuner goes on from it
    for bad, words in (({"alpah": 1.0}, "unknown parameter 'alpah'"), ({"beta": float("nan")}, "finite number"),
                       ({"beta": True}, "finite number")):
        with pytest.raises(ConfigError, match=words):
            s.set_params(bad)
    assert s.params()["beta"] == 1.0  # nothing changed by a refused call
    with pytest.raises(ConfigError, match="not a policy"):
        as_policy(object())



def test_a_live_log_replays_the_service_s_releases_order_and_intake_time() -> None:
    """Frame messages naming two roots in the order y, x (not a trace's name order) of the same deadline, each taken
    in 3 ms after it arrived (decoding it): the log's frames replayed on the virtual clock give the live run again,
    job for job and block for block — released to the policy when the service took them in, in its order, their
    deadlines counted from the arrival."""
    models = (Model("x", 20.0, (Variant("full"),), 2), Model("y", 20.0, (Variant("full"),), 2))
    lat, en = [[10.0, 10.0], [15.0, 15.0]], [[3.0, 3.0], [1.0, 1.0]]  # acc0 fast and hungry, acc1 slow and frugal

    def make(**kw) -> Engine:
        return Engine(PLATFORM, models, Costs([[[list(r) for r in lat]]] * 2, [[[list(r) for r in en]]] * 2),
                      make_policy("fcfs"), fallback=make_policy("fcfs"), records=Records(), **kw)

    live = make(simulated=False)
    running: list[tuple[float, int, int]] = []
    arrivals = [22.0 * i for i in range(40)]
    intake_ms, n, now = 3.0, 0, 0.0
    while arrivals or running or live.next_time() is not None:
        now = min(([arrivals[0] + intake_ms] if arrivals else []) + [r[0] for r in running]
                  + ([live.next_time()] if live.next_time() is not None else []))
        for end, _, a in sorted(r for r in running if r[0] == now):
            live.complete(a, now)
        running = [r for r in running if r[0] != now]
        if arrivals and arrivals[0] + intake_ms == now:
            arrived = arrivals.pop(0)
            plan = live.plan(["y", "x"], lambda child: 0.0)
            live.admit(now, plan, {"x": None, "y": None}, arrived_ms=arrived)
        for s in live.advance(now):
            n += 1
            running.append((s.end_ms, n, s.acc))
    live.drain(now, "stalled")
    frames = [F(r["model"], r["frame"], r["release_ms"], r.get("fired", True), r.get("ready_ms"))
              for r in live.records.other if r["type"] == "frame"]
    assert all(f.ready_ms == pytest.approx(f.release_ms + intake_ms, abs=1e-5) for f in frames)
    y0, x0 = frames[0], frames[1]
    assert y0.model == "y" and y0.release_ms < x0.release_ms < y0.release_ms + 1e-3  # the service's order, in time
    jobs = {(r["model"], r["frame"]): r for r in live.records.jobs}
    assert jobs[("y", 0)]["deadline_ms"] == pytest.approx(50.0)  # from the arrival, not the intake
    assert (jobs[("y", 0)]["start_ms"], jobs[("y", 0)]["accelerator"]) == (intake_ms, "acc0")  # y first: fastest
    replay = make()
    replay.add_trace(sorted(frames, key=lambda f: (f.release_ms, f.model, f.frame)))
    while replay.next_time() is not None:
        replay.step()
    replay.drain(replay.now, "stalled")
    assert [c[:11] for c in replay.completions] == [c[:11] for c in live.completions]
    assert replay.records.jobs == live.records.jobs and replay.records.segments == live.records.segments
    statuses = {c.status for c in live.completions}
    assert "done" in statuses and statuses & {"late", "dropped"}  # loaded: the order and the intake matter


def test_live_events_due_before_a_late_report_are_handled_first_at_their_time() -> None:
    """The live driver may hear of a block's end after the engine's own next event was due (its timer ran late on a
    busy host): that event is handled first, at its time, as a replay takes it — here a queued job whose firm
    deadline passed while both accelerators ran is dropped at its deadline, not when the late report came."""
    eng = engine("edf", simulated=False)
    for _ in range(3):  # three frames of c at once: two run, the third waits (its deadline 50 ms on)
        plan = eng.plan(["c"], lambda child: 0.0)
        eng.admit(0.0, plan, {"c": None})
    starts = eng.advance(0.0)
    assert sorted(s.acc for s in starts) == [0, 1]
    assert eng.next_time() == pytest.approx(50.0)  # the wake-up at the third job's deadline
    eng.complete(1, 60.0)  # acc1's block (21 ms) reported 39 ms late, after that wake-up was due
    eng.advance(60.0)
    third = next(r for r in eng.records.jobs if r["frame"] == 2)
    assert third["status"] == "dropped" and third["end_ms"] == pytest.approx(50.0)
