"""``edge-sdrm3 demo`` (what ``make demo`` runs): the service on an emulated headset, fed a live XR pipeline.

1. the MediaPipe XR models are fetched into the model cache if they are not there yet (falls back to the
   digits supernet when they cannot be fetched);
2. ``edge-sdrm3 serve`` starts on ``headset_emulated`` (the host CPU plus an emulated NPU and GPU) with
   its sockets and log in a temporary directory;
3. ``edge-sdrm3 publish`` plays the scenario as a camera would, for ``--seconds``;
4. the service is stopped with SIGTERM (it drains and flushes its log), and the report is printed:
   per model frames, misses, p50/p99 latency, energy, variants used, UXCost of the live run, then the
   same trace replayed under SDRM3 and the baselines, and the replay comparison of an XR benchmark
   scenario.
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

PLATFORM = "headset_emulated"
BENCH = ("vr_gaming", "dual_4k_biglittle_ws_os")


def _say(msg: str) -> None:
    print(f"== {msg}", flush=True)


def _models_ready() -> str:
    """The scenario to play: mediapipe_xr once its models are in the cache, else digits."""
    from .tflite.fetch import fetch_mediapipe, missing

    if not missing():
        return "mediapipe_xr"
    _say("fetching the MediaPipe XR models (the mediapipe wheel from PyPI, about 35 MB, once)")
    try:
        fetch_mediapipe()
        return "mediapipe_xr"
    except Exception as e:  # noqa: BLE001 - no network, no pip: the demo still runs, on the shipped models
        _say(f"could not fetch them ({e}); playing the digits supernet instead")
        return "digits"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_sdrm3.cli", *args]


def run(seconds: float = 25.0) -> int:
    scenario = _models_ready()
    work = Path(tempfile.mkdtemp(prefix="edge-sdrm3-demo-"))
    run_dir, state_dir = work / "run", work / "state"
    cfg = work / "edge-sdrm3.toml"
    cfg.write_text(f'[service]\nruntime_dir = "{run_dir}"\nstate_dir = "{state_dir}"\nsummary_every_s = 5.0\n\n'
                   f'[workload]\nscenario = "{scenario}"\nplatform = "{PLATFORM}"\n')
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
        _say(f"service ready; publishing {scenario} for {seconds:g} s as a 640x480 camera would")
        rc = subprocess.call(_cli("publish", scenario, "--duration", str(seconds), "--endpoint",
                                  f"ipc://{run_dir}/frames.sock"), env=env)
        if rc:
            _say(f"the publisher failed (exit {rc})")
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
    _say(f"the live run, from the service's log ({log})")
    subprocess.call(_cli("report", str(log), "--platform", PLATFORM))
    _say("the same trace replayed under each policy (simulated time, the platform's cost model)")
    subprocess.call(_cli("compare", str(log), "--platform", PLATFORM,
                         "--policies", "fcfs,edf,herald,xrbench,sdrm3,sdrm3+supernet"))
    _say(f"an XR benchmark scenario: {BENCH[0]} on {BENCH[1]}, every policy, 10 s replay")
    return subprocess.call(_cli("compare", BENCH[0], "--platform", BENCH[1]))
