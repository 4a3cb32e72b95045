"""A live service under overload, on ipc://: what it cannot serve on time is refused at once (reason
``admission``, nothing of it run), frames found waiting behind a backlog are shed the same way before their
inputs are made, every frame is still answered, and ``status`` answers and counts it all."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from runtime_harness import Running, digits_images, make_workdir, read_log, write_config


def test_an_overloaded_service_refuses_with_reason_admission_before_anything_runs(tmp_path: Path) -> None:
    files = make_workdir(tmp_path, deadline_ms=3.0, trigger=0.5)
    run = Running(write_config(tmp_path, files), process=True)
    try:
        x = digits_images(1)[0]
        n = 600  # at once: far more than 3-ms deadlines allow, and a backlog on the socket
        for f in range(n):
            run.send("burst", f, [x], models=["digits"])
        fired = sum(random.Random(f"0:burst:{f}:digits_cascade").random() < 0.5 for f in range(n))
        got = [h for h, _ in run.results(n=n + fired, timeout=5.0) if h["topic"] != "errors"]
        status = run.control("status")
    finally:
        assert run.stop() == 0
    assert status["ok"]
    adm = status["admission"]
    by = Counter((h["model"], h["status"], h["reason"]) for h in got)
    assert sum(v for (m, _, _), v in by.items() if m == "digits") == n  # every frame answered
    refused = [h for h in got if h["reason"] == "admission"]
    assert refused and adm["on"] and adm["refused"] == len(refused) and adm["frames_shed"] > 0, (adm, by)
    assert all(h["status"] == "dropped" and h["start_ms"] == -1 and h["energy_mj"] == 0 for h in refused)
    # in the log: nothing of a refused job ran (no segment record of it)
    log = read_log(run.cfg.state_dir / "jobs.jsonl")
    jobs = [r for r in log if r.get("type") == "job"]
    ran = {(r["model"], r["frame"]) for r in log if r.get("type") == "segment"}
    refused_jobs = [(r["model"], r["frame"]) for r in jobs if r["reason"] == "admission"]
    assert len(refused_jobs) == len(refused) and not ran & set(refused_jobs)
    # status accounts for every admitted job's fate as the log has it: on time, or missed for a reason of its own
    # (how many of them make a 3-ms deadline depends on the host's load: tools/flood.py measures it)
    assert adm["admitted_on_time"] == sum(r["status"] == "done" for r in jobs), adm
    assert adm["admitted_missed"] == sum(r["status"] != "done" and r["reason"] != "admission"
                                         and not r["reason"].startswith("upstream") for r in jobs), adm
