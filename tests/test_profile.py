"""`edge-sdrm3 profile`: real interpreters on the digits supernet; the platform file it writes drives replay."""
import copy
import json
from pathlib import Path

import pytest

from edge_sdrm3 import catalog
from edge_sdrm3.catalog import FileFormatError, build_costs, build_models, load_platform, load_scenario
from edge_sdrm3.cli import main
from edge_sdrm3.core.types import INF
from edge_sdrm3.sim import trace as T
from edge_sdrm3.sim.replay import replay

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits_profile(tmp_path_factory):
    d = tmp_path_factory.mktemp("profile")
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGE_SDRM3_MODEL_CACHE", str(d / "cache"))
    try:
        rc = main(["profile", "--models", "digits", "--devices", "cpu:1", "--segments", "2", "--runs", "5",
                   "--warmup", "2", "--energy-window", "0.05", "-o", str(d / "digits_host.json")])
    finally:
        mp.undo()
    assert rc == 0
    return d / "digits_host.json"


def test_profile_writes_a_platform_file(digits_profile):
    doc = json.loads(digits_profile.read_text())
    assert (doc["format"], doc["version"], doc["name"]) == ("edge-sdrm3-platform", 1, "digits_host")
    assert doc["profiled"]["runs"] == 5 and doc["profiled"]["date"] and doc["profiled"]["host"]["cpus"]
    [acc] = doc["accelerators"]
    assert (acc["id"], acc["kind"], acc["device"], acc["threads"]) == ("cpu_1", "cpu", "cpu:1", 1)
    costs = acc["costs"]
    assert costs["table"] == "profile" and costs["energy_source"]
    m = costs["models"]["digits"]
    assert m["segments"] == 2
    assert [v["name"] for v in m["variants"]] == ["w100", "w75", "w50", "w25"]
    assert [v["width"] for v in m["variants"]] == [1.0, 0.75, 0.5, 0.25]
    assert m["variants"][0]["accuracy"] == 1.0 and 0.5 < m["variants"][3]["accuracy"] < 1.0
    for v in m["variants"]:
        assert len(v["latency_ms"]) == len(v["latency_p90_ms"]) == len(v["energy_mj"]) == 2
        assert all(x > 0 for x in v["latency_ms"])  # measured, positive
        assert all(p >= x for p, x in zip(v["latency_p90_ms"], v["latency_ms"]))
        assert all(e >= 0 for e in v["energy_mj"]) and sum(v["energy_mj"]) > 0
        assert v["whole_latency_ms"] > 0


def test_profile_loads_and_replays_digits(digits_profile):
    spec = load_platform(str(digits_profile))
    assert spec.table == "profile" and [a.id for a in spec.platform.accelerators] == ["cpu_1"]
    tr = T.generate(load_scenario("digits"), 2.0, 0)
    res, comps = replay(tr, spec, "sdrm3", keep_completions=True)
    assert res["frames_due"] == 120 and len(comps) == 120
    assert res["frames_missed"] == 0 and res["miss_rate"] == 0.0  # a digit takes << 16.7 ms here
    assert res["energy_mj"] > 0 and 0 < res["uxcost"] < 1
    # the variant-switching policy sees all four widths, the others only the largest
    models = build_models(tr.scenario, None, spec)
    assert [v.name for v in models[0].variants] == ["w100", "w75", "w50", "w25"] and models[0].n_segments == 2
    assert [v.name for v in build_models(tr.scenario, (1.0,), spec)[0].variants] == ["w100"]


