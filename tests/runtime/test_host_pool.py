"""Memory: accelerators that compute on the host share one interpreter per segment file, and only each model's
default variant is loaded before READY (the others on first use)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from hal.devices import open_device
from hal.emulated import CostTable, EmulatedDevice, HostInterpreters
from edge_sdrm3.data import data_path

from runtime_harness import make_workdir, Running, write_config

DIGITS = data_path("models", "digits", "digits_w100.tflite")
X = np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32)


def _direct(path: Path) -> list[np.ndarray]:
    dev = open_device("cpu:1")
    try:
        return dev.load(path).invoke([X])
    finally:
        dev.close()


def test_emulated_devices_and_the_cpu_share_one_interpreter_and_free_it_with_the_last_view() -> None:
    pool = HostInterpreters(threads=1)
    cost = CostTable({"digits_w100": (0.001, 0.001)})
    npu = EmulatedDevice("npu0", cost, compute="always", shared=pool)
    gpu = EmulatedDevice("gpu0", cost, compute="always", shared=pool)
    a, b = npu.load(DIGITS), gpu.load(DIGITS)
    cpu_view = pool.view(DIGITS, "cpu")
    assert pool.loads == 1 and len(pool) == 1
    want = _direct(DIGITS)
    for got in (a.run([X]).outputs, b.run([X]).outputs, cpu_view.run([X]).outputs):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    npu.close()
    cpu_view.close()
    assert len(pool) == 1  # gpu0 still uses it
    gpu.close()
    assert len(pool) == 0
    again = pool.view(DIGITS, "cpu")  # loaded afresh after it was freed
    assert pool.loads == 2
    again.close()


def test_a_file_too_small_to_share_between_threads_gets_one_thread_the_others_the_pools() -> None:
    w50 = data_path("models", "digits", "digits_w50.tflite")
    pool = HostInterpreters(threads=2, single={DIGITS})
    small, other = pool.view(DIGITS, "cpu"), pool.view(w50, "cpu")
    assert small.threads == 1 and other.threads == 2
    np.testing.assert_allclose(small.run([X]).outputs[0], _direct(DIGITS)[0], rtol=1e-6)
    np.testing.assert_allclose(other.run([X]).outputs[0], _direct(w50)[0], rtol=1e-5)
    small.close()
    other.close()


def test_the_service_runs_segments_profiled_under_0_1_ms_on_one_thread(tmp_path: Path) -> None:
    files = make_workdir(tmp_path)
    run = Running(write_config(tmp_path, files, workload={"cpu_threads": 2}))
    try:
        pool = run.svc.host_pool
        assert pool.threads == 2 and pool._entries  # digits' segments: a few microseconds each on the cpu
        assert {e.loaded.threads for e in pool._entries.values()} == {1}
        run.send("cam0", 0, [X], models=["digits"])
        res = [r for r in run.results(until=lambda rs: any(h.get("model") == "digits" for h, _ in rs))
               if r[0].get("model") == "digits"]
        assert res and res[0][0]["status"] in ("done", "late"), res[0][0]
    finally:
        assert run.stop() == 0


def test_when_idle_times_only_while_another_accelerator_holds_the_shared_interpreter() -> None:
    pool = HostInterpreters(threads=1)
    npu = EmulatedDevice("npu0", CostTable({"digits_w100": (0.001, 0.001)}), compute="when-idle", shared=pool)
    model = npu.load(DIGITS)
    cpu_view = pool.view(DIGITS, "cpu")
    assert model.run([X]).computed
    entry = cpu_view._entry
    with entry.lock:  # the cpu accelerator is invoking it
        busy = model.run([X])
        assert cpu_view.try_invoke([X]) is None
    assert not busy.computed and busy.outputs is None and busy.latency_ms == 0.001
    # 'always' waits for the lock instead
    entry.lock.acquire()
    threading.Timer(0.05, entry.lock.release).start()
    assert model.run([X], compute="always").computed
    npu.close()
    cpu_view.close()


def _expected_segments(svc, only_default: bool) -> set[str]:
    wl = svc.wl
    return {str(p.resolve()) for per in wl.files for v, vf in enumerate(per) if v == 0 or not only_default
            for p in vf.segments}


def test_service_loads_default_variants_once_for_all_accelerators_and_others_on_first_use(tmp_path: Path) -> None:
    # a generous deadline: the first job of the lighter variant pays for loading it, on a loaded machine too
    files = make_workdir(tmp_path, deadline_ms=2000.0)
    run = Running(write_config(tmp_path, files))
    try:
        svc = run.svc
        pool = svc.host_pool
        assert set(pool._entries) == _expected_segments(svc, only_default=True)  # one copy for cpu and npu0
        n0 = len(pool)
        assert all(w.loaded_count() == n0 for w in svc.workers)
        # a lighter variant is loaded on first use when a job runs it (here: the frames name no variant, so
        # force the selector's choice) and its results equal a direct run of that variant's file
        svc.loop.call_soon_threadsafe(lambda: setattr(svc.engine.policy.policy.selector, "variant", [2, 2]))
        time.sleep(0.2)
        run.send("cam0", 0, [X], models=["digits"])
        res = [r for r in run.results(until=lambda rs: any(h.get("model") == "digits" for h, _ in rs))
               if r[0].get("model") == "digits"]
        assert res and res[0][0]["variant"] == "w50" and res[0][0]["status"] in ("done", "late"), res[0][0]
        np.testing.assert_allclose(res[0][1][0], _direct(data_path("models", "digits", "digits_w50.tflite"))[0],
                                   rtol=1e-5)
        assert len(pool) > n0
    finally:
        assert run.stop() == 0
    assert len(svc.host_pool) == 0  # every interpreter freed at shutdown


def test_preload_true_loads_every_variant_before_ready(tmp_path: Path, files: dict) -> None:
    run = Running(write_config(tmp_path, files, workload={"preload": True}))
    try:
        assert set(run.svc.host_pool._entries) == _expected_segments(run.svc, only_default=False)
    finally:
        assert run.stop() == 0
