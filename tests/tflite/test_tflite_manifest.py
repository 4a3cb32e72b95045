"""The model catalog: the shipped manifest loads and matches the shipped files; bad manifests name the key."""
from __future__ import annotations

import copy
import hashlib

import pytest

from edge_sdrm3.tflite.manifest import MANIFEST, MODELS_DIR, ManifestError, load_manifest, parse_manifest
from edge_sdrm3.tomlfile import tomllib


def test_shipped_manifest_loads_with_cascades():
    man = load_manifest()
    assert {"digits", "palm_detection", "hand_landmark", "face_detection", "face_landmark", "iris_landmark",
            "selfie_segmentation", "pose_detection", "pose_landmark"} <= set(man.models)
    assert man.cascade("palm_detection") == ["palm_detection", "hand_landmark"]
    assert man.cascade("face_detection") == ["face_detection", "face_landmark", "iris_landmark"]
    assert [v.name for v in man["palm_detection"].variants] == ["full", "lite"]


def test_digits_files_match_the_manifest():
    digits = load_manifest()["digits"]
    assert [v.width for v in digits.variants] == [1.0, 0.75, 0.5, 0.25]
    for v in digits.variants:
        data = (MODELS_DIR / v.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == v.sha256 and len(data) == v.size
        assert v.accuracy is not None and 0.8 < v.accuracy <= 1.0 and v.accuracy_source.startswith("measured")
    accs = [v.accuracy for v in digits.variants]
    assert accs == sorted(accs, reverse=True)
    assert digits.relative_accuracy(digits.variants[0]) == 1.0


def _doc():
    with open(MANIFEST, "rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("edit,key", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["models"]["digits"]["variants"][1].update(sha256="xyz"), "models.digits.variants[1].sha256"),
    (lambda d: d["models"]["digits"]["variants"][0].update(accuracy=1.5), "models.digits.variants[0].accuracy"),
    (lambda d: d["models"]["digits"]["variants"][0].pop("accuracy_source"),
     "models.digits.variants[0].accuracy_source"),
    (lambda d: d["models"]["digits"]["variants"][2].update(size="big"), "models.digits.variants[2].size"),
    (lambda d: d["models"]["digits"].pop("task"), "models.digits.task"),
    (lambda d: d["models"]["digits"].update(location="cloud"), "models.digits.location"),
    (lambda d: d["models"]["digits"]["inputs"][0].update(dtype="float99"), "models.digits.inputs[0].dtype"),
    (lambda d: d["models"]["digits"]["inputs"][0].update(shape=[1, 0]), "models.digits.inputs[0].shape"),
    (lambda d: d["models"]["digits"].update(variants=[]), "models.digits.variants"),
    (lambda d: d["models"]["hand_landmark"].update(upstream="nope"), "models.hand_landmark.upstream"),
    (lambda d: d["models"]["palm_detection"].update(upstream="hand_landmark"), "upstream"),
    (lambda d: d["models"]["pose_landmark"].pop("source"), "models.pose_landmark.source"),
    (lambda d: d["models"]["digits"].update(segments=0), "models.digits.segments"),
    (lambda d: d["models"]["face_detection"]["inputs"][0].update(range=[1.0, -1.0]),
     "models.face_detection.inputs[0].range"),
    (lambda d: d["models"]["face_detection"]["inputs"][0].pop("range"), "models.face_detection.inputs[0].range"),
    (lambda d: d["models"]["face_detection"]["inputs"][0].update(channels="gray"),
     "models.face_detection.inputs[0].channels"),
    (lambda d: d["models"]["face_detection"]["inputs"][0].update(channels="BGRA"),
     "models.face_detection.inputs[0].channels"),
    (lambda d: d["models"]["face_detection"]["inputs"][0].update(layout="NCHW"),
     "models.face_detection.inputs[0].layout"),
    (lambda d: d["models"]["face_detection"]["inputs"][0].pop("layout"), "models.face_detection.inputs[0]"),
])
def test_validation_errors_name_the_key(edit, key):
    doc = copy.deepcopy(_doc())
    edit(doc)
    with pytest.raises(ManifestError) as e:
        parse_manifest(doc, "m.toml")
    assert f"m.toml: {key}" in str(e.value) or (key == "upstream" and "loops back" in str(e.value))


def test_every_shipped_image_input_declares_its_layout_channels_and_range():
    m = load_manifest()
    ranges = {name: m[name].inputs[0].range for name in m.models}
    assert ranges["face_detection"] == ranges["pose_detection"] == (-1.0, 1.0)
    assert all(r == (0.0, 1.0) for name, r in ranges.items() if name not in ("face_detection", "pose_detection"))
    assert all(m[name].inputs[0].image for name in m.models)


def test_accuracy_none_means_unknown():
    man = load_manifest()
    palm = man["palm_detection"]
    assert palm.variants[0].accuracy is None and "none" in palm.variants[0].accuracy_source
    assert palm.relative_accuracy(palm.variants[1]) is None


def test_unreadable_manifest(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("format = [")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(tmp_path / "bad.toml")
