"""What the dispatcher must refuse whatever a policy says: an unhealthy accelerator, a segment an accelerator
cannot run, and a retry after the job's deadline (the one-block common decision goes through a fast check, so
each case is a one-segment Run, the decision that takes it)."""
from __future__ import annotations

from edge_sdrm3.core.dispatcher import Dispatcher, View
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.core.types import INF, Accelerator, Costs, Job, Model, Platform, Run, Variant

PLATFORM = Platform("test", (Accelerator("acc0", "emulated"), Accelerator("acc1", "emulated")))
MODEL = Model("m", 10.0, (Variant("full"),), 2)


class Always:
    """Runs the first ready job's next segment on one accelerator, whatever its state."""

    name = "always"

    def __init__(self, acc: int) -> None:
        self.acc = acc

    def pick(self, view: View, now: float) -> list:
        return [Run(view.ready[0], self.acc)] if view.ready else []


def dispatcher(policy, lat0: list[float] | None = None) -> tuple[Dispatcher, Costs]:
    """acc0 runs each segment in 10 ms (or ``lat0``), acc1 in 20 ms."""
    lat = [[[list(lat0 or [10.0, 10.0]), [20.0, 20.0]]]]
    costs = Costs(lat, [[[[1.0, 1.0], [1.0, 1.0]]]])
    return Dispatcher(PLATFORM, (MODEL,), costs, policy, fallback=make_policy("fcfs")), costs


def test_a_run_on_an_unhealthy_accelerator_is_refused() -> None:
    disp, costs = dispatcher(Always(0))
    assert disp.fail(0, 0.0, "broken") is None  # nothing ran there: acc0 is only marked unhealthy
    disp.release(Job(1, MODEL, 0, 0, 0.0, 100.0, costs))
    starts, ended = disp.schedule(0.0)
    assert disp.counters.invalid_decisions == 1 and disp.counters.fallbacks == 1
    assert [(s.job.id, s.acc) for s in starts] == [(1, 1)]  # the fallback ran it on the healthy one
    assert ended == [] and disp.running[0] is None


def test_a_run_of_a_segment_the_accelerator_cannot_run_is_refused() -> None:
    disp, costs = dispatcher(Always(0), lat0=[INF, 10.0])  # acc0 cannot run segment 0
    disp.release(Job(1, MODEL, 0, 0, 0.0, 100.0, costs))
    starts, _ = disp.schedule(0.0)
    assert disp.counters.invalid_decisions == 1
    assert [(s.job.id, s.acc, s.end_ms) for s in starts] == [(1, 1, 20.0)]
    # its next segment runs on acc0: the same decision is valid there now
    assert disp.segments_done(1, 20.0) is None
    starts, _ = disp.schedule(20.0)
    assert [(s.job.id, s.acc, s.first_seg) for s in starts] == [(1, 0, 1)] and disp.counters.invalid_decisions == 1


def _failing_at(now: float) -> tuple[Dispatcher, object]:
    disp, costs = dispatcher(Always(0))
    disp.release(Job(1, MODEL, 0, 0, 0.0, 15.0, costs))  # deadline 15 ms
    disp.schedule(0.0)
    assert disp.segments_done(0, 10.0) is None
    disp.schedule(10.0)  # its second segment on acc0, until 20
    return disp, disp.fail(0, now, "accelerator-failed (HalError)", retry=True)


def test_a_failed_block_is_retried_elsewhere_before_the_deadline() -> None:
    disp, c = _failing_at(12.0)
    assert c is None and disp.counters.retries == 1
    assert [(j.id, j.seg) for j in disp.ready] == [(1, 1)]  # from the segment that failed


def test_a_failed_block_at_or_after_the_deadline_is_not_retried() -> None:
    for now in (15.0, 16.0):
        disp, c = _failing_at(now)
        assert c is not None and (c.status, c.reason, c.end_ms) == ("failed", "accelerator-failed (HalError)", now)
        assert disp.counters.retries == 0 and disp.ready == []
