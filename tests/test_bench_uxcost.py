"""tools/bench_uxcost.py on a small grid: the best baseline from the registry, reductions that follow from the
results, infeasible cells named and left out, random mixes (the full benchmark is a script, not a test)."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdrm3.catalog import load_cost_table
from edge_sdrm3.cli import main
from edge_sdrm3.core.policies import BASELINES, policy_names
from edge_sdrm3.random_scenarios import random_scenario

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "bench_uxcost.py"
sys.path.insert(0, str(ROOT / "tools"))
import bench_uxcost  # noqa: E402


def run_tool(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, str(TOOL), "--workers", "1", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def geomean(reds: list[float]) -> float:
    return 1.0 - math.exp(sum(math.log(1.0 - r) for r in reds) / len(reds))


@pytest.fixture(scope="module")
def xrbench_cells(tmp_path_factory):
    out = tmp_path_factory.mktemp("ux")
    res = run_tool("--scenarios", "ar_gaming,vr_gaming", "--platforms", "quad_4k_ws_os_ws_os,dual_8k_ws_os",
                   "--policies", "sdrm3,sdrm3+supernet", "--duration", "1", "--out-dir", str(out))
    return out, res


def test_xrbench_cells_best_baseline_reductions_and_the_infeasible_cell(xrbench_cells):
    tmp_path, res = xrbench_cells
    doc = json.loads((tmp_path / "uxcost.json").read_text())
    assert doc["baselines"] == [b for b in BASELINES if b in policy_names()]
    assert doc["ours"] == ["sdrm3", "sdrm3+supernet"]
    assert doc["supernet_baselines"] == bench_uxcost.policy_roles(policy_names())["supernet_baselines"]
    assert len(doc["cells"]) == 4
    for c in doc["cells"]:
        ux = {p: m["uxcost"] for p, m in c["results"].items()}
        assert set(ux) == {*doc["baselines"], *doc["supernet_baselines"], "sdrm3", "sdrm3+supernet"}
        assert c["best_baseline"] == min(doc["baselines"], key=lambda b: ux[b])
        # uxcost.json rounds floats to 7 significant digits: a ratio of two rounded values is good to ~1e-6
        assert c["reduction"]["sdrm3"] == pytest.approx(1 - ux["sdrm3"] / ux[c["best_baseline"]], rel=1e-5, abs=1e-5)
        # like with like: the supernet policy against the best X+supernet baseline, where there is one
        ref = min(doc["supernet_baselines"], key=lambda b: ux[b]) if doc["supernet_baselines"] else c["best_baseline"]
        assert c["reference"]["sdrm3+supernet"] == ref
        assert c["reduction"]["sdrm3+supernet"] == pytest.approx(1 - ux["sdrm3+supernet"] / ux[ref], rel=1e-5, abs=1e-5)
    assert doc["infeasible_cells"] == ["ar_gaming/quad_4k_ws_os_ws_os"]
    s = doc["summary"]["sdrm3"]
    assert s["infeasible"] == ["ar_gaming/quad_4k_ws_os_ws_os"] and s["cells"] == 3
    feasible = [c["reduction"]["sdrm3"] for c in doc["cells"] if not c["infeasible"]]
    assert s["geomean_reduction"] == pytest.approx(geomean(feasible), rel=1e-5, abs=1e-6)
    # the infeasible cell: every policy misses everything; flagged, not a win
    bad = next(c for c in doc["cells"] if c["infeasible"])
    assert "sdrm3" in bad["drops_everything"]
    md = (tmp_path / "uxcost.md").read_text()
    assert "infeasible cells (every model misses its deadline even alone; left out of the geomeans): " \
           "ar_gaming/quad_4k_ws_os_ws_os" in md
    assert "sdrm3 vs the best baseline: geomean UXCost reduction" in res.stdout


def test_random_mixes_table(tmp_path):
    run_tool("--random", "2", "--platforms", "single_4k_ws,dual_4k_ws_os", "--policies", "sdrm3", "--duration",
             "0.5", "--out-dir", str(tmp_path))
    assert not (tmp_path / "uxcost.json").exists()
    doc = json.loads((tmp_path / "uxcost_random.json").read_text())
    assert doc["random"] == {"first_seed": 1, "count": 2}
    assert [(c["scenario"], c["platform"]) for c in doc["cells"]] == [
        ("random_0001", "single_4k_ws"), ("random_0001", "dual_4k_ws_os"),
        ("random_0002", "single_4k_ws"), ("random_0002", "dual_4k_ws_os")]
    table = load_cost_table("xrbench")
    for c in doc["cells"]:
        seed = int(c["scenario"].split("_")[1])
        assert set(c["results"]["sdrm3"]["models"]) == {m.name for m in random_scenario(seed, table).models}
    md = (tmp_path / "uxcost_random.md").read_text()
    assert "edge-sdrm3 scenarios random --seed 1 --count 2 -o DIR" in md
    assert "`random_0002`: " in md


def test_roles_come_from_the_names_registered():
    roles = bench_uxcost.policy_roles(["fcfs", "edf", "edf+supernet", "sdrm3", "sdrm3+supernet"])
    assert roles == {"baselines": ["fcfs", "edf"], "supernet_baselines": ["edf+supernet"],
                     "ours": ["sdrm3", "sdrm3+supernet"]}
    assert bench_uxcost.reference_group("sdrm3+supernet", roles) == "supernet_baselines"
    assert bench_uxcost.reference_group("sdrm3", roles) == "baselines"
    plain = bench_uxcost.policy_roles(["fcfs", "sdrm3", "sdrm3+supernet"])
    assert bench_uxcost.reference_group("sdrm3+supernet", plain) == "baselines"  # no X+supernet: the baselines
    # the real registry: every baseline it has; X+supernet as it lists them, or for every baseline on request
    real = bench_uxcost.policy_roles(policy_names())
    assert real["baselines"] == [b for b in BASELINES if b in policy_names()]
    assert all(p in policy_names() and p.removesuffix("+supernet") in BASELINES for p in real["supernet_baselines"])
    assert {"sdrm3", "sdrm3+supernet"} <= set(real["ours"])
    every = bench_uxcost.policy_roles(policy_names(), bench_uxcost.constructible)
    assert every["supernet_baselines"] == [b + "+supernet" for b in real["baselines"]]


def test_the_benchmark_figures_show_the_infeasible_cell_and_many_mixes_as_a_spread(xrbench_cells, tmp_path):
    pytest.importorskip("matplotlib")
    ux, _ = xrbench_cells
    assert main(["report", str(ux / "uxcost.json"), "-o", str(tmp_path / "ux.html"), "--png", str(tmp_path)]) == 0
    assert (tmp_path / "uxcost.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "ux.html").read_text()
    cells = {(a, b): re.findall(r"<td>([^<]*)</td>", rest)
             for a, b, rest in re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td>(.*?)</tr>", html)}
    assert cells[("ar_gaming", "quad_4k_ws_os_ws_os")][0] == "infeasible"  # sdrm3's column
    assert len(cells) == 4 and all(v[0].endswith("%") for k, v in cells.items()
                                   if k != ("ar_gaming", "quad_4k_ws_os_ws_os"))
    # more mixes than rows fit: the sorted reductions instead of a grid
    run_tool("--random", "13", "--platforms", "dual_8k_ws_os", "--policies", "sdrm3", "--duration", "0.3",
             "--out-dir", str(tmp_path))
    assert main(["report", str(tmp_path / "uxcost_random.json"), "--png", str(tmp_path)]) == 0
    assert (tmp_path / "uxcost_random.png").read_bytes()[:4] == b"\x89PNG"
