"""`edge-sdrm3 tune`: a table of searched parameters that SDRM3 loads, and its judgement against the defaults."""
import json

from edge_sdrm3.cli import main
from edge_sdrm3.core.params_table import load_table
from edge_sdrm3.core.policies import make_policy
from edge_sdrm3.sweep.tune import searchable


def test_the_searched_parameters_are_read_from_the_constructor():
    found = searchable("sdrm3")
    theta = make_policy("sdrm3").theta
    for k in ("alpha", "beta", "gamma", "delta"):
        assert found[k] == getattr(theta, k)
    assert "params_table" not in found and "theta" not in found and isinstance(found.get("shed"), bool)


def test_tune_writes_a_table_that_is_never_worse_on_its_training_seeds(tmp_path, capsys):
    out = tmp_path / "table.json"
    argv = ["tune", "--scenarios", "vr_gaming,outdoor_a", "--platforms", "single_4k_ws", "--seeds", "0",
            "--duration", "1", "--trials", "3", "--workers", "2", "-o", str(out)]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert [e["scenario"] for e in doc["entries"]] == ["vr_gaming", "outdoor_a"]
    for e in doc["entries"]:
        assert e["train_uxcost"] <= e["train_uxcost_default"]
        assert set(e["params"]) == set(searchable("sdrm3"))
    table = load_table(str(out))
    assert len(table.entries) == 2
    # the same search on one worker gives the same table
    again = tmp_path / "again.json"
    assert main(argv[:-4] + ["--workers", "1", "-o", str(again)]) == 0
    assert again.read_text() == out.read_text()
    # judged on a held-out seed: the figures of both
    capsys.readouterr()
    assert main(["tune", "--judge", str(out), "--scenarios", "vr_gaming,outdoor_b", "--platforms", "single_4k_ws",
                 "--seeds", "7", "--duration", "1", "--workers", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["cells"] == 2 and res["uxcost_default"] > 0 and res["uxcost_tuned"] > 0
    dist = {c["scenario"]: c["distance"] for c in res["per_cell"]}
    assert dist["vr_gaming"] == 0 and dist["outdoor_b"] > 0  # its entry, and the nearest one


def test_tune_refuses_an_unknown_parameter(capsys):
    assert main(["tune", "--scenarios", "vr_gaming", "--platforms", "single_4k_ws", "--search", "alpha,zeta",
                 "-o", "/dev/null"]) == 2
    assert "no parameter 'zeta'" in capsys.readouterr().err


def test_merge_adds_entries_to_an_existing_table(tmp_path, capsys):
    out = tmp_path / "table.json"
    common = ["--platforms", "single_4k_ws", "--seeds", "0", "--duration", "0.5", "--trials", "1", "--workers", "1",
              "-o", str(out)]
    assert main(["tune", "--scenarios", "vr_gaming,outdoor_a"] + common) == 0
    first = {e["scenario"]: e for e in json.loads(out.read_text())["entries"]}
    assert main(["tune", "--scenarios", "outdoor_a,social_a", "--search-seed", "5", "--merge"] + common) == 0
    doc = json.loads(out.read_text())
    assert sorted(e["scenario"] for e in doc["entries"]) == ["outdoor_a", "social_a", "vr_gaming"]
    assert next(e for e in doc["entries"] if e["scenario"] == "vr_gaming") == first["vr_gaming"]
    assert len(load_table(str(out)).entries) == 3
