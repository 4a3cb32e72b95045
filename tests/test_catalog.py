"""The shipped scenarios, platforms and XRBench cost table (made by tools/convert_xrbench.py)."""
import csv
import gzip
from collections import defaultdict
from pathlib import Path

import pytest

from edge_sdrm3.catalog import (
    build_costs, build_models, list_platforms, list_scenarios, load_cost_table, load_platform, load_scenario,
    model_cycles,
)

# the PE1024_noc128 / OS rows of the public XRBench data's variant_costs.csv (columns model, width, layer_index,
# latency_cycles, energy_nJ), gzipped: the per-layer costs the shipped edge_sdrm3/data/models/xrbench/costs.json sums per segment
VARIANT_CSV = Path(__file__).resolve().parent / "data" / "xrbench_variant_costs_PE1024_noc128_OS.csv.gz"


def test_seven_scenarios_load():
    names = [n for n in list_scenarios() if load_scenario(n).cost_table == "xrbench"]  # not the profiled ones
    assert names == ["ar_assistant", "ar_gaming", "outdoor_a", "outdoor_b", "social_a", "social_b", "vr_gaming"]
    table = load_cost_table("xrbench")
    for n in names:
        sc = load_scenario(n)
        assert sc.name == n and sc.cost_table == "xrbench"
        assert all(m.name in table["models"] for m in sc.models)
    vr = load_scenario("vr_gaming")
    assert [(m.name, m.fps, m.upstream) for m in vr.models] == [
        ("ES_RITNet", 60.0, None), ("GE_FBNet_C", 60.0, "ES_RITNet"), ("HT_hand_graph_cnn_half", 45.0, None)]
    asr = load_scenario("outdoor_a").models[1]
    assert (asr.name, asr.upstream, asr.trigger_probability) == ("ASR_EM_24L", "KD_res8_narrow", 0.2)


def test_thirty_eight_platforms_load():
    names = [n for n in list_platforms() if load_platform(n).table == "xrbench"]  # not the profiled ones
    assert len(names) == 38
    counts = defaultdict(int)
    for n in names:
        spec = load_platform(n)
        assert spec.platform.name == n and spec.table == "xrbench"
        counts[len(spec.platform.accelerators)] += 1
    # single: 2 hw configs x 3 dataflows; dual: 6 x 4; quad: 2 x 4
    assert dict(counts) == {1: 6, 2: 24, 4: 8}
    lb = load_platform("dual_4k_littlebig_ws_os")
    assert lb.units == ("PE1024_noc128/WS", "PE3072_noc128/OS")  # accelerator i takes dataflow i


def test_segment_boundaries_are_the_same_for_every_width_and_unit():
    table = load_cost_table("xrbench")
    for name, m in table["models"].items():
        segs = m["segments"]
        # contiguous half-open layer ranges covering every layer, each non-empty
        assert segs[0][0] == 0 and segs[-1][1] == m["layers"]
        assert all(a < b for a, b in segs) and all(segs[i][1] == segs[i + 1][0] for i in range(len(segs) - 1))
        for unit in table["units"].values():
            for w in ("1.0", "0.75", "0.5", "0.25"):
                e = unit["models"][name][w]
                assert len(e["cycles"]) == len(e["energy_nj"]) == len(segs)


def test_segment_costs_are_the_layer_sums_over_the_same_boundaries():
    # for every width, each segment's cycles = the sum of its layers' cycles in variant_costs.csv, with the
    # boundaries of costs.json: the same layer ranges at every width
    table = load_cost_table("xrbench")
    layers = defaultdict(dict)
    with gzip.open(VARIANT_CSV, "rt", newline="") as f:
        for row in csv.DictReader(f):
            layers[(row["model"], str(float(row["width"])))][int(row["layer_index"])] = (
                int(row["latency_cycles"]), float(row["energy_nJ"]))
    assert len(layers) == 12 * 4  # every model at every width
    unit = table["units"]["PE1024_noc128/OS"]["models"]
    for name, m in table["models"].items():
        for w in ("1.0", "0.75", "0.5", "0.25"):
            per = layers[(name, w)]
            assert len(per) == m["layers"]
            assert unit[name][w]["cycles"] == [sum(per[i][0] for i in range(a, b)) for a, b in m["segments"]]
            assert unit[name][w]["energy_nj"] == pytest.approx(
                [sum(per[i][1] for i in range(a, b)) for a, b in m["segments"]], rel=1e-9, abs=1e-5)


