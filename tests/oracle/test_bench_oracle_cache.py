"""tools/bench_oracle.py --optima-from: a cached optimum is reused only where it solves the problem now posed (the
window, the accuracy floor and the mean accuracy bound after its lowering); the others are solved and cached."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdrm3.catalog import load_platform, load_scenario

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "bench_oracle.py"
sys.path.insert(0, str(ROOT / "tools"))
import bench_oracle  # noqa: E402


def entry(problem: dict, window: float, attempts: list[float] | None = None) -> dict:
    """A cache's mode entry whose optimum says it solved ``problem`` on ``window``."""
    opt = {**problem, "duration_s": window, "uxcost": 0.5, "optimal": True, "bound": 0.5}
    tried = [{"duration_s": w, "optimal": False} for w in (attempts or [])] + [{"duration_s": window, "optimal": True}]
    return {"window_s": window, "optimum": opt, "attempts": tried}


def test_an_optimum_of_another_problem_is_not_reused():
    sc, spec = load_scenario("ar_gaming"), load_platform("quad_4k_ws_os_ws_os")
    now = bench_oracle.problem(sc, spec, 0.2, 0, True, None)
    assert now["floor"] is not None and now["min_accuracy"] < bench_oracle.MIN_ACCURACY  # lowered here
    same = entry(now, 0.2)
    assert bench_oracle.cached_mode({"supernet": same}, sc, spec, 0, True, None) is same
    # the floor alone (no mean accuracy bound), the bound not lowered, another floor, a plain optimum, another seed
    for other in ({**now, "min_accuracy": None}, {**now, "min_accuracy": bench_oracle.MIN_ACCURACY},
                  {**now, "floor": now["floor"] - 0.05}, {**now, "supernet": False}):
        assert bench_oracle.cached_mode({"supernet": entry(other, 0.2)}, sc, spec, 0, True, None) is None
    assert bench_oracle.cached_mode({"supernet": same}, sc, spec, 1, True, None) is None
    # the plain optimum is not the supernet one, and the other way round
    plain = bench_oracle.problem(sc, spec, 0.2, 0, False, None)
    assert bench_oracle.cached_mode({"plain": entry(plain, 0.2)}, sc, spec, 0, False, None) is not None
    assert bench_oracle.cached_mode({"supernet": same}, sc, spec, 0, False, None) is None


def test_a_shorter_window_is_not_reused_where_the_longer_one_is_now_another_problem():
    """ar_assistant on quad_4k_ws_os_ws_os: the deadlines lower the bound on 0.7 s but not on 0.2 s, so an optimum
    of 0.2 s found after an unproven 0.7-s attempt held to the 0.2-s bound is not what the ladder would now give."""
    sc, spec = load_scenario("ar_assistant"), load_platform("quad_4k_ws_os_ws_os")
    short = bench_oracle.problem(sc, spec, 0.2, 0, True, None)
    long = bench_oracle.problem(sc, spec, 0.7, 0, True, None)
    assert long["min_accuracy"] < short["min_accuracy"]
    stale = entry(short, 0.2, attempts=[0.7])  # attempts that do not say what they solved: the optimum's problem
    assert bench_oracle.cached_mode({"supernet": stale}, sc, spec, 0, True, None) is None
    fresh = entry(short, 0.2, attempts=[0.7])
    fresh["attempts"][0].update({k: long[k] for k in bench_oracle.PROBLEM})
    assert bench_oracle.cached_mode({"supernet": fresh}, sc, spec, 0, True, None) is fresh


def run_tool(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, str(TOOL), "--scenarios", "social_b", "--platforms", "single_4k_ws",
                          "--windows", "0.15", "--time-limit", "10", "--workers", "1", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_the_tool_solves_a_mismatched_optimum_and_caches_it(tmp_path):
    pytest.importorskip("ortools", reason="the oracle needs OR-Tools: pip install -e '.[oracle]'")
    first = tmp_path / "first.jsonl"
    run_tool("--cache", str(first), "--out-dir", str(tmp_path / "a"))
    cell = json.loads(first.read_text().splitlines()[-1])
    good = cell["supernet"]["optimum"]
    assert good["min_accuracy"] is not None
    # an earlier run's supernet optimum held to the floor alone: another problem, with a figure it cannot have
    stale = json.loads(json.dumps(cell))
    stale["supernet"]["optimum"].update(min_accuracy=None, uxcost=good["uxcost"] * 7.0)
    stale["supernet"]["attempts"][-1].pop("min_accuracy", None)
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps(stale) + "\n")
    new = tmp_path / "new.jsonl"
    res = run_tool("--optima-from", str(old), "--cache", str(new), "--out-dir", str(tmp_path / "b"))
    assert "solved supernet" in res.stdout and "solved plain" not in res.stdout
    doc = json.loads((tmp_path / "b" / "oracle.json").read_text())
    sn = doc["cells"][0]["supernet"]["optimum"]
    assert sn["min_accuracy"] == pytest.approx(good["min_accuracy"])
    assert sn["uxcost"] == pytest.approx(good["uxcost"], rel=1e-6) or not sn["optimal"]
    assert doc["cells"][0]["plain"]["optimum"]["uxcost"] == cell["plain"]["optimum"]["uxcost"]
    # the cell solved is in the new cache, and a run from it solves nothing
    again = run_tool("--optima-from", str(new), "--out-dir", str(tmp_path / "c"))
    assert "optima reused" in again.stdout and "solved" not in again.stdout
