"""The live service end to end: real sockets on ipc://, real interpreters, real log files."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np

from edge_sdrm3.catalog import load_platform
from edge_sdrm3.sim import trace as traces
from edge_sdrm3.sim.replay import replay
from edge_sdrm3.client import protocol
from hal.devices import open_device
from edge_sdrm3.data import data_path

from runtime_harness import ROOT, Running, digits_images, make_workdir, read_log, serve_subprocess, write_config


def _direct(variant_file: str, x: np.ndarray) -> list[np.ndarray]:
    dev = open_device("cpu:1")
    try:
        return dev.load(data_path("models", "digits", variant_file)).invoke([x])
    finally:
        dev.close()


def test_results_for_every_model_equal_a_direct_run_and_cascades_fire(service: Running) -> None:
    imgs = digits_images(40)
    got = []
    for f, x in enumerate(imgs):
        # the model named, so that every frame is due whatever its spacing (a frame without a model list
        # runs the models whose period has come: on a loaded machine two frames may arrive too close)
        service.send("cam0", f, [x], t_capture_ms=1000.0 + f, models=["digits"])
        got += service.results(timeout=0.01)  # paces the frames a little (about 60 fps or slower)
    expected_children = {f for f in range(40)
                         if random.Random(f"0:cam0:{f}:digits_cascade").random() < 0.5}
    got += service.results(until=lambda out: sum(h["model"] == "digits" for h, _ in got + out) >= 40
                           and sum(h["model"] == "digits_cascade" for h, _ in got + out) >= len(expected_children))
    got += service.results(timeout=0.3)
    by_model: dict[str, dict[int, tuple[dict, list]]] = {"digits": {}, "digits_cascade": {}}
    for h, arrays in got:
        assert h["topic"] == h["model"]
        assert h["frame"] not in by_model[h["model"]], "one result per job"
        by_model[h["model"]][h["frame"]] = (h, arrays)
    assert set(by_model["digits"]) == set(range(40))
    # cascades: fired exactly on the seeded draws (nested under the upstream), released after it completed
    done_up = {f for f, (h, _) in by_model["digits"].items() if h["status"] == "done"}
    assert set(by_model["digits_cascade"]) == expected_children
    for f, (h, _) in by_model["digits_cascade"].items():
        up = by_model["digits"][f][0]
        if f in done_up:
            assert h["status"] in ("done", "late", "dropped")
            if h["status"] != "dropped" or h["reason"] != "deadline":
                assert h["release_ms"] >= up["end_ms"] - 1e-6
        else:
            assert h["status"] == "dropped" and h["reason"].startswith("upstream")
    # outputs equal a direct interpreter run of the same input and variant
    files = {"w100": "digits_w100.tflite", "w75": "digits_w75.tflite", "w50": "digits_w50.tflite",
             "w25": "digits_w25.tflite"}
    compared = 0
    for model, res in by_model.items():
        for f, (h, arrays) in res.items():
            assert h["stream"] == "cam0" and h["t_capture_ms"] == 1000.0 + f
            if h["status"] not in ("done", "late"):
                assert arrays == []
                continue
            assert h["accelerator"] in ("cpu", "npu0") and h["energy_mj"] > 0 and h["energy_source"]
            assert h["start_ms"] >= h["release_ms"] and h["end_ms"] >= h["start_ms"]
            (out,) = arrays
            (ref,) = _direct(files[h["variant"]], imgs[f])
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
            compared += 1
    assert compared >= 30
    st = service.control("status")
    assert st["ok"] and st["models"]["digits"]["due"] == 40
    assert st["inputs"]["digits"] == [{"name": "image", "shape": [1, 8, 8, 1], "dtype": "float32", "layout": "NHWC",
                                       "channels": "gray", "range": [0.0, 1.0]}]


def test_camera_images_are_adapted_and_frames_without_models_follow_the_rates(tmp_path: Path) -> None:
    # digits at 5 fps: a frame sent right after another is within its period even when a loaded machine takes
    # more than the 12.5 ms that 3/4 of a 60-fps period leaves (it did, about one run in four)
    service = Running(write_config(tmp_path, make_workdir(tmp_path, fps=5)))
    try:
        _camera_frames_follow_the_rates(service)
    finally:
        assert service.stop() == 0


def _camera_frames_follow_the_rates(service: Running) -> None:
    img = (np.random.default_rng(1).random((480, 640, 3)) * 255).astype(np.uint8)
    service.send("cam1", 0, [img])  # no model subset: every root due at its rate...
    service.send("cam1", 1, [img])  # ...so this one, within a 5 fps period of the first, runs nothing
    got = [r for r in service.results(timeout=1.5) if r[0]["model"] == "digits"]
    assert [h["frame"] for h, _ in got] == [0]
    h, arrays = got[0]
    if h["status"] in ("done", "late"):
        rows = np.arange(8) * 480 // 8
        cols = np.arange(8) * 640 // 8
        x = (img[rows][:, cols].mean(axis=2, keepdims=True).astype(np.float32) / 255.0).reshape(1, 8, 8, 1)
        (ref,) = _direct({"w100": "digits_w100.tflite", "w75": "digits_w75.tflite", "w50": "digits_w50.tflite",
                          "w25": "digits_w25.tflite"}[h["variant"]], x)
        np.testing.assert_allclose(arrays[0], ref, rtol=1e-4, atol=1e-5)


def test_each_malformed_message_is_answered_and_counted_while_good_frames_flow(service: Running) -> None:
    x = digits_images(1)[0]
    good = protocol.encode_frame({"stream": "s", "frame": 0, "models": ["digits"]}, [x])
    bad = {
        "bad-msgpack": [b"\xc1\x00"],
        "bad-version": protocol.encode_frame({"stream": "s", "frame": 1, "v": 2}, [x]),
        "bad-header": protocol.encode_frame({"frame": 1}, [x]),
        "unknown-model": protocol.encode_frame({"stream": "s", "frame": 1, "models": ["nope"]}, [x]),
        "bad-shape": [good[0], b"\x00" * 7],
        "bad-dtype": [protocol.msgpack.packb({"v": 1, "stream": "s", "frame": 1,
                                              "tensors": [{"shape": [1], "dtype": "complex64"}]}), b"\x00" * 8],
        "too-large": protocol.encode_frame({"stream": "s", "frame": 1}, [np.zeros(17 << 20, np.uint8)]),
        "parts-mismatch": [good[0]],
    }
    sent = 0
    for code, parts in bad.items():
        service.push.send_multipart(parts, copy=False)
        service.send("s", sent, [x], models=["digits"])
        sent += 1
    # a model subset naming a cascaded model, and a tensor of the wrong shape for its model
    service.send("s", 99, [x], models=["digits_cascade"])
    service.send("s", 98, [np.zeros((1, 4, 4, 1), np.float32)], tensors=[{"model": "digits"}], models=["digits"])
    got = service.results(until=lambda out: sum(h["topic"] == "errors" for h, _ in out) >= len(bad) + 2
                          and sum(h["model"] == "digits" for h, _ in out if "model" in h) >= sent)
    errors = [h for h, _ in got if h["topic"] == "errors"]
    codes = Counter(h["error"] for h in errors)
    for code in bad:
        assert codes[code] >= 1, (code, codes)
    assert codes["bad-shape"] >= 2 and codes["bad-header"] >= 2
    assert all(h["message"] for h in errors)
    assert any(h.get("stream") == "s" and h.get("frame") == 99 for h in errors)
    frames = {h["frame"] for h, _ in got if h["topic"] == "digits"}
    assert frames == set(range(sent))
    st = service.control("status")
    for code in bad:
        assert st["errors"][code] >= 1
    # control errors: a reply with the code, and the service answers the next request
    rep = service.control("frobnicate")
    assert rep["ok"] is False and rep["error"] == "unknown-command" and "frobnicate" in rep["message"]
    rep = service.control("set-params", params={"alpha": "x"})
    assert rep["ok"] is False and rep["error"] == "bad-argument"
    rep = service.control("set-params", params={"alpha": 0.2})
    assert rep["ok"] and rep["theta"]["alpha"] == 0.2
    rep = service.control("set-policy", policy="edf")
    assert rep["ok"] and rep["policy"] == "edf"
    assert service.control("set-policy", policy="nope")["error"] == "bad-argument"
    service.send("s", 500, [x], models=["digits"])
    more = service.results(until=lambda o: any(h.get("frame") == 500 for h, _ in o))
    assert any(h.get("frame") == 500 and h["topic"] == "digits" for h, _ in more)
    stats = service.control("stats")
    assert stats["ok"] and stats["sockets"]["frames_in"] >= sent + len(bad)
    assert service.control("reload-catalog")["ok"]


def test_overload_every_frame_answered_or_dropped_with_reason_and_counts_add_up(tmp_path: Path) -> None:
    files = make_workdir(tmp_path, deadline_ms=3.0, trigger=0.5)
    run = Running(write_config(tmp_path, files, scheduler={"max_queue": 4}))
    try:
        x = digits_images(1)[0]
        n = 600
        for f in range(n):
            run.send("flood", f, [x], models=["digits"])
        fired = sum(random.Random(f"0:flood:{f}:digits_cascade").random() < 0.5 for f in range(n))
        got = [h for h, _ in run.results(n=n + fired, timeout=3.0) if h["topic"] != "errors"]
    finally:
        assert run.stop() == 0
    by = Counter((h["model"], h["status"]) for h in got)
    assert sum(v for (m, _), v in by.items() if m == "digits") == n
    assert sum(v for (m, _), v in by.items() if m == "digits_cascade") == fired
    reasons = Counter(h["reason"] for h in got if h["status"] == "dropped")
    assert reasons["overload-queue"] > 0, reasons
    assert all(r for r in reasons), "every drop names its reason"
    # the log holds the same outcomes: one job record per fired frame record, same statuses
    log = read_log(run.cfg.state_dir / "jobs.jsonl")
    frames = [r for r in log if r.get("type") == "frame" and r.get("fired", True)]
    jobs = [r for r in log if r.get("type") == "job"]
    assert len(frames) == len(jobs) == n + fired
    assert {(r["model"], r["frame"]) for r in frames} == {(r["model"], r["frame"]) for r in jobs}
    assert Counter((j["model"], j["status"]) for j in jobs) == by
    final = [r for r in log if r.get("type") == "summary" and r["final"]][-1]
    assert final["run"]["frames_due"] == n + fired


def test_sigterm_with_work_in_flight_loses_no_log_line_and_the_log_replays(tmp_path: Path) -> None:
    import signal
    import time

    import zmq

    files = make_workdir(tmp_path)
    cfg_path = write_config(tmp_path, files, service={"drain_grace_s": 0.05})
    proc = serve_subprocess(cfg_path)
    try:
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 2000)
        push.connect(f"ipc://{tmp_path}/run/frames.sock")
        x = digits_images(1)[0]
        for f in range(300):
            push.send_multipart(protocol.encode_frame({"stream": "s", "frame": f, "models": ["digits"]}, [x]),
                                copy=False)
        time.sleep(0.15)
        for f in range(300, 600):  # and more, still arriving when SIGTERM comes
            push.send_multipart(protocol.encode_frame({"stream": "s", "frame": f, "models": ["digits"]}, [x]),
                                copy=False)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
        push.close()
        ctx.term()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    path = tmp_path / "state" / "jobs.jsonl"
    text = path.read_text()
    assert text.endswith("\n")
    log = read_log(path)
    frames = {(r["model"], r["frame"]) for r in log if r.get("type") == "frame" and r.get("fired", True)}
    jobs = [(r["model"], r["frame"]) for r in log if r.get("type") == "job"]
    assert frames and len(jobs) == len(set(jobs)) and set(jobs) == frames
    assert log[-1]["type"] == "summary" and log[-1]["final"]
    # the log is a trace: read it and replay it with the same core
    tr = traces.read(path)
    assert len(tr.frames) == sum(1 for r in log if r.get("type") == "frame")
    res, comps = replay(tr, load_platform(files["platform"]), "sdrm3")
    assert res["frames_due"] == len(frames)


def test_serve_duration_notifies_systemd_ready_watchdog_stopping(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    files = make_workdir(tmp_path)
    cfg_path = write_config(tmp_path, files)
    addr = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(addr)
    srv.settimeout(30)
    from edge_sdrm3 import cli as top

    module = "edge_sdrm3.cli" if "serve" in top.build_parser().format_help() else "edge_sdrm3.runtime.cli"
    env = {**os.environ, "NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "500000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.run([sys.executable, "-m", module, "serve", "--config", str(cfg_path), "--duration", "0.6"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    msgs = []
    srv.settimeout(0.5)
    try:
        while True:
            msgs.append(srv.recv(4096).decode())
    except socket.timeout:
        pass
    srv.close()
    first = [m.split("\n")[0] for m in msgs]
    assert first[0] == "READY=1" and "STATUS=ready: digits_cascade_test" in msgs[0]
    assert "WATCHDOG=1" in first
    assert any(m.startswith("STOPPING=1") for m in msgs)
    assert first.index("READY=1") < first.index("WATCHDOG=1")
