"""Overload soak of the live service (issue 6, item 2): 2x its capacity for a bounded time, then normal load.

    python3 tools/soak.py [--seconds 600] [--normal-seconds S] [--rate FPS] [--max-growth-mb 50] [--every 5]
    python3 tools/soak.py --4x [--hold-seconds 30] [--minutes 10]      (capacity held under 4x overload)
    python3 tools/soak.py --interleave 4 --seconds 0 --normal-seconds 0 [--keep DIR]  (1x/2x/4x side by side)

Starts ``edge-sdrm3 serve`` (its default workload: headset_emulated, the MediaPipe XR pipeline + digits when the
models are in the cache, else digits; ``--platform``/``--scenario`` change it) in a temporary directory, then:

1. **calibrate**: after a warm-up at 1 frame/s (3 steps long, not judged), frames at 1, 1.25, 1.56, ... (x1.25)
   per second, ``--calibrate-seconds`` (default 5) each after a settle, until two steps in a row miss more than
   10% of their jobs (or their on-time completions halve); the capacity is the step with the most on-time
   completions among those that missed at most 10% (``calibrate``: one noisy step neither ends the ramp nor
   sets the capacity). ``--rate FPS`` skips this and takes FPS as the capacity.
2. **overload**: frames at 2x the capacity (``--overload``) for ``--seconds`` (default 600); the 4x mode
   (``--4x``) first runs ``--hold-seconds`` at 1x and at 2x the capacity, then the overload at 4x, and prints the
   on-time completions per second of each against 1x's (target: >= 90%; exit status 1 below);
   With ``--interleave N``, N rounds of 1x, 2x, 1x, 4x phases (``--phase-seconds`` each, 1x last; with ``--rate``
   after a warm-up of 3 ``--calibrate-seconds`` at 1x, not judged) run first,
   side by side on a host whose load changes by the minute: each overload phase against the mean of the two 1x
   phases around it (tools/interleave.py), the median and spread of these ratios (exit status 1 below 90%);
   each phase on a stream of its own (``soak/2x/3``) that ``tools/flood_log.py`` reads in the job log
   (``--keep DIR``).
3. **normal**: frames at 0.5x the capacity (``--normal``) for ``--normal-seconds`` (default a third, >= 30 s).

Each frame names every root model of the scenario and carries a small camera image (``--size``, default 96x96),
adapted by the service to each model's input; frames the ingest socket refuses (its high-water mark) are counted
as ``refused`` (what a camera does when its consumer is slow). Every ``--every`` s it prints: frames sent and
refused per second, jobs completed per second, miss rate of the window, drops by reason, the ready queue (per
model), jobs in flight, and the service's resident memory (RSS). The service's queues are bounded
(``[scheduler] max_queue``: the oldest queued job is dropped, reason ``overload-queue``; ``[sockets] ingest_hwm``).

A status probe asks ``status`` every 0.2 s on a socket of its own throughout and reports the slowest answer. The
last lines give the figure: ``capacity held`` (on-time completions per second of each phase against 1x's) and
``figure:`` (capacity, on-time completions/s at 1x, 2x, 4x with their ratios, RSS at the start and the end, the
slowest status answer).

Exit status 1 when a ratio is below 90% (``--4x``), when ``status`` is slower than ``--status-bound`` (default
1 s), when the RSS grows more than ``--max-growth-mb`` (default 50) over its value at the end of the
warm-up (``--warmup``, default the first third of the overload phase: the lighter variants are loaded on first
use then), when ``status`` is not answered within ``--status-timeout`` s (default 5), or when the service exits.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import _bench_common as common  # puts the repository root on sys.path
import interleave
import numpy as np

from edge_sdrm3.client import ClientError, ClientTimeout, Control, Publisher
from edge_sdrm3.data import data_path
from interleave import _jobs, calibrate  # noqa: F401 - tools/flood.py takes them from here

ROOT = common.ROOT


class ServiceUnavailable(RuntimeError):
    pass


def _cache_has_mediapipe() -> bool:
    cache = Path(os.environ.get("EDGE_SDRM3_MODEL_CACHE") or Path.home() / ".cache" / "edge-sdrm3" / "models")
    return (cache / "mediapipe" / "palm_detection_full.tflite").is_file()


class Service:
    """``edge-sdrm3 serve`` in a temporary runtime directory."""

    def __init__(self, tmp: Path, scenario: str, platform: str | None, name: str, workload: str = "") -> None:
        self.dir = tmp / name
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        (self.dir / "state").mkdir(exist_ok=True)
        cfg = ["[service]", f'runtime_dir = "{self.dir / "run"}"', f'state_dir = "{self.dir / "state"}"',
               "[workload]", f'scenario = "{scenario}"']
        if platform:
            cfg.append(f'platform = "{platform}"')
        if workload:
            cfg.append(workload)
        self.log_path = self.dir / "state" / "jobs.jsonl"
        self.config = self.dir / "bench.toml"
        self.config.write_text("\n".join(cfg) + "\n")
        run = self.dir / "run"
        self.frames_ep, self.results_ep, self.control_ep = (f"ipc://{run}/{s}.sock" for s in ("frames", "results",
                                                                                                  "control"))
        self.proc: subprocess.Popen | None = None
        self.stderr_path = self.dir / "serve.stderr"

    def start(self, timeout_s: float = 120.0) -> None:
        exe = shutil.which("edge-sdrm3", path=str(Path(sys.executable).parent)) or shutil.which("edge-sdrm3")
        cmd = [exe, "serve", "--config", str(self.config)] if exe else \
            [sys.executable, "-m", "edge_sdrm3.cli", "serve", "--config", str(self.config)]
        self._err = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._err, stderr=subprocess.STDOUT, cwd=ROOT)
        ctl = Control(self.control_ep, timeout_ms=500)
        end = time.monotonic() + timeout_s
        try:
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise ServiceUnavailable(f"`{' '.join(cmd)}` exited with {self.proc.returncode}: "
                                             f"{self.stderr_tail()}")
                try:
                    self.status = ctl.status()
                    return
                except ClientTimeout:
                    continue
            raise ServiceUnavailable(f"no control reply within {timeout_s:g} s: {self.stderr_tail()}")
        finally:
            ctl.close()

    def stderr_tail(self, n: int = 600) -> str:
        try:
            return " | ".join(self.stderr_path.read_text()[-n:].strip().splitlines()[-6:]) or "(no output)"
        except OSError:
            return "(no output)"

    def rss_bytes(self) -> int:
        import psutil

        p = psutil.Process(self.proc.pid)
        return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_err", None):
            self._err.close()


def _workload_scenario(tmp: Path) -> tuple[str, str]:
    """The scenario of (c)/(d): the MediaPipe XR pipeline plus digits (digits alone without the models)."""
    if _cache_has_mediapipe():
        mediapipe = json.loads(data_path("scenarios", "mediapipe_xr.json").read_text())["models"]
        sc = {"format": "edge-sdrm3-scenario", "version": 1, "name": "mediapipe_xr+digits",
              "cost_table": "profile", "models": mediapipe + [{"name": "digits", "fps": 60}]}
        scenario = tmp / "mediapipe_xr_digits.json"
        scenario.write_text(json.dumps(sc))
        return str(scenario), "MediaPipe XR pipeline + digits supernet"
    return "digits", "digits supernet only (the MediaPipe models are not in the cache: edge-sdrm3 models fetch)"




# ---- the soak ----------------------------------------------------------------------------------------------


class Sender(threading.Thread):
    """Frames at ``rate`` per second (changed live), each naming ``models``, never blocking: a full ingest queue
    refuses the frame (counted)."""

    def __init__(self, endpoint: str, models: list[str], image: np.ndarray) -> None:
        super().__init__(daemon=True)
        self.pub = Publisher(endpoint, hwm=64, linger_ms=0)
        self.models, self.image = models, image
        self.stream = "soak"  # the stream the frames name (changed live)
        self.rate = 0.0  # frames/s; inf: as fast as the socket takes them
        self.sent = self.refused = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        frame, t_next = 0, time.monotonic()
        while not self.stop_flag.is_set():
            rate = self.rate
            if rate <= 0:
                time.sleep(0.01)
                t_next = time.monotonic()
                continue
            if rate != float("inf"):
                t_next += 1.0 / rate
                delay = t_next - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.5:  # far behind (a stall): do not burst to catch up
                    t_next = time.monotonic()
            ok = self.pub.send(self.stream, frame, [self.image], models=self.models, block=rate == float("inf"))
            frame += 1
            if ok:
                self.sent += 1
            else:
                self.refused += 1
        self.pub.close()


class StatusProbe(threading.Thread):
    """``status`` every ``every`` s on its own socket; the slowest answer (a missing answer counts as its timeout)."""

    def __init__(self, endpoint: str, timeout_s: float, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.timeout_s, self.every = endpoint, timeout_s, every
        self.slowest_s = 0.0
        self.answers = self.missed = 0
        self.last: dict = {}
        self.peak_held = 0  # the most result bytes the service said it held (status: results.held_bytes)
        self.stop_flag = threading.Event()

    def run(self) -> None:
        ctl = Control(self.endpoint, timeout_ms=int(self.timeout_s * 1000) * 5)
        try:
            while not self.stop_flag.wait(self.every):
                t0 = time.monotonic()
                try:
                    self.last = ctl.status()
                    self.answers += 1
                    self.peak_held = max(self.peak_held, int((self.last.get("results") or {}).get("held_bytes", 0)))
                except ClientTimeout:
                    self.missed += 1
                    ctl.close()
                    ctl = Control(self.endpoint, timeout_ms=int(self.timeout_s * 1000) * 5)
                self.slowest_s = max(self.slowest_s, time.monotonic() - t0)
        finally:
            ctl.close()


def _rss_mb(pid: int) -> float:
    try:
        import psutil

        p = psutil.Process(pid)
        return (p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))) / 2**20
    except ImportError:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def run(tmp: Path, *, platform: str | None = None, scenario: str | None = None, seconds: float = 600.0,
        normal_seconds: float | None = None, rate: float | None = None, calibrate_seconds: float = 5.0,
        overload: float = 2.0, normal: float = 0.5, every: float = 5.0, warmup: float | None = None,
        max_growth_mb: float = 50.0, status_timeout: float = 5.0, size: tuple[int, int] = (96, 96),
        hold: tuple[float, ...] = (), hold_seconds: float = 30.0, emulated_compute: str = "",
        learn_costs: bool | None = None, status_bound: float = 1.0, rounds: int = 0, phase_s: float = 8.0,
        settle_s: float = 2.0, out=sys.stdout) -> list[str]:
    """The soak; prints its figures to ``out``; returns the failures (empty: passed). ``learn_costs``: the
    service's ``[scheduler] learn_costs`` (None: its default)."""
    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    if scenario is None:
        scenario, what = _workload_scenario(tmp)
    else:
        what = scenario
    normal_seconds = max(30.0, seconds / 3) if normal_seconds is None else normal_seconds
    warmup = len(hold) * hold_seconds + seconds / 3 if warmup is None else warmup
    extra = (f'emulated_compute = "{emulated_compute}"\n' if emulated_compute else "") + \
        (f"[scheduler]\nlearn_costs = {str(learn_costs).lower()}\n" if learn_costs is not None else "")
    svc = Service(tmp, scenario, platform, "soak", workload=extra)
    failures: list[str] = []
    svc.start()
    ctl = Control(svc.control_ep, timeout_ms=int(status_timeout * 1000))
    st = ctl.status()
    roots = st["roots"]
    img = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    sender = Sender(svc.frames_ep, roots, img)
    sender.start()
    probe = StatusProbe(svc.control_ep, status_bound)  # status answer times, on a socket of its own
    probe.start()
    samples: list[dict] = []
    say(f"soak: {what} on {st['platform']}, policy {st['policy']}, roots {', '.join(roots)}; RSS at ready "
        f"{_rss_mb(svc.proc.pid):.1f} MB")
    try:
        # 1. capacity
        if rate is None:
            sender.rate = 1.0  # warm-up, not judged: the first frames load models, lighter variants on first use
            time.sleep(3 * calibrate_seconds)
            rate, _ = calibrate(ctl, sender, step_s=calibrate_seconds, say=say)
            time.sleep(1.0)  # drain
        elif rounds > 0:  # the phases compare warm states: the first frames load models, variants on first use
            sender.rate = rate
            time.sleep(3 * calibrate_seconds)
        if rounds > 0:  # 1x, 2x, 1x, 4x, 1x, ... side by side (tools/interleave.py)
            failures += interleave.report(interleave.run(ctl, sender, rate, (2.0, 4.0), rounds, phase_s=phase_s,
                                                         settle_s=settle_s, name="soak", jobs=_jobs, say=say),
                                          say)[1]
            sender.stream = "soak"
        say(f"{'t_s':>6} {'phase':>5} {'sent/s':>7} {'refused/s':>9} {'done/s':>7} {'miss%':>6} {'ready':>6} "
            f"{'inflt':>5} {'rss_MB':>7}  drops (this window) / queues")
        t_start = time.monotonic()
        last = {"t": t_start, "sent": sender.sent, "refused": sender.refused, "jobs": _jobs(ctl.status()),
                "drops": Counter(ctl.stats()["jobs"]["drops"])}
        phases = [(f"{x:g}x", x, hold_seconds) for x in hold] + [(f"{overload:g}x", overload, seconds),
                                                                  ("norm", normal, normal_seconds)]
        for phase, scale, dur in phases:
            sender.rate = rate * scale
            t_end = time.monotonic() + dur
            while time.monotonic() < t_end - 1e-3:
                time.sleep(max(0.0, min(every, t_end - time.monotonic())))
                if svc.proc.poll() is not None:
                    failures.append(f"the service exited ({svc.proc.returncode}): {svc.stderr_tail()}")
                    return failures
                try:
                    st, stats = ctl.status(), ctl.stats()
                except (ClientTimeout, ClientError) as e:
                    failures.append(f"status not answered within {status_timeout:g} s: {e}")
                    return failures
                now = time.monotonic()
                dt = now - last["t"]
                jobs, drops = _jobs(st), Counter(stats["jobs"]["drops"])
                due, missed = jobs[0] - last["jobs"][0], jobs[1] - last["jobs"][1]
                smp = {"t": now - t_start, "phase": phase, "sent_s": (sender.sent - last["sent"]) / dt,
                       "refused_s": (sender.refused - last["refused"]) / dt, "done_s": (due - missed) / dt,
                       "miss": missed / due if due else 0.0, "ready": stats["jobs"]["ready"],
                       "in_flight": stats["jobs"]["in_flight"], "rss": _rss_mb(svc.proc.pid),
                       "drops": dict(drops - last["drops"]), "queues": {k: v for k, v in st["queues"].items() if v},
                       "log_lost": st.get("log", {}).get("lost", 0)}
                samples.append(smp)
                last = {"t": now, "sent": sender.sent, "refused": sender.refused, "jobs": jobs, "drops": drops}
                say(f"{smp['t']:6.1f} {phase:>5} {smp['sent_s']:7.0f} {smp['refused_s']:9.0f} {smp['done_s']:7.0f} "
                    f"{100 * smp['miss']:6.1f} {smp['ready']:6d} {smp['in_flight']:5d} {smp['rss']:7.1f}  "
                    f"{json.dumps(smp['drops'])} / {json.dumps(smp['queues'])}")
        final = ctl.stats()
        admission = ctl.status().get("admission")
    finally:
        sender.stop_flag.set()
        sender.join(5)
        probe.stop_flag.set()
        probe.join(5)
        ctl.close()
        svc.stop()
    # figures
    ontime: dict[str, float] = {}
    for phase, scale, _ in phases:
        ph = [x for x in samples if x["phase"] == phase]
        if ph:
            ontime.setdefault(phase, sum(x["done_s"] for x in ph) / len(ph))
            n = len(ph)
            say(f"{phase} ({scale:g} x {rate:.2f} frames/s): sent {sum(x['sent_s'] for x in ph) / n:.0f}/s, refused "
                f"{sum(x['refused_s'] for x in ph) / n:.0f}/s, completed {sum(x['done_s'] for x in ph) / n:.0f} jobs/s, "
                f"miss {100 * sum(x['miss'] for x in ph) / n:.1f}%, max ready queue {max(x['ready'] for x in ph)}, "
                f"drops {dict(sum((Counter(x['drops']) for x in ph), Counter()))}")
    if hold and "1x" in ontime and ontime["1x"] > 0:
        held = {p: v / ontime["1x"] for p, v in ontime.items() if p not in ("norm", "1x")}
        say("capacity held: on-time completions/s " + ", ".join(f"{p} {v:.0f}" for p, v in ontime.items()) +
            "; against 1x: " + ", ".join(f"{p} {100 * r:.0f}%" for p, r in held.items()) + " (target >= 90%)")
        failures += [f"on-time completions at {p} are {100 * r:.0f}% of those at 1x (< 90%)" for p, r in held.items()
                     if r < 0.9]
    if len(samples) >= 2:
        rss = [x["rss"] for x in samples]
        base_i = max(0, max((i for i, x in enumerate(samples) if x["t"] <= warmup), default=0))
        base = rss[base_i]
        growth = max(rss[base_i:]) - base
        half = samples[len(samples) // 2:]
        slope = float(np.polyfit([x["t"] for x in half], [x["rss"] for x in half], 1)[0]) * 60 if len(half) >= 2 \
            else 0.0
        say(f"RSS: first {rss[0]:.1f} MB, after the warm-up ({samples[base_i]['t']:.0f} s) {base:.1f} MB, max "
            f"{max(rss):.1f} MB, end {rss[-1]:.1f} MB: growth after the warm-up {growth:+.1f} MB (bound "
            f"{max_growth_mb:g}), slope of the last half {slope:+.2f} MB/min")
        if growth > max_growth_mb:
            failures.append(f"RSS grew {growth:.1f} MB after the warm-up (bound {max_growth_mb:g} MB)")
    say(f"status: slowest answer {1000 * probe.slowest_s:.0f} ms over {probe.answers} answers, {probe.missed} "
        f"unanswered (bound {status_bound:g} s)")
    if probe.slowest_s >= status_bound or probe.missed:
        failures.append(f"status took {probe.slowest_s:.2f} s (bound {status_bound:g} s)")
    if samples:
        a = ontime.get("1x")
        held_txt = ", ".join(f"{p} {v:.1f}" + (f" ({100 * v / a:.0f}%)" if a and p not in ("1x", "norm") else "")
                             for p, v in ontime.items())
        say(f"figure: capacity {rate:.2f} frames/s; on-time completions/s {held_txt}; RSS start "
            f"{samples[0]['rss']:.1f} MB, end {samples[-1]['rss']:.1f} MB; status at most "
            f"{1000 * probe.slowest_s:.0f} ms")
    jobs = final["jobs"]
    say(f"at the end: released {jobs['released']}, ready {jobs['ready']}, in flight {jobs['in_flight']}, "
        f"results out {final['sockets']['results_out']}, results dropped {final['sockets']['results_dropped']}, "
        f"drops {jobs['drops']}; admission {admission}")
    say("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="overload phase, seconds (default 600)")
    ap.add_argument("--minutes", type=float, default=None, help="overload phase in minutes (instead of --seconds)")
    ap.add_argument("--status-bound", type=float, default=1.0,
                    help="slowest status answer allowed, s (default 1; measured every 0.2 s on its own socket)")
    ap.add_argument("--normal-seconds", type=float, default=None, help="normal phase (default: a third, >= 30 s)")
    ap.add_argument("--rate", type=float, default=None, help="capacity in frames/s (default: measured)")
    ap.add_argument("--calibrate-seconds", type=float, default=5.0, help="per calibration step (default 5)")
    ap.add_argument("--overload", type=float, default=2.0, help="overload = this x capacity (default 2)")
    ap.add_argument("--normal", type=float, default=0.5, help="normal load = this x capacity (default 0.5)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples (default 5)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of warm-up (default a third of --seconds)")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    ap.add_argument("--status-timeout", type=float, default=5.0)
    ap.add_argument("--platform", default=None, help="the service's [workload] platform (default: its own)")
    ap.add_argument("--scenario", default=None, help="the service's scenario (default: MediaPipe XR + digits, "
                                                     "else digits)")
    ap.add_argument("--size", default="96x96", help="camera image WxH sent with each frame (default 96x96)")
    ap.add_argument("--4x", dest="four", action="store_true",
                    help="the 4x mode: --hold-seconds at 1x then 2x the capacity, then --seconds at 4x; fails "
                         "unless on-time completions/s at 2x and 4x are >= 90%% of those at 1x")
    ap.add_argument("--emulated-compute", choices=["always", "when-idle", "never"], default="",
                    help="the service's [workload] emulated_compute (default its own, when-idle)")
    ap.add_argument("--learn-costs", action=argparse.BooleanOptionalAction, default=None,
                    help="the service learns costs, or not ([scheduler] learn_costs; default: the service's "
                         "own, \"auto\")")
    ap.add_argument("--hold-seconds", type=float, default=30.0, help="the 4x mode's 1x and 2x phases (default 30)")
    ap.add_argument("--interleave", metavar="N", type=int, default=0,
                    help="first N rounds of 1x, 2x, 1x, 4x phases side by side (tools/interleave.py); fails unless "
                         "the median of each overload phase against the 1x phases around it is >= 90%%")
    ap.add_argument("--phase-seconds", type=float, default=8.0, help="each interleaved phase (default 8)")
    ap.add_argument("--settle-seconds", type=float, default=2.0, help="before each phase is counted (default 2)")
    ap.add_argument("--keep", metavar="DIR", default=None,
                    help="run the service in DIR and keep its job log (DIR/soak/state/jobs.jsonl)")
    args = ap.parse_args()
    if args.minutes is not None:
        args.seconds = 60.0 * args.minutes
    hold = (1.0, 2.0) if args.four else ()
    if args.four:
        args.overload = 4.0
    w, h = (int(v) for v in args.size.split("x"))
    print(f"# soak  ({common.machine()})\n# {common.command_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-") as td:
        try:
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
            failures = run(Path(args.keep or td), platform=args.platform, scenario=args.scenario, seconds=args.seconds,
                           normal_seconds=args.normal_seconds, rate=args.rate,
                           calibrate_seconds=args.calibrate_seconds, overload=args.overload, normal=args.normal,
                           every=args.every, warmup=args.warmup, max_growth_mb=args.max_growth_mb,
                           status_timeout=args.status_timeout, size=(w, h), hold=hold,
                           hold_seconds=args.hold_seconds, emulated_compute=args.emulated_compute,
                           learn_costs=args.learn_costs, status_bound=args.status_bound, rounds=args.interleave,
                           phase_s=args.phase_seconds, settle_s=args.settle_seconds)
        except (ServiceUnavailable, ClientError, OSError) as e:
            print(f"FAIL: service not available: {e}")
            return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
