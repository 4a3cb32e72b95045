"""The live service: ZeroMQ frames in, the core Dispatcher deciding, hal devices running, results and logs out.

``Service(config).serve()`` = startup (catalog, scenario, platform, one worker per accelerator, segments loaded,
sockets bound, ``READY=1``) → a short tick loop (watchdog ping, summaries) → graceful shutdown on
SIGTERM/SIGINT (ingest stopped, in-flight work drained within ``drain_grace_s``, the rest recorded as dropped
with reason ``shutdown``, the log flushed). SIGHUP (or the ``reload-catalog`` command) re-reads the model
catalog: changed model files are reloaded on first use; the scenario and platform need a restart.

The driver mirrors ``edge_sdrm3.sim.replay`` (DESIGN.md §6) on the event loop's clock: ``now`` is
``loop.time()`` in ms since the service became ready.
- A frame of a stream releases one job per due root model: those the header names, else every root model whose
  period has (about) elapsed on that stream — at least 3/4 of its period since its last release there, so a
  30 fps camera feeds a 10 fps model every third frame despite jitter. Deadline = release + the model's
  relative deadline.
- Cascades: whether a cascaded model fires on a frame is drawn from ``random.Random(f"{seed}:{stream}:{frame}:
  {model}")`` with the scenario's trigger probability, nested (a child of a frame that did not fire does not
  fire). A real app would fire on the upstream's output (a palm was found); the draw stands in for it, and is
  recorded in the log as the frame's ``fired`` so that a replay sees the same outcomes. A fired cascaded job is
  released when its upstream job completes on time, with the frame's camera input adapted to its own input (a
  real pipeline would crop by the upstream's output); if the upstream is dropped, late or failed it is
  recorded as missed without running (``upstream dropped``...).
- Every due job ends in exactly one result message (its outputs when it completed) and one ``job`` record.
- Bounded: at most ``[scheduler] max_queue`` released jobs wait unstarted; beyond, the oldest is dropped with
  reason ``overload-queue``. Bad input is answered on the ``errors`` topic, counted and logged; nothing stops.

Failing accelerators (a real driver's error, or the faults an emulated one is told to inject: docs/platforms.md):
- An invoke that raises marks the accelerator unhealthy (``Dispatcher.fail``): no policy may use it, so the queued
  work goes to the others. The job it was running is *retried* from the segment that failed, elsewhere, when its
  deadline has not passed and another accelerator is healthy; otherwise it is recorded as ``failed`` with reason
  ``accelerator-failed (ErrorClass)``. The accelerator is probed (a tiny invoke in its worker thread) after
  ``[service] probe_initial_s``, then 2x, 4x ... that apart (at most ``probe_max_s``), and taken back
  (``Dispatcher.recover``) when a probe works.
- An invoke still running after max(``hang_factor`` x its modelled latency, ``hang_min_ms``) — counted from the
  invoke's start, so a first-use model load does not count — is abandoned: its job is recorded as ``failed``
  with reason ``accelerator-hung`` (not retried: the stuck invoke still holds its buffers) and the accelerator is
  marked unhealthy. Python cannot interrupt a thread stuck in a driver, so the worker thread stays stuck and the
  accelerator stays unhealthy until that invoke returns; then it is probed as above. (A stuck real driver also
  delays shutdown until it returns or systemd's TimeoutStopSec= ends the process; an emulated hang ends at close.)
- ``status`` shows each accelerator's ``healthy``, ``hung``, ``failures``, ``probes`` and ``last_error``.

The job log (recorder.py) never stops the service: a log that cannot be written (a directory that is missing or
not writable, a full disk) loses its records, which are counted; ``status`` says so under ``log``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

from .. import catalog
from ..core.dispatcher import Dispatcher
from ..core.metrics import Accumulator, model_infos
from ..core.policies import make_policy
from ..core.scores import Theta
from ..core.types import DONE, DROPPED, INF, Completion, ConfigError as CoreConfigError, Job, Model, Start
from ..sim import trace as traces
from . import protocol
from .config import Config, ConfigError, as_dict
from .executors import (AcceleratorWorker, ExecutorError, IOSpec, VariantFiles, host_pool, model_io, open_worker,
                        segment_files)
from .notify import Notifier
from .protocol import ProtocolError
from .recorder import Recorder
from .security import Security

log = logging.getLogger("edge_sdrm3.service")

RATE_SLACK = 0.75
OVERRUN_MS = 0.01  # an accelerator past its predicted end is taken to be this close to finishing  # a root model is due on a stream once this share of its period has passed


class StartupError(Exception):
    """The service cannot start; the message says what is missing or wrong."""


# ---- workload -------------------------------------------------------------------------------------------


@dataclass
class Workload:
    scenario: catalog.Scenario
    spec: catalog.PlatformSpec
    models: tuple[Model, ...]
    costs: Any
    index: dict[str, int]
    files: list[list[VariantFiles]]  # [model][variant]
    children: dict[str, list[str]]  # model -> its cascaded models (scenario order)

    @property
    def roots(self) -> list[str]:
        return [m.name for m in self.models if m.upstream is None]


def default_scenario(cache: Path | None) -> str:
    """mediapipe_xr when every MediaPipe model of the catalog is in the cache, else digits."""
    try:
        from ..tflite.fetch import missing

        return "digits" if missing(None, cache) else "mediapipe_xr"
    except Exception as e:  # noqa: BLE001 - a broken cache only changes the default
        log.info("model cache not usable (%s): default scenario digits", e)
        return "digits"


def load_workload(cfg: Config, split: bool = True) -> Workload:
    """Scenario, platform, models with every variant, costs, and each variant's segment files (split once).

    ``split=False`` (``edge-sdrm3 serve --check``) checks every file and loads it once, but splits nothing and
    writes nothing: each variant's "segments" are then its whole file."""
    from ..tflite.manifest import default_cache_dir, load_manifest

    w = cfg.workload
    cache = Path(w.model_cache).expanduser() if w.model_cache else default_cache_dir()
    name = w.scenario or default_scenario(cache)
    try:
        scenario = catalog.load_scenario(name)
        spec = catalog.load_platform(w.platform)
        models = catalog.build_models(scenario, None, spec)  # every variant: the policy may be switched live
        costs = catalog.build_costs(models, spec, scenario.cost_table)
    except CoreConfigError as e:
        raise StartupError(f"workload: {e}") from None
    try:
        manifest = load_manifest(w.catalog or None)
    except Exception as e:  # noqa: BLE001 - ManifestError (names the file and key), or a bad path
        raise StartupError(f"workload: catalog: {e}") from None
    files: list[list[VariantFiles]] = []
    for m in models:
        try:
            entry = manifest[m.name]
        except Exception as e:  # ManifestError
            raise StartupError(f"workload: scenario {scenario.name}: {e}") from None
        per = []
        for v in m.variants:
            ve = next((x for x in entry.variants if x.name == v.name), None)
            if ve is None:
                raise StartupError(f"workload: model {m.name}: variant {v.name!r} of the platform profile is not in "
                                   f"the catalog (models/manifest.toml)")
            path = entry.path(ve, cache)
            if not path.exists():
                hint = " (run `edge-sdrm3 models fetch`)" if entry.location == "cache" else ""
                raise StartupError(f"workload: model {m.name} variant {v.name}: file {path} not found{hint}")
            where = f"workload: model {m.name} variant {v.name}: file {path}"
            check_model_file(path, ve, where)
            try:
                ins, outs = model_io(path)
            except Exception as e:  # noqa: BLE001 - load errors of many kinds, all fatal here
                raise StartupError(f"{where}: not a model the runtime can load: {e}") from None
            check_io(entry.inputs, ins, where)
            try:
                segs = segment_files(m.name, path, v.name, ve.sha256 or "nosha0000000", m.n_segments, cache) \
                    if split else [path]
            except Exception as e:  # noqa: BLE001 - split errors of many kinds, all fatal here
                raise StartupError(f"{where}: cannot be split into {m.n_segments} segments: {e}") from None
            per.append(VariantFiles(m.name, v.name, tuple(segs), ins, outs))
        files.append(per)
    children: dict[str, list[str]] = defaultdict(list)
    for m in models:
        if m.upstream is not None:
            children[m.upstream].append(m.name)
    return Workload(scenario, spec, models, costs, {m.name: i for i, m in enumerate(models)}, files,
                    dict(children))


