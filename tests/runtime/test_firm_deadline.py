"""Firm deadlines in the live service (DESIGN.md §6): a started job that passes its deadline is dropped at its
next block boundary; the rest of its blocks are not run, and its job record says ``deadline``.

The emulated ``npu0`` (4x faster than the ``cpu``, so FCFS puts the first block there) is told to hang each
invoke for 0.3 s (platform key ``fault``, hal/emulated.py) — long past the frame's 50-ms deadline, well under
the hang timeout — so the job's first block ends late, and the service must not run its three other blocks.
"""
from __future__ import annotations

import json
from pathlib import Path

from runtime_harness import Running, digits_images, make_workdir, read_log, write_config


def test_a_started_job_past_its_deadline_runs_no_further_block(tmp_path: Path) -> None:
    files = make_workdir(tmp_path, deadline_ms=50.0, trigger=0.0)
    doc = json.loads(Path(files["platform"]).read_text())
    doc["accelerators"][1]["fault"] = {"hang_rate": 1.0, "hang_s": 0.3}
    Path(files["platform"]).write_text(json.dumps(doc))
    run = Running(write_config(tmp_path, files, scheduler={"policy": "fcfs", "supernet": False},
                               service={"hang_min_ms": 5000.0}))
    try:
        run.send("s", 0, [digits_images(1)[0]], models=["digits"])
        res = [h for h, _ in run.results(n=1, timeout=5)]
    finally:
        assert run.stop() == 0
    assert [(h["status"], h["reason"]) for h in res] == [("dropped", "deadline")]
    log = read_log(run.cfg.state_dir / "jobs.jsonl")
    jobs = [r for r in log if r.get("type") == "job"]
    segs = [r for r in log if r.get("type") == "segment"]
    assert [(j["status"], j["reason"]) for j in jobs] == [("dropped", "deadline")]
    # one block ran (on npu0, ending past the deadline; its energy counts); the other three did not
    assert [(s["segment"], s["accelerator"]) for s in segs] == [(0, "npu0")]
    assert segs[0]["end_ms"] >= jobs[0]["deadline_ms"]
    assert jobs[0]["energy_mj"] == segs[0]["energy_mj"] > 0
