#!/usr/bin/env python3
"""Convert the public XRBench data into the project's own scenario, platform and cost files.

Reads ``../shared/data/xrbench`` (or ``--src``) once; the project never reads it at run time.
Writes, under the package data (``edge_sdrm3/data/``, or ``--out``):
  models/xrbench/costs.json   per-segment cycles and energy of every model, width and sub-accelerator
  scenarios/<scenario>.json   the seven usage scenarios
  platforms/<platform>.json   the 38 hw-config x dataflow combinations of the XRBench evaluation

Segments: each model's layers are cut into ``--segments`` blocks of about equal MACs (at width 1.0);
the same boundaries serve every width and every sub-accelerator.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_NAMES = {
    "social_interactionA": "social_a",
    "social_interactionB": "social_b",
    "outdoor_activity_A": "outdoor_a",
    "outdoor_activity_B": "outdoor_b",
    "AR_Assistant": "ar_assistant",
    "AR_gaming": "ar_gaming",
    "VR_gaming": "vr_gaming",
}
WIDTHS = ("1.0", "0.75", "0.5", "0.25")
# Nominal top-1 of MobileNet at width 1.0/0.75/0.5/0.25 (DESIGN.md §6), applied as a retention ratio.
MOBILENET_TOP1 = {"1.0": 70.6, "0.75": 68.4, "0.5": 63.7, "0.25": 50.6}


def cut_segments(macs: list[int], n: int) -> list[list[int]]:
    """Half-open layer ranges of about equal MAC share; every block holds at least one layer."""
    n = max(1, min(n, len(macs)))
    total = float(sum(macs)) or 1.0
    bounds = [0]
    acc = 0.0
    for i, m in enumerate(macs):
        acc += m
        k = len(bounds)  # index of the boundary we are looking for
        if k < n and acc >= total * k / n:
            # end the block after layer i, but leave a layer for every later block
            end = min(i + 1, len(macs) - (n - k))
            if end > bounds[-1]:
                bounds.append(end)
    while len(bounds) < n:  # a few huge layers took several shares: split the tail evenly
        bounds.append(bounds[-1] + 1)
    bounds.append(len(macs))
    return [[bounds[i], bounds[i + 1]] for i in range(n)]


def parse_hw(path: Path) -> list[tuple[int, int]]:
    text = path.read_text()
    out = []
    for block in re.findall(r"Accelerator\s+\w+\s*\{(.*?)\}", text, re.S):
        pes = int(re.search(r"num_pes:\s*(\d+)", block).group(1))
        noc = int(re.search(r"top_noc_bw:\s*(\d+)", block).group(1))
        out.append((pes, noc))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "data" / "xrbench")
    ap.add_argument("--out", type=Path, default=ROOT / "edge_sdrm3" / "data")
    ap.add_argument("--segments", type=int, default=4)
    args = ap.parse_args()
    src: Path = args.src

    # per (model, width, unit) -> list over layers of (cycles, energy_nJ); macs per (model, layer) at w=1.0
    layers: dict = defaultdict(dict)
    macs: dict = defaultdict(dict)
    units: dict[str, dict] = {}
    with open(src / "variant_costs.csv", newline="") as f:
        for row in csv.DictReader(f):
            unit = f"{row['acc_label']}/{row['dataflow']}"
            units.setdefault(unit, {"num_pes": int(row["num_pes"]), "noc_bw": int(row["noc_bw"]),
                                    "dataflow": row["dataflow"]})
            w = str(float(row["width"]))
            key = (row["model"], w, unit)
            layers[key][int(row["layer_index"])] = (int(row["latency_cycles"]), float(row["energy_nJ"]))
            macs[(row["model"], w)][int(row["layer_index"])] = int(row["macs"])

    model_names = sorted({m for (m, _w) in macs})
    seg_of: dict[str, list[list[int]]] = {}
    models_out = {}
    for m in model_names:
        ml = macs[(m, "1.0")]
        per_layer = [ml[i] for i in range(len(ml))]
        seg_of[m] = cut_segments(per_layer, args.segments)
        models_out[m] = {
            "layers": len(per_layer),
            "segments": seg_of[m],
            "macs": {w: [sum(macs[(m, w)][i] for i in range(a, b)) for a, b in seg_of[m]] for w in WIDTHS},
            "variants": [{"name": f"w{w}", "width": float(w),
                          "accuracy": round(MOBILENET_TOP1[w] / MOBILENET_TOP1["1.0"], 4),
                          "accuracy_source": "nominal: MobileNet width-multiplier top-1 retention"}
                         for w in WIDTHS],
        }

    units_out = {}
    for unit in sorted(units):
        entry = dict(units[unit])
        entry["models"] = {}
        for m in model_names:
            entry["models"][m] = {}
            for w in WIDTHS:
                per = layers[(m, w, unit)]
                cyc = [sum(per[i][0] for i in range(a, b)) for a, b in seg_of[m]]
                enj = [round(sum(per[i][1] for i in range(a, b)), 6) for a, b in seg_of[m]]
                entry["models"][m][w] = {"cycles": cyc, "energy_nj": enj}
        units_out[unit] = entry

    costs = {
        "format": "edge-sdrm3-costs", "version": 1,
        "source": "XRBench-MLSys2023 89156663 (MAESTRO cost model), converted by tools/convert_xrbench.py",
        "clock_hz": 1_000_000_000,
        "models": models_out,
        "units": units_out,
    }
    out = args.out
    (out / "models" / "xrbench").mkdir(parents=True, exist_ok=True)
    (out / "models" / "xrbench" / "costs.json").write_text(json.dumps(costs, separators=(",", ":")) + "\n")

    scen = json.loads((src / "scenarios.json").read_text())
    (out / "scenarios").mkdir(exist_ok=True)
    for src_name, name in SCENARIO_NAMES.items():
        s = scen[src_name]
        ms = []
        for m in s["models"]:
            d: dict = {"name": m["model"], "fps": m["fps"]}
            if m["dependencies"]:
                d["upstream"] = m["dependencies"][0]
                d["trigger_probability"] = m["effective_probability"]
            elif m["effective_probability"] != 1.0:
                d["trigger_probability"] = m["effective_probability"]
            ms.append(d)
        doc = {"format": "edge-sdrm3-scenario", "version": 1, "name": name,
               "description": f"XRBench usage scenario {src_name} ({s['source_file'].split('/')[-1]})",
               "cost_table": "xrbench", "models": ms}
        (out / "scenarios" / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")

    (out / "platforms").mkdir(exist_ok=True)
    count = 0
    for group in ("single", "dual", "quad"):
        for hw in sorted((src / "source" / "hw_configs" / group).glob("*.m")):
            accs = parse_hw(hw)
            for dfile in sorted((src / "source" / "dataflows" / group).glob("*.m")):
                flows = dfile.stem.split("_")
                if len(flows) != len(accs):
                    raise SystemExit(f"{dfile}: {len(flows)} dataflows for {len(accs)} accelerators in {hw}")
                name = f"{hw.stem}_{dfile.stem}".lower()
                doc = {
                    "format": "edge-sdrm3-platform", "version": 1, "name": name,
                    "description": f"XRBench hw config {hw.stem} with dataflows {dfile.stem}",
                    "accelerators": [
                        {"id": f"acc{i}", "kind": "emulated",
                         "costs": {"table": "xrbench", "unit": f"PE{pes}_noc{noc}/{flow}"},
                         "idle_power_mw": 0.0}
                        for i, ((pes, noc), flow) in enumerate(zip(accs, flows))
                    ],
                    "handoff": {"latency_ms": 0.0, "energy_mj": 0.0},
                }
                (out / "platforms" / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
                count += 1
    print(f"wrote {len(model_names)} models x {len(units_out)} units, {len(SCENARIO_NAMES)} scenarios, "
          f"{count} platforms")


if __name__ == "__main__":
    main()
