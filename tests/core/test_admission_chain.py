"""Admission at release (a frame that cannot make its deadline given the queue is refused at once, reason
``admission``, before any of it runs) and fewer hand-offs (a job's next blocks run in one go on the same
accelerator while nothing else waits, each block decided on its own under contention)."""
from __future__ import annotations

from dataclasses import dataclass

from edge_sdrm3.core.engine import Engine, Records
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.types import Accelerator, Costs, Model, Platform, Variant

ONE = Platform("one", (Accelerator("acc0", "emulated"),))
TWO = Platform("two", (Accelerator("fast", "emulated"), Accelerator("slow", "emulated")))


@dataclass(frozen=True)
class F:
    model: str
    frame: int
    release_ms: float
    fired: bool = True
    ready_ms: float | None = None


def _run(platform: Platform, lat: list[list[float]], frames: list[F], fps: float = 10.0, **rules) -> Records:
    m = Model("m", fps, (Variant("full"),), len(lat[0]))
    costs = Costs([[[list(x) for x in lat]]], [[[[1.0] * len(x) for x in lat]]])
    return _replay(platform, (m,), costs, frames, "fcfs", **rules)


def _replay(platform: Platform, models: tuple[Model, ...], costs: Costs, frames: list[F], policy: str,
            **rules) -> Records:
    rec = Records()
    eng = Engine(platform, models, costs, make_policy(policy), records=rec, **rules)
    eng.add_trace(frames)
    while eng.next_time() is not None:
        eng.step()
    eng.drain(eng.now, "stalled")
    return rec


def test_a_frame_that_cannot_make_its_deadline_is_refused_before_it_runs() -> None:
    # one accelerator, 40 ms per job, 100 ms deadlines: a burst of 5 frames at once can finish at most 2 on time
    burst = [F("m", i, 0.0) for i in range(5)]
    plain = _run(ONE, [[20.0, 20.0]], burst)
    admitted = _run(ONE, [[20.0, 20.0]], burst, admission=True)
    assert [j["status"] for j in sorted(plain.jobs, key=lambda j: j["frame"])] == \
        ["done", "done", "dropped", "dropped", "dropped"]
    assert len(plain.segments) == 5  # the third job ran a block, ending at its deadline: wasted
    by_frame = {j["frame"]: (j["status"], j["reason"]) for j in admitted.jobs}
    assert by_frame == {0: ("done", ""), 1: ("done", ""), 2: ("dropped", "admission"),
                        3: ("dropped", "admission"), 4: ("dropped", "admission")}
    refused = [j for j in admitted.jobs if j["reason"] == "admission"]
    assert all(j["end_ms"] == j["release_ms"] == 0.0 and j["start_ms"] == -1 and j["energy_mj"] == 0 for j in refused)
    assert len(admitted.segments) == 4  # nothing of a refused frame ran


def test_a_lone_job_runs_its_blocks_in_one_go_and_contended_blocks_one_at_a_time() -> None:
    lat = [[1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]]
    lone = _run(TWO, lat, [F("m", 0, 0.0), F("m", 1, 100.0)], chain_ms=10.0)
    assert [(s["accelerator"], s["segment"], s["segments"]) for s in lone.segments] == [("fast", 0, 4), ("fast", 0, 4)]
    assert [j["end_ms"] - j["release_ms"] for j in lone.jobs] == [4.0, 4.0]
    short = _run(TWO, lat, [F("m", 0, 0.0)], chain_ms=2.5)  # at most 2.5 ms in one go: two blocks
    assert [(s["segment"], s["segments"]) for s in short.segments] == [(0, 2), (2, 2)]
    # two jobs at once: each block is the policy's own decision (fcfs: the first job on fast, the second on slow)
    both = _run(TWO, lat, [F("m", 0, 0.0), F("m", 1, 0.0)], fps=10.0, chain_ms=10.0)
    first_end = min(j["end_ms"] for j in both.jobs)
    contended = [s for s in both.segments if s["start_ms"] < first_end]
    assert len(contended) >= 4 and all(s["segments"] == 1 for s in contended)
    assert max(s["segments"] for s in both.segments) > 1  # the job left alone then runs the rest in one go
    # and with chaining off the lone job hands off at every block
    off = _run(TWO, lat, [F("m", 0, 0.0)])
    assert [s["segments"] for s in off.segments] == [1, 1, 1, 1]


def test_the_rest_of_a_job_stays_per_block_where_another_accelerator_would_be_faster() -> None:
    # segment 0 only runs on slow; the rest is faster on fast: no chaining on slow
    inf = float("inf")
    lat = [[inf, 1.0, 1.0], [2.0, 3.0, 3.0]]
    rec = _run(TWO, lat, [F("m", 0, 0.0)], chain_ms=10.0)
    assert [(s["accelerator"], s["segment"], s["segments"]) for s in rec.segments] == \
        [("slow", 0, 1), ("fast", 1, 2)]


