"""The cost estimator (core/estimator.py): the profile as prior, every measured block updates it, a drift is followed
within a second, and the cost tables (what the policies read) follow in batches."""
from __future__ import annotations


import numpy as np
import pytest

from edge_sdrm3.core.estimator import Estimator
from edge_sdrm3.core.types import INF, Costs, Job, Model, Variant
from edge_sdrm3.data import data_path
from hal.emulated import Cost, EmulatedDevice


class Throttled:
    """An emulated accelerator's cost model whose speed changes while it runs (thermal throttling)."""

    def __init__(self, latency_ms: float) -> None:
        self.latency_ms = latency_ms

    def __call__(self, key: str, host_ms: float | None) -> Cost:
        return Cost(self.latency_ms, self.latency_ms * 0.5)


def _costs(lat: list[float], n_acc: int = 1) -> Costs:
    return Costs([[[list(lat) for _ in range(n_acc)]]], [[[[x * 0.5 for x in lat] for _ in range(n_acc)]]])


def test_a_real_emulated_device_slowed_down_mid_run_is_followed_within_a_second() -> None:
    """The device's own timing of each run (an emulated device reports its modelled latency) drives a clock that
    advances by it, so the check does not depend on how loaded the host running the test is."""
    model = Throttled(4.0)
    dev = EmulatedDevice("npu", model, compute="never")
    loaded = dev.load(data_path("models", "digits", "digits_w25.tflite"), key="digits/w25/0")
    costs = _costs([5.0])  # the profile's prior is off by 25%
    est = Estimator(costs, tau_ms=200.0, flush_ms=20.0)
    clock = [0.0]

    def run_for(ms: float) -> list[tuple[float, float, float]]:
        out = []
        end = clock[0] + ms
        while clock[0] < end:
            r = loaded.run(None)
            clock[0] += r.latency_ms
            est.observe(0, 0, 0, 0, 1, r.latency_ms, clock[0])
            est.flush(clock[0])
            out.append((clock[0], r.latency_ms, costs.lat[0][0][0][0]))
        return out

    try:
        before = run_for(500.0)
        assert before[-1][2] == pytest.approx(4.0, rel=0.02)  # the prior has given way to what is measured
        model.latency_ms = 12.0  # throttled: 3x slower from now on
        t_change = clock[0]
        after = run_for(1200.0)
    finally:
        loaded.close()
        dev.close()
    assert all(x == pytest.approx(12.0) for _, x, _ in after)
    late = [lat for now, _, lat in after if now - t_change >= 1000.0]  # a second after the change
    assert late and all(lat == pytest.approx(12.0, rel=0.05) for lat in late)
    assert est.fast_jumps >= 1  # a step this large takes the fast path, not only the smoothing


def test_a_measured_block_is_shared_among_its_segments_and_queued_jobs_see_the_new_costs() -> None:
    costs = _costs([1.0, 3.0], n_acc=2)
    m = Model("m", 10.0, (Variant("v", 1.0, 1.0),), 2)
    job = Job(1, m, 0, 0, 0.0, 100.0, costs)  # queued before anything was learned
    assert job.rem_best[0] == 4.0 and job.rem_on[0][0] == 4.0
    est = Estimator(costs, tau_ms=100.0, flush_ms=50.0, fast_after=1)
    est.observe(0, 0, 0, 0, 2, 8.0, 10.0)  # both segments in one go on accelerator 0: twice as slow as modelled
    assert est.flush(10.0) == [((0, 0, 0, 0), 2.0, 0.5), ((0, 0, 0, 1), 6.0, 1.5)]
    assert costs.lat[0][0][0] == [2.0, 6.0]
    assert job.rem_on[0][0] == 8.0  # the job's rows were updated in place
    assert job.rem_best[0] == 4.0  # accelerator 1 is now the best: its prior stands
    est.observe(0, 0, 1, 0, 1, 5.0, 20.0)
    assert est.flush(30.0) == []  # batched: within flush_ms of the last flush nothing is written
    assert costs.lat[0][0][1][0] == 1.0
    assert est.flush(60.0) != [] and costs.lat[0][0][1][0] > 1.0


def test_noise_is_smoothed_and_metered_energy_learned() -> None:
    costs = _costs([10.0])
    est = Estimator(costs, tau_ms=200.0, flush_ms=0.0)
    rng = np.random.default_rng(0)
    now = 0.0
    for _ in range(400):  # every 5 ms, +-20% noise around 11 ms, 7 mJ metered
        now += 5.0
        est.observe(0, 0, 0, 0, 1, 11.0 * (1 + 0.2 * (rng.random() - 0.5) * 2), now, energy_mj=7.0)
        est.flush(now)
    assert costs.lat[0][0][0][0] == pytest.approx(11.0, rel=0.05)
    assert costs.en[0][0][0][0] == pytest.approx(7.0, rel=0.01)
    assert est.fast_jumps == 0  # noise within fast_error never jumps


