"""tools/board_wheels.py: each board gets the requirements pip would evaluate there (no network needed for that)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "board_wheels.py"
spec = importlib.util.spec_from_file_location("board_wheels", TOOL)
bw = importlib.util.module_from_spec(spec)
sys.modules["board_wheels"] = bw  # (its dataclasses look their module up there)
spec.loader.exec_module(bw)


def _reqs(name: str) -> dict[str, str]:
    board = next(b for b in bw.BOARDS if b.name == name)
    return {r.name: str(r.specifier) for r in bw.requirements(board)}


def test_a_64bit_board_gets_ai_edge_litert_and_no_tflite_runtime() -> None:
    for name in ("pi-os-bookworm-arm64", "pi-os-trixie-arm64", "jetpack-6", "ubuntu-24.04-arm64"):
        reqs = _reqs(name)
        assert "ai-edge-litert" in reqs and "tflite-runtime" not in reqs, (name, reqs)
    assert "tomli" in _reqs("jetpack-6") and "tomli" not in _reqs("pi-os-bookworm-arm64")  # tomllib from 3.11


def test_a_32bit_board_gets_tflite_runtime_2_14_and_numpy_1() -> None:
    reqs = _reqs("pi-os-bookworm-armhf")
    assert "ai-edge-litert" not in reqs
    assert reqs["tflite-runtime"] == "==2.14.0"
    assert set(reqs["numpy"].split(",")) == {">=1.23", "<2"}  # the base requirement and the extra's, merged


def test_the_platform_tags_are_those_a_pip_on_the_board_accepts() -> None:
    board = next(b for b in bw.BOARDS if b.name == "pi-os-bookworm-armhf")
    tags = bw.platforms(board)
    assert tags[0] == "manylinux_2_36_armv7l" and "manylinux_2_34_armv7l" in tags
    assert "manylinux_2_37_armv7l" not in tags
    assert tags[-2:] == ["manylinux2014_armv7l", "linux_armv7l"]
