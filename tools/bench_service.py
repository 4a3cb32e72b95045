"""Service figures of DESIGN.md §7 / issue 5: ingest rate, added latency, resident memory, memory under overload.

    python3 tools/bench_service.py [--frames 2000] [--latency-frames 500] [--soak 600] [--skip-service]

(a) **Ingest**: 640×480×3 uint8 frames over ipc://. Bare pyzmq (PUSH → PULL in another process, zero-copy
    receive) and the service's ingest path (frames with ``models: []``, so nothing runs; the run ends with
    one frame for ``digits`` whose result proves, PULL being FIFO, that every frame before it was taken in),
    side by side in the same run, same sender. Target: service ≥ 80% of bare.
(b) **Added latency**: ``digits`` (4 blocks) with its exact input tensor, one frame at a time, its outputs computed
    (``emulated_compute = "always"``, as the bare invoke computes them).
    - Service-added (issue 5): (result received − frame sent, on this host's monotonic clock) − the job's own run
      time (``end_ms − start_ms``). Targets: ≤ 1 ms median, ≤ 3 ms p99.
    - **Added per model over a bare invoke of the same blocks** (issue 12, "Fewer hand-offs"): what the service
      adds to a model's latency beyond the transport and the blocks' own work. Three things are timed in turns,
      in the same run, each after its own pause (so each sees the machine as the others do: on this host a call
      after 20 ms idle runs several times slower than the same call repeated, its caches cold): a frame's round
      trip through the service; the same client's round trip through a bare asyncio pyzmq echo in another
      process (it decodes the frame and publishes a result made of its tensor: what the transport and the
      message encoding cost, nothing of the service); and a bare LiteRT invoke of the same 4 segment files the
      service runs, in this process, one after the other with tensors passed by name. Per turn: added =
      service round trip − echo round trip − bare invoke of the blocks. Targets: ≤ 0.5 ms median, ≤ 2 ms p99.
      The quantiles of the differences carry the jitter of both round trips; the shift between the quantiles
      (service p99 − echo p99 − bare p99) is printed beside. The echo round trip is printed on its own line.
      Then the same with ``[scheduler] chain_ms = 0``: each block handed off to its worker and decided on its
      own, what running a lone job's blocks in one go saves.
      Why the pauses matter: on the 2-core dev VM shared with other work, ``protocol.decode_frame`` of this frame
      takes 14 µs repeated and 120–180 µs as the first call after a 20-ms sleep (spinning 1 ms first does not
      help: it is the caches, not the clock speed); every step of a frame's path pays that, so the service's
      cost is the length of its path: decoding and admitting the frame, a scheduling step, the hand-off to the
      worker and back, the result's header.
(c) **Resident memory** (psutil RSS of the service and its children) with the MediaPipe XR pipeline and the
    digits supernet loaded (digits alone when the MediaPipe models are not in the cache; said in the output),
    right after READY (the default variants loaded), then the same with every variant preloaded, then the
    digits supernet alone. Target ≤ 120 MB. The first figure is split into the anonymous part (the heap: the
    interpreters, Python's objects) and the file-backed part (shared libraries, model files), with the PSS beside
    (``/proc/PID/smaps_rollup``).
(d) ``--soak S``: tools/soak.py (one implementation): the service driven at twice its measured capacity for S s,
    then at half of it for S/3 s (at least 30 s); throughput, misses, drops, queues and RSS over time; the growth
    after the warm-up and the slope of the last half. Target: flat.
(e) **Sim-to-real**: the service on headset_emulated with the MediaPipe XR scenario (digits when the models are
    not in the cache) for ``--sim-s`` s (default 20) at the scenario's rates; its job log is replayed
    (``sim.replay.replay``) on the same platform with the same policy; live (``report.run_metrics``) vs replay
    miss rate (target within 2 points) and energy (target within 5%); then the same log replayed with each block's
    measured time (``replay --costs measured``): what of the gap is the host's timing rather than a decision.

``--parts abcde`` picks the parts (default ``abce``, plus ``d`` with ``--soak``).

The service runs as ``edge-sdrm3 serve --config TMP/bench.toml`` with runtime and state directories in a
temporary folder. If it cannot start, the parts that need it say ``service not available: ...`` and the
bare pyzmq figure is still printed (exit code 1).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench_common as common  # noqa: F401  (puts the repository root on sys.path)
import numpy as np
import soak as soak_tool  # the service wrapper and the soak (part d) live in tools/soak.py
import zmq
from soak import Service, ServiceUnavailable, _cache_has_mediapipe, _workload_scenario

from edge_sdrm3.client import ClientError, ClientTimeout, Publisher, Result, Subscriber
from edge_sdrm3.data import data_path

DIGITS = data_path("models", "digits", "digits_w100.tflite")
MEDIAPIPE = ("palm_detection", "hand_landmark", "face_detection", "face_landmark", "iris_landmark",
             "selfie_segmentation", "pose_detection", "pose_landmark")


# ---- (a) bare pyzmq ----------------------------------------------------------------------------------------


def _bare_receiver(endpoint: str, n: int, done_endpoint: str) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 64)
    pull.bind(endpoint)
    done = ctx.socket(zmq.PUSH)
    done.connect(done_endpoint)
    done.send(b"ready")
    for _ in range(n):
        parts = pull.recv_multipart(copy=False)
        np.frombuffer(parts[1].buffer, dtype=np.uint8)  # what any consumer does: view the payload
    done.send(b"done")
    pull.close(linger=0)
    done.close(linger=1000)
    ctx.term()


def _frames(size: tuple[int, int], k: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(k)]


def bare_ingest(tmp: Path, n: int, size: tuple[int, int]) -> float:
    """frames/s of a Publisher (same sender as for the service) into a bare PULL in another process."""
    ctx = zmq.Context.instance()
    done = ctx.socket(zmq.PULL)
    done_ep = f"ipc://{tmp}/bare-done.sock"
    done.bind(done_ep)
    ep = f"ipc://{tmp}/bare-frames.sock"
    proc = mp.get_context("spawn").Process(target=_bare_receiver, args=(ep, n, done_ep), daemon=True)
    proc.start()
    try:
        if not done.poll(30000):
            raise RuntimeError("bare receiver did not start")
        done.recv()
        imgs = _frames(size)
        with Publisher(ep, hwm=64) as pub:
            t0 = time.perf_counter()
            for i in range(n):
                pub.send("bench", i, [imgs[i % len(imgs)]], models=[])
            if not done.poll(120000):
                raise RuntimeError("bare receiver did not finish")
            dt = time.perf_counter() - t0
        done.recv()
        return n / dt
    finally:
        done.close(linger=0)
        proc.join(5)
        if proc.is_alive():
            proc.kill()


# ---- the service -------------------------------------------------------------------------------------------


def _wait_result(sub: Subscriber, frame: int, timeout_ms: int) -> Result:
    end = time.monotonic() + timeout_ms / 1000
    while True:
        left = int((end - time.monotonic()) * 1000)
        if left <= 0:
            raise ServiceUnavailable(f"no result for frame {frame} within {timeout_ms} ms")
        r = sub.recv(timeout_ms=left)
        if isinstance(r, Result) and r.frame == frame:
            return r
        if not isinstance(r, Result) and r.frame == frame:
            raise ServiceUnavailable(f"the service refused frame {frame}: {r.code}: {r.message}")


def _join(pub: Publisher, sub: Subscriber, stream: str) -> int:
    """Send digits frames until one is answered (the SUB socket has joined); the next free frame id."""
    x = np.zeros((1, 8, 8, 1), np.float32)
    for i in range(200):
        pub.send(stream, i, [x], models=["digits"])
        try:
            _wait_result(sub, i, 100)
            return i + 1
        except (ServiceUnavailable, ClientTimeout):
            continue
    raise ServiceUnavailable("no digits result within 20 s (is digits in the service's workload?)")


def service_ingest(svc: Service, n: int, size: tuple[int, int]) -> float:
    imgs = _frames(size)
    with Publisher(svc.frames_ep, hwm=64) as pub, Subscriber(svc.results_ep, models=["digits"]) as sub:
        base = _join(pub, sub, "ingest")
        t0 = time.perf_counter()
        for i in range(n):
            pub.send("ingest", base + i, [imgs[i % len(imgs)]], models=[])
        pub.send("ingest", base + n, [imgs[0]], models=["digits"])
        _wait_result(sub, base + n, 120000)
        return n / (time.perf_counter() - t0)


# ---- (b) latency -----------------------------------------------------------------------------------------


def bare_invoke_ms(n: int) -> list[float]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    it = Interpreter(model_path=str(DIGITS), num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.random.default_rng(0).random(d["shape"]).astype(d["dtype"])
    out = []
    for i in range(n + 20):
        it.set_tensor(d["index"], x)
        t = time.perf_counter()
        it.invoke()
        if i >= 20:
            out.append((time.perf_counter() - t) * 1000)
    return out


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    return it


def bare_blocks(config: Path) -> tuple[dict, int]:
    """Per variant of digits, ``run(x) -> outputs``: the service's own segment files of that variant (its workload,
    loaded from the service's config), each in a LiteRT interpreter, invoked one after the other with the tensors
    passed by name, as the service's worker passes them; and the number of blocks."""
    from edge_sdrm3.runtime.config import load_config
    from edge_sdrm3.runtime.workload import load_workload

    wl = load_workload(load_config(config))
    runs = {}
    for vf in wl.files[wl.index["digits"]]:
        segs = []
        for path in vf.segments:
            it = _interpreter(path)
            segs.append((it, [(d["name"], d["index"]) for d in it.get_input_details()],
                         [(d["name"], d["index"]) for d in it.get_output_details()]))
        runs[vf.variant] = _chain_of(segs, vf.inputs[0].name, [o.name for o in vf.outputs])
    return runs, len(wl.files[wl.index["digits"]][0].segments)


