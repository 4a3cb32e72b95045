"""tools/flood_log.py on a job log written here: the capacity hold and the flood found by the frame rate, each job
counted in the window of its release, busy time split into useful and wasted, a bad log refused (exit 2)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "flood_log.py"


def _log(path: Path) -> None:
    """20 s at 1 frame/s, then 10 s at 5 frames/s; at 1x every job is done after a 4-ms block; under the flood a
    frame's first job is done (4 ms), the second dropped hopeless after a 6-ms block, the third refused."""
    recs = [{"format": "edge-sdrm3-trace", "version": 1}]
    times = [s * 1000.0 for s in range(20)] + [20000.0 + k * 200.0 for k in range(50)]
    for f, t in enumerate(times):
        recs.append({"type": "frame", "model": "a", "frame": f, "release_ms": t, "stream": "roots"})
        flood = t >= 20000.0
        fates = [("a", "done", "", 4.0)] + ([("b", "dropped", "hopeless", 6.0), ("c", "dropped", "admission", 0.0)]
                                            if flood else [])
        for model, status, reason, busy in fates:
            recs.append({"type": "job", "model": model, "frame": f, "release_ms": t, "status": status,
                         "reason": reason, "stream": "roots"})
            if busy:
                recs.append({"type": "segment", "model": model, "frame": f, "start_ms": t, "end_ms": t + busy})
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")


def test_the_windows_fates_and_busy_time_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    _log(log)
    res = subprocess.run([sys.executable, str(TOOL), str(log), "--models"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    cap, flood = out.split("flood:")
    assert "capacity: 10 s (service clock 9-19 s): on time 1.0 jobs/s" in cap
    assert "wasted 0 ms/s (0%)" in cap
    # the flood from 22 s (2 s settle) to 29 s: 35 frames, 7 s
    assert " 7 s (service clock 22-29 s): on time 5.0 jobs/s" in flood
    assert "{'ontime': 35, 'hopeless': 35, 'admission': 35}" in flood
    assert "lost after some of it ran: 5.0 jobs/s {'hopeless': 35}" in flood
    assert "useful 20 ms/s, wasted 30 ms/s (60%) {'hopeless': 30}" in flood


def test_a_log_that_cannot_be_read_is_refused_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "jobs.jsonl"
    bad.write_text("{not json\n")
    res = subprocess.run([sys.executable, str(TOOL), str(bad)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 2
    assert res.stderr.startswith(f"flood_log: {bad}:") and len(res.stderr.strip().splitlines()) == 1
    bad.write_text(json.dumps({"type": "job", "model": "a", "frame": 0, "release_ms": 0.0, "status": "done",
                               "reason": "", "stream": "other"}) + "\n")
    res = subprocess.run([sys.executable, str(TOOL), str(bad)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 2 and "no frames of stream 'roots'" in res.stderr
