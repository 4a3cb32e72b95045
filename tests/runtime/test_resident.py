"""The service process as deployed keeps what it needs resident: its segment files' pages are given back once
XNNPACK has packed their weights (results stay right), and the GPU/NPU runtime is not loaded on a platform of a
cpu and an emulated accelerator."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_harness import Running, write_config

from edge_sdrm3.data import data_path
from hal import open_device

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/PID/smaps")
X = np.random.default_rng(3).random((1, 8, 8, 1), dtype=np.float32)


def _mappings(pid: int) -> dict[str, int]:
    """Resident kB per mapped file of process ``pid``."""
    out: dict[str, int] = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and head[0].replace("-", "").isalnum() and ":" in head[3]:
                name = head[5] if len(head) > 5 else None
                if name:
                    out.setdefault(name, 0)
            elif name and line.startswith("Rss:"):
                out[name] += int(head[1])
    return out


def test_the_service_keeps_no_segment_file_resident_and_no_gpu_npu_runtime(tmp_path: Path, files: dict) -> None:
    run = Running(write_config(tmp_path, files), process=True)
    try:
        maps = _mappings(run.proc.pid)
        segments = {k: v for k, v in maps.items() if "/cache/segments/digits/" in k and k.endswith(".tflite")}
        assert len(segments) == 4, sorted(maps)  # the default variant's 4 segment files, each mapped once
        assert set(segments.values()) == {0}, segments
        assert not [k for k in maps if "compiled_model" in k or "ml_dtypes" in k]
        run.send("cam0", 0, [X], models=["digits"])  # and the released pages still give the model's answer
        res = [r for r in run.results(until=lambda rs: any(h.get("model") == "digits" for h, _ in rs))
               if r[0].get("model") == "digits"]
        assert res and res[0][0]["status"] in ("done", "late"), res
        dev = open_device("cpu:1")
        try:
            want = dev.load(data_path("models", "digits", f"digits_{res[0][0]['variant']}.tflite")).invoke([X])
        finally:
            dev.close()
        np.testing.assert_allclose(res[0][1][0], want[0], rtol=1e-5)
    finally:
        assert run.stop() == 0
