"""Hostile load on the live service: the bounds of docs/protocol.md ("Bounds") measured from outside.

    python3 tools/flood.py [--seconds 20] [--frames 20000] [--rate 10] [--overload 3] [--only roots|streams|stalled ...]
                           [--emulated-compute always|when-idle|never] [--keep DIR] [--out docs/results/flood.txt]
                           [--interleave N [--phase-seconds 8] [--settle-seconds 2]] [--capacity FPS]

Starts ``edge-sdrm3 serve`` (headset_emulated, the MediaPipe XR pipeline + digits when the models are in the
cache, else digits; ``--scenario`` changes it) in a temporary directory; every socket is ipc:// there. After a
warm-up (every variant loaded, every root model run a few times, the service's resident memory then taken as
the baseline) three floods, each bounded by ``--seconds`` (the last two also by ``--frames``):

0. **root flood**: the capacity measured first (``soak.calibrate``: the most on-time completions per second at
   <= 10% missed, frames naming every root model), held for half ``--seconds``, then every root model at
   ``--overload`` (default 3) x that rate for ``--seconds``; the on-time completions per second under the flood
   against those at the capacity (target >= 90%, the same run); with ``--interleave N``, instead N phases of
   ``--phase-seconds`` at the flood, each between two at the capacity (tools/interleave.py: a shared host's load
   changes by the minute), each phase on a stream of its own (``roots/3x/5``) for tools/flood_log.py; the ratio is
   the median over the flood phases of each against the mean of the two capacity phases around it, printed with
   its spread, the ratio of the medians and the host's load average; ``--capacity FPS`` takes FPS as the capacity
   instead of measuring it (the ramp's end moves with the host's load: a fixed rate compares two builds);
1. **distinct streams**: frames as fast as the service takes them, each from a new stream named by 1 KiB of
   text, naming no models (so the per-stream rate state is used), each with a small camera image;
2. **stalled subscriber**: a subscriber to every result that never reads (receive high-water mark 1), while a
   sender offers ``--rate`` frames/s of every root model with a 96x96 image; ``emulated_compute = "always"``
   so that every result carries its outputs (the MediaPipe ones are up to 256 KiB each).

Throughout, a ``status`` request every 0.2 s measures the control socket's answer time. It prints, per flood:
frames sent, the service's RSS growth over the baseline (peak during the flood, and after 2 s idle), the
slowest ``status`` answer, and what ``status`` says of the bound (``streams``, ``results``). Exit status 1 when a
growth reaches ``--max-growth-mb`` (default 50), a ``status`` answer takes ``--status-timeout`` s (default 1), or
the root flood holds less than 90% of the on-time completions at the capacity.
``--max-streams`` / ``--results-max-bytes`` set the service's bounds (e.g. huge, to see what they prevent).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import _bench_common as common  # puts the repository root on sys.path
import interleave
import numpy as np
import zmq
from soak import Sender, Service, ServiceUnavailable, StatusProbe, _jobs, _rss_mb, _workload_scenario, calibrate

from edge_sdrm3.client import ClientError, ClientTimeout, Control, Publisher


def _peak_rss(pid: int, until: float, stop: threading.Event, peak: list[float]) -> None:
    while time.monotonic() < until and not stop.is_set():
        peak[0] = max(peak[0], _rss_mb(pid))
        time.sleep(0.1)


def _frames_in(svc: Service) -> int:
    ctl = Control(svc.control_ep, timeout_ms=5000)
    try:
        return int(ctl.stats()["sockets"]["frames_in"])
    finally:
        ctl.close()


def _drained(svc: Service, want: int, timeout_s: float) -> int:
    """Wait until the service has taken in ``want`` frames, or its count has not moved for 1 s (at most
    ``timeout_s``); its count then."""
    t_end = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while True:
        got = _frames_in(svc)
        if got != last:
            last, since = got, time.monotonic()
        if got >= want or time.monotonic() > min(t_end, since + 1.0):
            return got
        time.sleep(0.1)


def flood_streams(svc: Service, frames: int, seconds: float, image: np.ndarray) -> int:
    pub = Publisher(svc.frames_ep, hwm=64, linger_ms=5000)  # every frame counted as sent is delivered
    t_end = time.monotonic() + seconds
    sent = 0
    try:
        while sent < frames and time.monotonic() < t_end:
            name = f"{sent:08d}-" + "s" * 1015  # 1 KiB names, every one new
            if pub.send(name, 0, [image], block=False):
                sent += 1
            else:
                time.sleep(0.001)
    finally:
        pub.close()
    return sent


def flood_stalled(svc: Service, frames: int, seconds: float, rate: float, roots: list[str],
                  image: np.ndarray) -> int:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.RCVBUF, 4096)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(svc.results_ep)  # and never read
    pub = Publisher(svc.frames_ep, hwm=64, linger_ms=5000)  # every frame counted as sent is delivered
    t0 = time.monotonic()
    sent = 0
    try:
        while sent < frames and time.monotonic() - t0 < seconds:
            delay = t0 + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if pub.send("stalled", sent, [image], models=roots, block=False):
                sent += 1
    finally:
        pub.close()
        sub.close()
        ctx.term()
    return sent


def flood_roots(svc: Service, seconds: float, roots: list[str], image: np.ndarray, overload: float,
                calibrate_s: float, say, rounds: int = 0, phase_s: float = 8.0,
                settle_s: float = 2.0, capacity: float | None = None) -> tuple[float, float, float, dict, int, float]:
    """Every root model at ``overload`` x the capacity measured first in this run (soak.calibrate), for
    ``seconds``: (capacity frames/s, on-time jobs/s at 1x, on-time jobs/s under the flood, drops under it, frames
    sent, the ratio). ``rounds`` > 0: instead, ``rounds`` phases of ``phase_s`` at the flood, each between two at
    1x (tools/interleave.py): the on-time jobs/s are the medians of the phases, the ratio the median of each flood
    phase's against the 1x phases around it."""
    ctl = Control(svc.control_ep, timeout_ms=5000)
    sender = Sender(svc.frames_ep, roots, image)
    sender.stream = "roots"
    sender.start()
    try:
        rate = capacity or calibrate(ctl, sender, step_s=calibrate_s, say=say)[0]
        if rounds > 0:
            d0 = Counter(ctl.stats()["jobs"]["drops"])
            phases = interleave.run(ctl, sender, rate, (overload,), rounds, phase_s=phase_s, settle_s=settle_s,
                                    name="roots", jobs=_jobs, say=say)
            drops = Counter(ctl.stats()["jobs"]["drops"]) - d0
            fig = interleave.report(phases, say)[0][overload]
            return (rate, statistics.median(fig.capacity), statistics.median(fig.ontime), dict(drops), sender.sent,
                    fig.median_pair)

        def hold(fps: float, secs: float) -> tuple[float, Counter]:
            sender.rate = fps
            time.sleep(min(2.0, secs / 4))  # settle
            j0, d0, t0 = _jobs(ctl.status()), Counter(ctl.stats()["jobs"]["drops"]), time.monotonic()
            time.sleep(secs)
            j1, d1, t1 = _jobs(ctl.status()), Counter(ctl.stats()["jobs"]["drops"]), time.monotonic()
            return ((j1[0] - j1[1]) - (j0[0] - j0[1])) / (t1 - t0), d1 - d0

        at1, _ = hold(rate, max(calibrate_s, seconds / 2))
        flood, drops = hold(overload * rate, seconds)
        sender.rate = 0.0
        return rate, at1, flood, dict(drops), sender.sent, flood / at1 if at1 > 0 else 0.0
    finally:
        sender.stop_flag.set()
        sender.join(5)
        ctl.close()