def check_model_file(path: Path, ve: Any, where: str) -> None:
    """The catalog's size and sha256 of a variant file against the file (a truncated or changed file is refused:
    its cached segments are named by that sha256)."""
    import hashlib

    try:
        data = path.read_bytes()
    except OSError as e:
        raise StartupError(f"{where}: cannot read ({e.strerror or e})") from None
    if ve.size and len(data) != ve.size:
        raise StartupError(f"{where}: {len(data)} bytes, the catalog says {ve.size} (truncated or replaced?)")
    if ve.sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != ve.sha256.lower():
            raise StartupError(f"{where}: sha256 {digest} does not match the catalog's {ve.sha256}")


def check_io(declared: Any, actual: tuple[IOSpec, ...], where: str) -> None:
    """The model's inputs against the catalog's ``inputs`` (count, shape, dtype), when the catalog declares them."""
    if not declared:
        return
    if len(declared) != len(actual):
        raise StartupError(f"{where}: the model has {len(actual)} inputs, the catalog declares {len(declared)}")
    for i, (d, a) in enumerate(zip(declared, actual)):
        if tuple(d.shape) != tuple(a.shape) or np.dtype(d.dtype) != a.dtype:
            raise StartupError(f"{where}: input {i} ({a.name}) is {list(a.shape)} {a.dtype.name}, the catalog "
                               f"declares {list(d.shape)} {np.dtype(d.dtype).name}")


def make_policy_from(cfg: Config, name: str | None = None) -> Any:
    """The configured policy: sdrm3 with θ, the tuner and (``supernet``) the selector; any other by name."""
    s = cfg.scheduler
    name = name or s.policy
    if name in ("sdrm3", "sdrm3+supernet"):
        theta = Theta(s.alpha, s.beta, s.gamma, s.delta)
        if name == "sdrm3+supernet" or s.supernet:
            return make_policy("sdrm3+supernet", theta=theta, tune=s.tuner, floor=s.floor)
        return make_policy("sdrm3", theta=theta, tune=s.tuner)
    return make_policy(name)


# ---- inputs ----------------------------------------------------------------------------------------------


def adapt(x: np.ndarray, spec: IOSpec, model: str) -> np.ndarray:
    """Make a camera image (or an exact input) into the model input ``spec``: as is when it matches; else a
    nearest-neighbour resize of an HxW[xC] image to the input's HxW, channels averaged / repeated, uint8 scaled
    to [0, 1] for float inputs. Raises ProtocolError(bad-shape) when it is not an image of that kind."""
    if x.shape == spec.shape and x.dtype == spec.dtype:
        return x
    if x.dtype == spec.dtype and x.size == int(np.prod(spec.shape)) and len(x.shape) != len(spec.shape):
        return x.reshape(spec.shape)
    img = x[0] if x.ndim == 4 and x.shape[0] == 1 else x
    if img.ndim == 2:
        img = img[:, :, None]
    target = spec.shape[1:] if len(spec.shape) == 4 and spec.shape[0] == 1 else spec.shape
    if img.ndim != 3 or len(target) != 3 or min(img.shape[:2]) == 0:
        raise ProtocolError("bad-shape", f"part 0 of shape {list(x.shape)} {x.dtype} cannot be made into the input of "
                                         f"{model} ({list(spec.shape)} {spec.dtype}): not an HxWxC image")
    h, w, c = target
    rows = (np.arange(h) * img.shape[0]) // h
    cols = (np.arange(w) * img.shape[1]) // w
    out = img[rows][:, cols]
    if out.shape[2] != c:
        out = out.mean(axis=2, keepdims=True) if c == 1 else np.resize(out, (h, w, c)) if out.shape[2] != 1 \
            else np.repeat(out, c, axis=2)
    src, dst = x.dtype, spec.dtype
    if dst.kind == "f":
        out = out.astype(dst) / (255.0 if src == np.uint8 else 1.0)
    elif src.kind == "f":
        out = np.clip(out * (255.0 if dst == np.uint8 else 127.0), np.iinfo(dst).min, np.iinfo(dst).max)
    elif src == np.uint8 and dst == np.int8:
        out = out.astype(np.int16) - 128
    try:
        return np.ascontiguousarray(out.astype(dst, copy=False)).reshape(spec.shape)
    except (TypeError, ValueError) as e:
        raise ProtocolError("bad-dtype", f"part 0 ({x.dtype}) cannot be converted to {model}'s input {dst}: {e}") \
            from None


