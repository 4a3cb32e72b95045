"""summarize() on tiny hand-made runs: every expected number is worked out in the comments."""
import math

import pytest

from edge_sdrm3.core.metrics import ModelInfo, percentile, rt_score, summarize
from edge_sdrm3.core.types import Completion

# Model A: two variants (relative accuracy 1.0, 0.9), reference energy 10 mJ per frame.
# Model B: one variant, reference energy 20 mJ per frame.
# Model C: declared but has no due frame at all (must not enter the XRBench mean).
MODELS = [ModelInfo("A", (1.0, 0.9), 10.0), ModelInfo("B", (1.0,), 20.0), ModelInfo("C", (1.0,), 5.0)]


def C(model, frame, variant, release, start, end, deadline, energy, status):
    return Completion(model, frame, variant, "acc0" if start >= 0 else "", release, start, end, deadline,
                      energy, status)


RUN = [
    #  model frame var release start end  deadline energy status     latency (end - release)
    C("A", 0, 0, 0.0, 0.0, 4.0, 10.0, 8.0, "done"),  # 4,  delay -6  -> RT ~ 1
    C("A", 1, 1, 10.0, 10.0, 16.0, 20.0, 6.0, "done"),  # 6,  delay -4  -> RT ~ 1, narrow variant (0.9)
    C("A", 2, 0, 20.0, 20.0, 32.0, 30.0, 9.0, "late"),  # 12, delay +2  -> RT = 1/(1+e^30) ~ 9.4e-14
    C("A", 3, 0, 30.0, 30.0, 50.0, 50.0, 7.0, "done"),  # 20, delay 0   -> RT = 0.5 exactly
    C("A", 4, 0, 40.0, 45.0, 50.0, 50.0, 4.0, "dropped"),  # abandoned after 4 mJ of work: charged max(4, 10) = 10
    C("B", 0, 0, 0.0, 4.0, 10.0, 50.0, 15.0, "done"),  # 10, delay -40 -> RT ~ 1
    C("B", 1, 0, 50.0, 50.0, 60.0, 60.0, 25.0, "dropped"),  # spent 25 > ref 20: charged 25
]


def run(**kw):
    args = dict(accelerators=["acc0", "acc1"], busy_ms=[30.0, 10.0])
    args.update(kw)
    return summarize(RUN, MODELS, **args)


def test_counts_and_miss_rate():
    r = run()
    # due: A 5, B 2, C 0 -> N = 7; missed: A2 (late), A4 (dropped), B1 (dropped) -> M = 3
    assert r["frames_due"] == 7
    assert r["frames_missed"] == 3
    assert r["miss_rate"] == pytest.approx(3 / 7)
    assert r["models"]["A"]["due"] == 5 and r["models"]["A"]["missed"] == 2
    assert r["models"]["A"]["miss_rate"] == pytest.approx(0.4)
    assert r["models"]["B"]["due"] == 2 and r["models"]["B"]["missed"] == 1
    assert r["models"]["C"]["due"] == 0 and r["models"]["C"]["miss_rate"] == 0.0


def test_energy_charges_reference_for_frames_that_did_not_complete():
    r = run()
    # A: 8 + 6 + 9 + 7 (completed, what they spent) + max(4, 10) (dropped) = 40
    # B: 15 (completed) + max(25, 20) (dropped) = 40
    assert r["models"]["A"]["energy_mj"] == pytest.approx(40.0)
    assert r["models"]["B"]["energy_mj"] == pytest.approx(40.0)
    assert r["models"]["C"]["energy_mj"] == 0.0
    assert r["energy_mj"] == pytest.approx(80.0)
    # E_ref = 5 frames x 10 + 2 frames x 20 = 90 (C has no due frame)
    assert r["energy_ref_mj"] == pytest.approx(90.0)
    assert r["idle_energy_mj"] == 0.0


def test_uxcost():
    r = run()
    # (E / E_ref) * (M + 1) / (N + 1) = (80 / 90) * 4 / 8 = 0.444...
    assert r["uxcost"] == pytest.approx(80 / 90 * 4 / 8)


def test_dropping_everything_is_not_free():
    # three frames of A, all dropped without running: E = 3 x 10 (reference) = E_ref, M = N = 3
    # UXCost = 1 * 4 / 4 = 1.0; the same frames all done on time at their reference energy: 1 * 1 / 4
    dropped = [C("A", f, 0, 10.0 * f, -1.0, 10.0 * f + 10, 10.0 * f + 10, 0.0, "dropped") for f in range(3)]
    done = [C("A", f, 0, 10.0 * f, 10.0 * f, 10.0 * f + 1, 10.0 * f + 10, 10.0, "done") for f in range(3)]
    rd = summarize(dropped, MODELS[:1], accelerators=["acc0"], busy_ms=[0.0])
    ro = summarize(done, MODELS[:1], accelerators=["acc0"], busy_ms=[3.0])
    assert rd["energy_mj"] == pytest.approx(30.0)
    assert rd["uxcost"] == pytest.approx(1.0)
    assert ro["uxcost"] == pytest.approx(0.25)
    assert rd["xrbench_score"] == 0.0
    assert rd["accuracy"] == 0.0  # no completed frame


