"""Native replay semantics (DESIGN.md §6) on small custom scenario and platform files.

Costs used below (models/xrbench/costs.json, width 1.0, unit PE4096_noc256/WS, 1 GHz):
  KD_res8_narrow  segments 23904 + 6336 + 6336 + 3320 cycles = 0.039896 ms, 0.143910768 mJ
  AS_ED_TCN       515208 + 193204 + 289806 + 386406 cycles = 1.384624 ms, 13.165638496 mJ
  ASR_EM_24L      4 x 37748736 cycles = 150.994944 ms, 1473.342225777 mJ
"""
import json

import pytest

from edge_sdrm3.catalog import load_platform, load_scenario
from edge_sdrm3.cli import main
from edge_sdrm3.sim import trace as T
from edge_sdrm3.sim.replay import replay

KD_MS, KD_MJ = 0.039896, 0.143910768096
AS_MS, AS_MJ = 1.384624, 13.165638496128
ASR_MS, ASR_MJ = 150.994944, 1473.34222577664


def scenario_file(tmp_path, models, name="custom"):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps({"format": "edge-sdrm3-scenario", "version": 1, "name": name,
                             "cost_table": "xrbench", "models": models}))
    return str(p)


def platform_file(tmp_path, units=("PE4096_noc256/WS",), name="one"):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps({
        "format": "edge-sdrm3-platform", "version": 1, "name": name,
        "accelerators": [{"id": f"npu{i}", "kind": "emulated", "costs": {"table": "xrbench", "unit": u},
                          "idle_power_mw": 0.0} for i, u in enumerate(units)],
        "handoff": {"latency_ms": 0.0, "energy_mj": 0.0}}))
    return str(p)


def run(tmp_path, models, duration_s, seed=0, policy="fcfs", units=("PE4096_noc256/WS",)):
    tr = T.generate(load_scenario(scenario_file(tmp_path, models)), duration_s, seed)
    res, comps = replay(tr, load_platform(platform_file(tmp_path, units)), policy, keep_completions=True)
    return tr, res, comps


def by_key(comps):
    out = {}
    for c in comps:
        assert (c.model, c.frame) not in out, f"two completions for {c.model} frame {c.frame}"
        out[(c.model, c.frame)] = c
    return out


def due_frames(tr):
    return {(f.model, f.frame) for f in tr.frames if f.fired}


CASCADE = [{"name": "KD_res8_narrow", "fps": 10},
           {"name": "AS_ED_TCN", "fps": 10, "upstream": "KD_res8_narrow", "trigger_probability": 0.5}]


def test_one_completion_per_due_frame_and_cascade_waits_for_upstream(tmp_path):
    tr, res, comps = run(tmp_path, CASCADE, 4.0, seed=1)
    cs = by_key(comps)
    # 4 s at 10 fps: 40 KD frames, all due; AS frames are due only where the p = 0.5 trigger fired
    fired = [f.frame for f in tr.frames if f.model == "AS_ED_TCN" and f.fired]
    assert 0 < len(fired) < 40
    assert set(cs) == due_frames(tr)
    assert res["frames_due"] == 40 + len(fired)
    # everything is tiny next to the 100-ms period: no miss
    assert res["frames_missed"] == 0 and all(c.status == "done" for c in comps)
    for f in fired:
        up, down = cs[("KD_res8_narrow", f)], cs[("AS_ED_TCN", f)]
        # released when its upstream completes (KD: 0.039896 ms after the frame's release) and not before
        assert down.release_ms == up.end_ms == pytest.approx(f * 100.0 + KD_MS)
        assert down.start_ms >= up.end_ms
        assert down.end_ms == pytest.approx(f * 100.0 + KD_MS + AS_MS)
    # frames whose trigger did not fire are not due: no completion, no energy
    not_fired = [f.frame for f in tr.frames if f.model == "AS_ED_TCN" and not f.fired]
    assert not_fired and all(("AS_ED_TCN", f) not in cs for f in not_fired)
    assert res["models"]["AS_ED_TCN"]["energy_mj"] == pytest.approx(len(fired) * AS_MJ)