def _learned(measured: dict[int, list[float]]) -> Records:
    """A lone job on TWO (table: 1 ms a block on fast, 3 ms on slow) after the costs in ``measured`` (accelerator ->
    its learned latency of each block) were learned while running, as ``core.estimator`` writes them."""
    m = Model("m", 10.0, (Variant("full"),), 4)
    costs = Costs([[[[1.0] * 4, [3.0] * 4]]], [[[[1.0] * 4, [1.0] * 4]]])
    rec = Records()
    eng = Engine(TWO, (m,), costs, make_policy("fcfs"), records=rec, chain_ms=50.0)
    for a, lat in measured.items():
        costs.lat[0][0][a][:] = lat
    costs.refresh()
    eng.add_trace([F("m", 0, 0.0)])
    while eng.next_time() is not None:
        eng.step()
    return rec


def test_a_learned_dispatch_overhead_does_not_stop_blocks_running_in_one_go() -> None:
    # fast's blocks after the first learned at 3.5 ms (the service's overhead with each block), slow never measured:
    # slow's table cost is 3 ms, but a block there would pay the same overhead, so the job stays on fast in one go
    rec = _learned({0: [1.0, 3.5, 3.5, 3.5]})
    assert [(s["accelerator"], s["segment"], s["segments"]) for s in rec.segments] == [("fast", 0, 4)]
    # slow measured too, and faster than fast for the rest: the first block alone, the rest moves (in one go there)
    rec = _learned({0: [1.0, 3.5, 3.5, 3.5], 1: [3.0, 2.0, 2.0, 2.0]})
    assert [(s["accelerator"], s["segment"], s["segments"]) for s in rec.segments] == [("fast", 0, 1), ("slow", 1, 3)]


def _live(platform: Platform, models: tuple[Model, ...], lat: list[list[list[float]]],
          messages: list[tuple[float, list[str]]], policy: str = "fcfs") -> Records:
    """Frame messages as the live service admits them (``Engine.plan``/``admit`` at each message's time), on the
    virtual clock; each model's costs ``lat[model][accelerator]`` (one variant), every cascade firing."""
    costs = Costs([[[list(x) for x in per]] for per in lat], [[[[1.0] * len(x) for x in per]] for per in lat])
    rec = Records()
    eng = Engine(platform, models, costs, make_policy(policy), records=rec, admission=True)
    for t, roots in messages:
        while eng.next_time() is not None and eng.next_time() <= t:
            eng.step()
        eng.admit(t, eng.plan(roots, lambda child: 0.0), {})
        eng.advance(t)
    while eng.next_time() is not None:
        eng.step()
    return rec


def _fates(rec: Records) -> list[tuple[str, int, str, str]]:
    return sorted((j["model"], j["frame"], j["status"], j["reason"]) for j in rec.jobs)


def test_the_cascades_held_on_admitted_frames_count_before_a_new_frame() -> None:
    # up then down, 30 ms each on one accelerator, both due 100 ms after the message: three messages at once.
    # The first makes it whole (60 ms); the second's up ends at 90 (behind up and down of the first), so its down
    # (120) is refused at once; the third's up would end at 120 behind the held down: refused, its down with it.
    # Counting only the queued jobs, the third's up (60 + 30 = 90) would have been let in and dropped.
    up, down = Model("up", 10.0, (Variant("v"),), 1), Model("down", 10.0, (Variant("v"),), 1, upstream="up")
    rec = _live(ONE, (up, down), [[[30.0]], [[30.0]]], [(0.0, ["up"])] * 3)
    assert _fates(rec) == [("down", 0, "done", ""), ("down", 1, "dropped", "admission"),
                           ("down", 2, "dropped", "upstream dropped"),
                           ("up", 0, "done", ""), ("up", 1, "done", ""), ("up", 2, "dropped", "admission")]
    assert all(j["start_ms"] == -1 for j in rec.jobs if j["status"] != "done")  # nothing refused ever ran
    assert len(rec.segments) == 3  # one block for each job done


def test_a_cascaded_frame_that_cannot_make_it_after_its_upstream_is_refused_before_anything_runs() -> None:
    # up 60 ms, down 60 ms, both due 100 ms after the message: down can never make it after up, so it is refused
    # when up is admitted (not run and dropped), and up alone completes
    up, down = Model("up", 10.0, (Variant("v"),), 2), Model("down", 10.0, (Variant("v"),), 2, upstream="up")
    rec = _live(ONE, (up, down), [[[30.0, 30.0]], [[30.0, 30.0]]], [(0.0, ["up"]), (500.0, ["up"])])
    assert _fates(rec) == [("down", 0, "dropped", "admission"), ("down", 1, "dropped", "admission"),
                           ("up", 0, "done", ""), ("up", 1, "done", "")]
    assert {s["model"] for s in rec.segments} == {"up"}
    refused = [j for j in rec.jobs if j["model"] == "down"]
    assert [j["end_ms"] for j in refused] == [0.0, 500.0]  # answered at the message, not when up ended


