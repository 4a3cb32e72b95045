"""`edge-sdrm3 serve --check`: what a start would refuse is found without starting (exit 2, one line naming it);
a good config exits 0 and nothing is bound, created or split."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from runtime_harness import make_workdir, write_config

from edge_sdrm3.cli import main
from edge_sdrm3.data import data_path


def _check(capsys, config: Path) -> tuple[int, str, str]:
    rc = main(["serve", "--check", "--config", str(config)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_a_good_config_passes_and_nothing_is_created(capsys, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, make_workdir(tmp_path))
    rc, out, err = _check(capsys, cfg)
    assert rc == 0, err
    assert f"edge-sdrm3: {cfg}: ok: policy sdrm3, scenario digits_cascade_test (2 models, 8 model files checked" \
        in out
    assert "platform test_host_npu (2 accelerators)" in out and f"ipc://{tmp_path}/run/frames.sock" in out
    for made_by_a_start in ("run", "state", "cache"):  # sockets, job log, split segments
        assert not (tmp_path / made_by_a_start).exists(), made_by_a_start


@pytest.mark.parametrize("section, words", [
    ({"sockets": {"ingets": "ipc:///tmp/x.sock"}}, "config: [sockets] ingets: unknown key"),
    ({"sockets": {"group": "no-such-group-here"}}, "config: [sockets] group: no group 'no-such-group-here'"),
    ({"sockets": {"ingest": "tcp://0.0.0.0:5555"}}, "tcp://0.0.0.0:5555"),
    ({"scheduler": {"policy": "nope"}}, "config: [scheduler] policy: unknown policy 'nope'"),
    ({"workload": {"platform": "no_such_platform"}}, "unknown platform 'no_such_platform'"),
])
def test_a_bad_config_is_named_in_one_line_exit_2(capsys, tmp_path: Path, section: dict, words: str) -> None:
    files = make_workdir(tmp_path)
    rc, out, err = _check(capsys, write_config(tmp_path, files, **section))
    assert rc == 2 and out == ""
    assert err.startswith("edge-sdrm3: error: ") and err.count("\n") == 1 and words in err, err


def test_a_model_file_that_does_not_match_the_catalog_is_named(capsys, tmp_path: Path) -> None:
    files = make_workdir(tmp_path)
    catalog = Path(files["catalog"])
    w50 = data_path("models", "digits", "digits_w50.tflite")
    sha = hashlib.sha256(w50.read_bytes()).hexdigest()
    catalog.write_text(catalog.read_text().replace(sha, "0" * 64, 1))
    rc, _, err = _check(capsys, write_config(tmp_path, files))
    assert rc == 2 and err.count("\n") == 1
    assert f"variant w50: file {w50}: sha256 {sha} does not match the catalog's {'0' * 64}" in err, err


def test_a_model_missing_from_the_cache_is_named_with_the_fetch_hint(capsys, tmp_path: Path) -> None:
    files = make_workdir(tmp_path)
    rc, _, err = _check(capsys, write_config(tmp_path, files, workload={"scenario": "mediapipe_xr",
                                                                       "platform": "headset_emulated",
                                                                       "catalog": ""}))
    assert rc == 2 and err.count("\n") == 1
    assert f"file {tmp_path}/cache/mediapipe/" in err and "not found (run `edge-sdrm3 models fetch`)" in err, err
