"""Running a sweep: records as `replay --json` gives them, resumption, and the same records on every executor."""
import json

import pytest

from edge_sdrm3.cli import main
from edge_sdrm3.sweep.grid import grid_from
from edge_sdrm3.sweep.runner import LocalExecutor, read_records, run_sweep

GRID = ["--scenarios", "outdoor_a,vr_gaming", "--platforms", "single_4k_ws,dual_4k_ws_os",
        "--policies", "fcfs,edf,sdrm3", "--seeds", "0,1", "--duration", "1", "--param", "alpha=0.05,0.5"]
N_CELLS = 2 * 2 * 2 * (1 + 1 + 2)


def lines_of(path):
    return sorted(path.read_text().splitlines())


def test_a_cell_is_the_replay_of_its_trace_plus_seed_and_params(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["sweep"] + GRID + ["-o", str(out), "--workers", "1"]) == 0
    recs = read_records(out)
    assert len(recs) == N_CELLS
    rec = next(r for r in recs if r["policy"] == "sdrm3" and r["seed"] == 1 and r["params"] == {"alpha": 0.5}
               and r["platform"] == "dual_4k_ws_os" and r["scenario"] == "vr_gaming")
    capsys.readouterr()
    assert main(["replay", "vr_gaming", "--platform", "dual_4k_ws_os", "--policy", "sdrm3", "--seed", "1",
                 "--duration", "1", "--param", "alpha=0.5", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in rec.items() if k not in ("cell", "params")} == single
    assert rec["cell"] == {"scenario": "vr_gaming", "platform": "dual_4k_ws_os", "policy": "sdrm3", "seed": 1,
                           "duration_s": 1.0, "params": {"alpha": 0.5}}
    # `report` reads the file: one line per policy (with its parameters)
    assert main(["report", str(out)]) == 0
    rep = capsys.readouterr().out
    assert f"a sweep of {N_CELLS} cells" in rep
    assert [x.split()[0] for x in rep.splitlines()[3:]] == ["fcfs", "edf", "sdrm3", "sdrm3"]
    assert "sdrm3 alpha=0.05" in rep and "sdrm3 alpha=0.5" in rep


def test_resumption_completes_a_partial_file_without_rerunning_its_cells(tmp_path, capsys):
    full = tmp_path / "full.jsonl"
    assert main(["sweep"] + GRID + ["-o", str(full), "--workers", "1"]) == 0
    lines = full.read_text().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    # an interrupted sweep: 9 cells written, the 10th torn half-way
    part.write_text("".join(lines[:9]) + lines[9][: len(lines[9]) // 2])
    # a present cell is not run again: mark one, it must come back untouched
    marked = json.loads(lines[0])
    marked["uxcost"] = 12345.0
    part.write_text(json.dumps(marked, sort_keys=True) + "\n" + part.read_text().split("\n", 1)[1])
    capsys.readouterr()
    assert main(["sweep"] + GRID + ["-o", str(part), "--workers", "2"]) == 0
    assert f"{N_CELLS} cells (9 already done, {N_CELLS - 9} run)" in capsys.readouterr().out
    got = read_records(part)
    assert len(got) == N_CELLS and part.read_text().endswith("\n")
    assert sum(r["uxcost"] == 12345.0 for r in got) == 1
    marked["uxcost"] = json.loads(lines[0])["uxcost"]
    assert sorted(part.read_text().splitlines()[1:] + [json.dumps(marked, sort_keys=True)]) == \
        sorted(x.rstrip("\n") for x in lines)
    # complete: nothing runs
    assert main(["sweep"] + GRID + ["-o", str(part)]) == 0
    assert f"({N_CELLS} already done, 0 run)" in capsys.readouterr().out
    assert len(read_records(part)) == N_CELLS


def test_a_failed_cell_is_recorded_and_run_again(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    argv = ["sweep", "--scenarios", "vr_gaming", "--platforms", "single_4k_ws", "--policies", "sdrm3",
            "--duration", "0.5", "--param", "alpha=0.05,abc", "-o", str(out), "--workers", "1"]
    assert main(argv) == 1  # alpha=abc is taken by the constructor and fails in the replay
    recs = read_records(out)
    assert sum("error" in r for r in recs) == 1 and len(recs) == 2
    assert "failed:" in capsys.readouterr().out
    assert main(argv) == 1
    assert "(1 already done, 1 run, 1 failed)" in capsys.readouterr().out


def test_local_workers_give_the_records_of_one_process(tmp_path):
    grid = grid_from({"scenarios": "outdoor_a,vr_gaming", "platforms": "single_4k_ws,dual_4k_ws_os",
                      "policies": "fcfs,sdrm3,sdrm3+supernet", "seeds": "0..1", "duration": 1})
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_sweep(grid.cells(), str(a), LocalExecutor(1))
    run_sweep(grid.cells(), str(b), LocalExecutor(2))
    assert lines_of(a) == lines_of(b) and len(lines_of(a)) == 24


def test_ray_gives_the_records_of_local_workers(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (the 'cluster' extra)")
    from edge_sdrm3.sweep.runner import RayExecutor

    grid = grid_from({"scenarios": "outdoor_a,vr_gaming", "platforms": "dual_4k_ws_os", "policies": "fcfs,sdrm3",
                      "seeds": "0,1", "duration": 1, "params": {"slack_use": [0.3, 0.6]}})
    cells = grid.cells()
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run_sweep(cells, str(local), LocalExecutor(2))
    ex = RayExecutor("auto", num_cpus=2)
    try:
        assert ex.started and ray.is_initialized() and ex.cpus == 2  # a local instance, started for the sweep
        run_sweep(cells, str(on_ray), ex)
    finally:
        ex.close()
    assert not ray.is_initialized()
    assert lines_of(local) == lines_of(on_ray) and len(lines_of(local)) == 12


def test_random_cells_replay_the_generators_mix(tmp_path):
    from edge_sdrm3 import random_scenarios as gen
    from edge_sdrm3.catalog import load_cost_table

    out = tmp_path / "r.jsonl"
    assert main(["sweep", "--scenarios", "random:3..4", "--platforms", "dual_4k_ws_os", "--policies", "edf",
                 "--duration", "0.5", "-o", str(out), "--workers", "1"]) == 0
    recs = {r["cell"]["scenario"]: r for r in read_records(out)}
    table = load_cost_table("xrbench")
    for seed in (3, 4):
        sc = gen.random_scenario(seed, table, "xrbench")
        assert recs[f"random:{seed}"]["scenario"] == sc.name
        assert set(recs[f"random:{seed}"]["models"]) == {m.name for m in sc.models}
