"""`edge-sdrm3 models ...` through add_models_parser: output a user reads, one-line errors with exit 2."""
from __future__ import annotations

import argparse
import hashlib
import os
import zipfile

import pytest

from edge_sdrm3.data import data_path
from edge_sdrm3.tflite.cli import add_models_parser


def run(argv):
    ap = argparse.ArgumentParser(prog="edge-sdrm3")
    add_models_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


def test_list_shows_catalog_and_presence(capsys, tmp_path):
    assert run(["models", "list", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "w25" in out and "palm_detection" in out and "after face_landmark" in out
    digits_rows = [line for line in out.splitlines() if "w100" in line or "w75" in line]
    assert all(" yes " in line for line in digits_rows)
    palm = next(line for line in out.splitlines() if line.startswith("palm_detection"))
    assert " no " in palm


def test_split_and_build(capsys, tmp_path):
    src = data_path("models", "digits", "digits_w50.tflite")
    assert run(["models", "split", str(src), "--segments", "2", "-o", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("digits_w50.seg*of2.tflite"))) == 2
    out = tmp_path / "kd.tflite"
    assert run(["models", "build-xrbench", "KD_res8_narrow", "--width", "0.5", "-o", str(out), "--segments"]) == 0
    assert out.exists() and len(list(tmp_path.glob("kd.seg*of4.tflite"))) == 4


def test_errors_are_one_line_exit_2(capsys, tmp_path):
    assert run(["models", "split", str(tmp_path / "none.tflite"), "--segments", "2", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edge-sdrm3: error:") and "none.tflite" in err and "\n" not in err
    assert run(["models", "build-xrbench", "NOPE", "-o", str(tmp_path / "x.tflite")]) == 2
    assert "no model 'NOPE'" in capsys.readouterr().err
    assert run(["models", "fetch", "--cache", str(tmp_path), "--wheel", str(tmp_path / "missing.whl")]) == 2
    assert "not a readable wheel" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_fetch_as_root_into_a_service_state_directory_gives_the_files_its_owner(capsys, tmp_path):
    """`sudo edge-sdrm3 models fetch --dest /var/lib/edge-sdrm3/models` after the service has run once: the state
    directory belongs to the service's user, so the fetched files (and the folders made for them) must too, or the
    service could not write its split segments beside them."""
    data = b"TFL3 palm" * 50
    with zipfile.ZipFile(tmp_path / "mediapipe-0.10.14-test.whl", "w") as z:
        z.writestr("mediapipe/modules/palm/palm.tflite", data)
    (tmp_path / "catalog.toml").write_text(f"""format = "edge-sdrm3-models"
version = 1
[models.palm]
task = "palm detection"
location = "cache"
source = "mediapipe==0.10.14"
inputs = [{{ name = "x", shape = [1, 4], dtype = "float32" }}]
outputs = [{{ name = "y", shape = [1, 2], dtype = "float32" }}]
[[models.palm.variants]]
name = "full"
file = "mediapipe/palm.tflite"
wheel_path = "mediapipe/modules/palm/palm.tflite"
sha256 = "{hashlib.sha256(data).hexdigest()}"
size = {len(data)}
accuracy_source = "none"
""")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 4242, 4343)
    dest = state / "models"
    assert run(["models", "fetch", "--dest", str(dest), "--manifest", str(tmp_path / "catalog.toml"),
                "--wheel", str(tmp_path / "mediapipe-0.10.14-test.whl")]) == 0
    out = capsys.readouterr().out
    assert f"1 files in {dest} (3 paths given the owner of {state})" in out
    for p in (dest, dest / "mediapipe", dest / "mediapipe" / "palm.tflite"):
        assert (p.stat().st_uid, p.stat().st_gid) == (4242, 4343), p
    assert (dest / "mediapipe" / "palm.tflite").read_bytes() == data
