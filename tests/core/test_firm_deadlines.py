"""Firm deadlines (DESIGN.md §6), for every registered policy: at its deadline a job is dropped with
reason ``deadline`` — at once if it waits in the queue (started or not), at its next block boundary if it
runs (the block in flight counts; the rest is not run). ``drop_strict`` keeps XRBench's own rule.

Platform: two accelerators; model ``m`` has three blocks of 10 ms on either (energy = latency).
"""
from __future__ import annotations

import pytest

from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies import make_policy, policy_names
from edge_sdrm3.core.types import DONE, DROPPED, INF, LATE, Accelerator, Costs, Job, Model, Platform, Variant

PLATFORM = Platform("two", (Accelerator("acc0", "emulated"), Accelerator("acc1", "emulated")))
MODEL = Model("m", 10.0, (Variant("full"), Variant("half", 0.5, 0.9)), 3)


def setup(policy: str, lat: list[list[float]] | None = None, strict: bool = False) -> tuple[Dispatcher, Costs]:
    lat = lat or [[10.0, 10.0, 10.0], [10.0, 10.0, 10.0]]
    table = [[[list(r) for r in lat], [[x / 2 for x in r] for r in lat]]]
    costs = Costs(table, [[[list(r) for r in v] for v in table[0]]])
    disp = Dispatcher(PLATFORM, (MODEL,), costs, make_policy(policy), fallback=make_policy("fcfs"), drop_strict=strict)
    return disp, costs


@pytest.mark.parametrize("policy", policy_names())
def test_a_running_job_that_passes_its_deadline_is_dropped_at_its_next_block_boundary(policy: str) -> None:
    # deadline 45: at best the job ends at 30, so every policy starts it at 0 (on one accelerator,
    # one block, or all three at once for whole-model policies)
    disp, costs = setup(policy)
    job = Job(1, MODEL, 0, 0, 0.0, 45.0, costs)
    disp.release(job)
    starts, ended = disp.schedule(0.0)
    assert ended == [] and len(starts) == 1
    s = starts[0]
    # the block(s) overran (a real device slower than predicted): the driver reports them done at 50,
    # past the deadline. Whatever the policy, the job ends there: dropped (for deadline) if blocks were
    # left, late if none was
    c = disp.segments_done(s.acc, 50.0, energy_mj=7.0)
    assert c is not None, "an unfinished job past its deadline must not go back to the queue"
    if s.n < 3:
        assert (c.status, c.reason, c.end_ms) == (DROPPED, "deadline", 50.0)
        assert c.energy_mj == 7.0  # the block in flight counts
        assert job.seg == s.n  # the rest was not run
    else:
        assert c.status == LATE
    assert disp.ready == [] and disp.schedule(50.0) == ([], [])
    assert disp.counters.drops_deadline == (1 if s.n < 3 else 0)


@pytest.mark.parametrize("policy", policy_names())
def test_a_started_job_waiting_in_the_queue_is_dropped_at_its_deadline(policy: str) -> None:
    # blocks 1 and 2 run only on acc0 (inf on acc1). Block 0 is done at 10, on time; then acc0 is down
    # (unhealthy), so the job's next block can run nowhere. The dispatcher must wake at its deadline (40)
    # and drop it there; a policy may drop it sooner (hopeless), never later, and it never runs again.
    lat = [[10.0, 10.0, 10.0], [10.0, INF, INF]]
    disp, costs = setup(policy, lat)
    job = Job(1, MODEL, 0, 0, 0.0, 40.0, costs)
    disp.release(job)
    starts, _ = disp.schedule(0.0)
    assert [(s.job.id, s.n) for s in starts] in ([(1, 1)], [(1, 3)])
    if starts[0].n == 3:  # whole-model policies run it at once: nothing of it waits in a queue
        assert starts[0].acc == 0
        return
    a = starts[0].acc
    assert disp.segments_done(a, 10.0) is None  # block 0 done on time: back in the queue, started
    assert job.started and job in disp.ready
    disp.healthy[0] = False  # acc0 is down (as after Dispatcher.fail); only acc0 runs blocks 1 and 2
    starts, ended = disp.schedule(10.0)
    assert starts == []
    if ended:  # the policy dropped the hopeless job before its deadline
        assert [c.status for c in ended] == [DROPPED] and ended[0].end_ms == 10.0
        return
    assert disp.wake_at == 40.0, "the dispatcher must wake for a started job's deadline"
    starts, ended = disp.schedule(39.9)
    assert starts == [] and (ended == [] or ended[0].end_ms == 39.9)
    if not ended:
        starts, ended = disp.schedule(40.0)
        assert starts == [] and [(c.status, c.reason, c.end_ms) for c in ended] == [(DROPPED, "deadline", 40.0)]
    assert disp.ready == []


@pytest.mark.parametrize("policy", ["fcfs", "xrbench", "sdrm3"])
def test_xrbench_compat_keeps_its_own_rule(policy: str) -> None:
    # drop_strict (--compat xrbench): a running job is never cut at a block boundary, and only a queued job
    # that has not started is dropped, once now is past (not at) its deadline
    disp, costs = setup(policy, strict=True)
    job = Job(1, MODEL, 0, 0, 0.0, 45.0, costs)
    disp.release(job)
    s = disp.schedule(0.0)[0][0]
    c = disp.segments_done(s.acc, 50.0)
    if s.n == 3:
        assert c is not None and c.status == LATE
    else:
        assert c is None and job in disp.ready  # it goes on
    disp2, costs2 = setup(policy, strict=True)
    other = Job(2, MODEL, 0, 1, 50.0, 60.0, costs2)
    disp2.healthy[0] = disp2.healthy[1] = False  # nothing can run it
    disp2.release(other)
    assert disp2.schedule(60.0)[1] == []
    assert [c.reason for c in disp2.schedule(60.5)[1]] == ["deadline"]


def test_a_job_finishing_its_last_block_at_its_deadline_is_on_time() -> None:
    disp, costs = setup("fcfs")
    job = Job(1, MODEL, 0, 0, 0.0, 30.0, costs)
    disp.release(job)
    for t in (0.0, 10.0, 20.0):
        (s,), _ = disp.schedule(t)
        c = disp.segments_done(s.acc, t + 10.0)
    assert c is not None and c.status == DONE