def test_an_unsupported_segment_is_never_learned() -> None:
    costs = Costs([[[[INF], [2.0]]]], [[[[INF], [1.0]]]])
    est = Estimator(costs, flush_ms=0.0)
    est.observe(0, 0, 1, 0, 1, 3.0, 1000.0)
    est.flush(1000.0)
    assert costs.lat[0][0][0][0] == INF and costs.best_lat[0][0][0] > 2.0


def test_one_stalled_block_moves_nothing_and_a_lasting_change_is_taken() -> None:
    """A block the host stalled once (40x its cost, after a long gap: the weight of a first sample) leaves the
    estimate where it was; the same slowness three times in a row is a change, taken at once."""
    costs = _costs([2.0])
    est = Estimator(costs, tau_ms=200.0, flush_ms=0.0)
    now = 0.0
    for _ in range(20):
        now += 10.0
        est.observe(0, 0, 0, 0, 1, 2.2, now)
    est.flush(now)
    assert costs.lat[0][0][0][0] == pytest.approx(2.2, rel=0.02)
    now += 5000.0
    est.observe(0, 0, 0, 0, 1, 80.0, now)  # stalled
    est.flush(now)
    assert costs.lat[0][0][0][0] == pytest.approx(2.2, rel=0.02) and est.held == 1
    for _ in range(3):
        now += 10.0
        est.observe(0, 0, 0, 0, 1, 2.1, now)
    for _ in range(3):  # slower for good
        now += 10.0
        est.observe(0, 0, 0, 0, 1, 6.0, now)
    est.flush(now)
    assert costs.lat[0][0][0][0] == pytest.approx(6.0) and est.fast_jumps == 1


def test_entries_not_measured_yet_carry_the_dispatch_overhead_measured_on_the_others() -> None:
    """A learned cost holds the service's dispatch overhead, a table cost does not: an accelerator never tried would
    look cheaper than it is. Blocks on ``a0`` take 12 ms of which the device 10 (the table's): the segments not run
    yet on ``a0``, and every segment of ``a1`` (never run), are then costed at the table plus those 2 ms, and the
    flush reports them (the job log records them, so a replay of it sees them too)."""
    costs = Costs([[[[10.0, 10.0, 10.0], [11.0, 11.0, 11.0]]]], [[[[5.0] * 3, [1.0] * 3]]])
    est = Estimator(costs, tau_ms=200.0, flush_ms=0.0)
    now = 0.0
    for _ in range(6):  # segment 0 on a0 only
        now += 500.0
        est.observe(0, 0, 0, 0, 1, 12.0, now, device_ms=10.0)
    changed = {k: lat for k, lat, _ in est.flush(now)}
    lat = costs.lat[0][0]
    assert lat[0][0] == pytest.approx(12.0, abs=0.1)  # measured
    assert lat[0][1:] == pytest.approx([12.0, 12.0]) and lat[1] == pytest.approx([13.0, 13.0, 13.0])
    assert {(0, 0, 1, s) for s in range(3)} | {(0, 0, 0, 1), (0, 0, 0, 2)} <= set(changed)
    assert costs.best_lat[0][0][0] == pytest.approx(12.0, abs=0.1)  # a0 stays the cheaper: a1 takes 13 ms there
    assert costs.en[0][0][1] == [1.0] * 3  # energy is the table's until metered
    now += 500.0
    est.observe(0, 0, 0, 0, 1, 12.01, now, device_ms=10.0)  # the overhead did not move: nothing more is rewritten
    assert {k for k, _, _ in est.flush(now)} <= {(0, 0, 0, 0)}
    for _ in range(6):  # a device slower than its table is not dispatch overhead: a1 is not charged for it
        now += 500.0
        est.observe(0, 0, 0, 1, 1, 30.0, now, device_ms=28.0)
    est.flush(now)
    assert lat[1] == pytest.approx([13.0, 13.0, 13.0]) and lat[0][2] == pytest.approx(12.0)
    now += 500.0
    est.observe(0, 0, 1, 1, 1, 11.5, now)  # a1 measured: that entry is learned from then on
    est.flush(now)
    assert lat[1][1] == pytest.approx(11.5, abs=0.2) and lat[1][0] == pytest.approx(13.0)


