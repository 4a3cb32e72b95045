"""Trace generation, the trace file format, and the errors of malformed trace / scenario / platform files."""
import json

import pytest

from edge_sdrm3 import catalog
from edge_sdrm3.catalog import FileFormatError, load_platform, load_scenario
from edge_sdrm3.sim import trace as T


def outcomes(tr, model):
    return [f.fired for f in tr.frames if f.model == model]


# --- generate -----------------------------------------------------------------------------------

def test_generate_releases_frames_at_f_over_fps():
    tr = T.generate(load_scenario("vr_gaming"), 1.0, 0)
    # 1 s: ES_RITNet and GE_FBNet_C at 60 fps -> f = 0..59 (59/60 < 1), HT at 45 fps -> f = 0..44
    names = ("ES_RITNet", "GE_FBNet_C", "HT_hand_graph_cnn_half")
    counts = {m: sum(1 for f in tr.frames if f.model == m) for m in names}
    assert counts == {"ES_RITNet": 60, "GE_FBNet_C": 60, "HT_hand_graph_cnn_half": 45}
    ht = [f for f in tr.frames if f.model == "HT_hand_graph_cnn_half"]
    assert ht[3].frame == 3 and ht[3].release_ms == pytest.approx(3 * 1000 / 45)  # 66.667 ms
    # every trigger has p = 1 here: every frame fires
    assert all(f.fired for f in tr.frames)
    # frames are in release order
    assert [f.release_ms for f in tr.frames] == sorted(f.release_ms for f in tr.frames)


def test_generate_is_deterministic_for_a_seed():
    sc = load_scenario("ar_assistant")
    a, b = T.generate(sc, 20.0, 7), T.generate(sc, 20.0, 7)
    assert a.frames == b.frames
    assert a.seed == 7 and a.duration_s == 20.0


def test_different_seeds_give_different_outcomes():
    # ASR_EM_24L is cascaded with p = 0.5 at 3 fps: 300 draws in 100 s; two seeds agreeing on all of
    # them would have probability 2^-300
    sc = load_scenario("ar_assistant")
    a, b = T.generate(sc, 100.0, 0), T.generate(sc, 100.0, 1)
    assert len(outcomes(a, "ASR_EM_24L")) == 300
    assert outcomes(a, "ASR_EM_24L") != outcomes(b, "ASR_EM_24L")
    # the release times do not depend on the seed
    assert [f.release_ms for f in a.frames] == [f.release_ms for f in b.frames]


@pytest.mark.parametrize("scenario,p", [("ar_assistant", 0.5), ("outdoor_a", 0.2)])
def test_fired_fraction_is_near_p(scenario, p):
    # 3000 draws at 3 fps over 1000 s: standard deviation sqrt(p(1-p)/3000) <= 0.0092; allow 0.04
    tr = T.generate(load_scenario(scenario), 1000.0, 0)
    fired = outcomes(tr, "ASR_EM_24L")
    assert len(fired) == 3000
    assert abs(sum(fired) / len(fired) - p) < 0.04
    assert 0 < sum(fired) < len(fired)


def test_outcomes_do_not_depend_on_duration():
    sc = load_scenario("ar_assistant")
    short, long = T.generate(sc, 10.0, 5), T.generate(sc, 100.0, 5)
    s, lo = outcomes(short, "ASR_EM_24L"), outcomes(long, "ASR_EM_24L")
    assert len(s) == 30 and len(lo) == 300
    assert lo[:30] == s  # prefix property
    assert [f for f in long.frames if f.release_ms < 10000.0] == short.frames


# --- write / read -------------------------------------------------------------------------------

def test_write_read_round_trip(tmp_path):
    tr = T.generate(load_scenario("ar_assistant"), 3.0, 11)
    p = tmp_path / "t.jsonl"
    jobs = [{"model": "KD_res8_narrow", "frame": 0, "status": "done", "end_ms": 0.04}]
    T.write(tr, p, jobs=jobs, summary={"uxcost": 0.5})
    back = T.read(p)
    assert back.frames == tr.frames
    assert back.scenario == tr.scenario
    assert (back.duration_s, back.seed) == (3.0, 11)
    assert back.jobs == [{"type": "job", **jobs[0]}]
    lines = p.read_text().splitlines()
    head = json.loads(lines[0])
    assert (head["format"], head["version"], head["duration_s"], head["seed"]) == ("edge-sdrm3-trace", 1, 3.0, 11)
    # one line per frame, then the job, then the summary
    assert len(lines) == 1 + len(tr.frames) + 2
    assert json.loads(lines[-1]) == {"type": "summary", "uxcost": 0.5}
    # the trigger outcome is stored for the cascaded model only
    recs = [json.loads(x) for x in lines[1:1 + len(tr.frames)]]
    assert all(("fired" in r) == (r["model"] == "ASR_EM_24L") for r in recs)
    assert T.is_trace(p)


