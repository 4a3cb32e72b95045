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
