"""Bounded under hostile load: a real flood against a real service (tools/flood.py, briefly), and a stalled
subscriber that costs the others nothing. (The figures of a longer flood: docs/results/flood.txt.)"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq
from runtime_harness import ROOT, Running, write_config


def test_a_flood_of_stream_ids_and_a_stalled_subscriber_stay_bounded_and_status_answers() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "flood.py"), "--scenario", "digits", "--seconds", "3",
                          "--frames", "3000", "--rate", "30", "--max-streams", "64", "--only", "streams", "--only",
                          "stalled"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    out = res.stdout
    assert res.returncode == 0 and out.rstrip().endswith("PASS"), out + res.stderr
    streams = [ast.literal_eval(m) for m in re.findall(r"status says: streams (\{[^}]*\})", out)]
    assert streams and all(s["tracked"] <= 64 for s in streams), out
    taken = re.search(r"distinct streams: \d+ frames.* took in (\d+) of them", out)
    assert taken and int(taken.group(1)) > 1000 and streams[-1]["forgotten"] >= int(taken.group(1)) - 64, out
    assert re.search(r"stalled subscriber: [1-9]\d* frames", out), out
    for growth in re.findall(r"RSS growth: peak ([+-][\d.]+) MB", out):
        assert float(growth) < 50, out


def test_results_are_bounded_in_bytes_per_subscriber_and_a_stalled_one_costs_the_others_nothing(
        tmp_path: Path, files: dict) -> None:
    run = Running(write_config(tmp_path, files, sockets={"results_max_bytes": 65536}))
    stalled = run.ctx.socket(zmq.SUB)
    try:
        st = run.control("status")
        # digits' largest result: 40 bytes of outputs + 1 KiB of header; half of 64 KiB holds 30 of them
        assert st["results"]["hwm"] == 30 and st["results"]["max_bytes"] == 65536
        stalled.setsockopt(zmq.RCVHWM, 1)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(run.cfg.sockets.results)  # never read
        x = np.zeros((1, 8, 8, 1), np.float32)
        n = 200
        for f in range(n):  # at a camera's pace: the reader keeps up
            run.send("s", f, [x], models=["digits"])
            time.sleep(0.005)
        got = run.results(until=lambda o: sum(h["topic"] == "digits" for h, _ in o) >= n, timeout=20)
        assert sorted(h["frame"] for h, _ in got if h["topic"] == "digits") == list(range(n))
        assert run.control("status")["results"]["published"]
    finally:
        stalled.close(0)
        assert run.stop() == 0