def _valid_lines(tmp_path):
    tr = T.generate(load_scenario("ar_assistant"), 1.0, 0)
    p = tmp_path / "ok.jsonl"
    T.write(tr, p)
    return p.read_text().splitlines()


def _bad(tmp_path, lines):
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as e:
        T.read(p)
    msg = str(e.value)
    assert str(p) in msg
    return msg


def _find_line(lines, model):
    return next(i for i, x in enumerate(lines) if i > 0 and json.loads(x)["model"] == model)


def test_bad_json_names_line(tmp_path):
    lines = _valid_lines(tmp_path)
    lines[2] = '{"type": "frame", "model": '
    msg = _bad(tmp_path, lines)
    assert "line 3" in msg and "JSON" in msg


def test_unknown_record_type(tmp_path):
    lines = _valid_lines(tmp_path)
    lines[3] = json.dumps({"type": "frobnicate"})
    msg = _bad(tmp_path, lines)
    assert "line 4" in msg and "'type'" in msg and "frobnicate" in msg


def test_missing_release_ms(tmp_path):
    lines = _valid_lines(tmp_path)
    r = json.loads(lines[4])
    del r["release_ms"]
    lines[4] = json.dumps(r)
    msg = _bad(tmp_path, lines)
    assert "line 5" in msg and "release_ms" in msg


def test_bad_fired(tmp_path):
    lines = _valid_lines(tmp_path)
    i = _find_line(lines, "ASR_EM_24L")
    r = json.loads(lines[i])
    r["fired"] = "yes"
    lines[i] = json.dumps(r)
    msg = _bad(tmp_path, lines)
    assert f"line {i + 1}" in msg and "'fired'" in msg


def test_unknown_model(tmp_path):
    lines = _valid_lines(tmp_path)
    r = json.loads(lines[5])
    r["model"] = "NoSuchNet"
    lines[5] = json.dumps(r)
    msg = _bad(tmp_path, lines)
    assert "line 6" in msg and "'model'" in msg and "NoSuchNet" in msg


@pytest.mark.parametrize("field,value", [("version", 2), ("format", "something-else")])
def test_bad_header(tmp_path, field, value):
    lines = _valid_lines(tmp_path)
    h = json.loads(lines[0])
    h[field] = value
    lines[0] = json.dumps(h)
    msg = _bad(tmp_path, lines)
    assert "line 1" in msg and f"'{field}'" in msg


def test_duplicate_frame(tmp_path):
    lines = _valid_lines(tmp_path)
    lines.append(lines[1])  # the same (model, frame) again, as line len(lines)
    msg = _bad(tmp_path, lines)
    r = json.loads(lines[1])
    assert f"line {len(lines)}" in msg and f"frame {r['frame']} of {r['model']}" in msg