def _chain_of(segs: list, first: str, outs: list[str]):
    def run(x: np.ndarray) -> list[np.ndarray]:
        feeds = {first: x}
        for it, ins, os_ in segs:
            for name, i in ins:
                it.set_tensor(i, feeds[name])
            it.invoke()
            for name, i in os_:
                feeds[name] = it.get_tensor(i)
        return [feeds[o] for o in outs]

    return run


def added_ms(svc: Service, tmp: Path, n: int, blocks) -> dict[str, list[float]]:
    """``n`` turns (after 20 warm-up turns) of: a service round trip, an echo round trip (:func:`_echo`), a bare
    invoke of the blocks of the variant the service ran; each after its own pause, so that every system sees a frame
    each 21 ms and the same machine. Per turn: the service round trip, the job's run time, the echo round trip, the
    bare invoke time. The service's outputs must be the bare invoke's."""
    frames_ep, results_ep = f"ipc://{tmp}/echo-frames.sock", f"ipc://{tmp}/echo-results.sock"
    proc = mp.get_context("spawn").Process(target=_echo, args=(frames_ep, results_ep), daemon=True)
    proc.start()
    x = np.random.default_rng(0).random((1, 8, 8, 1)).astype(np.float32)
    out: dict[str, list[float]] = {"service": [], "run": [], "echo": [], "bare": []}
    mismatched = 0
    try:
        with Publisher(svc.frames_ep) as pub, Subscriber(svc.results_ep, models=["digits"]) as sub, \
                Publisher(frames_ep) as epub, Subscriber(results_ep, models=["digits"]) as esub:
            base, ebase = _join(pub, sub, "latency"), _join(epub, esub, "echo")
            for i in range(n + 20):
                time.sleep(0.007)  # below digits' 60 fps: no queueing, one job at a time
                t = time.monotonic()
                pub.send("latency", base + i, [x], models=["digits"])
                r = _wait_result(sub, base + i, 5000)
                rtt = (time.monotonic() - t) * 1000
                time.sleep(0.007)
                t = time.monotonic()
                epub.send("echo", ebase + i, [x], models=["digits"])
                _wait_result(esub, ebase + i, 5000)
                ert = (time.monotonic() - t) * 1000
                time.sleep(0.007)
                t = time.perf_counter()
                ys = blocks[r.variant](x)
                bare = (time.perf_counter() - t) * 1000
                if i < 20 or r.status not in ("done", "late") or r.start_ms < 0:
                    continue
                if len(r.outputs) != len(ys) or not all(np.allclose(a, b, rtol=1e-5, atol=1e-6)
                                                        for a, b in zip(r.outputs, ys)):
                    mismatched += 1
                for k, v in (("service", rtt), ("run", r.end_ms - r.start_ms), ("echo", ert), ("bare", bare)):
                    out[k].append(v)
    finally:
        proc.kill()
        proc.join(5)
    if mismatched:
        raise ServiceUnavailable(f"{mismatched} results differ from the bare invoke of the same blocks")
    return out


