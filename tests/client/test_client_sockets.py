"""Publisher, Subscriber and Control against the fake service of conftest.py (real sockets on ipc://)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from edge_sdrm3.client import (AsyncPublisher, ClientTimeout, Control, ErrorReport, Publisher, Result, ServiceError,
                               Subscriber)

from _fake_service import RESULT


def test_frames_arrive_intact_and_zero_copy(fake):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    extra = rng.standard_normal((1, 28, 28, 1)).astype(np.float32)
    small = np.arange(6, dtype=np.int16).reshape(2, 3)
    with Publisher(fake.frames_ep) as pub:
        assert pub.send("cam0", 0, [image, extra, small], models=["digits"], t_capture_ms=12.5)
        assert pub.send("cam0", 1, [image[:, ::2]])  # not contiguous: sent as a contiguous copy
    fake.wait_frames(2)
    (h0, a0, views0), (h1, a1, _) = fake.frames
    assert h0["v"] == 1 and h0["stream"] == "cam0" and h0["frame"] == 0 and h0["models"] == ["digits"]
    assert h0["t_capture_ms"] == 12.5
    assert [t["dtype"] for t in h0["tensors"]] == ["uint8", "float32", "int16"]
    for sent, got in zip([image, extra, small], a0):
        assert got.shape == sent.shape and got.dtype == sent.dtype and got.tobytes() == sent.tobytes()
    assert all(views0)
    assert "models" not in h1 and a1[0].shape == (480, 320, 3)
    assert np.array_equal(a1[0], image[:, ::2])


def test_publisher_refuses_bad_arrays_and_reports_full_queue(tmp_path):
    with Publisher(f"ipc://{tmp_path}/nobody.sock", hwm=1, linger_ms=0) as pub:
        with pytest.raises(ValueError, match="dtype"):
            pub.send("cam0", 0, [np.zeros(3, dtype=np.complex64)])
        sent = [pub.send("cam0", i, [np.zeros((4, 4, 3), np.uint8)], block=False) for i in range(50)]
    assert sent[0] is True and sent[-1] is False  # nobody reads: the queue fills, frames are dropped


def test_async_publisher(fake):
    async def go():
        async with AsyncPublisher(fake.frames_ep) as pub:
            for i in range(3):
                assert await pub.send("cam1", i, [np.full((8, 8, 3), i, np.uint8)], models=["a", "b"])

    asyncio.run(go())
    fake.wait_frames(3)
    assert [h["frame"] for h, _, _ in fake.frames] == [0, 1, 2]
    assert fake.frames[2][1][0].sum() == 2 * 8 * 8 * 3


def _publish_until(fake, sub, topic, header, arrays=()):
    """Publish until the subscriber receives (a SUB socket joins a few ms after connecting)."""
    end = time.monotonic() + 5
    while time.monotonic() < end:
        fake.publish(topic, header, list(arrays))
        try:
            return sub.recv(timeout_ms=50)
        except ClientTimeout:
            continue
    raise AssertionError("nothing received")


def test_results_decoded_with_outputs(fake):
    logits = np.linspace(0, 1, 10, dtype=np.float32).reshape(1, 10)
    with Subscriber(fake.results_ep, models=["digits"]) as sub:
        res = _publish_until(fake, sub, "digits", RESULT, [logits])
    assert isinstance(res, Result)
    assert (res.stream, res.frame, res.model, res.variant, res.accelerator, res.status) == \
        ("cam0", 7, "digits", 1, "cpu:1", "done")
    assert res.ok and res.latency_ms == pytest.approx(2.25) and res.t_capture_ms is None
    assert len(res.outputs) == 1 and res.outputs[0].dtype == np.float32 and res.outputs[0].shape == (1, 10)
    assert np.array_equal(res.outputs[0], logits) and not res.outputs[0].flags.owndata  # a view, not a copy
    assert res.extra == {}


def test_exact_topics_errors_and_unknown_keys(fake):
    with Subscriber(fake.results_ep, models=["face"]) as sub:
        # "face_detection" matches the SUB prefix "face" but is not what was asked for: skipped
        first = _publish_until(fake, sub, "face", {**RESULT, "model": "face", "status": "dropped",
                                                   "reason": "deadline", "new_key": 1})
        assert first.model == "face" and not first.ok and first.outputs == [] and first.extra == {"new_key": 1}
        fake.publish("face_detection", {**RESULT, "model": "face_detection"})
        fake.publish("errors", {"error": "bad-shape", "message": "tensors[0]: 3 bytes", "stream": "cam0", "frame": 4,
                                "count": 2})
        err = sub.recv(timeout_ms=2000)
    assert isinstance(err, ErrorReport)
    assert (err.code, err.stream, err.frame, err.count) == ("bad-shape", "cam0", 4, 2)
    assert "3 bytes" in err.message


def test_subscriber_skips_malformed_and_times_out(fake):
    with Subscriber(fake.results_ep) as sub:
        _publish_until(fake, sub, "digits", RESULT)
        fake.pub.send_multipart([b"digits", b"\xc1not msgpack"])
        fake.pub.send_multipart([b"digits", b"\x81\xa1v\x02"])  # {"v": 2}
        with pytest.raises(ClientTimeout, match="no result"):
            sub.recv(timeout_ms=200)
        assert sub.bad_messages == 2


def test_control_commands(fake):
    seen = []

    def handler(req):
        seen.append(req)
        return {"v": 1, "ok": True, "policy": "sdrm3"}

    fake.handler = handler
    with Control(fake.control_ep, timeout_ms=2000) as ctl:
        assert ctl.status()["policy"] == "sdrm3"
        ctl.stats()
        ctl.set_policy("edf")
        ctl.set_params(alpha=0.5, delta=2.0)
        ctl.reload_catalog()
    assert [r["cmd"] for r in seen] == ["status", "stats", "set-policy", "set-params", "reload-catalog"]
    assert all(r["v"] == 1 for r in seen)
    assert seen[2]["policy"] == "edf" and seen[3]["params"] == {"alpha": 0.5, "delta": 2.0}


def test_control_error_reply_raises_service_error(fake):
    fake.handler = lambda req: {"v": 1, "ok": False, "error": "bad-argument", "message": "unknown policy 'nope'"}
    with Control(fake.control_ep) as ctl, pytest.raises(ServiceError) as ei:
        ctl.set_policy("nope")
    assert ei.value.code == "bad-argument" and "unknown policy 'nope'" in ei.value.message


def test_control_timeout_then_recovers(fake):
    fake.mute = 1
    with Control(fake.control_ep, timeout_ms=100) as ctl:
        t = time.monotonic()
        with pytest.raises(ClientTimeout, match="no reply from .* to 'status' within 100 ms"):
            ctl.status()
        assert time.monotonic() - t < 1.0
        ctl.timeout_ms = 2000
        assert ctl.status() == {"cmd": "status"}  # a fresh socket: the late reply to the first one is gone
        assert ctl.stats() == {"cmd": "stats"}


def test_control_without_service_times_out_then_works_when_it_starts(tmp_path):
    from _fake_service import FakeService

    ctl = Control(f"ipc://{tmp_path}/control.sock", timeout_ms=100)
    with pytest.raises(ClientTimeout):
        ctl.status()
    svc = FakeService(tmp_path)
    try:
        ctl.timeout_ms = 2000
        assert ctl.status() == {"cmd": "status"}
    finally:
        ctl.close()
        svc.close()


def test_default_endpoints_follow_runtime_dir(monkeypatch):
    from edge_sdrm3.client import default_endpoint

    monkeypatch.setenv("EDGE_SDRM3_RUNTIME_DIR", "/tmp/x")
    assert default_endpoint("frames") == "ipc:///tmp/x/frames.sock"
    monkeypatch.delenv("EDGE_SDRM3_RUNTIME_DIR")
    assert default_endpoint("control").startswith("ipc:///") and default_endpoint("control").endswith(
        "edge-sdrm3/control.sock" if Path("/run/edge-sdrm3").is_dir() else "/control.sock")


def test_service_decoder_accepts_what_the_publisher_sends(tmp_path):
    """The service's own decoder (client.protocol) reads the client's frames, without copying."""
    from edge_sdrm3.client import protocol

    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    pull.bind(f"ipc://{tmp_path}/f.sock")
    image = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with Publisher(f"ipc://{tmp_path}/f.sock") as pub:
        tracker = pub.send("cam0", 3, [image], models=["palm_detection"], t_capture_ms=1.5, track=True)
        assert pull.poll(5000)
        parts = pull.recv_multipart(copy=False)
        tracker.wait(5)  # zero-copy send: ZeroMQ held our buffer until the message left
    pull.close()
    header, arrays = protocol.decode_frame(parts)
    assert (header.stream, header.frame, header.models, header.t_capture_ms) == ("cam0", 3, ("palm_detection",), 1.5)
    assert arrays[0].shape == (480, 640, 3) and not arrays[0].flags.owndata
    assert np.array_equal(arrays[0], image)
