"""Tiny blocks run by the event loop itself (``[service] inline_ms``): a lone job's blocks that took little when they
last ran skip the hand-off to their accelerator's thread and back. Shown with two real services fed the same
frames, one with the fast path and one without (``inline_ms = 0``): the same results, outputs and job log, records
in the same order; only the times differ. ``status`` says how many blocks the loop ran itself."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from runtime_harness import Running, digits_images, make_workdir, read_log, write_config

TIMES = {"release_ms", "ready_ms", "start_ms", "end_ms", "deadline_ms"}


def _service(tmp: Path, inline_ms: float) -> Running:
    tmp.mkdir()
    # cascades fire on half the frames; a long period keeps every job on time however slow the host; the table's
    # costs (not learned ones, which follow the host's load) and edf keep each decision independent of timing
    files = make_workdir(tmp, trigger=0.5, fps=4)
    return Running(write_config(tmp, files, service={"inline_ms": inline_ms},
                                scheduler={"learn_costs": False, "policy": "edf"}), process=True)


def _log(tmp: Path) -> list[dict]:
    """The job log's frame, segment and job records in order, without their times."""
    return [{k: v for k, v in r.items() if k not in TIMES} for r in read_log(tmp / "state" / "jobs.jsonl")
            if r.get("type") in ("frame", "segment", "job")]


def test_blocks_run_by_the_loop_give_the_results_and_log_of_blocks_handed_off(tmp_path: Path) -> None:
    fast, plain = _service(tmp_path / "fast", 50.0), _service(tmp_path / "plain", 0.0)
    xs = digits_images(12, seed=5)
    got: dict[str, list] = {"fast": [], "plain": []}
    for f, x in enumerate(xs):  # one frame at a time: each job alone in its service
        for name, svc in (("fast", fast), ("plain", plain)):
            svc.send("cam0", f, [x], models=["digits"])
        for name, svc in (("fast", fast), ("plain", plain)):
            got[name] += svc.results(timeout=0.25)
    accs = {name: svc.control("status")["accelerators"] for name, svc in (("fast", fast), ("plain", plain))}
    assert fast.stop() == 0 and plain.stop() == 0

    jobs = len(got["plain"])
    assert jobs > len(xs)  # some cascades fired
    assert sum(a["inline"] for a in accs["plain"]) == 0
    # every block but each model's first (its time not known yet) ran on the loop
    assert sum(a["inline"] for a in accs["fast"]) >= jobs // 2
    assert sum(a["runs"] for a in accs["fast"]) == sum(a["runs"] for a in accs["plain"]) == jobs

    def key(h: dict) -> tuple:
        return h["model"], h["frame"]

    fast_results = sorted(got["fast"], key=lambda r: key(r[0]))
    plain_results = sorted(got["plain"], key=lambda r: key(r[0]))
    assert [key(h) for h, _ in fast_results] == [key(h) for h, _ in plain_results]
    for (a, outs_a), (b, outs_b) in zip(fast_results, plain_results):
        assert a["status"] == b["status"] == "done"
        assert {k: v for k, v in a.items() if k not in TIMES} == {k: v for k, v in b.items() if k not in TIMES}
        assert len(outs_a) == len(outs_b) == 1
        np.testing.assert_allclose(outs_a[0], outs_b[0], rtol=1e-6, atol=0)
    fast_log, plain_log = _log(tmp_path / "fast"), _log(tmp_path / "plain")
    assert len(plain_log) >= 3 * jobs
    assert fast_log == plain_log