def test_dropped_upstream_makes_the_cascaded_frame_missed(tmp_path):
    # One accelerator; ASR (151 ms) at 2 fps hogs it: FCFS starts ASR frame 0 at 0 (its trace line comes
    # first at t = 0, so it is released first) and, one segment at a time, keeps it until 150.994944.
    #   KD frame 0 (deadline 100) cannot start before its deadline -> dropped at 100 -> AS frame 0 missed
    #   KD frame 1 (released 100) runs 150.994944 .. 151.03484, on time -> AS frame 1 released at 151.03484,
    #   runs until 151.03484 + 1.384624 = 152.419464 (deadline 200): done
    #   ASR frame 1 at 500 again blocks KD frame 5 (deadline 600) -> KD 5 dropped, AS 5 missed
    models = [{"name": "ASR_EM_24L", "fps": 2}, {"name": "KD_res8_narrow", "fps": 10},
              {"name": "AS_ED_TCN", "fps": 10, "upstream": "KD_res8_narrow"}]
    tr, res, comps = run(tmp_path, models, 1.0)
    cs = by_key(comps)
    assert set(cs) == due_frames(tr)
    missed = {k for k, c in cs.items() if c.status != "done"}
    assert missed == {("KD_res8_narrow", 0), ("KD_res8_narrow", 5), ("AS_ED_TCN", 0), ("AS_ED_TCN", 5)}
    for f in (0, 5):
        c = cs[("AS_ED_TCN", f)]
        assert c.status == "dropped" and c.start_ms == -1.0 and c.energy_mj == 0.0
        assert "upstream" in c.reason
    a1 = cs[("AS_ED_TCN", 1)]
    assert a1.release_ms == pytest.approx(ASR_MS + KD_MS)  # 151.03484
    assert a1.end_ms == pytest.approx(ASR_MS + KD_MS + AS_MS)  # 152.419464
    # 2 ASR + 10 KD + 10 AS due, 4 missed
    assert (res["frames_due"], res["frames_missed"]) == (22, 4)
    # energy: what ran (2 ASR, 8 KD, 8 AS) + the 4 missed frames at their reference (the one accelerator's
    # cost) = exactly E_ref = 2 x 1473.342 + 10 x 0.1439 + 10 x 13.1656 = 3079.7799 mJ
    e = 2 * ASR_MJ + 10 * KD_MJ + 10 * AS_MJ
    assert res["energy_mj"] == pytest.approx(e) and res["energy_ref_mj"] == pytest.approx(e)
    assert res["models"]["AS_ED_TCN"]["energy_mj"] == pytest.approx(10 * AS_MJ)
    # UXCost = (E / E_ref) (M + 1) / (N + 1) = 1 x 5 / 23
    assert res["uxcost"] == pytest.approx(5 / 23)


def test_late_upstream_makes_the_cascaded_frame_missed(tmp_path):
    # KD declares a 0.039-ms deadline but needs 0.039896 ms: every KD job starts at once, its last block
    # starts at 0.036576 ms, before the deadline (so firm deadlines let it run), and it ends late;
    # every AS frame (p = 1) is then missed without running and charged its reference energy
    models = [{"name": "KD_res8_narrow", "fps": 10, "deadline_ms": 0.039},
              {"name": "AS_ED_TCN", "fps": 10, "upstream": "KD_res8_narrow"}]
    tr, res, comps = run(tmp_path, models, 2.0)
    cs = by_key(comps)
    assert len(cs) == 40
    assert all(cs[("KD_res8_narrow", f)].status == "late" for f in range(20))
    assert all(cs[("AS_ED_TCN", f)].status == "dropped" and cs[("AS_ED_TCN", f)].start_ms == -1.0
               for f in range(20))
    assert (res["frames_due"], res["frames_missed"]) == (40, 40)
    assert res["models"]["AS_ED_TCN"]["energy_mj"] == pytest.approx(20 * AS_MJ)  # 263.3128 mJ, nothing ran
    # E = E_ref, M = N = 40: UXCost = 1 x 41 / 41
    assert res["uxcost"] == pytest.approx(1.0)
    assert res["xrbench_score"] == pytest.approx(
        # KD frames: 0.000896 ms late, RT = 1 / (1 + e^(15 x 0.000896)) = 0.49664, x (1500 - 0.1439) / 1500,
        # due 20, no drop; AS: 0. Overall = mean of the two = 100 x 0.49659 / 2 = 24.830
        100 * (1 / (1 + 2.718281828459045 ** (15 * (KD_MS - 0.039)))) * (1500 - KD_MJ) / 1500 / 2, rel=1e-6)


def test_cascade_at_a_faster_rate_follows_the_upstream_frame_of_its_period(tmp_path):
    # KD at 10 fps (frames at 0, 100 ms), AS cascaded at 30 fps (frames at 0, 33.3, 66.7, 100, 133.3, 166.7):
    # AS frames 0-2 belong to KD frame 0, frames 3-5 to KD frame 1. AS 0 and 3 wait for KD to end
    # (0.039896 ms after 0 and 100); the others are released at their own time, KD having ended before.
    models = [{"name": "KD_res8_narrow", "fps": 10},
              {"name": "AS_ED_TCN", "fps": 30, "upstream": "KD_res8_narrow"}]
    tr, res, comps = run(tmp_path, models, 0.2)
    cs = by_key(comps)
    assert set(cs) == due_frames(tr) and len(cs) == 2 + 6
    rel = [cs[("AS_ED_TCN", f)].release_ms for f in range(6)]
    assert rel == pytest.approx([KD_MS, 1000 / 30, 2000 / 30, 100 + KD_MS, 4000 / 30, 5000 / 30])
    assert all(c.status == "done" for c in comps)
    # AS deadlines are its own frames' periods: (f + 1) x 33.33 ms
    deadlines = [cs[("AS_ED_TCN", f)].deadline_ms for f in range(6)]
    assert deadlines == pytest.approx([(f + 1) * 1000 / 30 for f in range(6)])


