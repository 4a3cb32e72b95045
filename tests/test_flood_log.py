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


def _phased_log(path: Path) -> None:
    """Interleaved phases (streams roots/1x/0, roots/3x/1, roots/1x/2), 10 s each at 1 frame/s and 3 frames/s: at 1x
    every job is done; under the flood a frame's jobs are: done; hopeless after a 5-ms block; refused at release;
    displaced; late after 8 ms; an upstream-dropped child (unrun)."""
    recs = [{"format": "edge-sdrm3-trace", "version": 1}]
    f = 0
    for k, (scale, t0) in enumerate([(1, 0.0), (3, 10000.0), (1, 20000.0)]):
        stream = f"roots/{scale}x/{k}"
        for i in range(10 * scale):
            t = t0 + i * 1000.0 / scale
            recs.append({"type": "frame", "model": "a", "frame": f, "release_ms": t, "stream": stream})
            fates = [("a", "done", "", 4.0)] if scale == 1 else [
                ("a", "done", "", 4.0), ("b", "dropped", "hopeless", 5.0), ("c", "dropped", "admission", 0.0),
                ("d", "dropped", "displaced", 0.0), ("e", "late", "late", 8.0),
                ("f", "dropped", "upstream dropped", 0.0)]
            for model, status, reason, busy in fates:
                recs.append({"type": "job", "model": model, "frame": f, "release_ms": t, "status": status,
                             "reason": reason, "stream": stream})
                if busy:
                    recs.append({"type": "segment", "model": model, "frame": f, "start_ms": t, "end_ms": t + busy})
            f += 1
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")


def test_interleaved_phases_split_the_lost_capacity_by_cause(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    _phased_log(log)
    res = subprocess.run([sys.executable, str(TOOL), str(log), "--phases", "--settle", "1"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    # 1x: two phases of releases 1..9 s after the settle: 9 frames in 8 s each
    assert "1x: 2 phases, 16 s: on time 1.1 jobs/s (phases 1 1)" in out
    # 3x: releases from 11 s to 19.67 s: 27 frames in 8.67 s, one job of each fate per frame
    assert "3x: 1 phases, 9 s: on time 3.1 jobs/s" in out
    assert ("causes: ontime 3.1, refused 3.1, displaced 3.1, shed after partial run 3.1, late 3.1, "
            "dropped unrun 3.1") in out
    assert "wasted 41 ms/s (76%) {'late': 25, 'hopeless': 16}" in out
    assert "3x against 1x (jobs/s): on time +2.0; refused +3.1, displaced +3.1" in out


def test_interleave_pairs_each_overload_phase_with_the_capacity_phases_around_it() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    import interleave

    assert interleave.schedule((2.0, 4.0), 2) == [1.0, 2.0, 1.0, 4.0, 1.0, 2.0, 1.0, 4.0, 1.0]
    ph = [interleave.Phase(s, k, v) for k, (s, v) in enumerate([(1, 100), (2, 90), (1, 80), (4, 45), (1, 100)])]
    figs = interleave.figures(ph)
    assert figs[2.0].pairs == [1.0] and figs[4.0].pairs == [0.5]
    assert abs(figs[4.0].ratio_of_medians - 0.45) < 1e-9
    lines: list[str] = []
    _, failures = interleave.report(ph, lines.append)
    assert failures == ["interleaved 4x: median pair ratio 50% (< 90%)"]
    assert any("interleaved 2x:" in x and "median pair ratio 100% (spread 100-100%)" in x for x in lines)
