"""A real service on ipc:// in a temp dir, with real PUSH/SUB/REQ clients built on the protocol module.

The workload is the digits supernet on a small platform: the host ``cpu`` (its profile copied from
platforms/profile_host_x86.json) plus an emulated ``npu0`` (relative to it). Cascades need two catalog models;
the catalog allows a model once per scenario, so the temp catalog lists the digits supernet a second time as
``digits_cascade`` (the same files, profiled the same), and a temp scenario cascades digits -> digits_cascade.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from edge_sdrm3.client import protocol
from edge_sdrm3.runtime.config import load_config
from edge_sdrm3.runtime.notify import Notifier
from edge_sdrm3.runtime.service import Service
from edge_sdrm3.data import data_path

ROOT = Path(__file__).resolve().parents[2]


def serve_subprocess(config_path: Path) -> subprocess.Popen:
    """`edge-sdrm3 serve --config ...` as its own process, returned once it says it is ready."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_sdrm3.cli", "serve", "--config", str(config_path)],
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=subprocess.PIPE, text=True)
    seen = []
    t_end = time.monotonic() + 30
    while time.monotonic() < t_end:
        line = proc.stderr.readline()
        seen.append(line)
        if " ready: " in line:
            return proc
        assert line or proc.poll() is None, "".join(seen)
    raise AssertionError("service not ready: " + "".join(seen))


def wait_ready(svc: Service, rc_of) -> None:
    """Wait until a service started in a thread is ready (``rc_of()``: its exit code, None while it runs)."""
    t_end = time.monotonic() + 30
    while not svc.ready:
        assert rc_of() is None, "service failed to start"
        assert time.monotonic() < t_end, "service not ready in 30 s"
        time.sleep(0.02)


def _digits_manifest_section() -> str:
    text = data_path("models", "manifest.toml").read_text()
    return text[text.index("[models.digits]"): text.index("# END digits")]


def make_workdir(tmp: Path, *, deadline_ms: float | None = None, trigger: float = 0.5, fps: float = 60) -> dict:
    digits = _digits_manifest_section()
    cascade = digits.replace("[models.digits]", "[models.digits_cascade]").replace(
        "[[models.digits.variants]]", "[[models.digits_cascade.variants]]")
    (tmp / "manifest.toml").write_text('format = "edge-sdrm3-models"\nversion = 1\n\n' + digits + "\n" + cascade)
    prof = json.loads(data_path("platforms", "profile_host_x86.json").read_text())
    cpu = prof["accelerators"][0]
    models = {"digits": cpu["costs"]["models"]["digits"], "digits_cascade": cpu["costs"]["models"]["digits"]}
    cpu = {**cpu, "costs": {**cpu["costs"], "models": models}}
    platform = {"format": "edge-sdrm3-platform", "version": 1, "name": "test_host_npu",
                "accelerators": [cpu, {"id": "npu0", "kind": "emulated", "idle_power_mw": 0.0,
                                       "costs": {"table": "relative", "of": "cpu", "speed": 4.0, "power_mw": 600}}],
                "handoff": {"latency_ms": 0.05, "energy_mj": 0.01}}
    (tmp / "platform.json").write_text(json.dumps(platform))
    root = {"name": "digits", "fps": fps}
    if deadline_ms is not None:
        root["deadline_ms"] = deadline_ms
    scenario = {"format": "edge-sdrm3-scenario", "version": 1, "name": "digits_cascade_test", "cost_table": "profile",
                "models": [root, {"name": "digits_cascade", "fps": fps, "upstream": "digits",
                                  "trigger_probability": trigger}]}
    (tmp / "scenario.json").write_text(json.dumps(scenario))
    return {"platform": str(tmp / "platform.json"), "scenario": str(tmp / "scenario.json"),
            "catalog": str(tmp / "manifest.toml")}


def write_config(tmp: Path, files: dict, **sections: dict) -> Path:
    base = {
        "service": {"runtime_dir": str(tmp / "run"), "state_dir": str(tmp / "state"), "tick_s": 0.05,
                    "summary_every_s": 0.5, "drain_grace_s": 2.0},
        "workload": {"scenario": files["scenario"], "platform": files["platform"], "catalog": files["catalog"],
                     "model_cache": str(tmp / "cache"), "emulated_compute": "always"},
        "log": {"path": "{state_dir}/jobs.jsonl"},
    }
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    lines = []
    for sec, kv in base.items():
        lines.append(f"[{sec}]")
        for k, v in kv.items():
            lines.append(f"{k} = {json.dumps(v)}")
    path = tmp / "edge-sdrm3.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Running:
    """The service in a thread of this process (``process=False``), or as its own ``edge-sdrm3 serve`` process as
    deployed, plus clients. A test that judges timing (deadlines met) runs it as a process: in a thread it shares
    this process's interpreter lock with the test's clients, which then decide how fast it runs."""

    def __init__(self, config_path: Path, notify_address: str | None = None, *, process: bool = False) -> None:
        self.cfg = load_config(config_path)
        self.rc: int | None = None
        self.proc: subprocess.Popen | None = None
        if process:
            assert notify_address is None, "a service process is not given a notify socket here"
            self.proc = serve_subprocess(config_path)
            self.stderr: list[str] = []
            self.thread = threading.Thread(target=self.stderr.extend, args=(self.proc.stderr,), daemon=True)
            self.thread.start()  # read on: a full pipe would stall the service
        else:
            self.svc = Service(self.cfg, notifier=Notifier(address=notify_address or "", watchdog_usec="200000"))
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
            wait_ready(self.svc, lambda: self.rc)
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(self.cfg.sockets.ingest)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.connect(self.cfg.sockets.results)
        self.req = self.ctx.socket(zmq.REQ)
        self.req.setsockopt(zmq.LINGER, 0)
        self.req.connect(self.cfg.sockets.control)
        self._wait_subscribed()

    def _run(self) -> None:
        self.rc = asyncio.run(self.svc.main())

    def _wait_subscribed(self) -> None:
        """PUB/SUB joins asynchronously: poke with a malformed message until its error comes back."""
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            self.push.send(b"\xc1")
            if self.sub.poll(100):
                while self.sub.poll(50):
                    self.sub.recv_multipart()
                self.control("status")
                return
        raise AssertionError("subscriber never joined")

    def send(self, stream: str, frame: int, arrays=(), **header) -> None:
        parts = protocol.encode_frame({"stream": stream, "frame": frame, **header}, arrays)
        self.push.send_multipart(parts, copy=False)

    def control(self, cmd: str, **kw) -> dict:
        self.req.send(protocol.encode_request(cmd, **kw))
        assert self.req.poll(10000), f"no reply to {cmd}"
        return protocol.decode_reply(self.req.recv())

    def results(self, n: int | None = None, timeout: float = 10.0, until=None) -> list[tuple[dict, list]]:
        """Results (and errors) until ``n`` of them, ``until(list)`` is true, or a quiet ``timeout``."""
        out = []
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if n is not None and len(out) >= n or until is not None and until(out):
                break
            if self.sub.poll(100):
                out.append(protocol.decode_result(self.sub.recv_multipart()))
        return out

    def stop(self) -> int:
        if self.proc is not None:
            self.proc.terminate()
            self.rc = self.proc.wait(30)
        else:
            self.svc.loop.call_soon_threadsafe(self.svc.request_stop)
        self.thread.join(30)
        for s in (self.push, self.sub, self.req):
            s.close(0)
        self.ctx.term()
        assert not self.thread.is_alive()
        return self.rc


def read_log(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def digits_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 8, 8, 1), dtype=np.float32)


