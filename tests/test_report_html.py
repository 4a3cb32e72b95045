"""`report` on recorded replays and results: segment records, the Trace Event timeline, the HTML report
and its figures (those need matplotlib, the optional 'report' extra, and are skipped without it)."""
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edge_sdrm3.catalog import FileFormatError, load_platform
from edge_sdrm3.cli import main
from edge_sdrm3.report import chrome_trace, load_run
from edge_sdrm3.sim import trace as traces

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "dual_4k_ws_os"
MODELS = ("ES_RITNet", "GE_FBNet_C", "DR_RGBd_200", "HT_hand_graph_cnn_half")  # social_a's


def run_cli(capsys, argv, rc=0):
    assert main(argv) == rc, capsys.readouterr().err
    return capsys.readouterr()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A small replay with misses (sdrm3+supernet sheds at first on social_a), recorded with its segments."""
    d = tmp_path_factory.mktemp("run")
    rec = d / "run.jsonl"
    out = d / "replay.json"
    argv = ["replay", "social_a", "--platform", PLATFORM, "--policy", "sdrm3+supernet", "--duration", "4.5",
            "--json", "--record", str(rec)]
    r = subprocess.run([sys.executable, "-m", "edge_sdrm3.cli", *argv], capture_output=True, text=True, check=True)
    out.write_text(r.stdout)
    return rec, json.loads(r.stdout)


def test_replay_json_is_the_same_with_or_without_record(recorded, capsys):
    _, res = recorded
    plain = run_cli(capsys, ["replay", "social_a", "--platform", PLATFORM, "--policy", "sdrm3+supernet",
                             "--duration", "4.5", "--json"]).out
    assert plain.strip() == json.dumps(res, sort_keys=True)


def test_record_writes_segments_and_tuning_windows(recorded):
    rec, res = recorded
    tr = traces.read(rec)
    assert tr.segments and len(tr.jobs) == res["frames_due"]
    accs = {a.id for a in load_platform(PLATFORM).platform.accelerators}
    assert {s["accelerator"] for s in tr.segments} == accs
    # a job's segments account for all the energy it spent, and lie between its start and end
    spent: Counter = Counter()
    for s in tr.segments:
        spent[(s["model"], s["frame"])] += s["energy_mj"]
        assert s["start_ms"] < s["end_ms"] and s["segments"] >= 1
    for j in tr.jobs:
        assert spent[(j["model"], j["frame"])] == pytest.approx(j["energy_mj"], abs=1e-6)
    # busy time from the segments is the replay's utilisation
    for a, u in res["utilization"].items():
        busy = sum(s["end_ms"] - s["start_ms"] for s in tr.segments if s["accelerator"] == a)
        assert busy / res["makespan_ms"] == pytest.approx(u)
    # the tuner's windows (2 s) as summary records before the final one
    windows = [s for s in tr.summaries if s.get("final") is False]
    assert [w["t_ms"] for w in windows] == pytest.approx([2000.0, 4000.0], abs=50)
    assert all(set(w["theta"]) == {"alpha", "beta", "gamma", "delta"} for w in windows)
    assert tr.summaries[-1]["uxcost"] == res["uxcost"]


def test_report_of_a_recording_with_segments_gives_the_replay_metrics(recorded, capsys):
    rec, res = recorded
    rep = json.loads(run_cli(capsys, ["report", str(rec), "--json"]).out)
    for key in ("uxcost", "miss_rate", "energy_mj", "xrbench_score", "accuracy", "utilization"):
        assert rep[key] == pytest.approx(res[key]), key
    for m, d in res["models"].items():
        assert rep["models"][m]["miss_rate"] == pytest.approx(d["miss_rate"])


def test_segment_records_are_checked(tmp_path):
    bad = tmp_path / "bad.jsonl"
    tr = traces.generate(_scenario(), 0.1, 0)
    traces.write(tr, bad, jobs=[], segments=[{"model": "ES_RITNet", "frame": 0, "accelerator": "acc0",
                                              "start_ms": "soon", "end_ms": 1.0, "energy_mj": 0.0}])
    with pytest.raises(FileFormatError, match="start_ms"):
        traces.read(bad)
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:-1] + ['{"type": "span"}']) + "\n")
    with pytest.raises(FileFormatError, match="known: frame, job, segment, summary"):
        traces.read(bad)


def _scenario():
    from edge_sdrm3.catalog import load_scenario

    return load_scenario("social_a")


def test_chrome_trace_one_track_per_accelerator_one_event_per_segment(recorded, tmp_path, capsys):
    rec, _ = recorded
    out = tmp_path / "trace.json"
    run_cli(capsys, ["report", str(rec), "--chrome-trace", str(out)])
    doc = json.loads(out.read_text())
    ev = doc["traceEvents"]
    tr = traces.read(rec)
    spans = [e for e in ev if e["ph"] == "X"]
    assert len(spans) == len(tr.segments)
    assert all({"name", "cat", "ts", "dur", "pid", "tid", "args"} <= set(e) and e["dur"] > 0 for e in spans)
    names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    accs = [a.id for a in load_platform(PLATFORM).platform.accelerators]
    assert {names[e["tid"]] for e in spans} == set(accs)  # one track per accelerator, named after it
    assert len({e["tid"] for e in spans}) == len(accs)
    assert any(e["ph"] == "M" and e["name"] == "process_name" for e in ev)
    first = min(spans, key=lambda e: (e["ts"], e["tid"]))
    seg = min(tr.segments, key=lambda s: (s["start_ms"], accs.index(s["accelerator"])))
    assert first["ts"] == pytest.approx(seg["start_ms"] * 1000) and first["name"] == seg["model"]
    # --window keeps the segments that overlap it
    run_cli(capsys, ["report", str(rec), "--chrome-trace", str(out), "--window", "100:200"])
    kept = [e for e in json.loads(out.read_text())["traceEvents"] if e["ph"] == "X"]
    assert kept and len(kept) == sum(1 for s in tr.segments if s["end_ms"] > 100 and s["start_ms"] < 200)


def test_without_segment_records_the_timeline_has_one_span_per_job(recorded, tmp_path):
    rec, res = recorded
    jobs_only = tmp_path / "service_like.jsonl"
    jobs_only.write_text("".join(line + "\n" for line in rec.read_text().splitlines() if '"type": "segment"' not in line))
    run = load_run(str(jobs_only))
    assert not run.has_segments
    assert run.metrics["uxcost"] == pytest.approx(res["uxcost"])
    spans = [e for e in chrome_trace([run])["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == sum(1 for c in run.completions if c.start_ms >= 0) and {e["cat"] for e in spans} == {"job"}


def test_report_says_how_to_install_matplotlib(recorded, tmp_path, capsys, monkeypatch):
    rec, _ = recorded
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["report", str(rec), "-o", str(tmp_path / "r.html")]) == 2
    assert "pip install 'edge-sdrm3[report]'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_the_replay_and_the_service_never_import_matplotlib():
    code = ("import sys, edge_sdrm3.cli, edge_sdrm3.report, edge_sdrm3.sim.replay, edge_sdrm3.runtime.service; "
            "from edge_sdrm3.cli import main; "
            "main(['replay', 'social_a', '--platform', 'single_4k_ws', '--policy', 'edf', '--duration', '0.2', '--json']); "
            "assert not any(m.split('.')[0] == 'matplotlib' for m in sys.modules), 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)


# --- figures (matplotlib) ----------------------------------------------------------------------------------------

def _cells(html: str, key: str, attr: str) -> dict[str, float]:
    """{row name: value} of the table cells data-key=KEY in rows data-ATTR=name."""
    out = {}
    for name, row in re.findall(rf'<tr {attr}="([^"]+)">(.*?)</tr>', html):
        m = re.search(rf'data-key="{key}" data-value="([^"]+)"', row)
        if m:
            out[name] = float(m.group(1))
    return out


def test_html_report_of_a_replay(recorded, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rec, res = recorded
    html_path, png = tmp_path / "report.html", tmp_path / "png"
    run_cli(capsys, ["report", str(rec), "-o", str(html_path), "--png", str(png)])
    html = html_path.read_text()
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(imgs) >= 4 and all(s.startswith("data:image/png;base64,") for s in imgs)
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing to fetch: it opens offline
    for name in (*MODELS, *res["utilization"]):
        assert name in html, name
    assert _cells(html, "uxcost", "data-policy") == {"sdrm3+supernet": pytest.approx(res["uxcost"], rel=1e-12)}
    assert _cells(html, "miss_rate", "data-model") == pytest.approx(
        {m: d["miss_rate"] for m, d in res["models"].items()}, rel=1e-12)
    assert _cells(html, "utilization", "data-accelerator") == pytest.approx(res["utilization"], rel=1e-12)
    names = sorted(p.name for p in png.iterdir())
    assert {"timeline.png", "timeline_detail.png", "models.png", "over_time.png"} <= set(names)
    assert all((png / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    # the same PNGs as in the HTML
    import base64

    assert base64.b64decode(imgs[0].split(",", 1)[1]) == (png / "timeline.png").read_bytes()


def test_html_report_of_a_comparison_has_the_bars(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    cmp = tmp_path / "cmp.json"
    cmp.write_text(run_cli(capsys, ["compare", "social_a", "--platform", PLATFORM, "--duration", "1",
                                    "--policies", "fcfs,edf,sel,sdrm3", "--json"]).out)
    rows = json.loads(cmp.read_text())
    html_path, png = tmp_path / "cmp.html", tmp_path / "png"
    run_cli(capsys, ["report", str(cmp), "-o", str(html_path), "--png", str(png)])
    assert sorted(p.name for p in png.iterdir()) == ["bars.png", "model_misses.png"]
    html = html_path.read_text()
    assert _cells(html, "uxcost", "data-policy") == pytest.approx({r["policy"]: r["uxcost"] for r in rows})
    # which model pays for each policy's choices: every model's miss rate under every policy
    per_model = {(m, p): float(v) for m, row in re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', html)
                 for p, v in re.findall(r'data-key="miss_rate" data-policy="([^"]+)" data-value="([^"]+)"', row)}
    assert per_model == pytest.approx({(m, r["policy"]): d["miss_rate"] for r in rows for m, d in r["models"].items()})
    assert {m for m, _ in per_model} == set(MODELS) and len(per_model) == len(MODELS) * len(rows)
    assert 0 < max(per_model.values())  # social_a on this platform: some model misses under some policy
    best = min((r for r in rows if r["policy"] != "sdrm3"), key=lambda r: r["uxcost"])
    ours = next(r for r in rows if r["policy"] == "sdrm3")
    assert f"{100 * (1 - ours['uxcost'] / best['uxcost']):+.1f}% ({best['policy']})" in html
    # the text-only form still prints the table
    assert "sdrm3" in run_cli(capsys, ["report", str(cmp)]).out


def test_headline_figure_from_the_benchmark_results(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run_cli(capsys, ["report", str(ROOT / "docs" / "results" / "uxcost.json"), "--png", str(tmp_path)])
    assert (tmp_path / "uxcost.png").read_bytes()[:4] == b"\x89PNG"


def test_a_supernet_policy_of_ours_is_compared_with_the_best_supernet_baseline(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = ["compare", "social_a", "--platform", PLATFORM, "--duration", "1", "--policies",
            "edf,sel,edf_firm+supernet,sdrm3,sdrm3+supernet"]
    cmp = tmp_path / "cmp.json"
    cmp.write_text(run_cli(capsys, [*argv, "--json"]).out)
    ux = {r["policy"]: r["uxcost"] for r in json.loads(cmp.read_text())}
    best = min(("edf", "sel"), key=ux.get)
    text = run_cli(capsys, argv).out
    assert f"sdrm3: {100 * (1 - ux['sdrm3'] / ux[best]):+.1f}% UXCost reduction vs best baseline" in text
    sn = 100 * (1 - ux["sdrm3+supernet"] / ux["edf_firm+supernet"])
    assert f"sdrm3+supernet: {sn:+.1f}% UXCost reduction vs the best +supernet baseline, edf_firm+supernet" in text
    assert "edf_firm+supernet:" not in text  # a baseline, not one of ours
    run_cli(capsys, ["report", str(cmp), "-o", str(tmp_path / "cmp.html")])
    html = (tmp_path / "cmp.html").read_text()
    assert f"{sn:+.1f}% (edf_firm+supernet)" in html