def _echo(frames_ep: str, results_ep: str) -> None:
    """In another process: the least a service does with a frame — an asyncio loop receives it and publishes a
    result made of its tensor (no decoding, scheduling, hand-off or invoke)."""
    import asyncio

    import zmq.asyncio

    from edge_sdrm3.client import protocol

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
        pull.bind(frames_ep)
        pub.bind(results_ep)
        while True:
            parts = await pull.recv_multipart(copy=False)
            h = protocol.decode_frame(parts)[0]
            x = np.frombuffer(parts[1].buffer, np.float32).reshape(1, 8, 8, 1)
            pub.send_multipart(protocol.encode_result(
                {"stream": h.stream, "frame": h.frame, "model": "digits", "variant": "w100", "variant_index": 0,
                 "accelerator": "echo", "status": "done", "reason": "", "release_ms": 0.0, "start_ms": 0.0,
                 "end_ms": 0.0, "deadline_ms": 16.7, "energy_mj": 0.0, "energy_source": "", "computed": True},
                [x[0, 0, :, 0].copy()]), copy=False)

    asyncio.run(main())


def _added(t: dict[str, list[float]], judged: bool) -> str:
    """Per turn: service round trip - echo round trip - bare invoke; its quantiles, and the shift of the quantiles."""
    over = [s - e - b for s, e, b in zip(t["service"], t["echo"], t["bare"])]
    med, p99 = statistics.median(over), common.percentile(sorted(over), 99)
    q = {k: (statistics.median(v), common.percentile(sorted(v), 99)) for k, v in t.items()}
    verdict = f" (targets <= 0.5 / <= 2 ms) {'OK' if med <= 0.5 and p99 <= 2 else 'MISSED'}" if judged else ""
    shift = [q["service"][i] - q["echo"][i] - q["bare"][i] for i in (0, 1)]
    return (f"{_stats(over)}{verdict}; shift of the quantiles (service - echo - bare): median {shift[0]:.3f} ms, "
            f"p99 {shift[1]:.3f} ms")