def test_replay_cli_on_the_profile(digits_profile, capsys):
    assert main(["replay", "digits", "--platform", str(digits_profile), "--policy", "sdrm3", "--duration", "1",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["platform"] == "digits_host" and res["frames_due"] == 60


def test_shipped_host_profile_replays_mediapipe_xr_without_model_files():
    spec = load_platform("profile_host_x86")
    assert spec.table == "profile"
    tr = T.generate(load_scenario("mediapipe_xr"), 1.0, 0)
    res, _ = replay(tr, spec, "sdrm3")
    assert res["frames_due"] > 0 and res["energy_mj"] > 0
    assert set(res["models"]) == {m.name for m in tr.scenario.models}


def test_a_model_the_profile_lacks_is_named(digits_profile):
    tr = T.generate(load_scenario("mediapipe_xr"), 0.2, 0)
    with pytest.raises(FileFormatError, match="'palm_detection' is not in the profile"):
        replay(tr, load_platform(str(digits_profile)), "fcfs")
    with pytest.raises(FileFormatError, match="no profiled accelerator"):
        replay(tr, load_platform("single_4k_ws"), "fcfs")
    with pytest.raises(FileFormatError, match="no accelerator has costs for model 'ES_RITNet'"):
        replay(T.generate(load_scenario("vr_gaming"), 0.2, 0), load_platform(str(digits_profile)), "fcfs")


def test_costs_are_inf_where_an_accelerator_lacks_the_model(digits_profile, tmp_path):
    doc = json.loads(digits_profile.read_text())
    other = copy.deepcopy(doc["accelerators"][0])
    other["id"] = "empty"
    other["costs"]["models"] = {}
    doc["accelerators"].append(other)
    p = tmp_path / "two.json"
    p.write_text(json.dumps(doc))
    spec = load_platform(str(p))
    models = build_models(load_scenario("digits"), None, spec)
    costs = build_costs(models, spec, "profile")
    assert costs.lat[0][0][1] == [INF, INF] and all(x < INF for x in costs.lat[0][0][0])


def _broken(digits_profile, tmp_path, edit) -> str:
    doc = json.loads(digits_profile.read_text())
    edit(doc["accelerators"][0]["costs"]["models"]["digits"])
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(doc))
    return str(p)


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["variants"][1].pop("latency_ms"), r"models\.digits\.variants\[1\]: missing field 'latency_ms'"),
    (lambda m: m["variants"][0]["energy_mj"].append(1.0), r"variants\[0\]: field 'energy_mj' must be a list of 2"),
    (lambda m: m.update(segments=3), r"variants\[0\]: field 'latency_ms' must be a list of 3"),
    (lambda m: m["variants"][2]["latency_ms"].__setitem__(0, -1.0), r"variants\[2\]: field 'latency_ms\[0\]'"),
    (lambda m: m.pop("segments"), r"models\.digits: missing field 'segments'"),
    (lambda m: m["variants"][0].update(accuracy=1.5), r"variants\[0\]: field 'accuracy'"),
])
def test_malformed_profile_names_the_field(digits_profile, tmp_path, edit, field):
    path = _broken(digits_profile, tmp_path, edit)
    with pytest.raises(FileFormatError, match=field) as e:
        load_platform(path)
    assert path in str(e.value) and "accelerators[0].costs" in str(e.value)


def test_accelerators_must_agree_on_a_models_segments(digits_profile, tmp_path):
    doc = json.loads(digits_profile.read_text())
    other = copy.deepcopy(doc["accelerators"][0])
    other["id"] = "other"
    m = other["costs"]["models"]["digits"]
    m["segments"] = 1
    for v in m["variants"]:
        for k in ("latency_ms", "latency_p90_ms", "energy_mj"):
            v[k] = v[k][:1]
    doc["accelerators"].append(other)
    p = tmp_path / "disagree.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=r"accelerators\[1\]\.costs\.models\.digits: field 'segments'"):
        load_platform(str(p))


def test_a_failing_device_is_skipped_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGE_SDRM3_MODEL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "p.json"
    assert main(["profile", "--models", "digits", "--devices", "edgetpu,cpu:1", "--runs", "2", "--warmup", "1",
                 "--energy-window", "0", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "device edgetpu skipped:" in err and "libedgetpu" in err
    assert [a["id"] for a in json.loads(out.read_text())["accelerators"]] == ["cpu_1"]
    # only a failing device: a clear error, exit 2, no traceback, no file
    out2 = tmp_path / "q.json"
    assert main(["profile", "--models", "digits", "--devices", "edgetpu", "-o", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "no device could be profiled" in err and "Traceback" not in err and not out2.exists()


def test_unknown_model_is_an_error(tmp_path, capsys):
    assert main(["profile", "--models", "no_such_model", "--devices", "cpu:1", "-o", str(tmp_path / "x.json")]) == 2
    assert "no model 'no_such_model'" in capsys.readouterr().err


def test_scenario_cost_table_profile_is_accepted_and_others_rejected(tmp_path):
    assert load_scenario("mediapipe_xr").cost_table == catalog.PROFILE
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"format": "edge-sdrm3-scenario", "version": 1, "name": "s", "cost_table": "nope",
                             "models": [{"name": "digits", "fps": 1}]}))
    with pytest.raises(FileFormatError, match="field 'cost_table'.*known: xrbench, profile"):
        load_scenario(str(p))