# ---- per-job context and running metrics -----------------------------------------------------------------


@dataclass
class JobCtx:
    """What the driver keeps per released job beside the core's Job (keyed by (model, frame slot))."""

    stream: str
    stream_frame: int
    t_capture_ms: float | None
    feeds: dict[str, np.ndarray]
    job: Job | None = None
    computed: bool = True
    energy_source: str = ""


@dataclass
class Pending:
    """A fired cascaded frame waiting for its upstream job."""

    model: str
    slot: int
    release_ms: float  # the frame's release (the upstream's)
    ctx: JobCtx


# ---- the service ------------------------------------------------------------------------------------------


class Service:
    def __init__(self, config: Config, *, duration_s: float | None = None, notifier: Notifier | None = None) -> None:
        self.cfg = config
        self.duration_s = duration_s
        self.notifier = notifier or Notifier()
        self.errors: Counter = Counter()
        self.counters: Counter = Counter()
        self.drops: Counter = Counter()
        self._ctx: dict[tuple[str, int], JobCtx] = {}
        self._children: dict[tuple[str, int], list[Pending]] = {}
        self._slot: dict[str, int] = {}
        self._last_release: dict[str, float] = {}
        self._last_root: dict[tuple[str, str], float] = {}
        self._inflight: dict[int, tuple[Start, JobCtx]] = {}  # accelerator -> what runs there
        self._hang_timer: dict[int, tuple[Start, asyncio.TimerHandle]] = {}  # accelerator -> its hang check
        self._hung: dict[int, Start] = {}  # accelerator -> the abandoned start its worker thread is stuck in
        self._probe_delay: dict[int, float] = {}  # accelerator -> the next probe's backoff (s)
        self._probing: set[int] = set()  # accelerators with a probe scheduled or running
        self._probes: Counter = Counter()
        self._last_error: dict[int, str] = {}
        self._kicked = False
        self._wake_handle: asyncio.TimerHandle | None = None
        self._stop: asyncio.Event | None = None
        self._closing = False
        self.ready = False
        self.exit_code = 0

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
        except (StartupError, ExecutorError, ConfigError, CoreConfigError, zmq.ZMQError, OSError) as e:
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
        handlers = {signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop,
                    signal.SIGHUP: lambda: self.loop.create_task(self._reload_quietly())}
        done = []
        for sig, fn in handlers.items():
            try:
                self.loop.add_signal_handler(sig, fn)
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
        cfg = self.cfg
        t_start = time.monotonic()
        self.security = Security(cfg.sockets, cfg.runtime_dir)  # endpoints, keys, group: checked before loading
        self.security.make_dir(cfg.runtime_dir)  # 0750 when created here
        try:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # only the job log lives there: a log that cannot be written is counted, not fatal
            log.error("state directory %s: %s", cfg.state_dir, e)
        self.wl = wl = await asyncio.to_thread(load_workload, cfg)
        try:
            self.policy = make_policy_from(cfg)
        except (CoreConfigError, TypeError) as e:
            raise StartupError(f"config: [scheduler] policy: {e}") from None
        self.ref = [wl.costs.reference_energy(i) for i in range(len(wl.models))]
        self.disp = Dispatcher(wl.spec.platform, wl.models, wl.costs, self.policy, fallback=make_policy("fcfs"))
        from hal.emulated import HostSlots

        host = HostSlots()
        # one interpreter per segment file for every accelerator computing on the host (executors.py, Memory)
        self.host_pool = shared = host_pool(wl.spec.platform.accelerators, cfg.workload.cpu_threads)
        vnames = [[v.name for v in m.variants] for m in wl.models]
        self.workers: list[AcceleratorWorker] = []
        for i, acc in enumerate(wl.spec.platform.accelerators):
            self.workers.append(open_worker(i, acc, wl.costs, wl.models, vnames,
                                            compute=cfg.workload.emulated_compute, host=host,
                                            cpu_threads=cfg.workload.cpu_threads, shared=shared,
                                            fault=wl.spec.faults[i] if wl.spec.faults else None))
            if wl.spec.faults and wl.spec.faults[i] is not None:
                log.warning("accelerator %s injects faults: %s", acc.id, wl.spec.faults[i])
        # before READY=1: every variant (preload = true), else each model's default one (variant 0, where every
        # policy starts); the others are loaded on first use, in the worker thread
        loads = []
        for i, w in enumerate(self.workers):
            runnable = [vf for m, per in enumerate(wl.files) for v, vf in enumerate(per)
                        if (cfg.workload.preload or v == 0) and all(math.isfinite(x) for x in wl.costs.lat[m][v][i])]
            loads.append(self.loop.run_in_executor(w.pool, w.preload, runnable))
        try:
            counts = await asyncio.gather(*loads)
        except Exception as e:  # noqa: BLE001 - a model a device refuses is fatal at startup
            raise StartupError(f"loading models: {e}") from None
        log.info("loaded %d segments on %d accelerators (%d host interpreters)", sum(counts), len(self.workers),
                 len(shared))
        # sockets
        self.zctx = zmq.asyncio.Context()
        self.sync_ctx = zmq.Context()
        s = cfg.sockets
        sec = self.security
        sec.start(self.zctx, self.sync_ctx)  # CURVE: a ZAP handler per context, before any bind
        for addr in (s.ingest, s.results, s.control):
            if addr.startswith("ipc://") and not addr.startswith("ipc://@"):
                sec.make_dir(Path(addr[6:]).parent)

        def bind(ctx: Any, kind: int, addr: str, role: str, linger_ms: int, **opts: int) -> Any:
            sock = ctx.socket(kind)
            for opt, value in ((zmq.LINGER, linger_ms), *((getattr(zmq, k), v) for k, v in opts.items())):
                sock.setsockopt(opt, value)
            sec.apply(sock, role)  # size limit and CURVE, before the bind
            sock.bind(addr)
            sec.after_bind(addr)  # an ipc socket file's mode and group
            return sock

        self.pull = bind(self.zctx, zmq.PULL, s.ingest, "ingest", 0, RCVHWM=s.ingest_hwm)
        self.pub = bind(self.sync_ctx, zmq.PUB, s.results, "results", 1000, SNDHWM=s.results_hwm)
        self.rep = bind(self.zctx, zmq.REP, s.control, "control", 0)
        # log, metrics, clock
        self.infos = model_infos(wl.models, self.ref)
        self.total = Accumulator(self.infos, keep_latencies=False)  # the whole run: memory stays flat
        self.window = Accumulator(self.infos)
        header = traces.header(wl.scenario, 0.0, cfg.workload.seed)
        header.update({"recorded_by": "edge-sdrm3 serve", "platform": wl.spec.platform.name,
                       "policy": self.policy.name, "started_unix_s": time.time(),
                       "note": "duration_s is 0 in a live log: the frames recorded are the run"})
        self.recorder = Recorder(cfg.log.path, header, rotate_bytes=cfg.log.rotate_bytes, keep=cfg.log.keep)
        await asyncio.to_thread(self.recorder.start)
        self.t0 = self.loop.time()
        self._last_summary = 0.0
        self._busy_at_summary = [0.0] * len(self.workers)
        self.tasks = [self.loop.create_task(self.ingest_loop(), name="ingest"),
                      self.loop.create_task(self.control_loop(), name="control")]
        self.ready = True
        msg = (f"ready: {wl.scenario.name} on {wl.spec.platform.name} "
               f"({', '.join(w.id for w in self.workers)}), policy {self.policy.name}, "
               f"{time.monotonic() - t_start:.1f} s to start")
        log.info("%s; frames on %s, results on %s, control on %s", msg, s.ingest, s.results, s.control)
        self.notifier.ready(msg)

    async def tick_loop(self) -> None:
        tick = self.cfg.service.tick_s
        every_ms = self.cfg.service.summary_every_s * 1000.0
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=tick)
            except asyncio.TimeoutError:
                pass
            self.notifier.watchdog()
            now = self.now()
            if now - self._last_summary >= every_ms:
                self.write_summary(now)

    async def shutdown(self) -> None:
        """Stop ingest, drain within the grace period, record what is left as dropped, flush, close."""
        self.notifier.stopping("draining")
        self._closing = True
        for t in self.tasks[:1]:  # ingest first: no new frames
            t.cancel()
        self.pull.close(linger=0)
        grace = self.cfg.service.drain_grace_s
        t_end = self.loop.time() + grace
        while (self._inflight or self.disp.ready or self._children) and self.loop.time() < t_end:
            await asyncio.sleep(0.005)
        now = self.now()
        left = 0
        for _, h in self._hang_timer.values():
            h.cancel()
        self._hang_timer.clear()
        for a, (s, ctx) in list(self._inflight.items()):  # still running: its completion will come too late
            c = self.disp.abandon(a, now, "shutdown")
            if c is not None:
                left += 1
                self.finished(c, now)
        self._inflight.clear()
        for c in self.disp.drop(list(self.disp.ready), now, "shutdown"):
            left += 1
            self.finished(c, now)
        for key in list(self._children):
            for p in self._children.pop(key, []):
                left += 1
                self.finished(self.missed(p, "shutdown", now), now)
        if left:
            log.warning("shutdown: %d jobs not finished within drain_grace_s = %g s, recorded as dropped "
                        "(reason shutdown)", left, grace)
        self.write_summary(now, final=True)
        for t in self.tasks[1:]:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        ok = await asyncio.to_thread(self.recorder.close)
        if not ok:
            self.exit_code = 1
        if self.recorder.lost:
            log.error("job log %s: %d records lost (%s)", self.recorder.path, self.recorder.lost,
                      self.recorder.error or "written again later")
        await self._close_resources()
        log.info("stopped: %d frames in, %d results out, %d errors; log %s (%d lines)", self.counters["frames_in"],
                 self.counters["results_out"], sum(self.errors.values()), self.cfg.log.path, self.recorder.lines)

    async def _close_resources(self) -> None:
        for name in ("pull", "rep", "pub"):
            sock = getattr(self, name, None)
            if sock is not None and not sock.closed:
                sock.close()
        for w in getattr(self, "workers", []):
            await asyncio.to_thread(w.close)
        if getattr(self, "security", None) is not None:
            self.security.stop()  # the ZAP handlers' sockets, before the contexts are terminated
        for name in ("zctx", "sync_ctx"):
            ctx = getattr(self, name, None)
            if ctx is not None:
                ctx.term()
        self.notifier.close()

    def now(self) -> float:
        return (self.loop.time() - self.t0) * 1000.0

    # --- ingest ------------------------------------------------------------------------------------
    async def ingest_loop(self) -> None:
        pull = self.pull
        while True:
            parts = await pull.recv_multipart(copy=False)
            await asyncio.sleep(0)  # a queued burst must not starve scheduling and completions
            self.counters["frames_in"] += 1
            try:
                self.on_frame(parts)
            except ProtocolError as e:
                self.error(e.code, e.message, *_peek_ids(parts))
            except Exception:  # noqa: BLE001 - a bug must not stop ingest; it is logged and counted
                log.exception("frame handling failed")
                self.error("internal", "the service failed on this frame (see its log)", *_peek_ids(parts))

    def on_frame(self, parts: list) -> None:
        wl = self.wl
        hdr, arrays = protocol.decode_frame(parts, self.cfg.sockets.max_message_bytes)
        for t in hdr.tensors:
            if t.model is not None and t.model not in wl.index:
                raise ProtocolError("unknown-model", f"tensors: model {t.model!r} is not in scenario "
                                                     f"{wl.scenario.name} (models: {', '.join(wl.index)})")
        now = self.now()
        if hdr.models is not None:
            for name in hdr.models:
                if name not in wl.index:
                    raise ProtocolError("unknown-model", f"field 'models': {name!r} is not in scenario "
                                                         f"{wl.scenario.name} (models: {', '.join(wl.index)})")
                up = wl.models[wl.index[name]].upstream
                if up is not None:
                    raise ProtocolError("bad-header", f"field 'models': {name!r} is cascaded from {up!r}: it runs "
                                                      f"when {up} fires on the frame")
            due = list(dict.fromkeys(hdr.models))
        else:
            due = [r for r in wl.roots
                   if now - self._last_root.get((hdr.stream, r), -INF)
                   >= RATE_SLACK * wl.models[wl.index[r]].period_ms]
        # inputs of every model the frame may run (validated before anything is released)
        untagged = next((a for a, t in zip(arrays, hdr.tensors) if t.model is None), None)
        tagged: dict[str, list[np.ndarray]] = defaultdict(list)
        for a, t in zip(arrays, hdr.tensors):
            if t.model is not None:
                tagged[t.model].append(a)
        plan: list[tuple[str, float, bool, str | None]] = []  # (model, release, fired, upstream)
        fired_of: dict[str, bool] = {}
        for r in due:
            plan.append((r, now, True, None))
            fired_of[r] = True
            stack = [r]
            while stack:
                up = stack.pop(0)
                for child in wl.children.get(up, []):
                    m = wl.models[wl.index[child]]
                    draw = random.Random(f"{self.cfg.workload.seed}:{hdr.stream}:{hdr.frame}:{child}").random()
                    fired_of[child] = fired_of[up] and draw < m.trigger_probability
                    plan.append((child, now, fired_of[child], up))
                    stack.append(child)
        feeds = {name: self.inputs_for(name, untagged, tagged.get(name)) for name, _, fired, _ in plan if fired}
        for r in due:
            self._last_root[(hdr.stream, r)] = now
        self.counters["frames_accepted"] += 1
        slots: dict[str, int] = {}
        for name, release, fired, up in plan:
            slot = self._slot.get(name, 0)
            self._slot[name] = slot + 1
            slots[name] = slot
            release = max(release, self._last_release.get(name, -1.0) + 1e-6)  # distinct per model for replay
            self._last_release[name] = release
            rec = {"type": "frame", "model": name, "frame": slot, "release_ms": release}
            m = wl.models[wl.index[name]]
            if m.upstream is not None or m.trigger_probability < 1.0:
                rec["fired"] = fired
            rec["stream"], rec["stream_frame"] = hdr.stream, hdr.frame
            self.recorder.put(rec)
            if not fired:
                continue
            ctx = JobCtx(hdr.stream, hdr.frame, hdr.t_capture_ms, feeds[name])
            if up is None:
                self.release(name, slot, release, release, ctx)
            else:
                self._children.setdefault((up, slots[up]), []).append(Pending(name, slot, release, ctx))
        self.enforce_queue_bound(now)
        self.kick()

    def inputs_for(self, name: str, untagged: np.ndarray | None, tagged: list[np.ndarray] | None) -> dict:
        vf = self.wl.files[self.wl.index[name]][0]
        specs = vf.inputs
        if tagged:
            if len(tagged) != len(specs):
                raise ProtocolError("bad-shape", f"{len(tagged)} tensors tagged for {name}, it takes {len(specs)} inputs")
            for i, (x, sp) in enumerate(zip(tagged, specs)):
                if x.dtype != sp.dtype:
                    raise ProtocolError("bad-dtype", f"input {i} of {name}: dtype {x.dtype}, expected {sp.dtype}")
                if x.shape != sp.shape:
                    raise ProtocolError("bad-shape", f"input {i} of {name}: shape {list(x.shape)}, "
                                                     f"expected {list(sp.shape)}")
            return {sp.name: x for sp, x in zip(specs, tagged)}
        if untagged is None:  # no payload at all: synthetic load, the model runs on zeros
            return {sp.name: np.zeros(sp.shape, sp.dtype) for sp in specs}
        feeds = {specs[0].name: adapt(untagged, specs[0], name)}
        for sp in specs[1:]:
            feeds[sp.name] = np.zeros(sp.shape, sp.dtype)
        return feeds

    def release(self, name: str, slot: int, frame_release: float, now: float, ctx: JobCtx) -> None:
        wl = self.wl
        m = wl.index[name]
        model = wl.models[m]
        self.counters["jobs_released"] += 1
        job = Job(self.counters["jobs_released"], model, m, slot, now, frame_release + model.relative_deadline_ms,
                  wl.costs)
        ctx.job = job
        self._ctx[(name, slot)] = ctx
        self.disp.release(job)

    def enforce_queue_bound(self, now: float) -> None:
        limit = self.cfg.scheduler.max_queue
        waiting = [j for j in self.disp.ready if not j.started]
        if len(waiting) <= limit:
            return
        waiting.sort(key=lambda j: (j.release, j.id))
        for c in self.disp.drop(waiting[: len(waiting) - limit], now, "overload-queue"):
            self.finished(c, now)

    # --- scheduling and execution ------------------------------------------------------------------
    def kick(self) -> None:
        """Ask for a scheduling step once the current callbacks are done (events of one instant batched)."""
        if not self._kicked:
            self._kicked = True
            self.loop.call_soon(self.schedule)

    def schedule(self) -> None:
        self._kicked = False
        now = self.now()
        disp = self.disp
        for a in range(len(disp.running)):
            # real work overruns its prediction: an accelerator still running is busy, whatever was predicted
            disp.hold_busy(a, now, OVERRUN_MS)
        starts, ended = disp.schedule(now)
        for c in ended:
            self.finished(c, now)
        for s in starts:
            self.launch(s)
        w = self.disp.wake_at
        if self._wake_handle is not None:
            self._wake_handle.cancel()
            self._wake_handle = None
        if w < INF:
            self._wake_handle = self.loop.call_at(self.t0 + max(w, now) / 1000.0 + 1e-6, self.kick)

    def launch(self, s: Start) -> None:
        job = s.job
        ctx = self._ctx[(job.model.name, job.frame)]
        w = self.workers[s.acc]
        vf = self.wl.files[job.m][job.variant]
        self._inflight[s.acc] = (s, ctx)
        fut = self.loop.run_in_executor(w.pool, w.run, vf, s.first_seg, s.n, ctx.feeds, ctx.computed)
        fut.add_done_callback(lambda f, s=s, ctx=ctx: self.segments_done(s, ctx, f))
        sv = self.cfg.service
        budget_ms = max(sv.hang_factor * (s.end_ms - s.start_ms), sv.hang_min_ms)
        self._hang_timer[s.acc] = (s, self.loop.call_later(budget_ms / 1000.0, self._check_hang, s, budget_ms))

    def _check_hang(self, s: Start, budget_ms: float) -> None:
        """The hang timer of ``s``: abandon it if its invoke has run longer than ``budget_ms``, else look again
        when it would have (the worker may have spent the time loading a model, or between segments)."""
        a = s.acc
        if self._inflight.get(a, (None,))[0] is not s or self._closing:
            return
        since = self.workers[a].invoking_since
        ran_ms = (time.monotonic() - since) * 1000.0 if since is not None else 0.0
        if ran_ms < budget_ms:
            self._hang_timer[a] = (s, self.loop.call_later(max(0.005, (budget_ms - ran_ms) / 1000.0),
                                                           self._check_hang, s, budget_ms))
            return
        self._hang_timer.pop(a, None)
        del self._inflight[a]
        self._hung[a] = s
        now = self.now()
        acc = self.workers[a].id
        self._last_error[a] = f"hung: an invoke ran {ran_ms:.0f} ms (limit {budget_ms:.0f} ms)"
        log.error("accelerator %s hung on %s: its invoke has run %.0f ms (limit %.0f ms): job abandoned, accelerator "
                  "unhealthy until the invoke returns", acc, s.job, ran_ms, budget_ms)
        c = self.disp.fail(a, now, "accelerator-hung")
        if c is not None:
            self.finished(c, now)
        self.kick()

    def segments_done(self, s: Start, ctx: JobCtx, fut: asyncio.Future) -> None:
        timer = self._hang_timer.get(s.acc)
        if timer is not None and timer[0] is s:
            timer[1].cancel()
            del self._hang_timer[s.acc]
        if self._inflight.get(s.acc, (None,))[0] is not s:
            if self._hung.get(s.acc) is s:  # a hung invoke returned at last: the thread is free, probe it
                del self._hung[s.acc]
                log.warning("accelerator %s: the hung invoke returned; probing it", self.workers[s.acc].id)
                self._schedule_probe(s.acc, 0.0)
            return  # abandoned (hung, or at shutdown): already recorded
        del self._inflight[s.acc]
        now = self.now()
        try:
            r = fut.result()
        except Exception as e:  # noqa: BLE001 - the worker raised outside its own handling
            r = None
            err = f"{type(e).__name__}: {e}"
        else:
            err = r.error
        if err:
            acc = self.workers[s.acc].id
            self._last_error[s.acc] = err
            retried = self.disp.counters.retries
            c = self.disp.fail(s.acc, now, f"accelerator-failed ({err.split(':')[0]})", retry=True)
            what = "retried elsewhere" if self.disp.counters.retries > retried else "recorded as failed"
            log.error("accelerator %s failed %s: %s; the job is %s, the accelerator unhealthy until a probe works",
                      acc, s.job, err, what)
            self._schedule_probe(s.acc)
        else:
            assert r is not None
            ctx.computed = r.computed
            ctx.energy_source = r.energy_source
            c = self.disp.segments_done(s.acc, now, energy_mj=r.energy_mj)
            if self.cfg.log.segments:  # the same record as a replay's --record (sim/replay.py segment_record)
                j = s.job
                self.recorder.put({"type": "segment", "model": j.model.name, "frame": j.frame, "variant": j.variant,
                                   "segment": s.first_seg, "segments": s.n, "accelerator": self.workers[s.acc].id,
                                   "start_ms": s.start_ms, "end_ms": now, "energy_mj": r.energy_mj})
        if c is not None:
            self.finished(c, now)
        self.schedule()  # at once: the accelerator is free now (saves a loop iteration per segment)

    def _schedule_probe(self, a: int, delay_s: float | None = None) -> None:
        """Probe accelerator ``a`` after ``delay_s`` (default: its backoff, which doubles after each failed probe)."""
        if a in self._probing or self._closing:
            return
        self._probing.add(a)
        if delay_s is None:
            delay_s = self._probe_delay.get(a, self.cfg.service.probe_initial_s)
        self.loop.call_later(delay_s, self._probe, a)

    def _probe(self, a: int) -> None:
        if self._closing:
            return
        w = self.workers[a]
        self._probes[a] += 1
        fut = self.loop.run_in_executor(w.pool, w.probe)
        t0 = time.monotonic()
        fut.add_done_callback(lambda f, a=a: self._probed(a, f, time.monotonic() - t0))

    def _probed(self, a: int, fut: asyncio.Future, took_s: float) -> None:
        self._probing.discard(a)
        if self._closing:
            return
        w, sv = self.workers[a], self.cfg.service
        try:
            err = fut.result()
        except Exception as e:  # noqa: BLE001 - a probe that raises outside its own handling failed
            err = f"{type(e).__name__}: {e}"
        if not err and took_s * 1000.0 > sv.hang_min_ms:  # a tiny invoke that takes this long hung
            err = f"the probe took {took_s * 1000.0:.0f} ms (limit hang_min_ms = {sv.hang_min_ms:g})"
        if err:
            self._last_error[a] = err
            delay = min(2 * self._probe_delay.get(a, sv.probe_initial_s), sv.probe_max_s)
            self._probe_delay[a] = delay
            log.warning("accelerator %s: probe failed (%s); next probe in %.2g s", w.id, err, delay)
            self._schedule_probe(a, delay)
            return
        self._probe_delay.pop(a, None)
        self.disp.recover(a)
        log.info("accelerator %s back in service (probe %d worked)", w.id, self._probes[a])
        self.kick()

    # --- outcomes ------------------------------------------------------------------------------------
    def missed(self, p: Pending, reason: str, now: float) -> Completion:
        m = self.wl.models[self.wl.index[p.model]]
        self._ctx[(p.model, p.slot)] = p.ctx
        return Completion(p.model, p.slot, 0, "", p.release_ms, -1.0, now, p.release_ms + m.relative_deadline_ms,
                          0.0, DROPPED, reason)

    def finished(self, c: Completion, now: float) -> None:
        """One due frame's outcome: record, publish, feed the policy, release or miss its cascades."""
        ctx = self._ctx.pop((c.model, c.frame), None)
        wl = self.wl
        m = wl.index[c.model]
        vname = wl.models[m].variants[c.variant].name
        rec = {"type": "job", "model": c.model, "frame": c.frame, "variant": c.variant, "accelerator": c.accelerator,
               "release_ms": c.release_ms, "start_ms": c.start_ms, "end_ms": c.end_ms, "deadline_ms": c.deadline_ms,
               "status": c.status, "reason": c.reason, "energy_mj": c.energy_mj,
               "energy_source": (ctx.energy_source if ctx else "") if c.start_ms >= 0 else "",
               "variant_name": vname}
        if ctx is not None:
            rec.update(stream=ctx.stream, stream_frame=ctx.stream_frame)
        if c.start_ms >= 0 and ctx is not None and not ctx.computed:
            rec["computed"] = False
        self.recorder.put(rec)
        self.total.add(c)
        self.window.add(c)
        if c.status != DONE:
            self.drops[c.reason or c.status] += 1
        self.publish(c, ctx, vname, rec["energy_source"])
        observe = getattr(self.disp.policy, "observe", None)
        if observe is not None:
            observe(c, now)
        for p in self._children.pop((c.model, c.frame), []):
            if c.status == DONE:
                self.release(p.model, p.slot, p.release_ms, max(now, p.release_ms), p.ctx)
            else:
                self.finished(self.missed(p, f"upstream {c.status}", now), now)

    def publish(self, c: Completion, ctx: JobCtx | None, vname: str, energy_source: str) -> None:
        h = {"stream": ctx.stream if ctx else "", "frame": ctx.stream_frame if ctx else -1, "model": c.model,
             "variant": vname, "variant_index": c.variant, "accelerator": c.accelerator, "status": c.status,
             "reason": c.reason, "release_ms": c.release_ms, "start_ms": c.start_ms, "end_ms": c.end_ms,
             "deadline_ms": c.deadline_ms, "energy_mj": c.energy_mj, "energy_source": energy_source,
             "t_capture_ms": ctx.t_capture_ms if ctx else None, "slot": c.frame}
        arrays: list[np.ndarray] = []
        if c.completed and ctx is not None:
            if ctx.computed:
                vf = self.wl.files[self.wl.index[c.model]][c.variant]
                arrays = [ctx.feeds[o.name] for o in vf.outputs if o.name in ctx.feeds]
            else:
                h["computed"] = False
        try:
            self.pub.send_multipart(protocol.encode_result(h, arrays), copy=False, flags=zmq.NOBLOCK)
            self.counters["results_out"] += 1
        except zmq.ZMQError as e:  # PUB drops at its high-water mark; never blocks
            self.counters["results_dropped"] += 1
            log.debug("result not published: %s", e)

    def error(self, code: str, message: str, stream: str | None = None, frame: int | None = None) -> None:
        self.errors[code] += 1
        n = self.errors[code]
        if n <= 10 or n % 100 == 0:
            log.warning("bad message (%s, #%d): %s%s", code, n, message,
                        f" [stream {stream!r} frame {frame}]" if stream is not None else "")
        try:
            self.pub.send_multipart(protocol.encode_error(code, message, stream=stream, frame=frame, count=n),
                                    flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            self.counters["results_dropped"] += 1

    # --- summaries ------------------------------------------------------------------------------------
    def write_summary(self, now: float, final: bool = False) -> None:
        window_s = (now - self._last_summary) / 1000.0
        snap = self.window.result(drops=True)
        busy = self.disp.busy_ms
        util = {w.id: (busy[i] - self._busy_at_summary[i]) / (window_s * 1000.0) if window_s > 0 else 0.0
                for i, w in enumerate(self.workers)}
        self._busy_at_summary = list(busy)
        self._last_summary = now
        self.window = Accumulator(self.infos)
        rec = {"type": "summary", "t_ms": now, "window_s": window_s, "final": final, "policy": self.disp.policy.name,
               "scenario": self.wl.scenario.name, "platform": self.wl.spec.platform.name, **snap,
               "theta": self.theta(), "variants": self.variants_in_use(), "utilization": util,
               "run": {k: v for k, v in self.total.result(drops=True).items() if k != "models"},
               "errors": dict(self.errors), "drops": dict(self.drops)}
        self.recorder.put(rec)
        if snap["frames_due"] or final:
            log.info("%s%.1f s: %d due, miss %.1f%%, UXCost %.4f, XRBench %.1f, energy %.1f mJ, θ %s, variants %s",
                     "final: " if final else "", window_s, snap["frames_due"], 100 * snap["miss_rate"],
                     snap["uxcost"], snap["xrbench_score"], snap["energy_mj"], rec["theta"], rec["variants"])
        self.notifier.status(f"{self.counters['frames_in']} frames, run UXCost {rec['run']['uxcost']:.4f}, "
                             f"miss {100 * rec['run']['miss_rate']:.1f}%")

    def theta(self) -> dict | None:
        th = getattr(self.disp.policy, "theta", None)
        return dataclasses.asdict(th) if th is not None else None

    def variants_in_use(self) -> dict[str, str]:
        pick = getattr(self.disp.policy, "variant_of", None)
        out = {}
        for i, m in enumerate(self.wl.models):
            v = pick(i) if pick is not None else 0
            out[m.name] = m.variants[v if 0 <= v < len(m.variants) else 0].name
        return out

    # --- control ---------------------------------------------------------------------------------------
    async def control_loop(self) -> None:
        rep = self.rep
        while True:
            parts = await rep.recv_multipart(copy=False)  # frames: the sender's User-Id (CURVE key) is on them
            self.counters["control_requests"] += 1
            try:
                if len(parts) != 1:
                    raise ProtocolError("bad-header", f"a control request is one message part, got {len(parts)}")
                cmd, args = protocol.decode_request(parts[0])
                self.security.check_command(cmd, parts[0])  # [sockets] control_commands (security.py)
                reply = protocol.encode_reply(await self.command(cmd, args))
            except ProtocolError as e:
                self.error(e.code, f"control: {e.message}")
                reply = protocol.encode_reply(error=e)
            except Exception as e:  # noqa: BLE001 - answer, never leave the REP socket stuck
                log.exception("control command failed")
                reply = protocol.encode_reply(error=ProtocolError("internal", f"{type(e).__name__}: {e}"))
            await rep.send(reply)

    async def command(self, cmd: str, args: dict) -> dict:
        if cmd == "status":
            return self.status()
        if cmd == "stats":
            return {**self.stats(), "security": self.security.stats()}
        if cmd == "set-policy":
            name = args.get("policy")
            if not isinstance(name, str):
                raise ProtocolError("bad-argument", "set-policy needs 'policy': a policy name")
            try:
                pol = make_policy_from(self.cfg, name)
            except CoreConfigError as e:
                raise ProtocolError("bad-argument", str(e)) from None
            self.disp.set_policy(pol)
            log.info("policy set to %s", pol.name)
            self.kick()
            return {"policy": pol.name, "theta": self.theta()}
        if cmd == "set-params":
            params = args.get("params")
            th = getattr(self.disp.policy, "theta", None)
            if not isinstance(params, dict) or not params:
                raise ProtocolError("bad-argument", "set-params needs 'params': {alpha, beta, gamma, delta}")
            if th is None:
                raise ProtocolError("bad-argument", f"policy {self.disp.policy.name} has no parameters θ")
            for k, v in params.items():
                if k not in ("alpha", "beta", "gamma", "delta"):
                    raise ProtocolError("bad-argument", f"params: unknown parameter {k!r} (alpha, beta, gamma, delta)")
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ProtocolError("bad-argument", f"params: {k} must be a number, got {v!r}")
            new = dataclasses.replace(th, **{k: float(v) for k, v in params.items()})
            self.disp.policy.theta = new
            tuner = getattr(self.disp.policy, "tuner", None)
            if tuner is not None:
                tuner.theta = new
            log.info("θ set to %s", new)
            return {"theta": self.theta()}
        if cmd == "reload-catalog":
            return await self.reload_catalog()
        raise ProtocolError("unknown-command", f"unknown command {cmd!r}")  # pragma: no cover - decode checks

    def status(self) -> dict:
        queues = Counter(j.model.name for j in self.disp.ready)
        snap = self.total.result(drops=True)
        return {
            "policy": self.disp.policy.name, "theta": self.theta(), "scenario": self.wl.scenario.name,
            "platform": self.wl.spec.platform.name,
            "accelerators": [{"id": w.id, "kind": w.kind, "healthy": self.disp.healthy[i],
                              "busy": self.disp.running[i] is not None, "runs": w.runs, "failures": w.failures,
                              "hung": i in self._hung, "probes": self._probes[i],
                              "last_error": self._last_error.get(i, "")}
                             for i, w in enumerate(self.workers)],
            "queues": {m.name: queues.get(m.name, 0) for m in self.wl.models},
            "models": {k: {"due": v["due"], "missed": v["missed"], "miss_rate": v["miss_rate"]}
                       for k, v in snap["models"].items()},
            "inputs": {vf[0].model: [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype.name}
                                     for s in vf[0].inputs] for vf in self.wl.files},
            "roots": self.wl.roots, "variants": self.variants_in_use(),
            "uxcost": snap["uxcost"], "miss_rate": snap["miss_rate"], "xrbench_score": snap["xrbench_score"],
            "errors": dict(self.errors), "uptime_s": self.now() / 1000.0,
            "log": self.recorder.state(),
        }

    def stats(self) -> dict:
        c = self.disp.counters
        return {
            "dispatcher": {"decisions": c.decisions, "invalid_decisions": c.invalid_decisions,
                           "fallbacks": c.fallbacks, "drops_policy": c.drops_policy,
                           "drops_deadline": c.drops_deadline, "retries": c.retries,
                           "accelerator_errors": dict(c.errors)},
            "sockets": {k: self.counters[k] for k in ("frames_in", "frames_accepted", "results_out",
                                                       "results_dropped", "control_requests")},
            "jobs": {"released": self.counters["jobs_released"], "in_flight": len(self._inflight),
                     "ready": len(self.disp.ready), "waiting_upstream": sum(len(v) for v in self._children.values()),
                     "drops": dict(self.drops)},
            "run": {k: v for k, v in self.total.result(drops=True).items() if k != "models"},
            "errors": dict(self.errors),
            "recorder": {"path": str(self.recorder.path), "lines": self.recorder.lines,
                         "rotations": self.recorder.rotations, "errors": self.recorder.errors,
                         "lost": self.recorder.lost, "error": self.recorder.error},
            "config": as_dict(self.cfg),
        }

    async def reload_catalog(self) -> dict:
        """Re-read the model catalog and files: a variant whose segment files changed is reloaded on first use.
        The scenario and the platform stay as they are (a restart changes them)."""
        self.notifier.reloading()
        try:
            wl = await asyncio.to_thread(load_workload, self.cfg)
        except (StartupError, ExecutorError, CoreConfigError) as e:
            self.notifier.ready("reload failed; running on the catalog loaded before")
            raise ProtocolError("bad-argument", f"reload-catalog: {e}") from None
        same = [m.name for m in wl.models] == [m.name for m in self.wl.models] and \
            [[v.name for v in m.variants] for m in wl.models] == [[v.name for v in m.variants] for m in self.wl.models]
        if not same:
            self.notifier.ready("reload refused")
            raise ProtocolError("bad-argument", "reload-catalog: the scenario's models or variants changed; "
                                                "restart the service to use them")
        changed = []
        for m, (old, new) in enumerate(zip(self.wl.files, wl.files)):
            for v, (a, b) in enumerate(zip(old, new)):
                if a.segments != b.segments:  # a new file (its sha256 names the segment folder)
                    changed.append((a.model, a.variant))
        self.wl.files = wl.files
        for w in self.workers:
            self.loop.run_in_executor(w.pool, w.forget, changed)
        log.info("catalog reloaded: %d variants changed", len(changed))
        self.notifier.ready("catalog reloaded")
        return {"models": {m.name: [v.name for v in m.variants] for m in self.wl.models},
                "changed": [f"{a}/{b}" for a, b in changed]}


def _peek_ids(parts: list) -> tuple[str | None, int | None]:
    """The stream and frame of a message that failed validation, when its header says them."""
    try:
        import msgpack

        h = msgpack.unpackb(protocol._buffer(parts[0]), raw=False)
        stream = h.get("stream") if isinstance(h, dict) else None
        frame = h.get("frame") if isinstance(h, dict) else None
        return (stream if isinstance(stream, str) else None,
                frame if isinstance(frame, int) and not isinstance(frame, bool) else None)
    except Exception:  # noqa: BLE001 - best effort only
        return None, None
