"""The live service: the workload engine (``core.engine``) on the wall clock, with ZeroMQ frames in, hal devices
running its blocks, and results and logs out.

``Service(config).serve()`` = startup (catalog, scenario, platform, one worker per accelerator, segments loaded,
sockets bound, ``READY=1``) → a short tick loop (watchdog ping, summaries) → graceful shutdown on
SIGTERM/SIGINT (ingest stopped, in-flight work drained within ``drain_grace_s``, the rest recorded as dropped
with reason ``shutdown``, the log flushed). SIGHUP (or the ``reload-catalog`` command) re-reads the model
catalog: changed model files are reloaded on first use; the scenario and platform need a restart.

``now`` is ``loop.time()`` in ms since the service became ready. The engine holds every workload rule (releases,
cascades, drops, the records), exactly as in a replay; this module is the lifecycle, and its parts are objects of
their own: frames in (``ingest.py``), results out (``results.py``), the accelerators at work and their health
(``accelerators.py``), the control commands (``control.py``), the summaries (``summaries.py``). Every due job
ends in exactly one result message (its outputs when it completed) and one ``job`` record. Bounded: at most
``[scheduler] max_queue`` released jobs wait unstarted; beyond, the oldest is dropped with reason
``overload-queue``. Bad input is answered on the ``errors`` topic, counted and logged; nothing stops.

The job log (recorder.py) never stops the service: a log that cannot be written (a directory that is missing or
not writable, a full disk) loses its records, which are counted; ``status`` says so under ``log``.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections import Counter
from typing import Any

import zmq
import zmq.asyncio

from ..client.protocol import ProtocolError
from ..core.engine import OVERRUN_MS, Engine
from ..core.estimator import Estimator
from ..core.policies import make_policy
from ..core.records import header
from ..core.types import ConfigError as CoreConfigError
from .accelerators import Accelerators, open_workers
from .clock import WallClock
from .config import Config, ConfigError, known_time_accelerators, learns_costs
from .control import Control
from .executors import AcceleratorWorker, ExecutorError
from .ingest import Ingest
from .notify import Notifier
from .prometheus import Metrics, MetricsUnavailable
from .recorder import Recorder
from .results import Results, subscriber_hwm
from .security import Security
from .sockets import Sockets
from .summaries import Summaries
from .workload import StartupError, Workload, changed_variants, load_workload, make_policy_from

__all__ = ["Service", "StartupError", "load_workload", "make_policy_from"]

log = logging.getLogger("edge_sdrm3.service")

STARTUP_ERRORS = (StartupError, ExecutorError, ConfigError, CoreConfigError, zmq.ZMQError, OSError,
                  MetricsUnavailable)


class Service:
    def __init__(self, config: Config, *, duration_s: float | None = None, notifier: Notifier | None = None) -> None:
        self.cfg = config
        self.duration_s = duration_s
        self.notifier = notifier or Notifier()
        self.errors: Counter = Counter()  # bad input by code
        self.counters: Counter = Counter()  # sockets
        self.ready = False
        self.exit_code = 0
        # made by startup, in this order
        self.loop: asyncio.AbstractEventLoop | None = None
        self.security: Security | None = None
        self.wl: Workload | None = None
        self.engine: Engine | None = None
        self.host_pool: Any = None
        self.workers: list[AcceleratorWorker] = []
        self.sockets = Sockets()
        self.recorder: Recorder | None = None
        self.results: Results | None = None
        self.ingest: Ingest | None = None
        self.accelerators: Accelerators | None = None
        self.summaries: Summaries | None = None
        self.control: Control | None = None
        self.metrics: Metrics | None = None
        self.clock: WallClock | None = None
        self.tasks: list[asyncio.Task] = []
        self._stop: asyncio.Event | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until SIGTERM/SIGINT (or ``duration_s``); 0 on a clean stop, 1 if startup failed."""
        return asyncio.run(self.main())

    async def main(self) -> int:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # handlers before READY=1: a SIGHUP (systemctl reload) or SIGTERM right after it must not kill the process
        signals = self._install_signals()
        try:
            await self.startup()
        except STARTUP_ERRORS as e:
            log.error("startup failed: %s", e)
            self.notifier.notify(f"STATUS=startup failed: {e}")
            for sig in signals:
                self.loop.remove_signal_handler(sig)
            await self._close_resources()
            return 1
        if self.duration_s is not None:
            self.loop.call_later(self.duration_s, self.request_stop)
        try:
            await self.tick_loop()
        finally:
            for sig in signals:
                self.loop.remove_signal_handler(sig)
            await self.shutdown()
        return self.exit_code

    def _install_signals(self) -> list[int]:
        """SIGTERM/SIGINT stop, SIGHUP reloads the catalog; not possible outside the main thread (embedded use,
        tests), where ``request_stop`` is called instead."""
        loop = self.loop
        assert loop is not None
        handlers = {signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop,
                    signal.SIGHUP: lambda: loop.create_task(self._reload_quietly())}
        done = []
        for sig, fn in handlers.items():
            try:
                loop.add_signal_handler(sig, fn)
                done.append(sig)
            except (ValueError, RuntimeError):
                log.debug("signal %s not handled: not the main thread", sig)
        return done

    async def _reload_quietly(self) -> None:
        if not self.ready:
            log.warning("SIGHUP during startup: ignored (the catalog is being loaded)")
            return
        try:
            await self.reload_catalog()
        except ProtocolError as e:
            log.error("SIGHUP: %s", e.message)

    def request_stop(self) -> None:
        if self._stop is not None and not self._stop.is_set():
            log.info("stopping")
            self._stop.set()

    async def startup(self) -> None:
        cfg, loop = self.cfg, self.loop
        assert loop is not None
        t_start = time.monotonic()
        self.security = Security(cfg.sockets, cfg.runtime_dir)  # endpoints, keys, group: checked before loading
        self.security.make_dir(cfg.runtime_dir)  # 0750 when created here
        try:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # only the job log lives there: a log that cannot be written is counted, not fatal
            log.error("state directory %s: %s", cfg.state_dir, e)
        self.wl = wl = await asyncio.to_thread(load_workload, cfg)
        try:
            policy = make_policy_from(cfg)
        except (CoreConfigError, TypeError) as e:
            raise StartupError(f"config: [scheduler] policy: {e}") from None
        self.host_pool = await open_workers(cfg, wl, loop, self.workers)
        self.sockets.bind(cfg.sockets, self.security,
                          subscriber_hwm(wl, cfg.sockets.results_max_bytes, cfg.sockets.results_hwm))
        sch = cfg.scheduler
        engine_rules = {"admission": sch.admission, "chain_ms": sch.chain_ms}
        head = header(wl.scenario, 0.0, cfg.workload.seed, recorded_by="edge-sdrm3 serve", platform=wl.spec.platform.name,
                      policy=policy.name, started_unix_s=time.time(), engine=engine_rules,
                      note="duration_s is 0 in a live log: the frames recorded are the run")
        self.recorder = Recorder(cfg.log.path, head, rotate_bytes=cfg.log.rotate_bytes, keep=cfg.log.keep)
        await asyncio.to_thread(self.recorder.start)
        self.results = Results(self.sockets.pub, wl, self.counters, self.errors, cfg.sockets.results_max_bytes)
        self.engine = eng = Engine(wl.spec.platform, wl.models, wl.costs, policy, fallback=make_policy("fcfs"),
                                   simulated=False, records=self.recorder, record_segments=cfg.log.segments,
                                   keep_completions=False, keep_latencies=False, window=True, overrun_ms=OVERRUN_MS,
                                   on_outcome=self.results.outcome,
                                   estimator=Estimator(wl.costs, tau_ms=sch.learn_tau_ms,
                                                       known=known_time_accelerators(cfg, wl.spec.platform))
                                   if learns_costs(cfg, wl.spec.platform) else None,
                                   **engine_rules)
        self.ingest = Ingest(wl, eng, seed=cfg.workload.seed, max_message_bytes=cfg.sockets.max_message_bytes,
                             max_queue=cfg.scheduler.max_queue, counters=self.counters, error=self.results.error,
                             max_streams=cfg.sockets.max_streams)
        self.clock = clock = WallClock(loop, eng)
        self.accelerators = Accelerators(self.workers, eng, wl, cfg.service, loop, clock.now, clock.kick, clock.step)
        clock.launch = self.accelerators.launch
        self.summaries = Summaries(eng, wl, self.recorder, self.notifier, self.counters, self.errors)
        self.control = Control(self)
        if cfg.metrics.enabled:
            self.metrics = Metrics(self.metrics_snapshot, loop)
            self.results.observe = self.metrics.observe
            self.metrics.start(cfg.metrics.address, cfg.metrics.port)
        # a frame's jobs are scheduled at once (clock.step), not a loop iteration later: ingest yields to the loop
        # between frames anyway, so a burst is not batched by deferring
        self.tasks = [loop.create_task(self.ingest.run(self.sockets.pull, clock.now, clock.step_as_of), name="ingest"),
                      loop.create_task(self.control.run(self.sockets.rep), name="control")]
        # what startup made (modules, catalog, interpreters) lives as long as the service: out of the collector's
        # sight, so that a full collection, whenever it falls, walks only what was made since, not every object
        # of numpy, zmq and LiteRT (a pause of milliseconds in the middle of a job's hand-offs)
        gc.collect()
        gc.freeze()
        self.ready = True
        msg = (f"ready: {wl.scenario.name} on {wl.spec.platform.name} "
               f"({', '.join(w.id for w in self.workers)}), policy {policy.name}, "
               f"{time.monotonic() - t_start:.1f} s to start")
        s = cfg.sockets
        log.info("%s; frames on %s, results on %s, control on %s", msg, s.ingest, s.results, s.control)
        self.notifier.ready(msg)

    async def tick_loop(self) -> None:
        tick = self.cfg.service.tick_s
        every_ms = self.cfg.service.summary_every_s * 1000.0
        assert self._stop is not None and self.summaries is not None
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=tick)
            except asyncio.TimeoutError:
                pass
            self.notifier.watchdog()
            now = self.now()
            if now - self.summaries.last_ms >= every_ms:
                self.summaries.write(now)

    async def shutdown(self) -> None:
        """Stop ingest, drain within the grace period, record what is left as dropped, flush, close."""
        eng, loop, rec, clock = self.engine, self.loop, self.recorder, self.clock
        assert eng is not None and loop is not None and rec is not None and clock is not None
        assert self.accelerators is not None and self.summaries is not None
        self.notifier.stopping("draining")
        self.accelerators.closing = True  # no more hang checks or probes
        for t in self.tasks[:1]:  # ingest first: no new frames
            t.cancel()
        self.sockets.pull.close(linger=0)
        grace = self.cfg.service.drain_grace_s
        t_end = loop.time() + grace
        while eng and loop.time() < t_end:
            await asyncio.sleep(0.005)
        self.accelerators.stop()
        clock.stop()
        left = eng.drain(clock.now(), "shutdown")
        if left:
            log.warning("shutdown: %d jobs not finished within drain_grace_s = %g s, recorded as dropped "
                        "(reason shutdown)", left, grace)
        self.summaries.write(clock.now(), final=True)
        for t in self.tasks[1:]:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if not await asyncio.to_thread(rec.close):
            self.exit_code = 1
        if rec.lost:
            log.error("job log %s: %d records lost (%s)", rec.path, rec.lost, rec.error or "written again later")
        await self._close_resources()
        log.info("stopped: %d frames in, %d results out, %d errors; log %s (%d lines)", self.counters["frames_in"],
                 self.counters["results_out"], sum(self.errors.values()), self.cfg.log.path, rec.lines)

    async def _close_resources(self) -> None:
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)
        self.sockets.close_sockets()
        for w in self.workers:
            await asyncio.to_thread(w.close)
        if self.security is not None:
            self.security.stop()  # the ZAP handlers' sockets, before the contexts are terminated
        self.sockets.term()
        self.notifier.close()

    async def reload_catalog(self) -> dict:
        """Re-read the model catalog and files: a variant whose segment files changed is reloaded on first use.
        The scenario and the platform stay as they are (a restart changes them)."""
        old, loop = self.wl, self.loop
        assert old is not None and loop is not None
        self.notifier.reloading()
        try:
            wl = await asyncio.to_thread(load_workload, self.cfg)
            changed = changed_variants(old, wl)
        except (StartupError, ExecutorError, CoreConfigError) as e:
            self.notifier.ready("reload refused: running on the catalog loaded before")
            raise ProtocolError("bad-argument", f"reload-catalog: {e}") from None
        old.files, old.declared = wl.files, wl.declared
        for w in self.workers:
            loop.run_in_executor(w.pool, w.forget, changed)
        log.info("catalog reloaded: %d variants changed", len(changed))
        self.notifier.ready("catalog reloaded")
        return {"models": {m.name: [v.name for v in m.variants] for m in old.models},
                "changed": [f"{a}/{b}" for a, b in changed]}

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else 0.0

    def metrics_snapshot(self) -> dict:
        """The state the Prometheus endpoint reads at a scrape (called on the loop: prometheus.py)."""
        eng, acc, summ, ing, res = self.engine, self.accelerators, self.summaries, self.ingest, self.results
        assert eng is not None and acc is not None and summ is not None and ing is not None and res is not None
        assert self.wl is not None
        queues = Counter(j.model.name for j in eng.disp.ready)
        util = summ.last_window["utilization"]
        accs = [{**a, "busy_s": eng.disp.busy_ms[i] / 1000.0, "utilization": util.get(a["id"], 0.0)}
                for i, a in enumerate(acc.status())]
        return {"accelerators": accs, "queues": {m.name: queues.get(m.name, 0) for m in self.wl.models},
                "in_flight": len(eng.inflight), "waiting_upstream": sum(len(v) for v in eng.held.values()),
                "uxcost_window": summ.last_window["uxcost"], "miss_rate_window": summ.last_window["miss_rate"],
                "uxcost_run": eng.total.result(drops=True)["uxcost"], "errors": dict(self.errors),
                "frames_in": self.counters["frames_in"], "skipped": dict(ing.skipped), "streams": ing.streams(),
                "results_held_bytes": res.held(), "results_dropped": self.counters["results_dropped"],
                "results_dropped_bytes": self.counters["results_dropped_bytes"]}

    def kick(self) -> None:
        if self.clock is not None:
            self.clock.kick()
