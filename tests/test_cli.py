"""The command line, through edge_sdrm3.cli.main: what a user types and sees."""
import json
import shutil

import pytest

from edge_sdrm3.catalog import PLATFORM_DIR, SCENARIO_DIR
from edge_sdrm3.cli import main

SCENARIOS = ["ar_assistant", "ar_gaming", "outdoor_a", "outdoor_b", "social_a", "social_b", "vr_gaming"]


def out_of(capsys, argv, rc=0):
    assert main(argv) == rc
    return capsys.readouterr()


def test_scenarios_lists_the_seven(capsys):
    out = out_of(capsys, ["scenarios"]).out
    lines = out.splitlines()
    # + the profiled ones
    assert [x.split()[0] for x in lines] == sorted(SCENARIOS + ["digits", "mediapipe_xr", "mediapipe_xr_slow"])
    # the cascade is shown with its trigger probability
    assert "ASR_EM_24L@3<-KD_res8_narrow p=0.5" in out


def test_platforms_lists_the_xrbench_ones_and_the_profiled_ones(capsys):
    lines = out_of(capsys, ["platforms"]).out.splitlines()
    names = [x.split()[0] for x in lines]
    # the 38 XRBench ones, profile_host_x86, headset_emulated and headset_placement
    assert len(names) == 41 == len(set(names))
    assert "headset_emulated" in names and "headset_placement" in names
    assert next(x for x in lines if x.startswith("profile_host_x86 ")).split()[1:] == ["cpu=profile"]
    for n in ("single_4k_ws", "dual_8k_biglittle_ws_os", "quad_4k_ws_os_ws_os"):
        assert n in names
    line = next(x for x in lines if x.startswith("dual_8k_biglittle_ws_os "))
    assert "acc0=PE6144_noc256/WS" in line and "acc1=PE2048_noc256/OS" in line


def test_replay_json(capsys):
    out = out_of(capsys, ["replay", "vr_gaming", "--platform", "single_4k_ws", "--policy", "fcfs",
                          "--duration", "1", "--json"]).out
    assert len(out.strip().splitlines()) == 1
    r = json.loads(out)
    for k in ("policy", "scenario", "platform", "uxcost", "xrbench_score", "miss_rate", "energy_mj", "accuracy",
              "frames_due", "frames_missed", "models"):
        assert k in r
    assert (r["policy"], r["scenario"], r["platform"]) == ("fcfs", "vr_gaming", "single_4k_ws")
    # 1 s: 60 ES_RITNet + 60 GE_FBNet_C (p = 1) + 45 HT frames
    assert r["frames_due"] == 165
    assert set(r["models"]) == {"ES_RITNet", "GE_FBNet_C", "HT_hand_graph_cnn_half"}
    for m in r["models"].values():
        for k in ("due", "missed", "energy_mj", "p50_ms", "p99_ms", "xrbench_score"):
            assert k in m
    assert r["models"]["HT_hand_graph_cnn_half"]["due"] == 45
    assert 0.0 <= r["miss_rate"] <= 1.0 and 0.0 <= r["xrbench_score"] <= 100.0


def test_replay_table(capsys):
    out = out_of(capsys, ["replay", "vr_gaming", "--platform", "single_4k_ws", "--policy", "fcfs",
                          "--duration", "1"]).out
    assert out.startswith("vr_gaming on single_4k_ws (native, 1 s, seed 0)")
    assert "accelerator utilisation: acc0" in out


def test_compare_json(capsys):
    out = out_of(capsys, ["compare", "social_b", "--platform", "dual_4k_ws_os", "--policies", "fcfs,xrbench",
                          "--duration", "1", "--json"]).out
    rows = json.loads(out)
    assert isinstance(rows, list)
    assert [r["policy"] for r in rows] == ["fcfs", "xrbench"]
    # both replayed the same trace
    assert rows[0]["frames_due"] == rows[1]["frames_due"] == 60 + 60 + 30


def test_trace_generate_then_replay(tmp_path, capsys):
    f = tmp_path / "vr.jsonl"
    out = out_of(capsys, ["trace", "generate", "vr_gaming", "-o", str(f), "--duration", "1", "--seed", "3"]).out
    assert f"wrote {f}: 165 frames of 3 models, 1 s, seed 3" in out
    r = json.loads(out_of(capsys, ["replay", str(f), "--platform", "single_4k_ws", "--policy", "fcfs",
                                   "--json"]).out)
    assert (r["scenario"], r["duration_s"], r["seed"], r["frames_due"]) == ("vr_gaming", 1.0, 3, 165)


def test_scenario_and_platform_by_path(tmp_path, capsys):
    sc = tmp_path / "my_scenario.json"
    pl = tmp_path / "my_platform.json"
    shutil.copy(SCENARIO_DIR / "social_b.json", sc)
    shutil.copy(PLATFORM_DIR / "dual_4k_ws_os.json", pl)
    args = ["--policy", "fcfs", "--duration", "1", "--json"]
    by_path = out_of(capsys, ["replay", str(sc), "--platform", str(pl)] + args).out
    by_name = out_of(capsys, ["replay", "social_b", "--platform", "dual_4k_ws_os"] + args).out
    assert json.loads(by_path)["frames_due"] == 150
    assert by_path == by_name


