"""`edge-sdrm3 report` on a sweep's output: the per-policy summary as a table, JSON, HTML and PNG."""
import json
import math
import statistics

import pytest

from edge_sdrm3.cli import main


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s.jsonl"
    assert main(["sweep", "--scenarios", "vr_gaming,outdoor_a", "--platforms", "single_4k_ws", "--policies",
                 "fcfs,edf,sdrm3", "--seeds", "0,1", "--duration", "1", "-o", str(out), "--workers", "1"]) == 0
    return out


def test_summary_per_policy_against_the_best_baseline_of_each_cell(sweep_file, capsys):
    recs = [json.loads(x) for x in sweep_file.read_text().splitlines()]
    capsys.readouterr()
    assert main(["report", str(sweep_file), "--json"]) == 0
    rows = {s["label"]: s for s in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["fcfs", "edf", "sdrm3"] and all(s["cells"] == 4 for s in rows.values())
    logs = []
    for r in recs:
        if r["policy"] == "sdrm3":
            best = min(b["uxcost"] for b in recs if b["policy"] != "sdrm3" and b["seed"] == r["seed"]
                       and b["scenario"] == r["scenario"])
            logs.append(math.log(r["uxcost"] / best))
    assert rows["sdrm3"]["geomean_reduction"] == pytest.approx(1 - math.exp(sum(logs) / len(logs)))
    assert rows["sdrm3"]["median_reduction"] == pytest.approx(1 - math.exp(statistics.median(logs)))
    assert rows["sdrm3"]["uxcost"] == pytest.approx(sum(r["uxcost"] for r in recs if r["policy"] == "sdrm3") / 4)


def test_html_and_png(sweep_file, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    html, png = tmp_path / "r.html", tmp_path / "png"
    assert main(["report", str(sweep_file), "-o", str(html), "--png", str(png)]) == 0
    text = html.read_text()
    assert "Sweep: " in text and "(12 cells)" in text
    for p in ("fcfs", "edf", "sdrm3"):
        assert f'data-policy="{p}"' in text
    assert (png / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_a_supernet_policy_is_measured_against_the_best_supernet_baseline(tmp_path, capsys):
    """sdrm3+supernet against edf_firm+supernet of the same cell, not against a plain baseline; a plain
    policy against the plain baselines only."""
    out = tmp_path / "s.jsonl"
    assert main(["sweep", "--scenarios", "social_a", "--platforms", "single_4k_ws", "--policies",
                 "edf,edf_firm+supernet,sdrm3,sdrm3+supernet", "--duration", "2", "-o", str(out),
                 "--workers", "1"]) == 0
    recs = {r["policy"]: r for r in map(json.loads, out.read_text().splitlines())}
    capsys.readouterr()
    assert main(["report", str(out), "--json"]) == 0
    rows = {s["label"]: s for s in json.loads(capsys.readouterr().out)}
    ux = {p: r["uxcost"] for p, r in recs.items()}
    assert rows["sdrm3+supernet"]["geomean_reduction"] == pytest.approx(
        1 - ux["sdrm3+supernet"] / ux["edf_firm+supernet"])
    assert rows["sdrm3"]["geomean_reduction"] == pytest.approx(1 - ux["sdrm3"] / ux["edf"])