def run(tmp: Path, *, seconds: float, frames: int, rate: float, scenario: str | None, max_growth_mb: float,
        status_timeout: float, max_streams: int | None = None, results_max_bytes: int | None = None,
        phases: tuple[str, ...] = ("roots", "streams", "stalled"), overload: float = 3.0,
        calibrate_s: float = 5.0, emulated_compute: str = "always", learn_costs: bool | None = None,
        rounds: int = 0, phase_s: float = 8.0, settle_s: float = 2.0, capacity: float | None = None,
        out=sys.stdout) -> list[str]:
    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    sc, what = (scenario, scenario) if scenario else _workload_scenario(tmp)
    sockets = [f"max_streams = {max_streams}"] if max_streams else []
    if results_max_bytes:
        sockets.append(f"results_max_bytes = {results_max_bytes}")
    extra = f'emulated_compute = "{emulated_compute}"\npreload = true\n' + ("[sockets]\n" + "\n".join(sockets) + "\n"
                                                                            if sockets else "")
    if learn_costs is not None:  # else the service's default
        extra += f"[scheduler]\nlearn_costs = {str(learn_costs).lower()}\n"
    svc = Service(tmp, sc, None, "flood", workload=extra)
    learn = "the service's default" if learn_costs is None else "on" if learn_costs else "off"
    say(f"workload: {what}; emulated_compute = {emulated_compute}, every variant preloaded, learn_costs {learn}; "
        f"bounds: max_streams {max_streams or 'default'}, results_max_bytes {results_max_bytes or 'default'}")
    svc.start()
    failures: list[str] = []
    probe = StatusProbe(svc.control_ep, status_timeout)
    try:
        roots = svc.status["roots"]
        small = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
        image = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
        warm = Publisher(svc.frames_ep, hwm=64, linger_ms=0)
        for f in range(20):  # every root model loaded and run before the baseline
            warm.send("warm", f, [image], models=roots)
            time.sleep(0.1)
        warm.close()
        time.sleep(2.0)
        base = _rss_mb(svc.proc.pid)
        say(f"baseline RSS after the warm-up: {base:.1f} MB")
        probe.start()
        for phase in phases:
            probe.slowest_s, probe.peak_held = 0.0, 0
            stop, peak = threading.Event(), [0.0]
            watcher = threading.Thread(target=_peak_rss, args=(svc.proc.pid, time.monotonic() + seconds + 30, stop,
                                                               peak), daemon=True)
            watcher.start()
            frames_in = _frames_in(svc)
            t0 = time.monotonic()
            if phase == "roots":
                cap, at1, fl, drops, n, ratio = flood_roots(svc, seconds, roots, image, overload, calibrate_s, say,
                                                            rounds, phase_s, settle_s, capacity)
                how = (f"{rounds} phases of {phase_s:g} s, each between two at the capacity: median on-time "
                       f"completions {fl:.1f} jobs/s against {at1:.1f}; median pair ratio" if rounds else
                       f"{seconds:g} s: on-time completions {fl:.1f} jobs/s against {at1:.1f} at the capacity:")
                say(f"root flood: every root model at {overload:g} x the capacity ({cap:.2f} frames/s) for {how} "
                    f"{100 * ratio:.0f}% (target >= 90%); drops under the flood {drops}")
                if ratio < 0.9:
                    failures.append(f"roots: on-time completions under the {overload:g}x flood are "
                                    f"{100 * ratio:.0f}% of those at the capacity (< 90%)")
                label = f"root flood: {n} frames (calibration, 1x and {overload:g}x)"
            elif phase == "streams":
                n = flood_streams(svc, frames, seconds, small)
                label = f"distinct streams: {n} frames, each from a new 1-KiB stream id"
            else:
                n = flood_stalled(svc, frames, seconds, rate, roots, image)
                label = f"stalled subscriber: {n} frames of {len(roots)} root models at {rate:g}/s"
            took = time.monotonic() - t0
            during = probe.last
            taken = _drained(svc, frames_in + n, 60.0) - frames_in  # the frames still queued are taken in
            drained = time.monotonic() - t0 - took
            time.sleep(2.0)
            stop.set()
            watcher.join()
            after = _rss_mb(svc.proc.pid)
            grow_peak, grow_after = peak[0] - base, after - base
            slowest = probe.slowest_s
            say(f"{label} in {took:.1f} s; the service took in {taken} of them, the last {drained:.1f} s later "
                f"(frames_in of its stats)")
            say(f"  RSS growth: peak {grow_peak:+.1f} MB, after 2 s idle {grow_after:+.1f} MB "
                f"(bound {max_growth_mb:g} MB)")
            say(f"  status: slowest answer {slowest * 1000:.0f} ms over {probe.answers} answers, "
                f"{probe.missed} unanswered (bound {status_timeout:g} s)")
            st = probe.last or during
            say(f"  result bytes held for subscribers: at most {probe.peak_held / 2**20:.1f} MB during the flood")
            if st:
                say(f"  status says: streams {st.get('streams')}, results {st.get('results')}, errors {st.get('errors')}")
            if max(grow_peak, grow_after) >= max_growth_mb:
                failures.append(f"{phase}: RSS grew {max(grow_peak, grow_after):.1f} MB (bound {max_growth_mb:g})")
            if slowest >= status_timeout or probe.missed:
                failures.append(f"{phase}: status took {slowest:.2f} s (bound {status_timeout:g} s)")
            if svc.proc.poll() is not None:
                failures.append(f"the service exited ({svc.proc.returncode}): {svc.stderr_tail()}")
                break
            base = after  # the next flood is judged from here
    finally:
        probe.stop_flag.set()
        probe.join(5)
        svc.stop()
    say("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="each flood at most (default 20)")
    ap.add_argument("--frames", type=int, default=20000, help="each flood at most this many frames (default 20000)")
    ap.add_argument("--rate", type=float, default=10.0, help="frames/s of the stalled-subscriber flood (default 10)")
    ap.add_argument("--scenario", default=None, help="default: MediaPipe XR + digits, else digits")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    ap.add_argument("--status-timeout", type=float, default=1.0)
    ap.add_argument("--max-streams", type=int, default=None, help="the service's [sockets] max_streams")
    ap.add_argument("--results-max-bytes", type=int, default=None, help="the service's [sockets] results_max_bytes")
    ap.add_argument("--only", choices=("roots", "streams", "stalled"), action="append", default=None,
                    help="this flood only (repeat for several; default all three)")
    ap.add_argument("--overload", type=float, default=3.0, help="the root flood at this x the capacity (default 3)")
    ap.add_argument("--calibrate-seconds", type=float, default=5.0, help="per capacity step (default 5)")
    ap.add_argument("--emulated-compute", choices=("always", "when-idle", "never"), default="always",
                    help="the service's [workload] emulated_compute (default always: results carry outputs)")
    ap.add_argument("--learn-costs", action=argparse.BooleanOptionalAction, default=None,
                    help="the service learns costs, or not ([scheduler] learn_costs; default: the service's "
                         "own, \"auto\")")
    ap.add_argument("--interleave", metavar="N", type=int, default=0,
                    help="the root flood as N phases at the flood, each between two at the capacity (side by side "
                         "on a noisy host; tools/interleave.py); the ratio is the median of the pairs")
    ap.add_argument("--capacity", type=float, default=None,
                    help="the root flood's capacity in frames/s of every root model (default: measured first)")
    ap.add_argument("--phase-seconds", type=float, default=8.0, help="each interleaved phase (default 8)")
    ap.add_argument("--settle-seconds", type=float, default=2.0,
                    help="before each interleaved phase is counted (default 2)")
    ap.add_argument("--keep", metavar="DIR", default=None,
                    help="run the service in DIR and keep its job log there (state/jobs.jsonl)")
    ap.add_argument("--out", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    class Tee:
        def __init__(self, path: str | None) -> None:
            self.f = open(path, "w") if path else None  # noqa: SIM115 - closed below

        def write(self, s: str) -> None:
            sys.stdout.write(s)
            if self.f:
                self.f.write(s)

        def flush(self) -> None:
            sys.stdout.flush()
            if self.f:
                self.f.flush()

    tee = Tee(args.out)
    print(f"# flood  ({common.machine()})\n# {common.command_line()}", file=tee, flush=True)
    with tempfile.TemporaryDirectory(prefix="flood-") as td:
        try:
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
            failures = run(Path(args.keep or td), seconds=args.seconds, frames=args.frames, rate=args.rate,
                           scenario=args.scenario, max_growth_mb=args.max_growth_mb,
                           status_timeout=args.status_timeout, max_streams=args.max_streams,
                           results_max_bytes=args.results_max_bytes,
                           phases=tuple(args.only) if args.only else ("roots", "streams", "stalled"),
                           overload=args.overload, calibrate_s=args.calibrate_seconds,
                           emulated_compute=args.emulated_compute, learn_costs=args.learn_costs,
                           rounds=args.interleave, phase_s=args.phase_seconds, settle_s=args.settle_seconds,
                           capacity=args.capacity, out=tee)
        except (ServiceUnavailable, ClientError, OSError) as e:
            print(f"FAIL: service not available: {e}", file=tee)
            failures = ["unavailable"]
    if tee.f:
        tee.f.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