def test_frame_of_a_root_model_whose_trigger_did_not_fire_is_not_due(tmp_path):
    # a model without upstream but with a trigger probability: only the frames that fired are due
    models = [{"name": "KD_res8_narrow", "fps": 10, "trigger_probability": 0.5}]
    tr, res, comps = run(tmp_path, models, 4.0, seed=2)
    fired = [f.frame for f in tr.frames if f.fired]
    assert 0 < len(fired) < 40
    assert sorted(c.frame for c in comps) == fired
    assert res["frames_due"] == len(fired)
    assert res["models"]["KD_res8_narrow"]["energy_mj"] == pytest.approx(len(fired) * KD_MJ)


def test_run_drains(tmp_path):
    # ASR at 10 fps on one accelerator: four blocks of 37.748736 ms, 151 ms a job > 100-ms period. Firm
    # deadlines: a job whose block ends at or past its deadline is dropped there, the rest not run. The run
    # continues past the 0.5-s trace until the last started block ends (block ends in units of B = 37.75 ms):
    #   f0 3 blocks, dropped at 3B = 113.25 (deadline 100); f1 from 3B, 3 blocks, dropped at 6B = 226.49 (200);
    #   f2 from 6B, 2 blocks, dropped at 8B = 301.99 (300); f3 3 blocks to 11B = 415.24 (400);
    #   f4 3 blocks to 14B = 528.48 (500)
    tr, res, comps = run(tmp_path, [{"name": "ASR_EM_24L", "fps": 10}], 0.5)
    cs = by_key(comps)
    block = ASR_MS / 4
    assert {(c.status, c.reason) for c in comps} == {("dropped", "deadline")} and len(comps) == 5
    assert [cs[("ASR_EM_24L", f)].end_ms for f in range(5)] == pytest.approx([3 * block, 6 * block, 8 * block,
                                                                              11 * block, 14 * block])
    assert cs[("ASR_EM_24L", 2)].energy_mj == pytest.approx(ASR_MJ / 2)  # its two blocks count
    assert res["makespan_ms"] == pytest.approx(14 * block)
    assert res["frames_due"] == 5 == len(due_frames(tr))
    assert res["utilization"]["npu0"] == pytest.approx(1.0)  # 14 blocks back to back over 528.48 ms


def test_shipped_scenario_drains_and_counts_due_frames():
    tr = T.generate(load_scenario("ar_assistant"), 3.0, 4)
    res, comps = replay(tr, load_platform("dual_4k_biglittle_ws_os"), "fcfs", keep_completions=True)
    assert len(comps) == len({(c.model, c.frame) for c in comps})
    assert {(c.model, c.frame) for c in comps} == due_frames(tr)
    assert res["frames_due"] == len(due_frames(tr))
    assert all(c.status in ("done", "late", "dropped") for c in comps)
    assert res["frames_missed"] == sum(1 for c in comps if c.status != "done")


@pytest.mark.parametrize("policy,compat", [("fcfs", ""), ("xrbench", ""), ("xrbench", "xrbench")])
def test_same_inputs_give_byte_identical_results(tmp_path, capsys, policy, compat):
    tr_path = tmp_path / "t.jsonl"
    T.write(T.generate(load_scenario("outdoor_a"), 2.0, 9), tr_path)
    argv = ["replay", str(tr_path), "--platform", "dual_8k_ws_os", "--policy", policy, "--json"]
    if compat:
        argv += ["--compat", compat]
    outs = []
    for _ in range(2):
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    a = json.loads(outs[0])
    assert json.dumps(a, sort_keys=True) == outs[0].strip()
    assert a["frames_due"] > 0


def test_record_output_is_a_trace_that_replays_to_the_same_metrics(tmp_path, capsys):
    sc = scenario_file(tmp_path, CASCADE + [{"name": "ES_RITNet", "fps": 30}])
    pl = platform_file(tmp_path, ("PE1024_noc128/OS", "PE4096_noc256/WS"), name="two")
    rec = tmp_path / "run.jsonl"
    assert main(["replay", sc, "--platform", pl, "--policy", "fcfs", "--duration", "2", "--seed", "3",
                 "--json", "--record", str(rec)]) == 0
    first = json.loads(capsys.readouterr().out)
    tr = T.read(rec)
    assert (tr.duration_s, tr.seed, tr.scenario.name) == (2.0, 3, "custom")
    # one job record per due frame, then a summary line
    assert len(tr.jobs) == first["frames_due"]
    assert json.loads(rec.read_text().splitlines()[-1])["type"] == "summary"
    assert main(["replay", str(rec), "--platform", pl, "--policy", "fcfs", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second == first
