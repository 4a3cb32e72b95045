"""The accelerators at work: blocks launched on their worker threads, their ends reported to the engine, and
each accelerator's health (Band's lesson: a failing device marks itself unavailable and probes until it works).

- An invoke that raises marks the accelerator unhealthy (``Engine.fail``): no policy may use it, so the queued
  work goes to the others. The job it was running is *retried* from the segment that failed, elsewhere, when its
  deadline has not passed and another accelerator is healthy; otherwise it is recorded as ``failed`` with reason
  ``accelerator-failed (ErrorClass)``. The accelerator is probed (a tiny invoke in its worker thread) after
  ``[service] probe_initial_s``, then 2x, 4x ... that apart (at most ``probe_max_s``), and taken back
  (``Engine.recover``) when a probe works.
- An invoke still running after max(``hang_factor`` x its modelled latency, ``hang_min_ms``) — counted from the
  invoke's start, so a first-use model load does not count — is abandoned: its job is recorded as ``failed``
  with reason ``accelerator-hung`` (not retried: the stuck invoke still holds its buffers) and the accelerator is
  marked unhealthy. Python cannot interrupt a thread stuck in a driver, so the worker thread stays stuck and the
  accelerator stays unhealthy until that invoke returns; then it is probed as above. (A stuck real driver also
  delays shutdown until it returns or systemd's TimeoutStopSec= ends the process; an emulated hang ends at close.)
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.engine import Engine
from ..core.types import Start
from .config import Config, ServiceConfig
from .executors import AcceleratorWorker, SegmentRun, host_pool, open_worker, precise_sleeps, small_segments
from .workload import StartupError, Workload

log = logging.getLogger("edge_sdrm3.service")


async def open_workers(cfg: Config, wl: Workload, loop: asyncio.AbstractEventLoop,
                       workers: list[AcceleratorWorker]) -> Any:
    """One worker per accelerator, appended to ``workers`` as it opens (the caller closes them, also when this
    fails); returns the host interpreter pool they share (executors.py, Memory). Before READY=1
    every variant is loaded (``preload = true``), else each model's default one (variant 0, where every policy
    starts): the others on first use, in the worker thread."""
    from hal.emulated import HostSlots
    from hal.loaded import release_loaded_files

    host = HostSlots()
    accs = wl.spec.platform.accelerators
    shared = host_pool(accs, cfg.workload.cpu_threads, small_segments(accs, wl.costs, wl.files))
    vnames = [[v.name for v in m.variants] for m in wl.models]
    for i, acc in enumerate(wl.spec.platform.accelerators):
        fault = wl.spec.faults[i] if wl.spec.faults else None
        workers.append(open_worker(i, acc, wl.costs, wl.models, vnames, compute=cfg.workload.emulated_compute,
                                   host=host, cpu_threads=cfg.workload.cpu_threads, shared=shared, fault=fault))
        if fault is not None:
            log.warning("accelerator %s injects faults: %s", acc.id, fault)
    loads = []
    for i, w in enumerate(workers):
        runnable = [vf for m, per in enumerate(wl.files) for v, vf in enumerate(per)
                    if (cfg.workload.preload or v == 0) and all(math.isfinite(x) for x in wl.costs.lat[m][v][i])]
        loads.append(loop.run_in_executor(w.pool, w.preload, runnable))
    try:
        counts = await asyncio.gather(*loads)
    except Exception as e:  # noqa: BLE001 - a model a device refuses is fatal at startup
        raise StartupError(f"loading models: {e}") from None
    release_loaded_files()  # the segment files' pages: their weights are packed (hal.loaded)
    log.info("loaded %d segments on %d accelerators (%d host interpreters)", sum(counts), len(workers), len(shared))
    return shared


@dataclass
class Health:
    """One accelerator's state beside the engine's (which knows the block it runs and whether it is healthy)."""

    timer: asyncio.TimerHandle | None = None  # the hang check of the block in flight
    hung: Start | None = None  # the abandoned block its worker thread is stuck in
    probe_delay: float = 0.0  # the next probe's backoff (s); 0: none failed yet
    probing: bool = False  # a probe scheduled or running
    probes: int = 0
    last_error: str = ""
    cut: Start | None = None  # the blocks run in one go to end at their next boundary (another job waits)
    inline: int = 0  # blocks the event loop ran itself (Accelerators._inline)


class Accelerators:
    def __init__(self, workers: list[AcceleratorWorker], engine: Engine, wl: Workload, sv: ServiceConfig,
                 loop: asyncio.AbstractEventLoop, now: Callable[[], float], kick: Callable[[], None],
                 schedule: Callable[[float], None]) -> None:
        self.workers = workers
        self.engine = engine
        self.wl = wl
        self.sv = sv
        self.loop = loop
        self.now = now
        self.kick = kick  # a scheduling step soon
        self.schedule = schedule  # a scheduling step at once, as of the time given
        self.health = [Health() for _ in workers]
        self.closing = False
        engine.on_cut = self.cut
        if sv.inline_ms > 0:  # an emulated block the loop runs itself is paced by a sleep that ends on time here too
            precise_sleeps()

    def launch(self, s: Start) -> None:
        w = self.workers[s.acc]
        info = s.job.data
        vf = self.wl.files[s.job.m][s.job.variant]
        # several blocks in one go stop at a boundary past the job's firm deadline, as one at a time would
        until = time.monotonic() + (s.job.deadline - self.now()) / 1000.0 if s.n > 1 else None
        if (len(self.engine.inflight) == 1 and w.runs_inline(vf, s.first_seg, s.n, self.sv.inline_ms)
                and all(o.pool.idle for o in self.workers)):
            self._inline(w, s, vf, info.data.feeds, info.computed, until)
            return
        budget_ms = max(self.sv.hang_factor * (s.end_ms - s.start_ms), self.sv.hang_min_ms)
        self.health[s.acc].timer = self.loop.call_later(budget_ms / 1000.0, self._check_hang, s, budget_ms)
        w.pool.post(self._work, w, s, vf, info.data.feeds, info.computed, until)  # last (WallClock.step)

    def _inline(self, w: AcceleratorWorker, s: Start, vf: Any, feeds: dict, computed: bool,
                until: float | None) -> None:
        """A tiny block run by the event loop itself (:meth:`launch`: the only one in flight, no accelerator's
        thread at work, so no other thread touches an interpreter): a hand-off to the worker thread and back (a
        wake-up each way, each waiting for the GIL) costs more than such a block's work.
        Measured on the 2-core dev VM, digits' 4 blocks in one go (~0.14 ms of invokes), the services before and
        after side by side in turns: 0.16-0.31 ms less per frame at load averages 2-6 (tools/bench_service.py, part
        b, 0.56-0.63 -> 0.41-0.54 ms added at 6-8). Its end reaches the engine in the loop's next iteration, as a
        worker's does: the step that launched it finishes first, and a backlog of tiny blocks never recurses."""
        self.health[s.acc].inline += 1
        try:
            r, err = w.run(vf, s.first_seg, s.n, feeds, computed, until), ""
        except Exception as e:  # noqa: BLE001 - as in a worker thread: the block failed
            r, err = None, f"{type(e).__name__}: {e}"
        self.loop.call_soon(self.done, s, r, err)

    def cut(self, a: int) -> None:
        """The engine ends the blocks ``a`` runs in one go at their next boundary (another job waits): its worker
        runs no further block of them once the one in its hands ends (:meth:`AcceleratorWorker.run`'s ``stop``)."""
        self.health[a].cut = self.engine.inflight.get(a)

    def _work(self, w: AcceleratorWorker, s: Start, vf: Any, feeds: dict, computed: bool,
              until: float | None) -> None:
        """In ``w``'s thread: run the block, then hand its end to the event loop in one call. Not through
        ``run_in_executor``: its asyncio future wakes the loop for the future, and its done callback takes another
        loop iteration (measured on the 2-core dev VM: ~0.1 ms per block of the hand-off back)."""
        try:
            h = self.health[s.acc]
            stop = (lambda: h.cut is s) if s.n > 1 else None  # read between blocks: set by the event loop
            r, err = w.run(vf, s.first_seg, s.n, feeds, computed, until, stop), ""
        except Exception as e:  # noqa: BLE001 - the worker raised outside its own handling: the block failed
            r, err = None, f"{type(e).__name__}: {e}"
        try:
            self.loop.call_soon_threadsafe(self.done, s, r, err)
        except RuntimeError:  # the loop is closed (shutdown): the block was already recorded as abandoned
            pass

    def _in_flight(self, s: Start) -> bool:
        return self.engine.inflight.get(s.acc) is s

    def _check_hang(self, s: Start, budget_ms: float) -> None:
        """The hang timer of ``s``: abandon it if its invoke has run longer than ``budget_ms``, else look again
        when it would have (the worker may have spent the time loading a model, or between segments)."""
        a, h = s.acc, self.health[s.acc]
        if not self._in_flight(s) or self.closing:
            return
        since = self.workers[a].invoking_since
        ran_ms = (time.monotonic() - since) * 1000.0 if since is not None else 0.0
        if ran_ms < budget_ms:
            h.timer = self.loop.call_later(max(0.005, (budget_ms - ran_ms) / 1000.0), self._check_hang, s, budget_ms)
            return
        h.timer, h.hung = None, s
        self.workers[a].abandon = True  # a block of several segments runs no further one when the invoke returns
        h.last_error = f"hung: an invoke ran {ran_ms:.0f} ms (limit {budget_ms:.0f} ms)"
        log.error("accelerator %s hung on %s: its invoke has run %.0f ms (limit %.0f ms): job abandoned, accelerator "
                  "unhealthy until the invoke returns", self.workers[a].id, s.job, ran_ms, budget_ms)
        self.engine.fail(a, self.now(), "accelerator-hung")
        self.kick()

    def done(self, s: Start, r: SegmentRun | None, err: str = "") -> None:
        """A worker finished ``s`` (``r``, or ``err`` when it raised): the engine hears of it, the accelerator is
        scheduled again."""
        h = self.health[s.acc]
        if h.cut is s:
            h.cut = None
        if h.timer is not None and self._in_flight(s):
            h.timer.cancel()
            h.timer = None
        if not self._in_flight(s):
            if h.hung is s:  # a hung invoke returned at last: the thread is free, probe it
                h.hung = None
                log.warning("accelerator %s: the hung invoke returned; probing it", self.workers[s.acc].id)
                self.probe_later(s.acc, 0.0)
            return  # abandoned (hung, or at shutdown): already recorded
        now = self.now()
        if r is not None and r.error:
            err = r.error
        if err:
            h.last_error = err
            retried = self.engine.fail(s.acc, now, f"accelerator-failed ({err.split(':')[0]})", retry=True)
            log.error("accelerator %s failed %s: %s; the job is %s, the accelerator unhealthy until a probe works",
                      self.workers[s.acc].id, s.job, err, "retried elsewhere" if retried else "recorded as failed")
            self.probe_later(s.acc)
        else:
            assert r is not None
            self.engine.complete(s.acc, now, energy_mj=r.energy_mj, energy_source=r.energy_source,
                                 computed=r.computed, ran=r.ran if r.ran < s.n else None, device_ms=r.wall_ms)
        self.schedule(now)  # at once, as of the block's end: the accelerator is free (saves a loop iteration a block)

    def probe_later(self, a: int, delay_s: float | None = None) -> None:
        """Probe accelerator ``a`` after ``delay_s`` (default: its backoff, which doubles after each failed probe)."""
        h = self.health[a]
        if h.probing or self.closing:
            return
        h.probing = True
        self.loop.call_later(h.probe_delay or self.sv.probe_initial_s if delay_s is None else delay_s, self._probe, a)

    def _probe(self, a: int) -> None:
        if self.closing:
            return
        w = self.workers[a]
        self.health[a].probes += 1
        t0 = time.monotonic()
        fut = self.loop.run_in_executor(w.pool, w.probe)
        fut.add_done_callback(lambda f, a=a: self._probed(a, f, time.monotonic() - t0))

    def _probed(self, a: int, fut: asyncio.Future, took_s: float) -> None:
        h, sv = self.health[a], self.sv
        h.probing = False
        if self.closing:
            return
        try:
            err = fut.result()
        except Exception as e:  # noqa: BLE001 - a probe that raises outside its own handling failed
            err = f"{type(e).__name__}: {e}"
        if not err and took_s * 1000.0 > sv.hang_min_ms:  # a tiny invoke that takes this long hung
            err = f"the probe took {took_s * 1000.0:.0f} ms (limit hang_min_ms = {sv.hang_min_ms:g})"
        if err:
            h.last_error = err
            h.probe_delay = min(2 * (h.probe_delay or sv.probe_initial_s), sv.probe_max_s)
            log.warning("accelerator %s: probe failed (%s); next probe in %.2g s", self.workers[a].id, err,
                        h.probe_delay)
            self.probe_later(a, h.probe_delay)
            return
        h.probe_delay = 0.0
        self.engine.recover(a)
        log.info("accelerator %s back in service (probe %d worked)", self.workers[a].id, h.probes)
        self.kick()

    def stop(self) -> None:
        """Shutdown: no more hang checks or probes."""
        self.closing = True
        for h in self.health:
            if h.timer is not None:
                h.timer.cancel()
                h.timer = None

    def status(self) -> list[dict]:
        disp = self.engine.disp
        return [{"id": w.id, "kind": w.kind, "healthy": disp.healthy[i], "busy": disp.running[i] is not None,
                 "runs": w.runs, "failures": w.failures, "hung": self.health[i].hung is not None,
                 "probes": self.health[i].probes, "last_error": self.health[i].last_error,
                 "inline": self.health[i].inline}
                for i, w in enumerate(self.workers)]
