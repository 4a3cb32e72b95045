"""Per-accelerator executors: one worker thread per accelerator runs a job's segments on a hal device.

TFLite interpreters are not thread-safe and ``invoke()`` releases the GIL, so each accelerator owns one thread
(:class:`WorkerThread`: blocks posted to it, loads and probes through ``loop.run_in_executor``) and every model
segment loaded on it; loads happen in that thread too (at startup, or on first use), never on the event loop.
A job's segments pass tensors by name (edge_sdrm3/tflite/split.py): the feeds start as the model inputs, each
segment adds its outputs, and the model's outputs are read off the feeds at the end.

Time and energy of what ran come from hal's one ``Loaded.run(inputs) -> RunResult`` for every kind of device, with
the energy filled by hal; the worker only adds them up:
- ``cpu`` (and real gpu/npu/edgetpu devices): latency measured around ``invoke``; energy = measured latency x the
  power the platform profile implies for that segment (its profiled energy / profiled latency,
  hal.energy.ProfiledPower), source ``estimate:profiled-power*measured-time`` (a per-job meter reading is not
  attributable on a shared package).
- ``emulated``: hal.emulated.EmulatedDevice with the platform's modelled latency and energy of each segment
  (a CostTable keyed ``model/variant/segment``): paced to the modelled latency, energy modelled, outputs real
  when computed (``[workload] emulated_compute``). A job whose segment was not computed runs its later
  segments timing-only too (``run(None)``: a real device runs on zero inputs, so its time and energy stay
  measured), and its result carries no outputs.

Memory (DESIGN.md §7: ≤ 120 MB resident with the default catalog): the host CPU and every emulated accelerator
compute on the same cores, so they share one interpreter per segment file (hal.host.HostInterpreters, with
a lock per interpreter) instead of one copy per accelerator; and only each model's default variant (index 0,
what every policy starts with) is loaded before READY=1, the others on first use (``[workload] preload``).
Measured on the 2-core x86 dev VM, LiteRT 2.3.0, MediaPipe XR pipeline + digits, 4 segments per variant:
- one copy per accelerator × 3 accelerators, every variant loaded: 664 MB RSS;
- XNNPACK (default resolver) vs BUILTIN_WITHOUT_DEFAULT_DELEGATES: all 56 segment files, after one invoke,
  +229 MB vs +187 MB over the interpreter baseline, but the pipeline runs 4x slower without XNNPACK (63 ms vs
  248 ms per pass over every segment) and selfie_segmentation does not load at all (its custom op
  Convolution2DTransposeBias exists only in XNNPACK): XNNPACK stays;
- num_threads 1 vs 2: no difference in RSS (XNNPACK's thread pool is small); the cpu accelerator keeps the
  platform's threads and the pool uses them;
- XNNPACK's weight cache (TfLiteXNNPackDelegateOptions.weight_cache_*) is not reachable from the Python
  Interpreter of ai_edge_litert 2.3.0 (no option, no exported XNNPACK symbols), and would not help much: the
  resident memory is mostly XNNPACK's per-interpreter workspace (activations), not packed weights — e.g.
  pose_landmark_full is 6.1 MB of weights and +62 MB resident in 4 segments (+43 MB as one model);
- the model files' pages stay resident after XNNPACK has packed their weights: released before READY
  (hal.loaded.release_loaded_files), -20 MB; the start-up checks of every variant leave free memory in the main
  thread's malloc arena, which the worker threads (arenas of their own) never reused: two arenas for the
  service's threads (runtime/memory.py), -10-30 MB (malloc_trim gave the same back but slowed the loads on first
  use);
- the 4 segments of pose_landmark_full as 4 subgraphs of one interpreter (one XNNPACK workspace for the 4):
  52 MB heap against 61 MB as 4 interpreters; not done (a format of its own, and a model's jobs on two
  accelerators would then share one lock).
So with the default variants in 4 segments: 205 MB at READY (tools/bench_service.py part (c)) = the runtime's
libraries (~36 MB: LiteRT, numpy, libpython, pyzmq) + Python's objects (~12 MB) + ~155 MB of segment
interpreters, and 248 MB once serving (the interpreters' activation buffers touched at the first invoke, and the
lighter variants the selector loads).
"""
from __future__ import annotations

import concurrent.futures
import logging
import math
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hal.devices import Device, default_threads, open_device, parse_spec
from hal.emulated import CostTable, EmulatedDevice, FaultSpec, HostInterpreters, HostSlots
from hal.energy import ProfiledPower
from hal.errors import HalError
from hal.loaded import Loaded

log = logging.getLogger(__name__)


class ExecutorError(Exception):
    """A device or model that cannot be set up; names the accelerator and the file."""


