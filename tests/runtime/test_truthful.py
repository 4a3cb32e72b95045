"""Truthful results: inputs as the catalog declares them, no run without input, no ``done`` without outputs, rate
skips by capture time and counted; per-stream state bounded — on a running service and the real catalog."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from runtime_harness import Running, write_config

from edge_sdrm3.client.protocol import ProtocolError
from edge_sdrm3.runtime.executors import IOSpec
from edge_sdrm3.runtime.ingest import adapt
from edge_sdrm3.tflite.manifest import load_manifest


def _input(model: str):
    decl = load_manifest()[model].inputs[0]
    return IOSpec(decl.name, decl.shape, np.dtype(decl.dtype)), decl


@pytest.mark.parametrize("model,lo", [("face_detection", -1.0), ("pose_detection", -1.0), ("palm_detection", 0.0),
                                      ("selfie_segmentation", 0.0)])
def test_a_uint8_camera_image_is_scaled_to_the_range_the_catalog_declares(model: str, lo: float) -> None:
    spec, decl = _input(model)
    assert decl.range == (lo, 1.0) and decl.channels == "RGB" and decl.layout == "NHWC"
    img = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    x = adapt(img, spec, model, decl)
    h, w = spec.shape[1:3]
    ref = img[(np.arange(h) * 480) // h][:, (np.arange(w) * 640) // w].astype(np.float32)
    expected = lo + ref * (1.0 - lo) / 255.0
    assert x.shape == spec.shape and x.dtype == np.float32
    np.testing.assert_allclose(x[0], expected, rtol=1e-6, atol=1e-6)
    assert x.min() >= lo and x.max() <= 1.0 and (x.min() < 0) == (lo < 0)
    black = adapt(np.zeros((4, 4, 3), np.uint8), spec, model, decl)
    assert float(black.min()) == lo == float(black.max())


def test_channels_follow_the_catalog_and_other_adaptations_are_refused() -> None:
    spec, decl = _input("face_detection")
    grey = np.full((32, 32), 200, np.uint8)
    x = adapt(grey, spec, "face_detection", decl)  # RGB from grey: the channel repeated
    assert np.allclose(x[..., 0], x[..., 2]) and np.allclose(x, 200 / 127.5 - 1, atol=1e-6)
    dspec, ddecl = _input("digits")
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 255
    np.testing.assert_allclose(adapt(rgb, dspec, "digits", ddecl), 1 / 3, rtol=1e-6)  # grey = mean of RGB
    refused = {
        "bad-shape": [np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 2), np.uint8), np.zeros(100, np.uint8)],
        "bad-dtype": [np.zeros((32, 32, 3), np.int16), np.zeros((32, 32, 3), np.float64)],
    }
    for code, arrays in refused.items():
        for a in arrays:
            with pytest.raises(ProtocolError) as e:
                adapt(a, spec, "face_detection", decl)
            assert e.value.code == code and "face_detection" in e.value.message
    with pytest.raises(ProtocolError) as e:  # no image layout declared: only the exact input
        adapt(np.zeros((32, 32, 3), np.uint8), spec, "m", None)
    assert e.value.code == "bad-shape" and "exact input" in e.value.message
    # the exact input, with or without its dimensions of size 1
    exact = np.random.default_rng(1).random((8, 8), dtype=np.float32)
    assert adapt(exact, dspec, "digits", ddecl).shape == (1, 8, 8, 1)


def test_a_frame_without_input_is_refused_and_runs_nothing(service: Running) -> None:
    service.send("s", 1, models=["digits"])
    service.send("s", 2, [np.zeros((1, 8, 8, 1), np.float32)], models=["digits"])
    got = service.results(until=lambda o: any(h.get("frame") == 2 and "model" in h for h, _ in o))
    errors = [h for h, _ in got if h["topic"] == "errors"]
    assert [(h["error"], h["frame"]) for h in errors] == [("no-input", 1)]
    assert "digits" in errors[0]["message"]
    assert [h["frame"] for h, _ in got if h["topic"] == "digits"] == [2]
    st = service.control("status")
    assert st["errors"]["no-input"] == 1 and st["models"]["digits"]["due"] == 1


def test_results_computed_timing_only_are_timed_never_done_without_outputs(tmp_path: Path, files: dict) -> None:
    # one emulated accelerator with the host's profiled costs: every job runs there, and computes nothing
    plat = json.loads(Path(files["platform"]).read_text())
    cpu = plat["accelerators"][0]
    plat["accelerators"] = [{"id": "npu0", "kind": "emulated", "idle_power_mw": 0.0, "costs": cpu["costs"]}]
    Path(files["platform"]).write_text(json.dumps(plat))
    run = Running(write_config(tmp_path, files, workload={"emulated_compute": "never"}))
    try:
        x = np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32)
        for f in range(40):  # at a 50 fps camera's pace
            run.send("s", f, [x], models=["digits"])
            time.sleep(0.02)
        got = run.results(until=lambda o: sum(h["topic"] == "digits" for h, _ in o) >= 40)
        got += run.results(until=lambda o: False, timeout=0.5)  # the last cascaded results
        assert sum(h["topic"] == "digits" for h, _ in got) == 40
        res = [(h, arrays) for h, arrays in got if h["topic"] in ("digits", "digits_cascade")]
        by = {}
        for h, arrays in res:
            by.setdefault(h["status"], []).append((h, arrays))
            assert (h["status"] in ("done", "late")) == bool(arrays) == h["computed"], h
        timed = by.get("timed", [])
        assert timed and all(h["accelerator"] == "npu0" and not arrays for h, arrays in timed)
        assert not by.get("done") and not by.get("late")
        st = run.control("status")
        assert st["results"]["published"].get("timed") == len(timed)
    finally:
        assert run.stop() == 0


def test_rate_skips_are_judged_by_capture_time_and_counted(service: Running) -> None:
    x = np.zeros((1, 8, 8, 1), np.float32)
    # digits is 60 fps in the test scenario: due again 3/4 of 16.7 ms after its last release, by capture time
    for f in range(5):  # sent at once, captured 20 ms apart: every one due
        service.send("cam", f, [x], t_capture_ms=1000.0 + 20.0 * f)
    for f in range(5, 10):  # captured 1 ms apart after the last: none due
        service.send("cam", f, [x], t_capture_ms=1081.0 + f)
    service.send("cam", 10, [x], t_capture_ms=1200.0)
    got = service.results(until=lambda o: any(h.get("frame") == 10 and h["topic"] == "digits" for h, _ in o))
    assert sorted(h["frame"] for h, _ in got if h["topic"] == "digits") == [0, 1, 2, 3, 4, 10]
    st = service.control("status")
    assert st["skipped"] == {"digits": 5}


def test_per_stream_state_is_bounded_and_counted(tmp_path: Path, files: dict) -> None:
    run = Running(write_config(tmp_path, files, sockets={"max_streams": 8}))
    try:
        x = np.zeros((1, 8, 8, 1), np.float32)
        for i in range(50):
            run.send(f"stream-{i}-" + "x" * 1000, 0, [x], models=["digits"])
        run.send("last", 0, [x])
        run.results(until=lambda o: any(h.get("stream") == "last" for h, _ in o), timeout=20)
        st = run.control("status")
        assert st["streams"] == {"tracked": 8, "max": 8, "forgotten": 43}
    finally:
        assert run.stop() == 0
