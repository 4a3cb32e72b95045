"""The dispatcher: validation of decisions with FIFO fallback, deadline drops, policy drops."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from edge_sdrm3.core.dispatcher import Dispatcher, View
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.types import Accelerator, Costs, Drop, Job, Model, Platform, Run, Variant


class Scripted:
    """A policy whose decisions are given by the test."""

    name = "scripted"

    def __init__(self, fn: Callable[[View, float], list]) -> None:
        self.fn = fn

    def pick(self, view: View, now: float) -> list:
        return self.fn(view, now)


# two accelerators; one model with two segments of 10 ms on acc0, 20 ms on acc1, and a second,
# smaller variant (5 / 10 ms)
PLATFORM = Platform("test", (Accelerator("acc0", "emulated"), Accelerator("acc1", "emulated")))
MODEL = Model("m", 10.0, (Variant("full"), Variant("half", 0.5, 0.9)), 2)
LAT = [[[[10, 10], [20, 20]], [[5, 5], [10, 10]]]]


def setup(fn: Callable[[View, float], list], n_acc: int = 2) -> tuple[Dispatcher, Costs, Platform]:
    platform = Platform("test", PLATFORM.accelerators[:n_acc])
    lat = [[[row for row in v[:n_acc]] for v in LAT[0]]]
    costs = Costs([[[list(r) for r in v] for v in lat[0]]], [[[list(r) for r in v] for v in lat[0]]])
    disp = Dispatcher(platform, (MODEL,), costs, Scripted(fn), fallback=make_policy("fcfs"))
    return disp, costs, platform


def job(costs: Costs, id: int, release: float = 0.0, deadline: float = 100.0) -> Job:
    return Job(id, MODEL, 0, id, release, deadline, costs)


def test_valid_decisions_are_applied() -> None:
    disp, costs, _ = setup(lambda v, now: [Run(j, 1) for j in v.ready[:1]])
    disp.release(job(costs, 0))
    starts, ended = disp.schedule(0)
    assert [(s.job.id, s.acc, s.first_seg, s.n, s.end_ms) for s in starts] == [(0, 1, 0, 1, 20)]
    assert ended == [] and disp.counters.invalid_decisions == 0 and disp.counters.fallbacks == 0


@pytest.mark.parametrize("bad", ["busy accelerator", "unknown job", "variant change after start",
                                 "accelerator out of range"])
def test_invalid_decision_is_rejected_and_the_step_falls_back_to_fifo(bad: str) -> None:
    script: dict[str, Callable[[View, float], list]] = {"now": lambda v, now: [Run(v.ready[0], 0)]}
    disp, costs, _ = setup(lambda v, now: script["now"](v, now))
    first = job(costs, 0)
    disp.release(first)
    assert [(s.job.id, s.acc) for s in disp.schedule(0)[0]] == [(0, 0)]  # acc0 busy until 10
    if bad == "variant change after start":
        disp.segments_done(0, 10)  # first is back in the queue, segment 1 next
        script["now"] = lambda v, now: [Run(first, 0, variant=1)]
        now, expect = 10.0, (0, 0)  # FIFO runs first's segment 1 on acc0, variant unchanged
    else:
        second = job(costs, 1)
        disp.release(second)
        bad_run = {
            "busy accelerator": Run(second, 0),
            "unknown job": Run(job(costs, 7), 1),
            "accelerator out of range": Run(second, 2),
        }[bad]
        script["now"] = lambda v, now: [bad_run]
        now, expect = 1.0, (1, 1)  # FIFO: second to the only free accelerator, acc1
    starts, _ = disp.schedule(now)
    assert disp.counters.invalid_decisions == 1
    assert disp.counters.fallbacks == 1
    assert [(s.job.id, s.acc) for s in starts] == [expect]
    assert first.variant == 0


def test_invalid_decision_after_a_valid_one_keeps_the_valid_one() -> None:
    disp, costs, _ = setup(lambda v, now: [Run(v.ready[0], 1), Run(v.ready[1], 1)])  # acc1 twice
    for i in range(2):
        disp.release(job(costs, i))
    starts, _ = disp.schedule(0)
    assert disp.counters.invalid_decisions == 1
    assert [(s.job.id, s.acc) for s in starts] == [(0, 1), (1, 0)]  # the second via FIFO


def test_queued_job_is_dropped_at_its_deadline_and_a_started_one_at_its_next_block_boundary() -> None:
    fifo = make_policy("fcfs")
    disp, costs, _ = setup(lambda v, now: fifo.pick(v, now), n_acc=1)
    late = job(costs, 0, deadline=8)  # two 10 ms segments: cannot finish by 8
    queued = job(costs, 1, deadline=5)
    disp.release(late)
    disp.release(queued)
    starts, ended = disp.schedule(0)
    assert [s.job.id for s in starts] == [0] and ended == []
    assert disp.wake_at == 5  # the queued job's deadline
    starts, ended = disp.schedule(5)
    assert starts == []
    assert [(e.frame, e.status, e.reason, e.end_ms, e.start_ms) for e in ended] == [(1, "dropped", "deadline", 5, -1)]
    assert disp.counters.drops_deadline == 1
    # segment 0 done at 10, past the deadline (8): the job ends there, its segment 1 is not run
    c = disp.segments_done(0, 10)
    assert c is not None and (c.status, c.reason, c.end_ms, c.energy_mj) == ("dropped", "deadline", 10, 10)
    assert disp.counters.drops_deadline == 2
    assert disp.schedule(10) == ([], []) and disp.ready == []


def test_job_completes_done_by_its_deadline() -> None:
    fifo = make_policy("fcfs")
    disp, costs, _ = setup(lambda v, now: fifo.pick(v, now))
    disp.release(job(costs, 0, deadline=20))
    disp.schedule(0)
    disp.segments_done(0, 10)
    disp.schedule(10)
    done = disp.segments_done(0, 20)
    assert done is not None and done.status == "done" and done.accelerator == "acc0"


def test_drop_decision_produces_a_dropped_completion() -> None:
    disp, costs, _ = setup(lambda v, now: [Drop(j, "overload") for j in v.ready if j.id == 0])
    disp.release(job(costs, 0))
    disp.release(job(costs, 1))
    starts, ended = disp.schedule(0)
    assert [(e.frame, e.status, e.reason) for e in ended] == [(0, "dropped", "overload")]
    assert disp.counters.drops_policy == 1 and disp.counters.invalid_decisions == 0
    # job 1 was left waiting with nothing running and no wake-up asked (a stall until the next
    # release, or until its deadline drops it): the FIFO fallback starts it
    assert [(s.job.id, s.acc) for s in starts] == [(1, 0)] and disp.counters.fallbacks == 1
    assert disp.ready == []


def test_drop_with_a_started_job_left_waiting_does_not_stall() -> None:
    # job 0 has run its first segment; the policy drops job 1 and says nothing for job 0, with every
    # accelerator idle and no Wake: job 0 has no deadline wake-up either (it started), so without
    # the fallback it would wait for the next release
    script: dict[str, Callable[[View, float], list]] = {"now": lambda v, now: [Run(v.ready[0], 0)]}
    disp, costs, _ = setup(lambda v, now: script["now"](v, now))
    first = job(costs, 0)
    disp.release(first)
    disp.schedule(0)
    disp.segments_done(0, 10)
    disp.release(job(costs, 1, release=10))
    script["now"] = lambda v, now: [Drop(j, "overload") for j in v.ready if j.id == 1]
    starts, ended = disp.schedule(10)
    assert [(e.frame, e.status) for e in ended] == [(1, "dropped")]
    assert [(s.job.id, s.first_seg) for s in starts] == [(0, 1)]