@dataclass(frozen=True)
class IOSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class VariantFiles:
    """A model variant: its segment files in order, and the whole model's inputs and outputs."""

    model: str
    variant: str
    segments: tuple[Path, ...]
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]


@dataclass
class SegmentRun:
    """What running a block of segments gave (filled in the worker thread)."""

    latency_ms: float = 0.0  # device latency: measured (cpu) or modelled (emulated)
    energy_mj: float = 0.0
    wall_ms: float = 0.0
    computed: bool = True
    error: str = ""
    energy_source: str = ""
    feeds: dict[str, np.ndarray] = field(default_factory=dict)
    ran: int = 0  # segments run (fewer than asked when a block of several stopped at a boundary)


def loaded_key(vf: VariantFiles, seg: int) -> tuple[str, str, int]:
    return (vf.model, vf.variant, seg)


def segment_files(model: str, src: Path, variant_name: str, sha256: str, n: int, cache: Path) -> list[Path]:
    """The variant's ``n`` segment files, split once and cached under ``cache/segments/`` (the layout `edge-sdrm3
    profile` uses, so a profiled board already has them)."""
    if n == 1:
        return [src]
    out = cache / "segments" / model / f"{variant_name}-{sha256[:12]}-{n}"
    stem = src.name.removesuffix(".tflite")
    files = [out / f"{stem}.seg{i}of{n}.tflite" for i in range(1, n + 1)]
    if all(f.exists() for f in files):
        return files
    from ..tflite.split import split_model  # here: the splitter's flatbuffer schema is 5 MB resident, once split

    log.info("splitting %s into %d segments -> %s", src, n, out)
    return split_model(src, n, out)


def model_io(path: Path) -> tuple[tuple[IOSpec, ...], tuple[IOSpec, ...]]:
    """The whole model's inputs and outputs, read by loading it once on the CPU."""
    dev = open_device("cpu:1")
    try:
        loaded = dev.load(path)
        ins = tuple(IOSpec(s.name, tuple(s.shape), np.dtype(s.dtype)) for s in loaded.inputs)
        outs = tuple(IOSpec(s.name, tuple(s.shape), np.dtype(s.dtype)) for s in loaded.outputs)
        return ins, outs
    finally:
        dev.close()


PR_SET_TIMERSLACK = 29  # linux/prctl.h


