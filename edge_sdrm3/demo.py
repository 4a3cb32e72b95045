"""``edge-sdrm3 demo`` (what ``make demo`` runs): the service on an emulated headset, fed a live XR pipeline.

1. the MediaPipe XR models are fetched into the model cache if they are not there yet (falls back to the
   digits supernet when they cannot be fetched);
2. ``edge-sdrm3 serve`` starts on ``headset_placement`` (an emulated headset where placement matters: a slow CPU,
   a fast power-hungry NPU and a slow frugal one, timing only, in slow motion; its scenario mediapipe_xr_slow) with
   its sockets and log in a temporary directory;
3. the live comparison: for each of a few policies in turn (``set-policy``), ``edge-sdrm3 publish`` plays the
   scenario at 1.5x its rates (an overload: where the policies differ) for ``--seconds`` / 4 on a stream named
   after the policy;
4. the service is stopped with SIGTERM (it drains and flushes its log), and the live figures of each policy are
   printed from the log (UXCost, miss rate, energy, on-time jobs per second), then the replay comparison of an XR
   benchmark scenario.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .client import ClientError, Control

PLATFORM = "headset_placement"
BENCH = ("vr_gaming", "dual_4k_biglittle_ws_os")
LIVE_POLICIES = ("fcfs", "edf", "herald", "sdrm3+supernet")
OVERLOAD = 1.5
PAUSE_S = 1.7  # between policies: mediapipe_xr_slow's longest deadline is 1.6 s (pose_detection at 0.625 fps)


def _say(msg: str) -> None:
    print(f"== {msg}", flush=True)


def _models_ready() -> str:
    """The scenario to play: mediapipe_xr once its models are in the cache, else digits."""
    from .tflite.fetch import fetch_mediapipe, missing

    if not missing():
        return "mediapipe_xr_slow"
    _say("fetching the MediaPipe XR models (the mediapipe wheel from PyPI, about 35 MB, once)")
    try:
        fetch_mediapipe()
        return "mediapipe_xr_slow"
    except Exception as e:  # noqa: BLE001 - no network, no pip: the demo still runs, on the shipped models
        _say(f"could not fetch them ({e}); playing the digits supernet instead")
        return "digits"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_sdrm3.cli", *args]


def live_table(log: Path, platform: str = PLATFORM) -> str:
    """Each stream of a live log (one per policy) as a row: UXCost, miss rate, energy, on-time jobs per second."""
    from .catalog import load_platform
    from .core.metrics import model_infos, summarize
    from .core.records import completion_of
    from .sim import trace as traces
    from .sim.replay import setup

    tr = traces.read(log)
    spec = load_platform(platform)
    st = setup(tr, spec, True)
    infos = model_infos(st.models, [st.costs.reference_energy(i) for i in range(len(st.models))])
    accs = [a.id for a in spec.platform.accelerators]
    by: dict[str, list] = {}
    for r in tr.jobs:
        by.setdefault(r.get("stream") or "", []).append(r)
    rows = [f"{'policy (stream)':<16} {'uxcost':>7} {'miss %':>7} {'energy mJ':>10} {'on time/s':>10} {'jobs':>5}"]
    for stream, recs in by.items():
        cs = [completion_of(r) for r in recs]
        f = summarize(cs, infos, accelerators=accs, busy_ms=[0.0] * len(accs))
        span = (max(c.release_ms for c in cs) - min(c.release_ms for c in cs)) / 1000.0 or 1.0
        ontime = sum(c.status == "done" for c in cs)
        rows.append(f"{stream:<16} {f['uxcost']:7.4f} {100 * f['miss_rate']:7.1f} {f['energy_mj']:10.0f} "
                    f"{ontime / span:10.1f} {len(cs):5d}")
    return "\n".join(rows)


def run(seconds: float = 25.0) -> int:
    scenario = _models_ready()
    work = Path(tempfile.mkdtemp(prefix="edge-sdrm3-demo-"))
    run_dir, state_dir = work / "run", work / "state"
    cfg = work / "edge-sdrm3.toml"
    cfg.write_text(f'[service]\nruntime_dir = "{run_dir}"\nstate_dir = "{state_dir}"\nsummary_every_s = 5.0\n\n'
                   f'[workload]\nscenario = "{scenario}"\nplatform = "{PLATFORM}"\nemulated_compute = "never"\n'
                   '\n[scheduler]\nlearn_costs = true\n')
    env = dict(os.environ, EDGE_SDRM3_RUNTIME_DIR=str(run_dir))
    _say(f"starting the service: {scenario} on {PLATFORM} (sockets and log in {work})")
    serve_log = open(work / "serve.log", "w")
    proc = subprocess.Popen(_cli("serve", "--config", str(cfg)), stdout=serve_log, stderr=subprocess.STDOUT, env=env)
    try:
        control = Control(f"ipc://{run_dir}/control.sock", timeout_ms=1000)
        t_end = time.monotonic() + 120.0
        while True:
            if proc.poll() is not None:
                print((work / "serve.log").read_text()[-3000:], file=sys.stderr)
                _say(f"the service stopped at startup (exit {proc.returncode}); its log is above")
                return 1
            try:
                control.status()
                break
            except ClientError:
                if time.monotonic() > t_end:
                    _say("the service did not answer within 120 s")
                    return 1
        each = max(2.0, seconds / len(LIVE_POLICIES))
        _say(f"service ready; the live comparison: {scenario} at {OVERLOAD:g}x its rates, {each:g} s of it under "
             f"each of {', '.join(LIVE_POLICIES)}")
        for pol in LIVE_POLICIES:
            control.set_policy(pol)
            rc = subprocess.call(_cli("publish", scenario, "--duration", str(each * OVERLOAD), "--rate-scale",
                                      str(OVERLOAD), "--size", "160x120", "--stream", pol, "--endpoint",
                                      f"ipc://{run_dir}/frames.sock"), env=env)
            if rc:
                _say(f"the publisher failed (exit {rc})")
            time.sleep(PAUSE_S)  # what runs ends before the next policy
        time.sleep(0.5)  # the last frames' results
        subprocess.call(_cli("status", "--endpoint", f"ipc://{run_dir}/control.sock"), env=env)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        serve_log.close()
    log = state_dir / "jobs.jsonl"
    _say(f"the live comparison, from the service's log ({log}): one stream per policy")
    print(live_table(log), flush=True)
    _say(f"an XR benchmark scenario: {BENCH[0]} on {BENCH[1]}, every policy, 10 s replay")
    return subprocess.call(_cli("compare", BENCH[0], "--platform", BENCH[1]))