def _one_line_error(capsys, argv, *needles):
    res = out_of(capsys, argv, rc=2)
    err = res.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("edge-sdrm3: error:")
    assert "Traceback" not in res.err and res.out == ""
    for n in needles:
        assert n in err
    return err


def test_unknown_scenario_is_a_one_line_error(capsys):
    _one_line_error(capsys, ["replay", "no_such_scenario", "--platform", "single_4k_ws", "--policy", "fcfs"],
                    "no_such_scenario")


def test_unknown_platform_is_a_one_line_error(capsys):
    _one_line_error(capsys, ["replay", "vr_gaming", "--platform", "no_such_platform", "--policy", "fcfs"],
                    "no_such_platform")


def test_unknown_policy_is_a_one_line_error(capsys):
    _one_line_error(capsys, ["replay", "vr_gaming", "--platform", "single_4k_ws", "--policy", "nope",
                             "--duration", "1"], "nope")


def test_malformed_scenario_file_is_a_one_line_error(tmp_path, capsys):
    sc = tmp_path / "broken.json"
    doc = json.loads((SCENARIO_DIR / "vr_gaming.json").read_text())
    del doc["models"][2]["fps"]
    sc.write_text(json.dumps(doc))
    _one_line_error(capsys, ["replay", str(sc), "--platform", "single_4k_ws", "--policy", "fcfs"],
                    str(sc), "models[2]", "'fps'")


def test_malformed_platform_file_is_a_one_line_error(tmp_path, capsys):
    pl = tmp_path / "broken.json"
    pl.write_text('{"format": "edge-sdrm3-platform",\n "version": 1,\n "name": }\n')
    _one_line_error(capsys, ["replay", "vr_gaming", "--platform", str(pl), "--policy", "fcfs"],
                    str(pl), "line 3")


def test_malformed_trace_file_is_a_one_line_error(tmp_path, capsys):
    f = tmp_path / "t.jsonl"
    assert main(["trace", "generate", "vr_gaming", "-o", str(f), "--duration", "1"]) == 0
    capsys.readouterr()
    lines = f.read_text().splitlines()
    lines[7] = '{"type": "frame", "model": "ES_RITNet", "frame": 99}'
    f.write_text("\n".join(lines) + "\n")
    _one_line_error(capsys, ["replay", str(f), "--platform", "single_4k_ws", "--policy", "fcfs"],
                    str(f), "line 8", "release_ms")


def test_trace_generate_unknown_scenario(tmp_path, capsys):
    _one_line_error(capsys, ["trace", "generate", "nope", "-o", str(tmp_path / "x.jsonl")], "nope")
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("argv", [["replay", "vr_gaming", "--platform", "single_4k_ws"], ["bogus"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_param_sets_policy_parameters(capsys):
    # gamma=0 drops SDRM3's energy term: on a light cell it then spends more energy than with it
    base = ["replay", "vr_gaming", "--platform", "dual_8k_ws_os", "--policy", "sdrm3", "--duration", "2", "--json"]
    with_energy = json.loads(out_of(capsys, base + ["--param", "tune=false"]).out)
    without = json.loads(out_of(capsys, base + ["--param", "tune=false", "--param", "gamma=0"]).out)
    assert without["energy_mj"] > with_energy["energy_mj"]
    assert main(["replay", "vr_gaming", "--platform", "dual_8k_ws_os", "--policy", "fcfs", "--param", "gamma=1"]) == 2
    assert "policy 'fcfs'" in capsys.readouterr().err


def test_report_of_a_recorded_replay_gives_the_replay_metrics(tmp_path, capsys):
    rec = tmp_path / "run.jsonl"
    res = json.loads(out_of(capsys, ["replay", "social_a", "--platform", "dual_4k_ws_os", "--policy", "sdrm3",
                                     "--duration", "2", "--json", "--record", str(rec)]).out)
    rep = json.loads(out_of(capsys, ["report", str(rec), "--platform", "dual_4k_ws_os", "--json"]).out)
    for key in ("uxcost", "miss_rate", "energy_mj", "frames_due", "frames_missed", "xrbench_score"):
        assert rep[key] == pytest.approx(res[key]), key
    # every completed job ran the largest variant (sdrm3 without the supernet): w1.0, counted per model
    completed = {}
    for line in rec.read_text().splitlines():
        r = json.loads(line)
        if r.get("type") == "job" and r["status"] in ("done", "late"):
            completed[r["model"]] = completed.get(r["model"], 0) + 1
    assert {m: d["variants"] for m, d in rep["models"].items() if d["variants"]} == \
        {m: {"w1.0": n} for m, n in completed.items()}
    # a file without job records is refused with a clear error
    gen = tmp_path / "gen.jsonl"
    out_of(capsys, ["trace", "generate", "vr_gaming", "-o", str(gen), "--duration", "1"])
    assert main(["report", str(gen), "--platform", "dual_4k_ws_os"]) == 2
    assert "no job records" in capsys.readouterr().err