def _run(est: Estimator, a: int, seg: int, block_ms: float, now: float, n: int = 1, every: float = 10.0,
         device_ms: float | None = None) -> float:
    """``n`` blocks of segment ``seg`` on ``a``, one every ``every`` ms, each taking ``block_ms`` (of which the
    device ``device_ms``); the time after."""
    for _ in range(n):
        now += every
        est.observe(0, 0, a, seg, 1, block_ms, now, device_ms=device_ms)
        est.flush(now)
    return now


def test_a_host_stall_on_a_device_of_known_time_is_forgotten_once_nothing_runs_there() -> None:
    """Accelerator 0 is emulated and timed to its table (2 ms a segment, 2.3 ms with the service's part). Three
    blocks in a row stalled by the host (80 ms) raise segment 0's cost, as any lasting change does; the policy,
    seeing it dear, then runs that segment elsewhere, so it is not measured there again. On a device whose own time
    is known the raised cost is forgotten within a second: back to the table. Learned
    as on any other device it stays raised for good, and the work with it stays off the device."""
    known, whole = _costs([2.0, 2.0, 2.0]), _costs([2.0, 2.0, 2.0])
    ests = {"known": Estimator(known, tau_ms=200.0, flush_ms=20.0, known=(0,)),
            "whole": Estimator(whole, tau_ms=200.0, flush_ms=20.0)}
    for est in ests.values():
        now = _run(est, 0, 0, 2.3, 0.0, n=20, device_ms=2.0)
        now = _run(est, 0, 0, 80.0, now, n=3, device_ms=2.0)  # the host stalled
        assert est.costs.lat[0][0][0][0] > 50.0
        t_stall = now
        while now - t_stall < 1100.0:  # the segment now runs on no accelerator of these: only the flushes go on
            now += 50.0
            est.flush(now)
    assert known.lat[0][0][0] == [2.0, 2.0, 2.0]  # nothing measured there for a second: the table
    assert known.en[0][0][0] == [1.0] * 3  # energy: the table's
    assert whole.lat[0][0][0][0] > 50.0


def test_a_saturated_host_raises_every_cost_of_a_known_time_device_and_they_fall_back_once_it_is_quiet() -> None:
    """The service's overhead that lasts (an overloaded host: every block 6 ms over its table) is learned within a
    second: the segment measured learns it whole, the others of the accelerator are costed at the table plus it, and
    so are the other accelerator's not measured yet (its blocks go through the same service). Once the work is
    elsewhere (the policy placed it on accelerator 1) and the host quiet again, the costs of the known-time device
    are the table's again within a second: a stale overhead is forgotten, not kept for good."""
    costs = _costs([2.0, 4.0], n_acc=2)
    est = Estimator(costs, tau_ms=200.0, flush_ms=20.0, known=(0,))
    now = _run(est, 0, 0, 2.2, 0.0, n=10, device_ms=2.0)
    assert costs.lat[0][0][0] == pytest.approx([2.2, 4.2], rel=0.01)  # measured (smoothed), and not yet
    t0 = now
    while costs.lat[0][0][0][1] < 9.0:
        now = _run(est, 0, 0, 8.0, now, device_ms=2.0)  # 6 ms over its table
    assert now - t0 <= 1000.0 and costs.lat[0][0][0] == pytest.approx([8.0, 10.0])
    assert costs.lat[0][0][1] == pytest.approx([8.0, 10.0])  # nor run on the other one yet: it is no cheaper
    for _ in range(110):  # the host is quiet again, the blocks now on accelerator 1 only (learned whole)
        now = _run(est, 1, 0, 2.5, now)
    assert costs.lat[0][0][0] == [2.0, 4.0]  # nothing measured on 0 for over a second: the table
    assert costs.lat[0][0][1][0] == pytest.approx(2.5, rel=0.02)


def test_a_drifting_device_of_unknown_time_is_still_followed_beside_a_known_one() -> None:
    """A device whose time is real (a cpu, one emulated by computing always) is learned whole, as without known
    ones: a 3x slowdown is taken within a second, while the known-time device beside it keeps its table."""
    costs = _costs([3.0], n_acc=2)
    est = Estimator(costs, tau_ms=200.0, flush_ms=20.0, known=(1,))
    now = 0.0
    for _ in range(50):
        now = _run(est, 0, 0, 3.3, now, every=5.0)
        now = _run(est, 1, 0, 3.0, now, every=5.0)
    assert costs.lat[0][0][0][0] == pytest.approx(3.3, rel=0.02)
    t_change = now
    while now - t_change < 1000.0:
        now = _run(est, 0, 0, 10.0, now, every=5.0)  # throttled
        now = _run(est, 1, 0, 3.0, now, every=5.0)
    assert costs.lat[0][0][0][0] == pytest.approx(10.0, rel=0.05) and costs.lat[0][0][1][0] == 3.0