def test_four_variants_with_decreasing_accuracy():
    table = load_cost_table("xrbench")
    assert len(table["models"]) == 12
    for name, m in table["models"].items():
        v = m["variants"]
        assert [x["width"] for x in v] == [1.0, 0.75, 0.5, 0.25]
        acc = [x["accuracy"] for x in v]
        assert acc[0] == 1.0 and acc[0] > acc[1] > acc[2] > acc[3] > 0
        # MobileNet width-multiplier retention: 68.4 / 70.6, 63.7 / 70.6, 50.6 / 70.6
        assert acc[1:] == pytest.approx([0.9688, 0.9023, 0.7167], abs=1e-4)
    sc = load_scenario("vr_gaming")
    assert [len(m.variants) for m in build_models(sc)] == [1, 1, 1]  # default: the largest only
    assert [len(m.variants) for m in build_models(sc, None)] == [4, 4, 4]


def test_es_ritnet_costs_on_single_4k_ws():
    # shared/data/xrbench/README.md: "ES_RITNet on PE4096_noc256/WS: 42 layers sum to 1.503136 ms and 35.32971 mJ"
    sc = load_scenario("vr_gaming")
    models = build_models(sc)
    spec = load_platform("single_4k_ws")
    costs = build_costs(models, spec, "xrbench")
    i = [m.name for m in models].index("ES_RITNet")
    assert len(costs.lat[i][0][0]) == 4  # 4 segments
    assert sum(costs.lat[i][0][0]) == pytest.approx(1.503136, abs=1e-9)
    assert sum(costs.en[i][0][0]) == pytest.approx(35.32971, abs=1e-5)
    assert costs.reference_energy(i) == pytest.approx(35.32971, abs=1e-5)
    assert model_cycles("ES_RITNet", 1.0, "PE4096_noc256/WS") == 1503136


def test_narrower_variants_never_cost_more():
    sc = load_scenario("ar_assistant")
    models = build_models(sc, None)
    costs = build_costs(models, load_platform("dual_4k_biglittle_ws_os"), "xrbench")
    for m in range(len(models)):
        for a in range(2):
            lat = [sum(costs.lat[m][v][a]) for v in range(4)]
            en = [sum(costs.en[m][v][a]) for v in range(4)]
            assert lat == sorted(lat, reverse=True) and en == sorted(en, reverse=True)
            assert en[3] < en[0]


def test_an_emulated_accelerator_relative_to_a_profiled_one(tmp_path) -> None:
    import json as _json

    from edge_sdrm3.catalog import FileFormatError, build_costs, build_models, load_platform, load_scenario

    spec = load_platform("headset_emulated")
    ids = [a.id for a in spec.platform.accelerators]
    assert ids == ["cpu", "npu0", "gpu0"]
    sc = load_scenario("digits")
    models = build_models(sc, None, spec)
    costs = build_costs(models, spec, sc.cost_table)
    cpu, npu = costs.lat[0][0][0], costs.lat[0][0][1]
    # the NPU runs every segment 4x faster than the profiled CPU, drawing 600 mW: energy = ms * 0.6 mJ
    assert npu == pytest.approx([x / 4.0 for x in cpu])
    assert costs.en[0][0][1] == pytest.approx([x * 0.6 for x in npu])
    doc = _json.loads(load_platform.__globals__["PLATFORM_DIR"].joinpath("headset_emulated.json").read_text())
    doc["accelerators"][1]["costs"]["of"] = "tpu9"
    bad = tmp_path / "bad.json"
    bad.write_text(_json.dumps(doc))
    with pytest.raises(FileFormatError, match=r"accelerators\[1\]\.costs: field 'of': no accelerator 'tpu9'"):
        load_platform(str(bad))
    doc["accelerators"][1]["costs"]["of"] = "gpu0"  # itself emulated: it has no profile of its own
    bad.write_text(_json.dumps(doc))
    with pytest.raises(FileFormatError, match="has no profile"):
        load_platform(str(bad))