def precise_sleeps() -> bool:
    """Make this thread's sleeps end on time: Linux lets a sleep end up to the thread's timer slack late (50 us
    by default), and an emulated accelerator paces each segment with a sleep, often of a few microseconds (its
    modelled latency minus the host's time), so a block of 4 segments ended up to 0.2 ms late. Measured on the
    2-core dev VM: ``time.sleep(2e-6)`` took 72 us with the default slack, 16 us with a slack of 1 ns. Called in
    each worker thread as it starts; elsewhere than Linux nothing changes (False)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class WorkerThread(concurrent.futures.Executor):
    """An accelerator's one thread, running what it is given in order.

    ``post(fn, *args)`` runs a call with no Future: a block, whose end the call reports to the event loop itself,
    as its last act, so that nothing is left for this thread to do once the loop is awake (ThreadPoolExecutor
    settles its Future and its bookkeeping after the call, holding the GIL while the loop handles the block's
    end and sends its result). ``submit`` is the Executor's verb, for ``loop.run_in_executor`` (loads, probes).
    ``idle``: nothing posted or submitted is waiting or running (read by the thread that posts: the only one that
    adds work, so an idle thread stays idle until it posts again).
    """

    def __init__(self, name: str, initializer: Callable[[], Any] | None = None) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._given = 0  # calls posted or submitted (written by the thread that gives them)
        self._ended = 0  # calls that ended (written by this thread alone)
        self._initializer = initializer
        self._closed = False
        # a daemon: an accelerator never closed (a failed startup's) must not keep the process from exiting; the
        # service's close joins it (after an injected hang is released; a stuck driver delays the stop)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._initializer is not None:
            self._initializer()
        get = self._q.get
        while True:
            item = get()
            if item is None:
                return
            try:
                item[0](*item[1])
            finally:
                self._ended += 1

    @property
    def idle(self) -> bool:
        return self._given == self._ended

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        self._given += 1
        self._q.put((fn, args, None))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                r = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the Future
                fut.set_exception(e)
            else:
                fut.set_result(r)

        self._given += 1
        self._q.put((call, (), fut))
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if not self._closed:
            self._closed = True
            if cancel_futures:  # what has not started is not run (a posted block was recorded as abandoned)
                while True:
                    try:
                        item = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None and item[2] is not None:
                        item[2].cancel()
            self._q.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()


class AcceleratorWorker:
    """One accelerator: its hal device, its loaded segments, and its single worker thread.

    The same code for every kind of device: segments are loaded by key ``model/variant/segment`` (what the
    device's cost or energy model knows them by), run with ``Loaded.run``, and probed with ``Device.probe``.
    """

    def __init__(self, index: int, acc_id: str, kind: str, device: Device, *, on_host: bool = False) -> None:
        self.index = index
        self.id = acc_id
        self.kind = kind
        self.device = device
        # its segments compute on the host's cores with nothing that can hang (the cpu, or an emulated accelerator
        # without injected faults): the event loop may run a tiny block of them itself (:meth:`runs_inline`)
        self.on_host = on_host
        self.pool = WorkerThread(f"acc-{acc_id}", initializer=precise_sleeps)
        self._loaded: dict[tuple[str, str, int], Loaded] = {}
        self.wall_ms: dict[tuple[str, str, int], float] = {}  # each segment's last wall time, its load included
        self.runs = 0
        self.failures = 0
        self.invoking_since: float | None = None  # time.monotonic() when the invoke now running began (hang check)
        self.abandon = False  # set by the event loop: the block now running was given up, run no further segment

    # --- in the worker thread -------------------------------------------------------------------
    def load(self, vf: VariantFiles, seg: int) -> Loaded:
        key = loaded_key(vf, seg)
        loaded = self._loaded.get(key)
        if loaded is None:
            loaded = self._loaded[key] = self.device.load(vf.segments[seg], key=f"{vf.model}/{vf.variant}/{seg}")
        return loaded

    def preload(self, files: list[VariantFiles]) -> int:
        n = 0
        for vf in files:
            for s in range(len(vf.segments)):
                self.load(vf, s)
                n += 1
        return n

    def run(self, vf: VariantFiles, first: int, n: int, feeds: dict[str, np.ndarray], computed: bool,
            until: float | None = None, stop: Callable[[], bool] | None = None) -> SegmentRun:
        """Run segments ``first .. first+n-1`` of ``vf``; ``feeds`` (tensor name -> array) grows with outputs.

        Once a segment was not computed (here, or before: ``computed`` False), the later ones have no inputs and
        are run timing-only (``run(None)``). Several segments in one go stop at a boundary once ``time.monotonic()``
        is past ``until`` (the job's firm deadline), the block was abandoned, or ``stop()`` says so (another job
        waits: the scheduler decides the rest block by block); ``out.ran`` says how many ran."""
        out = SegmentRun(computed=computed, energy_source=self.device.energy_source, feeds=feeds)
        self.abandon = False
        # locals, a plain loop, no generator: the path runs after an idle moment, its caches cold (every bytecode
        # counts; measured on the 2-core dev VM: ~0.03 ms less per block of 4 segments)
        perf, walls, loaded, model, variant = time.perf_counter, self.wall_ms, self._loaded, vf.model, vf.variant
        t0 = t = perf()
        try:
            for s in range(first, first + n):
                if s > first and (self.abandon or until is not None and time.monotonic() >= until
                                  or stop is not None and stop()):
                    break
                key = (model, variant, s)
                seg = loaded.get(key) or self.load(vf, s)
                inputs = [feeds[spec.name] for spec in seg.inputs] if out.computed else None
                self.invoking_since = time.monotonic()
                res = seg.run(inputs)
                self.invoking_since = None
                out.latency_ms += res.latency_ms
                out.energy_mj += res.energy_mj
                outputs = res.outputs
                if res.computed and outputs is not None:
                    for spec, x in zip(seg.outputs, outputs):
                        feeds[spec.name] = x
                else:
                    out.computed = False
                out.ran += 1
                t, t_seg = perf(), t
                walls[key] = (t - t_seg) * 1e3
            self.runs += 1
        except (HalError, KeyError, ValueError, RuntimeError) as e:
            self.failures += 1
            out.error = f"{type(e).__name__}: {e}"
        finally:
            self.invoking_since = None
        out.wall_ms = (perf() - t0) * 1e3
        return out

    def runs_inline(self, vf: VariantFiles, first: int, n: int, limit_ms: float) -> bool:
        """Whether segments ``first .. first+n-1`` of ``vf`` may run on the calling thread (the event loop) instead
        of this accelerator's own: they compute on the host (``on_host``), the worker thread is idle (so nothing
        else uses its interpreters), and each ran here before, in at most ``limit_ms`` together (their last wall
        times, loads and input making included)."""
        if not (self.on_host and self.pool.idle):
            return False
        total, walls = 0.0, self.wall_ms
        for s in range(first, first + n):
            w = walls.get(loaded_key(vf, s))
            if w is None:
                return False
            total += w
        return total <= limit_ms

    def probe(self) -> str:
        """A tiny invoke to see whether a failed accelerator works again (hal's ``Device.probe``: one loaded
        segment, the one of the least modelled work on an emulated device, timing only) — "" when it worked, else
        the error. An accelerator with nothing loaded counts as working."""
        try:
            self.invoking_since = time.monotonic()
            self.device.probe()
            return ""
        except (HalError, KeyError, ValueError, RuntimeError) as e:
            return f"{type(e).__name__}: {e}"
        finally:
            self.invoking_since = None

    def forget(self, variants: list[tuple[str, str]]) -> None:
        """Drop the loaded segments of these (model, variant)s: they are loaded again on first use."""
        for key in [k for k in self._loaded if (k[0], k[1]) in set(variants)]:
            self._loaded.pop(key).close()
            self.wall_ms.pop(key, None)

    def loaded_count(self) -> int:
        return len(self._loaded)

    def close(self) -> None:
        self.device.release_hangs()  # an injected hang ends now, so that the worker thread can be joined
        self.pool.shutdown(wait=True, cancel_futures=True)
        for loaded in self._loaded.values():
            loaded.close()  # pooled views return their interpreter to the pool
        self._loaded.clear()
        try:
            self.device.close()
        except HalError as e:  # pragma: no cover - closing is best effort
            log.warning("closing %s: %s", self.id, e)


def open_worker(index: int, acc: Any, costs: Any, models: tuple, variant_names: list[list[str]], *,
                compute: str, host: HostSlots, cpu_threads: int,
                shared: HostInterpreters | None = None, fault: FaultSpec | None = None) -> AcceleratorWorker:
    """The worker of platform accelerator ``acc`` (its ``device`` string and ``threads`` from the platform file).

    ``cpu`` → the hal CPU device (threads: config, else the platform's, else all cores), its energy the profiled
    power × the measured time; ``emulated`` → ``emulated:ID`` costed by the platform (``costs.lat/en[m][v][index]
    [s]``); other kinds → the hal device named by the entry's ``device`` string, charged like the cpu. With
    ``shared`` (see :func:`host_pool`), emulated accelerators and a ``cpu`` one whose threads match the pool's
    load their segments from it."""
    lat_en: dict[str, tuple[float, float]] = {}
    for m, model in enumerate(models):
        for v, vname in enumerate(variant_names[m]):
            for s in range(model.n_segments):
                la, en = costs.lat[m][v][index][s], costs.en[m][v][index][s]
                if math.isfinite(la):
                    lat_en[f"{model.name}/{vname}/{s}"] = (la, en)
    kind = acc.kind
    try:
        if kind == "emulated":  # made directly: a platform's accelerator id need not fit a device string's NAME
            dev: Device = EmulatedDevice(acc.id, CostTable(lat_en), compute=compute, host=host, shared=shared,
                                         fault=fault)
        else:
            spec = acc.device or kind
            power = ProfiledPower({k: en / la * 1000.0 if la > 0 else 0.0 for k, (la, en) in lat_en.items()})
            on_host = kind == "cpu" and parse_spec(spec).kind == "cpu"
            dev = open_device(spec, threads=cpu_threads or acc.threads or None, energy=power,
                              **({"shared": shared} if on_host else {}))
    except HalError as e:
        raise ExecutorError(f"accelerator {acc.id!r} ({kind}): cannot open its device: {e}") from None
    return AcceleratorWorker(index, acc.id, kind, dev, on_host=on_host if kind != "emulated" else fault is None)


SINGLE_THREAD_MS = 0.1  # a segment profiled below this on the cpu runs on one thread (hal.host.HostInterpreters)


def host_pool(accelerators: Any, cpu_threads: int, small: Any = ()) -> HostInterpreters:
    """The host interpreter pool of a platform: the threads of its (first) ``cpu`` accelerator — the config's,
    else the platform file's, else every core — so that the cpu accelerator runs exactly as with its own
    interpreters; 1 thread when the platform has no cpu accelerator (as an emulated device alone computes).
    ``small``: segment files whose work is too small to share between threads (:func:`small_segments`): one
    thread each."""
    for acc in accelerators:
        if acc.kind == "cpu":
            spec_threads = parse_spec(acc.device or "cpu").arg  # 'cpu:N' wins, as in open_device
            n = (int(spec_threads) if spec_threads else 0) or cpu_threads or acc.threads or default_threads()
            return HostInterpreters(n, single=set(small))
    return HostInterpreters(1)


def small_segments(accelerators: Any, costs: Any, files: list[list[VariantFiles]]) -> list[Path]:
    """The segment files whose profiled latency on the platform's (first) ``cpu`` accelerator is below
    ``SINGLE_THREAD_MS``."""
    cpu = next((i for i, acc in enumerate(accelerators) if acc.kind == "cpu"), None)
    if cpu is None:
        return []
    return [path for m, per in enumerate(files) for v, vf in enumerate(per) for s, path in enumerate(vf.segments)
            if costs.lat[m][v][cpu][s] < SINGLE_THREAD_MS]
