"""The accelerator worker is the same code for every kind of device: the host cpu and an emulated npu of the test
platform, opened as the service opens them (open_worker, one host interpreter pool), run the digits model to the
same outputs, are charged energy the same way (by hal), and are probed the same way."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_harness import ROOT, make_workdir, write_config

from edge_sdrm3.runtime.config import load_config
from edge_sdrm3.runtime.executors import AcceleratorWorker, WorkerThread, host_pool, open_worker
from edge_sdrm3.runtime.service import load_workload
from hal.devices import open_device
from hal.emulated import FaultSpec, HostSlots

X = np.random.default_rng(1).random((1, 8, 8, 1), dtype=np.float32)


def _workers(tmp: Path, fault: FaultSpec | None = None) -> tuple[list[AcceleratorWorker], object, object]:
    cfg = load_config(write_config(tmp, make_workdir(tmp)))
    wl = load_workload(cfg)
    pool = host_pool(wl.spec.platform.accelerators, cfg.workload.cpu_threads)
    names = [[v.name for v in m.variants] for m in wl.models]
    workers = [open_worker(i, acc, wl.costs, wl.models, names, compute="always", host=HostSlots(),
                           cpu_threads=cfg.workload.cpu_threads, shared=pool, fault=fault if i == 1 else None)
               for i, acc in enumerate(wl.spec.platform.accelerators)]
    return workers, wl, pool


def _direct() -> np.ndarray:
    with open_device("cpu:1") as cpu:
        return cpu.load(ROOT / "edge_sdrm3" / "data" / "models" / "digits" / "digits_w100.tflite").invoke([X])[0]


def test_cpu_and_emulated_workers_run_charge_and_probe_alike(tmp_path: Path) -> None:
    workers, wl, pool = _workers(tmp_path)
    try:
        assert [w.kind for w in workers] == ["cpu", "emulated"]
        vf = wl.files[wl.index["digits"]][0]
        outputs = []
        for w in workers:
            assert w.probe() == ""  # nothing loaded yet: counts as working
            feeds = {vf.inputs[0].name: X}
            r = w.run(vf, 0, len(vf.segments), feeds, True)
            assert r.error == "" and r.computed and r.latency_ms > 0 and r.energy_mj > 0
            assert r.energy_source == {"cpu": "estimate:profiled-power*measured-time",
                                       "emulated": "model:emulated"}[w.kind]
            outputs.append(feeds[vf.outputs[0].name])
            # no inputs exist (an earlier stage was timed only): still timed and charged, no outputs added
            feeds = {vf.inputs[0].name: X}
            r = w.run(vf, 0, len(vf.segments), feeds, False)
            assert r.error == "" and not r.computed and r.latency_ms > 0 and r.energy_mj > 0
            assert set(feeds) == {vf.inputs[0].name}
            if w.kind == "emulated":  # the platform's modelled latency, whether computed or not
                modelled = sum(wl.costs.lat[wl.index["digits"]][0][w.index])
                assert math.isfinite(modelled) and r.latency_ms == pytest.approx(modelled)
            assert w.probe() == ""
            assert w.runs == 2 and w.failures == 0
        for got in outputs:
            np.testing.assert_allclose(got, _direct(), rtol=1e-5)
        assert pool.loads == len(vf.segments)  # one interpreter per segment file for both accelerators
    finally:
        for w in workers:
            w.close()
    assert len(pool) == 0


def test_a_failing_emulated_accelerator_reports_through_run_and_probe(tmp_path: Path) -> None:
    workers, wl, _ = _workers(tmp_path, FaultSpec(fail_rate=1.0))
    try:
        vf = wl.files[wl.index["digits"]][0]
        npu = workers[1]
        r = npu.run(vf, 0, len(vf.segments), {vf.inputs[0].name: X}, True)
        assert r.error.startswith("InvokeError: ") and "injected fault" in r.error and npu.failures == 1
        assert npu.probe().startswith("InvokeError: ")
        npu.forget([("digits", vf.variant)])
        assert npu.loaded_count() == 0 and npu.probe() == ""  # nothing loaded any more: nothing to fail
    finally:
        for w in workers:
            w.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is a Linux setting")
def test_worker_threads_sleep_on_time_so_an_emulated_segment_is_paced_to_its_modelled_latency(tmp_path: Path) -> None:
    import ctypes

    workers, _, _ = _workers(tmp_path)
    try:
        pr_get_timerslack = 30
        libc = ctypes.CDLL(None)
        assert libc.prctl(pr_get_timerslack, 0, 0, 0, 0) > 1  # this thread: the default (50 us)
        for w in workers:  # the worker's pacing sleeps end within the kernel's wake-up time, not 50 us late
            assert w.pool.submit(libc.prctl, pr_get_timerslack, 0, 0, 0, 0).result() == 1
    finally:
        for w in workers:
            w.close()


def test_an_accelerators_thread_runs_in_order_answers_futures_and_drops_what_waits_at_shutdown() -> None:
    import asyncio
    import threading

    w = WorkerThread("acc-test")
    seen: list[int] = []
    w.post(seen.append, 1)  # a block: no Future, it reports its end itself
    assert w.submit(lambda: seen.append(2) or len(seen)).result(5) == 2
    with pytest.raises(ZeroDivisionError):
        w.submit(lambda: 1 / 0).result(5)

    async def on_the_loop() -> str:  # what the service's loads and probes do
        return await asyncio.get_running_loop().run_in_executor(w, threading.current_thread)  # type: ignore[arg-type]

    assert asyncio.run(on_the_loop()).name == "acc-test"
    started, release = threading.Event(), threading.Event()
    w.post(lambda: (started.set(), release.wait(5)))
    w.post(seen.append, 3)
    waiting = w.submit(seen.append, 4)
    assert started.wait(5)
    w.shutdown(wait=False, cancel_futures=True)
    release.set()
    w.shutdown(wait=True)
    assert waiting.cancelled() and seen == [1, 2]
    with pytest.raises(RuntimeError):
        w.post(seen.append, 5)
