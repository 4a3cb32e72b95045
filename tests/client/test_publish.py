"""The scenario player and ``edge-sdrm3 publish``/``status``, against the fake service."""
from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np
import pytest

from edge_sdrm3.core.types import ConfigError
from edge_sdrm3.publish import FolderImages, SyntheticImages, load_plan, read_image
from edge_sdrm3.client.cli import add_client_parsers, render_status
from edge_sdrm3.sim import trace as traces


def _cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    add_client_parsers(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


def test_plan_of_a_scenario_has_each_root_model_at_its_rate():
    plan = load_plan("mediapipe_xr", duration_s=1.0)
    assert plan.counts() == Counter(palm_detection=30, face_detection=30, selfie_segmentation=15, pose_detection=10)
    assert len(plan.ticks) == 30  # 15 and 10 fps releases fall on the 30 fps grid
    assert plan.ticks[0].models == ("face_detection", "palm_detection", "pose_detection", "selfie_segmentation")
    assert plan.ticks[1].models == ("face_detection", "palm_detection")
    fast = load_plan("mediapipe_xr", duration_s=1.0, rate_scale=2.0)
    assert fast.duration_s == 0.5 and fast.ticks[1].t_s == pytest.approx(1 / 60)


def test_publish_a_scenario_for_one_second(fake, capsys):
    rc = _cli(["publish", "mediapipe_xr", "--endpoint", fake.frames_ep, "--duration", "1", "--size", "64x48"])
    assert rc == 0
    fake.wait_frames(30)
    assert len(fake.frames) == 30
    assert fake.by_models == Counter({
        ("face_detection", "palm_detection", "pose_detection", "selfie_segmentation"): 5,  # t = 0, 1/3, 2/3 s ...
        ("face_detection", "palm_detection", "selfie_segmentation"): 10,
        ("face_detection", "palm_detection", "pose_detection"): 5,
        ("face_detection", "palm_detection"): 10,
    })
    h, arrays, _ = fake.frames[0]
    assert h["stream"] == "cam0" and arrays[0].shape == (48, 64, 3) and arrays[0].dtype == np.uint8
    assert [h["frame"] for h, _, _ in fake.frames] == list(range(30))
    caps = [h["t_capture_ms"] for h, _, _ in fake.frames]
    assert 900 <= caps[-1] - caps[0] <= 1500  # paced: the last frame leaves ~29/30 s after the first
    assert "30/30 frames" in capsys.readouterr().out


def test_publish_a_trace_sends_its_fired_root_frames(fake, tmp_path):
    doc = {"format": "edge-sdrm3-scenario", "version": 1, "name": "t", "models": [
        {"name": "a", "fps": 20, "trigger_probability": 0.5}, {"name": "b", "fps": 10, "upstream": "a",
                                                                 "trigger_probability": 1.0}]}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    tr = traces.generate(__import__("edge_sdrm3.catalog", fromlist=["x"]).load_scenario(str(tmp_path / "s.json")),
                         0.5, seed=3)
    traces.write(tr, tmp_path / "t.jsonl")
    fired = [f for f in tr.frames if f.model == "a" and f.fired]
    assert 0 < len(fired) < 10
    assert _cli(["publish", str(tmp_path / "t.jsonl"), "--endpoint", fake.frames_ep, "--rate-scale", "4",
                 "--size", "8x8", "--stream", "t1"]) == 0
    fake.wait_frames(len(fired))
    assert len(fake.frames) == len(fired)
    assert all(h["models"] == ["a"] and h["stream"] == "t1" for h, _, _ in fake.frames)  # b is a cascade: not sent


def test_images_from_a_folder(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    np.save(tmp_path / "a.npy", rgb)
    (tmp_path / "b.ppm").write_bytes(b"P6\n# comment\n5 4\n255\n" + rgb.tobytes())
    (tmp_path / "c.pgm").write_bytes(b"P2 5 4 15\n" + " ".join(str(i % 16) for i in range(20)).encode())
    grey16 = (np.arange(20) * 1000).astype(">u2").reshape(4, 5)
    (tmp_path / "d.pgm").write_bytes(b"P5 5 4 65535\n" + grey16.tobytes())
    (tmp_path / "notes.txt").write_text("ignored")
    assert np.array_equal(read_image(tmp_path / "a.npy"), rgb)
    assert np.array_equal(read_image(tmp_path / "b.ppm"), rgb)
    c = read_image(tmp_path / "c.pgm")
    assert c.shape == (4, 5, 3) and c[0, 1, 0] == 17 and c[0, 15 % 5, 2] == c[0, 0, 0]
    d = read_image(tmp_path / "d.pgm")
    assert d[3, 4, 0] == round(19000 * 255 / 65535)
    imgs = FolderImages(tmp_path, size=(10, 8))
    assert [p.name for p in imgs.files] == ["a.npy", "b.ppm", "c.pgm", "d.pgm"]
    assert imgs(5).shape == (8, 10, 3) and np.array_equal(imgs(4), imgs(0))
    (tmp_path / "e.ppm").write_bytes(b"P6 5 4 255\n" + b"\0" * 10)
    with pytest.raises(ConfigError, match="e.ppm: 10 bytes of pixels, expected 60"):
        FolderImages(tmp_path)


def test_synthetic_images():
    shapes = SyntheticImages(640, 480, pattern="shapes")
    a, b = shapes(0), shapes(10)
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)  # they move
    n1, n2 = SyntheticImages(32, 24, seed=5, pattern="noise"), SyntheticImages(32, 24, seed=5, pattern="noise")
    assert np.array_equal(n1(0), n2(0))  # seeded


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--size"):
        _cli(["publish", "digits", "--size", "640by480"])
    with pytest.raises(ConfigError, match="no image files"):
        _cli(["publish", "digits", "--images", str(tmp_path)])
    with pytest.raises(ConfigError, match="--rate-scale"):
        load_plan("digits", rate_scale=0)


STATUS = {
    "policy": "sdrm3", "theta": {"alpha": 0.5, "beta": 1.0, "gamma": 0.25, "delta": 2.0},
    "accelerators": [{"id": "cpu:1", "kind": "cpu", "healthy": True, "busy": True},
                     {"id": "npu0", "kind": "emulated", "healthy": False, "busy": False}],
    "queues": {"digits": 2, "palm_detection": 0},
    "models": {"digits": {"due": 120, "missed": 3, "miss_rate": 0.025}},
    "uxcost": 0.0123, "errors": {"bad-shape": 2, "bad-msgpack": 0}, "uptime_s": 61.4,
}


def test_status_table():
    text = render_status(STATUS)
    lines = text.splitlines()
    assert lines[0] == "policy sdrm3  theta alpha=0.500 beta=1.000 gamma=0.250 delta=2.000  uxcost 0.0123  uptime 61 s"
    assert "cpu:1             cpu      yes   yes" in lines and "npu0         emulated       no    no" in lines
    row = next(x for x in lines if x.startswith("digits"))
    assert row.split() == ["digits", "120", "3", "2.5", "2"]
    assert next(x for x in lines if x.startswith("palm_detection")).split() == ["palm_detection", "-", "-", "-", "0"]
    assert lines[-1] == "errors: bad-shape 2"
    assert render_status({}).splitlines()[-1] == "errors: none"  # a sparse reply still renders


def test_status_command(fake, capsys):
    fake.handler = lambda req: {"v": 1, "ok": True, **STATUS}
    assert _cli(["status", "--endpoint", fake.control_ep]) == 0
    assert capsys.readouterr().out.startswith("policy sdrm3")
    assert _cli(["status", "--endpoint", fake.control_ep, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == STATUS


def test_status_without_service_fails_clearly(tmp_path, capsys):
    assert _cli(["status", "--endpoint", f"ipc://{tmp_path}/none.sock", "--timeout", "0.1"]) == 1
    assert "no reply from ipc://" in capsys.readouterr().err
