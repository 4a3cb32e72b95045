"""Fewer hand-offs, shown with a real service: a job's blocks that the plan keeps on one accelerator run in one go
in its worker (one hand-off each way instead of one per block), with the same outputs as a direct invoke of the
whole model and a log record of what ran; once another job waits, the run ends at its next block boundary and the
policy decides the rest block by block."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from runtime_harness import Running, digits_images, make_workdir, read_log, write_config

from edge_sdrm3.data import data_path


def _invoke_whole(variant: str, x: np.ndarray) -> np.ndarray:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    it = Interpreter(model_path=str(data_path("models", "digits", f"digits_{variant}.tflite")), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _segments(log: list[dict]) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = {}
    for r in log:
        if r.get("type") == "segment":
            out.setdefault((r["model"], r["frame"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["segment"]) for k, v in out.items()}


def test_a_lone_job_runs_its_blocks_in_one_go_with_the_outputs_of_a_direct_invoke(tmp_path: Path) -> None:
    files = make_workdir(tmp_path, trigger=0.0)  # no cascades: one job per frame
    # the table's costs (not learned ones, which follow the host's load) keep every block on one accelerator; every
    # variant loaded before the first frame (a variant loaded on its first use took longer than the 16.7-ms deadline
    # on a busy host: its job missed, whatever the blocks do)
    svc = Running(write_config(tmp_path, files, scheduler={"learn_costs": False}, workload={"preload": True}),
                  process=True)
    xs = digits_images(12, seed=3)
    results = []
    for f, x in enumerate(xs):
        svc.send("cam0", f, [x], models=["digits"])
        results += svc.results(1, timeout=5.0)
        time.sleep(0.03)  # one job at a time: nothing else waits
    assert svc.stop() == 0
    done = [(h, outs) for h, outs in results if h.get("status") == "done"]
    assert len(done) == len(xs), [(h.get("frame"), h.get("status"), h.get("reason")) for h, _ in results]
    for h, outs in done:
        want = _invoke_whole(h["variant"], xs[h["frame"]])
        assert len(outs) == 1 and outs[0].shape == want.shape
        np.testing.assert_allclose(outs[0], want, rtol=1e-5, atol=1e-6)
    segs = _segments(read_log(tmp_path / "state" / "jobs.jsonl"))
    # each job's 4 blocks ran in one go: one record of 4 segments, inside the job's span
    for h, _ in done:
        ss = segs[("digits", h["slot"])]
        assert [(r["segment"], r["segments"]) for r in ss] == [(0, 4)]
        assert h["start_ms"] - 1e-6 <= ss[0]["start_ms"] and ss[0]["end_ms"] <= h["end_ms"] + 1e-6


def _one_slow_accelerator(tmp: Path, block_ms: float) -> dict:
    """The test platform with a single emulated accelerator on which each of digits' 4 blocks takes ``block_ms``."""
    files = make_workdir(tmp, trigger=0.0, fps=4, deadline_ms=400.0)
    doc = json.loads(Path(files["platform"]).read_text())
    cpu = doc["accelerators"][0]
    models = {k: {**m, "variants": [{**v, "latency_ms": [block_ms] * 4, "latency_p90_ms": [block_ms] * 4}
                                    for v in m["variants"]]} for k, m in cpu["costs"]["models"].items()}
    doc["accelerators"] = [{"id": "npu0", "kind": "emulated", "idle_power_mw": 0.0,
                            "costs": {**cpu["costs"], "models": models}}]
    Path(files["platform"]).write_text(json.dumps(doc))
    return files


def test_blocks_in_one_go_end_at_a_boundary_once_another_job_waits(tmp_path: Path) -> None:
    # 4 blocks of 10 ms on the one accelerator: a lone job runs them in one go (chain_ms 50); a second frame sent
    # 5 ms later waits for that accelerator, so the run ends at its next boundary and each block from then on is
    # the policy's own decision; a third frame, alone again, runs in one go
    files = _one_slow_accelerator(tmp_path, 10.0)
    svc = Running(write_config(tmp_path, files, scheduler={"policy": "edf", "chain_ms": 50.0}), process=True)
    x = digits_images(3, seed=1)
    svc.send("a", 0, [x[0]], models=["digits"])
    time.sleep(0.005)
    svc.send("b", 0, [x[1]], models=["digits"])
    first = svc.results(2, timeout=5.0)
    time.sleep(0.05)
    svc.send("c", 0, [x[2]], models=["digits"])
    last = svc.results(1, timeout=5.0)
    assert svc.stop() == 0
    by_stream = {h["stream"]: (h, outs) for h, outs in first + last}
    assert {s: h["status"] for s, (h, _) in by_stream.items()} == {"a": "done", "b": "done", "c": "done"}
    for s, (h, outs) in by_stream.items():  # a cut run still computes every block, in order
        np.testing.assert_allclose(outs[0], _invoke_whole(h["variant"], x["abc".index(s)]), rtol=1e-5, atol=1e-6)
    segs = _segments(read_log(tmp_path / "state" / "jobs.jsonl"))
    a, b, c = (segs[("digits", by_stream[s][0]["slot"])] for s in "abc")
    assert a[0]["segments"] < 4  # cut at a boundary: b was waiting
    assert sum(r["segments"] for r in a) == 4 and sum(r["segments"] for r in b) == 4
    while_b_waits = [r for r in a[1:] if r["start_ms"] < b[0]["start_ms"]]
    assert all(r["segments"] == 1 for r in while_b_waits)  # decided block by block while b waits
    assert [(r["segment"], r["segments"]) for r in c] == [(0, 4)]