def _stats(xs: list[float]) -> str:
    s = sorted(xs)
    return f"median {statistics.median(s):.3f} ms, p99 {common.percentile(s, 99):.3f} ms (n={len(s)})"


# ---- (c) memory, (d) soak, (e) sim-to-real ------------------------------------------------------------------


def _smaps_rollup_mb(pid: int) -> dict[str, float]:
    """``/proc/PID/smaps_rollup`` in MB (Linux): Rss, Pss, Anonymous ...; {} where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return {k.rstrip(":"): int(v) / 1024 for k, v, *_ in (line.split() for line in f) if v.isdigit()}
    except OSError:
        return {}


def _rss_after_ready(tmp: Path, scenario: str, platform: str | None, name: str, workload: str = "",
                     parts: dict | None = None) -> float:
    svc = Service(tmp, scenario, platform, name, workload)
    try:
        svc.start()
        time.sleep(1.0)
        if parts is not None:
            parts.update(_smaps_rollup_mb(svc.proc.pid))
        return svc.rss_bytes() / 2**20
    finally:
        svc.stop()


def memory(tmp: Path, platform: str | None) -> None:
    scenario, what = _workload_scenario(tmp)
    parts: dict[str, float] = {}
    rss = _rss_after_ready(tmp, scenario, platform, "memory", parts=parts)
    print(f"(c) resident memory with the {what}, default variants loaded (preload = false): {rss:.1f} MB "
          f"(target <= 120 MB) {'OK' if rss <= 120 else 'MISSED'}")
    if parts.get("Rss"):  # what of it is the heap (interpreters, Python) and what mapped files (libraries, models)
        print(f"(c)   of which anonymous (heap: interpreters, Python objects) {parts['Anonymous']:.1f} MB, "
              f"file-backed (libraries, model files) {parts['Rss'] - parts['Anonymous']:.1f} MB; "
              f"PSS {parts.get('Pss', 0.0):.1f} MB")
    every = _rss_after_ready(tmp, scenario, platform, "memory-all", "preload = true")
    print(f"(c) the same with every variant preloaded (preload = true): {every:.1f} MB")
    if scenario != "digits":
        alone = _rss_after_ready(tmp, "digits", platform, "memory-digits")
        print(f"(c) the digits supernet alone: {alone:.1f} MB (target <= 120 MB) {'OK' if alone <= 120 else 'MISSED'}")


def _publisher(svc: Service, scenario: str, wall_s: float, scale: float) -> subprocess.Popen:
    exe = shutil.which("edge-sdrm3", path=str(Path(sys.executable).parent)) or "edge-sdrm3"
    return subprocess.Popen([exe, "publish", scenario, "--endpoint", svc.frames_ep, "--duration", str(wall_s * scale),
                             "--rate-scale", str(scale)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def soak(tmp: Path, platform: str | None, seconds: float) -> None:
    """(d): tools/soak.py's run, at 2x the measured capacity for ``seconds`` then half of it for a third as long."""
    failures = soak_tool.run(tmp, platform=platform, seconds=seconds, normal_seconds=max(30.0, seconds / 3))
    if failures:
        raise ServiceUnavailable("; ".join(failures))


