"""Crash safety of the job log: kill -9 at any moment leaves a log readable up to its last complete record;
a restart keeps the previous run's log (shifted to .1) and writes a new one; both replay."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import zmq

from edge_sdrm3.catalog import FileFormatError, load_platform, load_scenario
from edge_sdrm3.client import protocol
from edge_sdrm3.runtime.recorder import Recorder
from edge_sdrm3.sim import trace as traces
from edge_sdrm3.sim.replay import replay

from runtime_harness import digits_images, make_workdir, serve_subprocess, write_config


def _send(tmp: Path, frames: range) -> None:
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.connect(f"ipc://{tmp}/run/frames.sock")
    x = digits_images(1)[0]
    for f in frames:
        push.send_multipart(protocol.encode_frame({"stream": "s", "frame": f, "models": ["digits"]}, [x]),
                            copy=False)
    push.close()
    ctx.term()


def test_kill_9_leaves_a_readable_log_and_a_restart_keeps_it(tmp_path: Path) -> None:
    files = make_workdir(tmp_path)
    cfg_path = write_config(tmp_path, files)
    log = tmp_path / "state" / "jobs.jsonl"
    proc = serve_subprocess(cfg_path)
    try:
        _send(tmp_path, range(400))
        time.sleep(0.3)  # work in flight and records being written
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = traces.read(log)  # readable up to its last complete record, whatever was cut
    assert first.frames and first.jobs
    n_first = len(first.jobs)
    # a restart: the previous log is kept as jobs.jsonl.1, the new run writes a new trace
    proc = serve_subprocess(cfg_path)
    try:
        _send(tmp_path, range(1000, 1050))
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = traces.read(log.with_name("jobs.jsonl.1"))
    assert len(kept.jobs) == n_first
    second = traces.read(log)
    assert {j["frame"] for j in second.jobs} and min(j["stream_frame"] for j in second.jobs) >= 1000
    for tr in (kept, second):  # both replay with the same core
        res, _ = replay(tr, load_platform(files["platform"]), "sdrm3")
        assert res["frames_due"] > 0


def test_a_torn_last_line_is_ignored_and_the_log_reads(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "jobs.jsonl", traces.header(load_scenario("vr_gaming"), 0.0, 0))
    rec.start()
    rec.put({"type": "frame", "model": "ES_RITNet", "frame": 0, "release_ms": 0.0})
    rec.close()
    path = tmp_path / "jobs.jsonl"
    whole = path.read_text()
    # a crash in the middle of writing the next record
    path.write_text(whole + json.dumps({"type": "frame", "model": "ES_RITNet", "frame": 1, "release_ms": 16.7})[:25])
    tr = traces.read(path)
    assert [(f.model, f.frame) for f in tr.frames] == [("ES_RITNet", 0)]
    # but a broken line in the middle is still an error naming it
    path.write_text(whole + "{oops\n" + json.dumps({"type": "frame", "model": "ES_RITNet", "frame": 1,
                                                   "release_ms": 16.7}) + "\n")
    with pytest.raises(FileFormatError, match="line 3"):
        traces.read(path)
