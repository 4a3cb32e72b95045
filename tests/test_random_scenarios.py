"""Random scenarios (``edge-sdrm3 scenarios random``): valid files, the promised shape, the same file for a seed."""
import json

import pytest

from edge_sdrm3.catalog import build_costs, build_models, load_cost_table, load_platform, load_scenario
from edge_sdrm3.cli import main
from edge_sdrm3.random_scenarios import random_scenario

SEEDS = range(200)
PLATFORMS = ("single_4k_ws", "dual_4k_ws_os", "dual_4k_biglittle_ws_os", "quad_4k_ws_os_ws_os", "dual_8k_ws_os",
             "quad_8k_ws_os_ws_os")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The files the command writes for seeds 0..199, loaded back by the scenario loader."""
    out = tmp_path_factory.mktemp("random")
    assert main(["scenarios", "random", "--seed", "0", "--count", str(len(SEEDS)), "-o", str(out)]) == 0
    return out, [load_scenario(str(out / f"random_{s:04d}.json")) for s in SEEDS]


def depth(sc, name: str) -> int:
    by = {m.name: m for m in sc.models}
    d = 1
    while by[name].upstream is not None:
        name = by[name].upstream
        d += 1
    return d


def test_every_file_loads_and_has_the_promised_shape(written):
    out, scenarios = written
    assert sorted(p.name for p in out.iterdir()) == [f"random_{s:04d}.json" for s in SEEDS]
    table = load_cost_table("xrbench")
    counts, depths, short, cascades = set(), set(), 0, 0
    for seed, sc in zip(SEEDS, scenarios):
        assert sc.name == f"random_{seed:04d}" and sc.cost_table == "xrbench"
        names = [m.name for m in sc.models]
        assert 3 <= len(names) <= 7 and len(set(names)) == len(names)
        assert set(names) <= set(table["models"])
        counts.add(len(names))
        by = {m.name: m for m in sc.models}
        for m in sc.models:
            assert 3 <= m.fps <= 120
            depths.add(depth(sc, m.name))
            if m.upstream is not None:
                cascades += 1
                assert by[m.upstream].fps == m.fps  # a cascade runs at its upstream's rate
                assert 0 < m.trigger_probability <= 1
            else:
                assert m.trigger_probability == 1.0
            if m.deadline_ms is not None:
                assert m.deadline_ms < 1000.0 / m.fps
                short += 1
    assert counts == {3, 4, 5, 6, 7}
    assert depths == {1, 2, 3}  # chains reach three models, never four
    assert cascades > 50 and short > 100  # many of both across 200 mixes


def test_every_mix_builds_on_the_benchmark_platforms(written):
    _, scenarios = written
    specs = [load_platform(p) for p in PLATFORMS]
    for sc in scenarios[:40]:
        models = build_models(sc)
        for spec in specs:
            costs = build_costs(models, spec, sc.cost_table)
            for i in range(len(models)):  # every model runs whole on some accelerator of every platform
                assert min(sum(costs.lat[i][0][a]) for a in range(len(spec.units))) < float("inf")


def test_the_same_seed_gives_the_same_file_and_other_seeds_other_mixes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["scenarios", "random", "--seed", "7", "--count", "3", "-o", str(a)]) == 0
    assert main(["scenarios", "random", "--seed", "8", "-o", str(b)]) == 0
    assert (a / "random_0008.json").read_bytes() == (b / "random_0008.json").read_bytes()
    table = load_cost_table("xrbench")
    assert random_scenario(8, table) == random_scenario(8, table)
    mixes = {json.dumps(random_scenario(s, table).to_dict()["models"]) for s in range(30)}
    assert len(mixes) == 30


def test_written_files_replay(tmp_path, capsys):
    assert main(["scenarios", "random", "--seed", "1", "--count", "2", "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[0].startswith(f"wrote {tmp_path / 'random_0001.json'}: ")
    path = tmp_path / "random_0001.json"
    assert main(["replay", str(path), "--platform", "dual_4k_ws_os", "--policy", "sdrm3", "--duration", "2",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    sc = load_scenario(str(path))
    assert res["scenario"] == "random_0001"
    assert set(res["models"]) == {m.name for m in sc.models}
    roots = [m for m in sc.models if m.upstream is None]
    assert res["frames_due"] >= sum(int(2 * m.fps) for m in roots)  # every root frame of 2 s is due


def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["scenarios", "random", "--seed", "1", "--count", "0", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--count" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["scenarios", "random", "--seed", "1", "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(blocker) in err
