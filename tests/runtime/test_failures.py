"""Failing accelerators and an unwritable job log, shown with a real service (issue 6, items 3 and 4).

The emulated ``npu0`` of the test platform is told to fail (platform file key ``fault``, hal/emulated.py): a share
of its invokes raise, it vanishes for a while, or it hangs. The service must keep answering every frame from the
``cpu`` accelerator, record every job that did not complete with its reason, mark ``npu0`` unhealthy, probe it
with backoff and take it back when it works.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from runtime_harness import Running, digits_images, make_workdir, read_log, write_config

from edge_sdrm3.catalog import FileFormatError, load_platform
from hal.emulated import FaultSpec

FAST_PROBES = {"probe_initial_s": 0.05, "probe_max_s": 0.2}


def _faulty(tmp: Path, fault: dict) -> dict:
    files = make_workdir(tmp, trigger=0.0)  # no cascades: one job per frame
    doc = json.loads(Path(files["platform"]).read_text())
    doc["accelerators"][1]["fault"] = fault
    Path(files["platform"]).write_text(json.dumps(doc))
    return files


def _acc(st: dict, acc_id: str) -> dict:
    return next(a for a in st["accelerators"] if a["id"] == acc_id)


def _drain(run: Running) -> list[dict]:
    from edge_sdrm3.client import protocol

    out = []
    while run.sub.poll(0):
        out.append(protocol.decode_result(run.sub.recv_multipart())[0])
    return out


def _send_paced(run: Running, frames: range, gap_s: float = 0.004) -> list[dict]:
    x = digits_images(1)[0]
    got = []
    for f in frames:
        run.send("s", f, [x], models=["digits"])
        time.sleep(gap_s)
        got += _drain(run)
    return got


def _all_answered(run: Running, got: list[dict], frames: range) -> list[dict]:
    want = set(frames)
    got += [h for h, _ in run.results(until=lambda out: {h["frame"] for h in got + [o for o, _ in out]
                                                         if h.get("model") == "digits"} >= want, timeout=10)]
    res = [h for h in got if h.get("model") == "digits"]
    assert {h["frame"] for h in res} == want, "every frame is answered"
    assert len(res) == len(want), "once"
    for h in res:
        assert h["status"] in ("done", "late") or h["reason"], h  # anything else names its reason
    return res


def test_a_fault_spec_is_checked_where_the_platform_file_is_read(tmp_path: Path) -> None:
    files = _faulty(tmp_path, {"fail_rate": 1.5})
    with pytest.raises(FileFormatError, match=r"accelerators\[1\]: fault: field 'fail_rate'"):
        load_platform(files["platform"])
    files = _faulty(tmp_path, {"fail_rate": 0.1, "oops": 1})
    with pytest.raises(FileFormatError, match="unknown field 'oops'"):
        load_platform(files["platform"])
    doc = json.loads(Path(files["platform"]).read_text())
    doc["accelerators"][0]["fault"] = {"fail_rate": 0.1}  # the cpu: not emulated
    doc["accelerators"][1].pop("fault")
    Path(files["platform"]).write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match="emulated accelerators only"):
        load_platform(files["platform"])
    assert FaultSpec.from_dict({"hang_rate": 0.5, "hang_s": 0.1, "seed": 3}).hang_rate == 0.5


def test_fail_rate_results_keep_coming_every_frame_answered_and_the_accelerator_taken_back(tmp_path: Path) -> None:
    files = _faulty(tmp_path, {"fail_rate": 0.3, "seed": 1})
    run = Running(write_config(tmp_path, files, service=FAST_PROBES))
    try:
        frames = range(300)
        res = _all_answered(run, _send_paced(run, frames), frames)
        st = run.control("status")
        stats = run.control("stats")
    finally:
        assert run.stop() == 0
    npu = _acc(st, "npu0")
    assert npu["failures"] > 0 and npu["probes"] > 0 and "injected fault" in npu["last_error"]
    by_acc = Counter(h["accelerator"] for h in res if h["status"] in ("done", "late"))
    assert by_acc["cpu"] > 0, by_acc  # the other accelerator took the work meanwhile
    assert npu["runs"] > 0, npu  # npu0 ran jobs: before its first failure (job 0 with seed 1) none, so after a probe
    failed = [h for h in res if h["status"] == "failed"]
    retried = stats["dispatcher"]["retries"]
    # a job whose accelerator failed is retried elsewhere (while its deadline allows) or recorded as failed
    assert retried + len(failed) == npu["failures"]  # each failed invoke: one job retried or recorded failed
    assert all(h["reason"].startswith("accelerator-failed (InvokeError)") for h in failed)
    assert retried > 0
    # the log holds one job record per frame, with the same outcomes
    jobs = [r for r in read_log(run.cfg.state_dir / "jobs.jsonl") if r.get("type") == "job"]
    assert Counter((j["frame"], j["status"]) for j in jobs) == Counter((h["slot"], h["status"]) for h in res)


def test_a_vanished_accelerator_is_unhealthy_work_continues_and_it_is_reprobed_back(tmp_path: Path) -> None:
    files = _faulty(tmp_path, {"vanish_after_s": 0.2, "vanish_for_s": 0.8})
    run = Running(write_config(tmp_path, files, service=FAST_PROBES))
    try:
        x = digits_images(1)[0]
        got, seen_down, seen_back = [], None, None
        t0 = time.monotonic()
        f = 0
        while time.monotonic() - t0 < 3.0 and seen_back is None:
            run.send("s", f, [x], models=["digits"])
            f += 1
            time.sleep(0.005)
            got += _drain(run)
            if f % 10 == 0:
                st = run.control("status")
                npu = _acc(st, "npu0")
                if not npu["healthy"] and seen_down is None:
                    seen_down = (st["uptime_s"], npu)
                if npu["healthy"] and seen_down is not None:
                    seen_back = (st["uptime_s"], npu)
        res = _all_answered(run, got, range(f))
    finally:
        assert run.stop() == 0
    assert seen_down is not None, "npu0 shown unhealthy in status"
    assert "vanished" in seen_down[1]["last_error"]
    assert seen_back is not None and seen_back[1]["probes"] >= 2, "re-probed (with backoff) and taken back"
    down_from, back_at = seen_down[0], seen_back[0]
    during = [h for h in res if h["status"] in ("done", "late")
              and down_from * 1000 + 50 < h["start_ms"] < (back_at - 0.3) * 1000]
    assert during and all(h["accelerator"] == "cpu" for h in during)  # work continued elsewhere


def test_a_hung_invoke_is_abandoned_after_the_timeout_and_recorded(tmp_path: Path) -> None:
    files = _faulty(tmp_path, {"hang_rate": 1.0, "hang_s": 0.6})
    run = Running(write_config(tmp_path, files, service={**FAST_PROBES, "hang_min_ms": 100.0}))
    try:
        frames = range(60)
        t0 = time.monotonic()
        got = _send_paced(run, frames, gap_s=0.01)
        st = run.control("status")
        res = _all_answered(run, got, frames)
        hung = [h for h in res if h["reason"] == "accelerator-hung"]
        assert len(hung) == 1 and hung[0]["status"] == "failed" and hung[0]["accelerator"] == "npu0"
        assert 100 <= hung[0]["end_ms"] - hung[0]["start_ms"] < 400  # abandoned after hang_min_ms, not 600 ms
        npu = _acc(st, "npu0")
        if time.monotonic() - t0 < 0.6:
            assert npu["hung"] and not npu["healthy"]
        assert all(h["accelerator"] == "cpu" for h in res if h["status"] in ("done", "late"))
        # the stuck invoke returns after 0.6 s; the probe then hangs too (hang_rate 1): still unhealthy
        time.sleep(0.9)
        npu = _acc(run.control("status"), "npu0")
        assert not npu["hung"] and not npu["healthy"] and npu["probes"] >= 1
    finally:
        assert run.stop() == 0  # the hang ends when the device closes
    jobs = [r for r in read_log(run.cfg.state_dir / "jobs.jsonl") if r.get("type") == "job"]
    assert [j["reason"] for j in jobs if j["status"] == "failed"] == ["accelerator-hung"]


# ---- item 4: a job log that cannot be written ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["under-a-file", "dev-full"])
def test_an_unwritable_log_is_counted_and_reported_while_the_service_keeps_answering(tmp_path: Path,
                                                                                     where: str) -> None:
    files = make_workdir(tmp_path, trigger=0.0)
    if where == "under-a-file":
        (tmp_path / "not-a-dir").write_text("x")
        path = str(tmp_path / "not-a-dir" / "jobs.jsonl")  # ENOTDIR, even for root
    else:
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full here")
        path = "/dev/full"  # every write: ENOSPC
    run = Running(write_config(tmp_path, files, log={"path": path}))
    try:
        frames = range(50)
        _all_answered(run, _send_paced(run, frames), frames)
        time.sleep(0.2)
        st = run.control("status")
    finally:
        assert run.stop() == 0
    lg = st["log"]
    assert lg["path"] == path and lg["written"] == 0 and lg["lost"] >= 50 and lg["error"], lg


def test_a_log_removed_while_open_is_noticed_and_made_again(tmp_path: Path) -> None:
    files = make_workdir(tmp_path, trigger=0.0)
    run = Running(write_config(tmp_path, files))
    run.svc.recorder.retry_s = 0.1
    try:
        _all_answered(run, _send_paced(run, range(20)), range(20))
        time.sleep(0.15)
        shutil.rmtree(run.cfg.state_dir)
        frames = range(20, 120)
        _all_answered(run, _send_paced(run, frames, gap_s=0.005), frames)
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end:  # noticed within retry_s, made again at the next record (a summary)
            st = run.control("status")
            if st["log"]["lost"] and not st["log"]["error"]:
                break
            time.sleep(0.05)
        _all_answered(run, _send_paced(run, range(200, 210)), range(200, 210))
    finally:
        assert run.stop() == 0
    assert st["log"]["lost"] > 0 and st["log"]["error"] == ""  # counted, and written again
    log = read_log(run.cfg.state_dir / "jobs.jsonl")  # a new trace: header first
    assert "scenario" in log[0] and any(r.get("type") == "job" for r in log)
