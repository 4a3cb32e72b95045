"""The grid of a sweep: flags and TOML give the same cells; ranges, `all`/`baselines`, parameters; bad grids."""
import pytest

from edge_sdrm3.cli import build_parser, main
from edge_sdrm3.core.policies import BASELINES, policy_names
from edge_sdrm3.core.types import ConfigError
from edge_sdrm3.sweep.cli import grid_doc
from edge_sdrm3.sweep.grid import Cell, grid_from, parse_scenarios


def cells_of(argv):
    return grid_from(*grid_doc(build_parser().parse_args(["sweep"] + argv))).cells()


def test_flags_and_toml_give_the_same_cells(tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text('scenarios = ["vr_gaming", "outdoor_a"]\nplatforms = "single_4k_ws,dual_4k_ws_os"\n'
                    'policies = ["fcfs", "sdrm3"]\nseeds = "0..2"\nduration = 2.5\n'
                    '[params]\nalpha = [0.05, 0.2]\ntune = [false]\n')
    flags = ["--scenarios", "vr_gaming,outdoor_a", "--platforms", "single_4k_ws,dual_4k_ws_os", "--policies",
             "fcfs,sdrm3", "--seeds", "0,1,2", "--duration", "2.5", "--param", "alpha=0.05,0.2", "--param", "tune=false"]
    a, b = cells_of(flags), cells_of([str(toml)])
    assert a == b
    # 2 scenarios x 3 seeds x 2 platforms x (fcfs once + sdrm3 x 2 alphas): parameters go only where taken
    assert len(a) == 2 * 3 * 2 * 3
    assert Cell("outdoor_a", "dual_4k_ws_os", "sdrm3", 2, 2.5, (("alpha", 0.2), ("tune", False))) in a
    assert Cell("outdoor_a", "dual_4k_ws_os", "fcfs", 2, 2.5, ()) in a
    assert len({c.key() for c in a}) == len(a)
    # a flag given with the file overrides its key
    assert {c.seed for c in cells_of([str(toml), "--seeds", "7"])} == {7}


def test_random_ranges_and_policy_sets():
    assert parse_scenarios("random:3..5,vr_gaming,random:9") == ["random:3", "random:4", "random:5", "vr_gaming",
                                                                  "random:9"]
    assert {c.policy for c in cells_of(["--scenarios", "vr_gaming", "--platforms", "single_4k_ws"])} == \
        set(policy_names())
    assert [c.policy for c in cells_of(["--scenarios", "vr_gaming", "--platforms", "single_4k_ws",
                                        "--policies", "baselines,sdrm3"])] == \
        [p for p in policy_names() if not p.startswith("sdrm3")] + ["sdrm3"]
    assert set(BASELINES) <= {c.policy for c in cells_of(["--scenarios", "vr_gaming", "--platforms", "single_4k_ws",
                                                          "--policies", "baselines"])}


@pytest.mark.parametrize("argv, msg", [
    (["--policies", "fcfs,nope"], "unknown policy 'nope'"),
    (["--seeds", "5..2"], "bad range '5..2'"),
    (["--scenarios", "random:4..x"], "bad range '4..x'"),
    (["--seeds", "0..99999999999"], "more than a sweep takes"),
    (["--platforms", "no_such_platform"], "no_such_platform"),
    (["--param", "zeta=1,2"], "no policy of the grid takes the parameters zeta"),
    (["--param", "alpha"], "expected KEY=V1,V2"),
    (["--duration", "-1"], "duration must be > 0"),
    (["--duration", "1e9"], "at most 86400 s"),
])
def test_a_bad_grid_is_one_line_and_exit_2(capsys, argv, msg):
    base = {"--scenarios": "vr_gaming", "--platforms": "single_4k_ws", "--policies": "fcfs,sdrm3"}
    base.update(zip(argv[::2], argv[1::2]))
    assert main(["sweep"] + [x for kv in base.items() for x in kv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err


def test_a_bad_toml_key_names_the_file_and_the_key(tmp_path, capsys):
    toml = tmp_path / "grid.toml"
    toml.write_text('scenarios = "vr_gaming"\nplatforms = "single_4k_ws"\nseed = 3\n')
    assert main(["sweep", str(toml)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(toml) in err and "unknown key 'seed'" in err
    toml.write_text('scenarios = "vr_gaming"\nplatforms = [')
    assert main(["sweep", str(toml)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="platforms: missing"):
        grid_from({"scenarios": "vr_gaming"})