def sim_to_real(tmp: Path, platform: str | None, seconds: float, learn: str = "") -> None:
    from edge_sdrm3.catalog import load_platform
    from edge_sdrm3.report import run_metrics
    from edge_sdrm3.runtime.config import load_config
    from edge_sdrm3.runtime.service import make_policy_from
    from edge_sdrm3.sim import trace as traces
    from edge_sdrm3.sim.replay import replay

    scenario = "mediapipe_xr" if _cache_has_mediapipe() else "digits"
    plat = platform or "headset_emulated"
    value = f'"{learn}"' if learn == "auto" else learn  # (a TOML string, or a boolean)
    svc = Service(tmp, scenario, plat, "sim2real", f"[scheduler]\nlearn_costs = {value}" if learn else "")
    try:
        svc.start()
        pub = _publisher(svc, scenario, seconds, 1.0)
        try:
            pub.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            pub.kill()
        time.sleep(0.5)  # the last frames' jobs
    finally:
        svc.stop()  # SIGTERM: drained, the log flushed
    live = run_metrics(str(svc.log_path))
    tr = traces.read(svc.log_path)
    policy = make_policy_from(load_config(svc.config))  # the service's own policy, fresh state
    sim, _ = replay(tr, load_platform(plat), policy.name, policy=policy)
    dm = 100 * abs(live["miss_rate"] - sim["miss_rate"])
    de = abs(live["energy_mj"] - sim["energy_mj"]) / max(1e-9, sim["energy_mj"]) * 100
    print(f"(e) sim-to-real, {scenario} on {plat} for {seconds:g} s, policy {policy.name}: "
          f"{live.get('frames_due', sum(m['due'] for m in live['models'].values()))} frames due")
    print(f"(e) miss rate live {100 * live['miss_rate']:.2f}% vs replay {100 * sim['miss_rate']:.2f}%: "
          f"{dm:.2f} points (target <= 2) {'OK' if dm <= 2 else 'MISSED'}")
    print(f"(e) energy live {live['energy_mj']:.1f} mJ vs replay {sim['energy_mj']:.1f} mJ: {de:.1f}% "
          f"(target <= 5%) {'OK' if de <= 5 else 'MISSED'}")
    # the same log replayed with the costs the service learned (replay --costs learned), then also with each
    # block's measured time (--costs measured: what of the gap is timing, not decisions)
    for label, kw in (("learned costs (replay --costs learned)", {"learned": tr.costs} if tr.costs else None),
                      ("measured block times (replay --costs measured)",
                       {"learned": tr.costs, "measured": tr.segments} if tr.segments else None)):
        if kw is not None:
            again, _ = replay(tr, load_platform(plat), policy.name, policy=make_policy_from(load_config(svc.config)),
                              **kw)
            print(f"(e) replayed with the {label}: miss rate {100 * again['miss_rate']:.2f}% "
                  f"({100 * abs(live['miss_rate'] - again['miss_rate']):.2f} points), "
                  f"energy {again['energy_mj']:.1f} mJ")
    print(f"    per model (due, miss% live/replay): " + ", ".join(
        f"{k} {d['due']}/{sim['models'][k]['due']} {100 * d['miss_rate']:.0f}/{100 * sim['models'][k]['miss_rate']:.0f}"
        for k, d in live["models"].items() if k in sim["models"]))


# ---- main -----------------------------------------------------------------------------------------------



