"""The service's log carries a segment record per block run, like a replay's --record: report draws from it."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from runtime_harness import Running, digits_images, read_log


def test_segment_records_add_up_to_their_jobs(service: Running, tmp_path: Path) -> None:
    for f, x in enumerate(digits_images(20)):
        service.send("cam0", f, [x], models=["digits"])
        service.results(timeout=0.02)
    service.results(until=lambda out: False, timeout=0.5)
    service.stop()
    log = read_log(tmp_path / "state" / "jobs.jsonl")
    jobs = {(r["model"], r["frame"]): r for r in log if r.get("type") == "job"}
    segs = defaultdict(list)
    for r in log:
        if r.get("type") == "segment":
            segs[(r["model"], r["frame"])].append(r)
    done = [k for k, j in jobs.items() if j["status"] in ("done", "late")]
    assert done
    for k in done:
        ss = sorted(segs[k], key=lambda r: r["segment"])
        # every block of the job ran once, in order, inside the job's span, and the energies add up
        assert sum(r["segments"] for r in ss) == 4
        assert [r["segment"] for r in ss] == sorted({r["segment"] for r in ss})
        assert ss[0]["start_ms"] >= jobs[k]["start_ms"] - 1e-6 and ss[-1]["end_ms"] <= jobs[k]["end_ms"] + 1e-6
        assert sum(r["energy_mj"] for r in ss) == pytest.approx(jobs[k]["energy_mj"], rel=1e-6)
