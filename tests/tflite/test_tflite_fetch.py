"""Fetching from a wheel: files are extracted and checked; a wrong checksum is refused and the file removed.
Uses a locally built fake wheel, never the network."""
from __future__ import annotations

import hashlib
import zipfile

import pytest

from edge_sdrm3.tflite.fetch import FetchError, extract_from_wheel, fetch_mediapipe, missing
from edge_sdrm3.tflite.manifest import parse_manifest


def manifest_for(files: dict[str, bytes]):
    variants = [{"name": f"v{i}", "file": f"mediapipe/{name.rsplit('/', 1)[1]}", "wheel_path": name,
                 "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "accuracy": "none",
                 "accuracy_source": "test"} for i, (name, data) in enumerate(files.items())]
    doc = {"format": "edge-sdrm3-models", "version": 1, "models": {"fake": {
        "task": "t", "location": "cache", "source": "mediapipe==0.10.14",
        "inputs": [{"name": "x", "shape": [1], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": [1], "dtype": "float32"}], "variants": variants}}}
    return parse_manifest(doc, "fake.toml")


def fake_wheel(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("mediapipe/__init__.py", "")
        z.writestr("mediapipe/modules/other/unwanted.tflite", b"not listed")
    return path


FILES = {"mediapipe/modules/a/a_lite.tflite": b"TFL3 model a" * 10,
         "mediapipe/modules/b/b_full.tflite": b"TFL3 model b" * 20}


def test_extracts_only_listed_files_and_checks_them(tmp_path):
    man = manifest_for(FILES)
    wheel = fake_wheel(tmp_path / "mediapipe-0.10.14-fake.whl", FILES)
    cache = tmp_path / "cache"
    got = extract_from_wheel(wheel, cache, man)
    assert sorted(f.status for f in got) == ["extracted", "extracted"]
    assert sorted(p.name for p in (cache / "mediapipe").iterdir()) == ["a_lite.tflite", "b_full.tflite"]
    assert missing(man, cache) == []
    # second time: already there, nothing re-extracted; fetch_mediapipe does not download
    assert [f.status for f in fetch_mediapipe(cache, man)] == ["cached", "cached"]


def test_wrong_checksum_is_refused_and_removed(tmp_path):
    man = manifest_for(FILES)
    tampered = dict(FILES)
    tampered["mediapipe/modules/b/b_full.tflite"] = b"TFL3 evil b" * 20
    wheel = fake_wheel(tmp_path / "w.whl", tampered)
    cache = tmp_path / "cache"
    (cache / "mediapipe").mkdir(parents=True)
    (cache / "mediapipe" / "b_full.tflite").write_bytes(b"stale")
    with pytest.raises(FetchError, match=r"b_full.tflite: checksum mismatch .* refused and removed"):
        extract_from_wheel(wheel, cache, man)
    assert not (cache / "mediapipe" / "b_full.tflite").exists()
    assert not list((cache / "mediapipe").glob("*.part"))
    assert (cache / "mediapipe" / "a_lite.tflite").exists()  # the good file stays
    assert missing(man, cache) == ["mediapipe/b_full.tflite"]


def test_file_missing_from_wheel_and_bad_wheel(tmp_path):
    man = manifest_for(FILES)
    wheel = fake_wheel(tmp_path / "w.whl", {k: v for k, v in FILES.items() if "a_lite" in k})
    with pytest.raises(FetchError, match="b_full.tflite: not in w.whl"):
        extract_from_wheel(wheel, tmp_path / "c", man)
    (tmp_path / "junk.whl").write_bytes(b"no zip")
    with pytest.raises(FetchError, match="not a readable wheel"):
        extract_from_wheel(tmp_path / "junk.whl", tmp_path / "c", man)


def test_default_cache_dir_from_environment(monkeypatch, tmp_path):
    from edge_sdrm3.tflite.manifest import default_cache_dir

    monkeypatch.setenv("EDGE_SDRM3_MODEL_CACHE", str(tmp_path / "mc"))
    assert default_cache_dir() == tmp_path / "mc"
    monkeypatch.delenv("EDGE_SDRM3_MODEL_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "edge-sdrm3", "models")