def _served(svc, label: str, run) -> bool:
    """Start ``svc``, ``run()`` against it, stop it whatever happens; False (said under ``label``) if it was not
    available."""
    try:
        svc.start()
        run()
        return True
    except (ServiceUnavailable, ClientError, OSError) as e:
        print(f"{label} service not available: {e}")
        return False
    finally:
        svc.stop()

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=2000, help="frames per ingest measurement (default 2000)")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--latency-frames", type=int, default=500)
    ap.add_argument("--platform", default=None, help="the service's [workload] platform (default: its own default)")
    ap.add_argument("--soak", type=float, default=0.0, metavar="S", help="also (d): RSS over S s of 2x overload")
    ap.add_argument("--sim-s", type=float, default=20.0, help="(e): seconds of the live run (default 20)")
    ap.add_argument("--learn-costs", choices=["true", "false", "auto"], default="",
                    help="(e): the service's [scheduler] learn_costs (default: the service's own default)")
    ap.add_argument("--parts", default="", help="which of a b c d e to run (default abce, d with --soak)")
    ap.add_argument("--skip-service", action="store_true", help="only the bare figures")
    args = ap.parse_args()
    parts = set(args.parts or ("abce" + ("d" if args.soak > 0 else "")))
    if "d" in parts and args.soak <= 0:
        args.soak = 180.0
    w, h = (int(v) for v in args.size.split("x"))
    print(f"# bench_service  ({common.machine()})\n# {common.command_line()}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-service-") as td:
        tmp = Path(td)
        if parts & {"a", "b"}:
            bare = bare_ingest(tmp, args.frames, (w, h))
            print(f"(a) ingest {w}x{h}x3 uint8 over ipc://: bare pyzmq {bare:,.0f} frames/s")
            invoke = bare_invoke_ms(args.latency_frames)
            print(f"(b) bare LiteRT invoke of digits (w100, the whole model, 1 thread, back to back): {_stats(invoke)}")
            if args.skip_service:
                return 0
            # outputs computed for real, as by the bare invoke (under the default when-idle an emulated accelerator
            # faster than the host only times the model, and its result is `timed`, without outputs)
            svc = Service(tmp, "digits", args.platform, "digits", 'emulated_compute = "always"')
            blocks: dict = {}

            def in_one_go() -> None:
                ing = service_ingest(svc, args.frames, (w, h))
                bare2 = bare_ingest(tmp, args.frames, (w, h))  # again, to bracket the service run
                ref = (bare + bare2) / 2
                print(f"(a) service ingest {ing:,.0f} frames/s; bare pyzmq (before/after) {bare:,.0f}/{bare2:,.0f}: "
                      f"ratio {ing / ref:.2f} (target >= 0.80) {'OK' if ing / ref >= 0.8 else 'MISSED'}")
                got, nblocks = bare_blocks(svc.config)
                blocks.update(got)
                t = added_ms(svc, tmp, args.latency_frames, blocks)
                added = [x - r for x, r in zip(t["service"], t["run"])]
                med, p99 = statistics.median(added), common.percentile(sorted(added), 99)
                print(f"(b) service-added latency (round trip - job run time): {_stats(added)} "
                      f"(targets <= 1 / <= 3 ms) {'OK' if med <= 1 and p99 <= 3 else 'MISSED'}; "
                      f"job run time {_stats(t['run'])}")
                print(f"(b) round trip through the service: {_stats(t['service'])}")
                print(f"(b) bare echo round trip (asyncio pyzmq PULL -> PUB in another process, the result made of the "
                      f"frame's tensor; no scheduling, hand-off or invoke): {_stats(t['echo'])}")
                print(f"(b) bare invoke of the same {nblocks} blocks (the service's segment files, one after the "
                      f"other, paced like the frames): {_stats(t['bare'])}")
                print(f"(b) added per model of {nblocks} blocks over a bare invoke of them, its blocks in one go "
                      f"(chain_ms 10, the default): {_added(t, True)}")

            failed = not _served(svc, "(a)/(b)", in_one_go)
            if "b" in parts and not failed:
                # the same with every block handed off and decided on its own: what running them in one go saves
                per_block = Service(tmp, "digits", args.platform, "digits-per-block",
                                    'emulated_compute = "always"\n[scheduler]\nchain_ms = 0')
                failed = not _served(per_block, "(b)", lambda: print(
                    "(b) the same, every block handed off and decided on its own (chain_ms 0): "
                    f"{_added(added_ms(per_block, tmp, args.latency_frames, blocks), False)}"))
        for part, fn in (("c", lambda: memory(tmp, args.platform)), ("d", lambda: soak(tmp, args.platform, args.soak)),
                         ("e", lambda: sim_to_real(tmp, args.platform, args.sim_s, args.learn_costs))):
            if part not in parts:
                continue
            try:
                fn()
            except (ServiceUnavailable, ClientError, OSError) as e:
                print(f"({part}) service not available: {e}")
                failed = True
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