def test_empty_trace_file(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("")
    with pytest.raises(FileFormatError, match="line 1"):
        T.read(p)


def test_header_scenario_errors_name_the_line(tmp_path):
    lines = _valid_lines(tmp_path)
    h = json.loads(lines[0])
    h["scenario"]["models"][0]["fps"] = -3
    lines[0] = json.dumps(h)
    msg = _bad(tmp_path, lines)
    assert "line 1" in msg and "models[0]" in msg and "'fps'" in msg


# --- malformed scenario files -------------------------------------------------------------------

def _scenario(models, **extra):
    return {"format": "edge-sdrm3-scenario", "version": 1, "name": "t", "models": models, **extra}


def _load_bad_scenario(tmp_path, doc):
    p = tmp_path / "sc.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError) as e:
        load_scenario(str(p))
    msg = str(e.value)
    assert str(p) in msg
    return msg


KD = {"name": "KD_res8_narrow", "fps": 3}


@pytest.mark.parametrize("bad,expect", [
    ({"name": "AS_ED_TCN"}, ["models[1]", "missing", "'fps'"]),
    ({"name": "AS_ED_TCN", "fps": -5}, ["models[1]", "'fps'", "> 0"]),
    ({"name": "AS_ED_TCN", "fps": 3, "upstream": "ES_RITNet"}, ["models[1]", "'upstream'", "ES_RITNet"]),
    ({"name": "AS_ED_TCN", "fps": 3, "upstream": "KD_res8_narrow", "trigger_probability": 1.5},
     ["models[1]", "'trigger_probability'", "1.5"]),
    ({"name": "AS_ED_TCN", "fps": 3, "deadline_ms": 0}, ["models[1]", "'deadline_ms'"]),
    ({"name": "KD_res8_narrow", "fps": 3}, ["models[1]", "'name'", "twice"]),
])
def test_bad_scenario_model(tmp_path, bad, expect):
    msg = _load_bad_scenario(tmp_path, _scenario([KD, bad]))
    for s in expect:
        assert s in msg


def test_upstream_listed_after_is_rejected(tmp_path):
    doc = _scenario([{"name": "AS_ED_TCN", "fps": 3, "upstream": "KD_res8_narrow"}, KD])
    msg = _load_bad_scenario(tmp_path, doc)
    assert "models[0]" in msg and "'upstream'" in msg


def test_unknown_cost_table(tmp_path):
    msg = _load_bad_scenario(tmp_path, _scenario([KD], cost_table="nope"))
    assert "'cost_table'" in msg and "nope" in msg


def test_scenario_bad_json_names_line(tmp_path):
    p = tmp_path / "sc.json"
    p.write_text('{\n  "format": "edge-sdrm3-scenario",\n  "version": 1,\n  "name": oops\n}\n')
    with pytest.raises(FileFormatError) as e:
        load_scenario(str(p))
    assert str(p) in str(e.value) and "line 4" in str(e.value)


def test_valid_custom_scenario_defaults(tmp_path):
    p = tmp_path / "sc.json"
    p.write_text(json.dumps(_scenario([KD, {"name": "AS_ED_TCN", "fps": 3, "upstream": "KD_res8_narrow"}])))
    sc = load_scenario(str(p))
    assert sc.cost_table == "xrbench"
    assert sc.models[1].trigger_probability == 1.0 and sc.models[1].deadline_ms is None
    assert sc.models[0].upstream is None


# --- malformed platform files -------------------------------------------------------------------

def _platform(accs, **extra):
    return {"format": "edge-sdrm3-platform", "version": 1, "name": "p", "accelerators": accs, **extra}


ACC = {"id": "a0", "kind": "emulated", "costs": {"table": "xrbench", "unit": "PE4096_noc256/WS"}}


def _load_bad_platform(tmp_path, doc):
    p = tmp_path / "pl.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError) as e:
        load_platform(str(p))
    msg = str(e.value)
    assert str(p) in msg
    return msg


@pytest.mark.parametrize("bad,expect", [
    ({**ACC, "costs": {"table": "xrbench", "unit": "PE999/ZZ"}}, ["accelerators[1].costs", "'unit'", "PE999/ZZ"]),
    ({k: v for k, v in ACC.items() if k != "id"}, ["accelerators[1]", "missing", "'id'"]),
    ({**ACC, "id": "a1", "costs": {"table": "other", "unit": "PE4096_noc256/WS"}},
     ["accelerators[1].costs", "'table'"]),
    ({**ACC, "id": "a1", "idle_power_mw": -1}, ["accelerators[1]", "'idle_power_mw'"]),
    (ACC, ["'accelerators'", "unique"]),
])
def test_bad_platform_accelerator(tmp_path, bad, expect):
    msg = _load_bad_platform(tmp_path, _platform([ACC, bad]))
    for s in expect:
        assert s in msg


def test_bad_platform_handoff_and_version(tmp_path):
    msg = _load_bad_platform(tmp_path, _platform([ACC], handoff={"latency_ms": -1}))
    assert "handoff.latency_ms" in msg
    msg = _load_bad_platform(tmp_path, {**_platform([ACC]), "version": 7})
    assert "'version'" in msg


def test_unknown_names_list_the_shipped_ones():
    with pytest.raises(FileFormatError) as e:
        load_scenario("no_such_scenario")
    assert "no_such_scenario" in str(e.value) and "vr_gaming" in str(e.value)
    with pytest.raises(FileFormatError) as e:
        catalog.load_platform("no_such_platform")
    assert "no_such_platform" in str(e.value) and "single_4k_ws" in str(e.value)


def test_draws_nest_along_a_cascade() -> None:
    # face -> landmarks (p 0.5) -> iris (p 0.5): an iris frame can fire only inside a landmarks frame
    # that fired, so about a quarter of the iris frames fire, and none is left without its upstream
    from edge_sdrm3.catalog import Scenario, ScenarioModel

    sc = Scenario("nest", (ScenarioModel("face", 30.0), ScenarioModel("lm", 30.0, "face", 0.5),
                           ScenarioModel("iris", 30.0, "lm", 0.5)))
    tr = T.generate(sc, 20.0, 1)
    lm = {f.frame: f.fired for f in tr.frames if f.model == "lm"}
    iris = [f for f in tr.frames if f.model == "iris"]
    assert all(lm[f.frame] for f in iris if f.fired)
    share = sum(f.fired for f in iris) / len(iris)
    assert 0.18 < share < 0.32  # 0.25 expected over 600 frames