def test_xrbench_score_per_model_and_overall():
    r = run()
    # A: sum over completed of RT * (1500 - E) / 1500
    #    = (1492 + 1494 + ~0 * 1491 + 0.5 * 1493) / 1500 = 3732.5 / 1500 = 2.48833...
    #    / due 5 * (1 - drop rate 1/5) * 100 = 2.48833 / 5 * 0.8 * 100 = 39.81333...
    a = 100 * (1492 + 1494 + 0.5 * 1493) / 1500 / 5 * 0.8
    assert a == pytest.approx(39.813333, abs=1e-5)
    assert r["models"]["A"]["xrbench_score"] == pytest.approx(a, abs=1e-9)
    # B: 1485 / 1500 = 0.99, / due 2 * (1 - 1/2) * 100 = 24.75
    assert r["models"]["B"]["xrbench_score"] == pytest.approx(24.75, abs=1e-9)
    assert r["models"]["C"]["xrbench_score"] == 0.0
    # overall: mean over the models with a due frame (A, B; not C) = (39.8133 + 24.75) / 2 = 32.2817
    assert r["xrbench_score"] == pytest.approx((a + 24.75) / 2, abs=1e-9)


def test_xrbench_parameters_k_and_emax():
    # one frame, done 0.1 ms late with 100 mJ: RT = 1 / (1 + e^(k * 0.1)), EN = (E_max - 100) / E_max
    one = [C("B", 0, 0, 0.0, 0.0, 10.1, 10.0, 100.0, "late")]
    r = summarize(one, MODELS[1:2], accelerators=["acc0"], busy_ms=[10.1])
    # k = 15: RT = 1 / (1 + e^1.5) = 0.182426; EN = 1400 / 1500; x 100 = 17.0264
    assert r["xrbench_score"] == pytest.approx(100 / (1 + math.exp(1.5)) * 1400 / 1500, rel=1e-9)
    r = summarize(one, MODELS[1:2], accelerators=["acc0"], busy_ms=[10.1], k=10.0, e_max_mj=200.0)
    # k = 10: RT = 1 / (1 + e^1) = 0.268941; EN = 100 / 200 = 0.5; x 100 = 13.447
    assert r["xrbench_score"] == pytest.approx(100 / (1 + math.e) * 0.5, rel=1e-9)
    assert rt_score(0.0) == 0.5
    assert rt_score(1000.0) == 0.0  # no overflow far past the deadline


def test_accuracy_from_variant_accuracies():
    r = run()
    # completed frames: A0 (variant 0: 1.0), A1 (variant 1: 0.9), A2 (late still served: 1.0), A3 (1.0),
    # B0 (1.0); dropped frames do not count -> 4.9 / 5 = 0.98
    assert r["accuracy"] == pytest.approx(0.98)


def test_latency_percentiles_nearest_rank():
    r = run()
    # A latencies of completed frames, sorted: [4, 6, 12, 20]
    # p50: rank ceil(0.50 * 4) = 2 -> 6 (interpolation would give 9); p99: rank ceil(0.99 * 4) = 4 -> 20
    assert r["models"]["A"]["p50_ms"] == 6.0
    assert r["models"]["A"]["p99_ms"] == 20.0
    # B: one completed frame, latency 10
    assert r["models"]["B"]["p50_ms"] == 10.0 and r["models"]["B"]["p99_ms"] == 10.0
    assert r["models"]["C"]["p50_ms"] == 0.0
    # percentile on 1..100: p50 = 50th value, p99 = 99th value, p100 = max
    xs = [float(i) for i in range(1, 101)]
    assert (percentile(xs, 50), percentile(xs, 99), percentile(xs, 100)) == (50.0, 99.0, 100.0)


def test_utilisation_and_idle_energy():
    # run length = max(duration 100, last end 60) = 100 ms; busy 30 and 10 ms
    r = run(idle_power_mw=[100.0, 50.0], duration_ms=100.0)
    assert r["makespan_ms"] == 100.0
    assert r["utilization"] == {"acc0": pytest.approx(0.3), "acc1": pytest.approx(0.1)}
    # idle energy = (100 mW x 70 ms + 50 mW x 90 ms) / 1000 = (7000 + 4500) / 1000 = 11.5 mJ
    assert r["idle_energy_mj"] == pytest.approx(11.5)
    assert r["energy_mj"] == pytest.approx(80.0 + 11.5)
    # UXCost = (91.5 / 90) * 4 / 8 = 0.508333
    assert r["uxcost"] == pytest.approx(91.5 / 90 * 0.5)


def test_run_length_extends_to_last_completion():
    # duration 40 ms but the last frame ends at 60 ms: utilisation over 60 ms, idle over 60 - busy
    r = run(idle_power_mw=[1000.0, 0.0], duration_ms=40.0)
    assert r["makespan_ms"] == 60.0
    assert r["utilization"]["acc0"] == pytest.approx(30 / 60)
    # 1000 mW x (60 - 30) ms / 1000 = 30 mJ
    assert r["idle_energy_mj"] == pytest.approx(30.0)