def test_admission_counts_each_accelerator_at_its_speed() -> None:
    # a fast (10 ms) and a slow (90 ms) accelerator, 40-ms deadlines, a burst of 8 jobs: at most 4 can make it,
    # all on the fast one; spreading the work evenly over both as if both were fast would let in 7 (3 to miss)
    m = Model("m", 25.0, (Variant("v"),), 1)
    rec = _live(TWO, (m,), [[[10.0], [90.0]]], [(0.0, ["m"])] * 8)
    refused = sorted(j["frame"] for j in rec.jobs if j["reason"] == "admission")
    assert refused == [4, 5, 6, 7]
    assert sum(j["status"] == "done" for j in rec.jobs) >= 3  # fcfs puts one on the slow accelerator: late


def test_an_admitted_job_with_more_work_gives_way_to_cheaper_ones_before_it_runs() -> None:
    # one accelerator; bulk 25 ms due 100 ms after its message, quick 5 ms due 40 ms after. Four bulk frames at 0
    # fill the accelerator to their deadline exactly (ends 25, 50, 75, 100). A quick frame at 1 and another at 2
    # each fit before bulk 1 (EDF), but either would push the last bulk past 100: protecting every admitted job
    # refuses both (4 jobs on time). Moore-Hodgson at release: the job with the most work among those due by the
    # first to end late gives way, bulk 3, which has not run: it is dropped at once (reason displaced) and both
    # quick frames are admitted: 5 jobs on time, and nothing that ran was lost.
    bulk = Model("bulk", 10.0, (Variant("v"),), 1)
    quick = Model("quick", 25.0, (Variant("v"),), 1)
    rec = _live(ONE, (bulk, quick), [[[25.0]], [[5.0]]],
                [(0.0, ["bulk"])] * 4 + [(1.0, ["quick"]), (2.0, ["quick"])], policy="edf")
    assert _fates(rec) == [("bulk", 0, "done", ""), ("bulk", 1, "done", ""), ("bulk", 2, "done", ""),
                           ("bulk", 3, "dropped", "displaced"), ("quick", 0, "done", ""), ("quick", 1, "done", "")]
    gone = next(j for j in rec.jobs if j["reason"] == "displaced")
    assert gone["start_ms"] == -1 and gone["end_ms"] == 1.0 and gone["energy_mj"] == 0  # at quick 0's release
    assert len(rec.segments) == 5  # every block that ran belongs to a job done
    # the new job gives way itself where it has the most work: a bulk frame at 1 is refused, nothing displaced
    more = _live(ONE, (bulk, quick), [[[25.0]], [[5.0]]], [(0.0, ["bulk"])] * 4 + [(1.0, ["bulk"])], policy="edf")
    assert [(j["frame"], j["reason"]) for j in more.jobs if j["status"] != "done"] == [(4, "admission")]


def _two_models(policy: str, frames: list[F], chain_ms: float) -> Records:
    """``bulk`` (4 blocks of 1 ms, 100-ms deadline) and ``urgent`` (1 block of 1 ms, 5-ms deadline) on one
    accelerator."""
    bulk = Model("bulk", 10.0, (Variant("v"),), 4)
    urgent = Model("urgent", 10.0, (Variant("v"),), 1, deadline_ms=5.0)
    costs = Costs([[[[1.0] * 4]], [[[1.0]]]], [[[[2.0] * 4]], [[[2.0]]]])
    return _replay(ONE, (bulk, urgent), costs, frames, policy, chain_ms=chain_ms)


def test_blocks_run_in_one_go_end_at_the_next_boundary_once_a_job_waits() -> None:
    # bulk starts alone at 0 and runs its 4 blocks in one go; urgent comes at 1.5 ms and waits (one accelerator):
    # the run ends at the boundary of 2 ms, and EDF puts urgent first there, not at bulk's end (4 ms)
    frames = [F("bulk", 0, 0.0), F("urgent", 0, 1.5)]
    rec = _two_models("edf", frames, chain_ms=10.0)
    segs = [(s["model"], s["segment"], s["segments"], s["start_ms"], s["end_ms"], s["energy_mj"]) for s in rec.segments]
    assert segs == [("bulk", 0, 2, 0.0, 2.0, 4.0), ("urgent", 0, 1, 2.0, 3.0, 2.0), ("bulk", 2, 2, 3.0, 5.0, 4.0)]
    jobs = {j["model"]: j for j in rec.jobs}
    assert jobs["urgent"]["end_ms"] == 3.0 and jobs["urgent"]["status"] == "done"
    assert jobs["bulk"]["end_ms"] == 5.0 and jobs["bulk"]["energy_mj"] == 8.0  # every block counted once
    # one block at a time gives the same schedule (the decisions where they matter are the same)
    off = _two_models("edf", frames, chain_ms=0.0)
    assert {j["model"]: j["end_ms"] for j in off.jobs} == {"bulk": 5.0, "urgent": 3.0}
    # a policy that keeps bulk first (FIFO) still decides at the boundary: bulk's next block, then urgent
    fifo = _two_models("fcfs", frames, chain_ms=10.0)
    assert [(s["model"], s["segment"], s["segments"]) for s in fifo.segments][:2] == [("bulk", 0, 2), ("bulk", 2, 1)]
