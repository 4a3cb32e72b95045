"""Bad catalogs (issue 6, item 5): a truncated or corrupt .tflite, a wrong sha256, a model whose inputs do not
match the catalog — refused at startup naming the file (one line, exit 1), or on reload (control command or
SIGHUP) refused while the catalog loaded before keeps serving. The catalogs are copies of the digits files in a
temporary model cache."""
from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from runtime_harness import ROOT, Running, digits_images, make_workdir, serve_subprocess, write_config

from edge_sdrm3.client import protocol
from edge_sdrm3.runtime.config import load_config
from edge_sdrm3.runtime.service import StartupError, load_workload
from edge_sdrm3.data import data_path

W75 = "digits/digits_w75.tflite"


def _catalog(tmp: Path) -> tuple[dict, Path]:
    """The test workdir with its catalog reading copies of the digits files from tmp/cache (location cache).

    The digits model gets a deadline of a second: these tests check that a frame is served (done or late), and
    at 60 fps's 16.7 ms a loaded machine (a first invoke, another process on both cores) turned about one frame in
    six into a drop as hopeless."""
    files = make_workdir(tmp, deadline_ms=1000.0, trigger=0.0)
    manifest = Path(files["catalog"])
    manifest.write_text(manifest.read_text().replace('location = "repo"',
                                                     'location = "cache"\nsource = "copies of models/digits"'))
    shutil.copytree(data_path("models", "digits"), tmp / "cache" / "digits",
                    ignore=shutil.ignore_patterns("*.py", "*.md", "*.json"))
    return files, tmp / "cache" / W75


def _set_in_manifest(files: dict, old: str, new: str) -> None:
    m = Path(files["catalog"])
    text = m.read_text()
    assert old in text
    m.write_text(text.replace(old, new))


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _break(kind: str, files: dict, f: Path) -> str:
    """Break the catalog one way; the words the refusal must contain."""
    if kind == "truncated":
        f.write_bytes(f.read_bytes()[:1000])
        return "1000 bytes, the catalog says"
    if kind == "checksum":
        _set_in_manifest(files, _sha(f), "0" * 64)
        return "does not match the catalog's"
    if kind == "corrupt":  # the catalog updated to match (size and sha256 right), the contents garbage
        old_sha, data = _sha(f), bytearray(f.read_bytes())
        data[8:len(data) // 2] = b"\xa5" * (len(data) // 2 - 8)
        f.write_bytes(bytes(data))
        _set_in_manifest(files, old_sha, _sha(f))
        return "not a model the runtime can load"
    if kind == "inputs":
        _set_in_manifest(files, 'shape = [1, 8, 8, 1], dtype = "float32", layout = "NHWC", channels = "gray"',
                         'shape = [1, 8, 8, 3], dtype = "uint8", layout = "NHWC", channels = "RGB"')
        return "input 0 (image) is [1, 8, 8, 1] float32, the catalog declares [1, 8, 8, 3] uint8"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "checksum", "corrupt", "inputs"])
def test_a_bad_catalog_is_refused_at_startup_naming_the_file(tmp_path: Path, kind: str) -> None:
    files, f = _catalog(tmp_path)
    cfg = load_config(write_config(tmp_path, files))
    load_workload(cfg)  # the copies are good
    words = _break(kind, files, f)
    with pytest.raises(StartupError) as e:
        load_workload(cfg)
    msg = str(e.value)
    assert "\n" not in msg and words in msg, msg
    if kind != "inputs":
        assert str(f) in msg, msg


def test_reload_of_a_bad_catalog_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    files, f = _catalog(tmp_path)
    run = Running(write_config(tmp_path, files))
    try:
        good = f.read_bytes()
        f.write_bytes(good[:1000])
        rep = run.control("reload-catalog")
        assert rep["ok"] is False and rep["error"] == "bad-argument"
        assert str(f) in rep["message"] and "truncated" in rep["message"]
        x = digits_images(1)[0]
        for i in range(5):
            run.send("s", i, [x], models=["digits"])
        got = [h for h, _ in run.results(until=lambda o: sum(h.get("model") == "digits" for h, _ in o) >= 5)
               if h.get("model") == "digits"]
        assert len(got) == 5 and all(h["status"] in ("done", "late") for h in got), [h["reason"] for h in got]
        f.write_bytes(good)  # repaired: the reload goes through
        assert run.control("reload-catalog")["ok"]
    finally:
        assert run.stop() == 0


def test_sighup_with_a_bad_catalog_keeps_serving_and_a_restart_refuses_it_in_one_line(tmp_path: Path) -> None:
    files, f = _catalog(tmp_path)
    cfg_path = write_config(tmp_path, files)
    proc = serve_subprocess(cfg_path)
    try:
        _set_in_manifest(files, _sha(f), "0" * 64)
        proc.send_signal(signal.SIGHUP)
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"ipc://{tmp_path}/run/results.sock")
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(f"ipc://{tmp_path}/run/frames.sock")
        x = digits_images(1)[0]
        got = None
        t_end = time.monotonic() + 10
        frame = 0
        while got is None and time.monotonic() < t_end:  # (the SUB joins asynchronously: send until one arrives)
            push.send_multipart(protocol.encode_frame({"stream": "s", "frame": frame, "models": ["digits"]}, [x]),
                                copy=False)
            frame += 1
            if sub.poll(100):
                got = protocol.decode_result(sub.recv_multipart())[0]
        push.close()
        sub.close(0)
        ctx.term()
        assert got is not None and got["status"] in ("done", "late"), got
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    refused = [line for line in err.splitlines() if "SIGHUP: reload-catalog:" in line]
    assert len(refused) == 1 and str(f) in refused[0] and "sha256" in refused[0], err
    # a restart with the bad catalog stops at once: exit 1, one error line naming the file
    res = subprocess.run([sys.executable, "-m", "edge_sdrm3.cli", "serve", "--config", str(cfg_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "startup failed" in errors[0] and str(f) in errors[0], res.stderr
