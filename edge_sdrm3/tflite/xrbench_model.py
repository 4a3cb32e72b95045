"""TFLite models with the layer shapes of the XR benchmark's models (random weights), for profiling on a device.

``models/xrbench/layers.json`` (package data, ``edge_sdrm3/data/``) holds every layer's dimensions (MAESTRO convention: K output channels, C input
channels, Y/X input height/width, R/S filter size, stride 1, no padding) and K/C at each width 1.0/0.75/0.5/0.25.
It is exported once from the benchmark data by ``python -m edge_sdrm3.tflite.xrbench_model export-layers
--data DIR`` (DIR holding layer_costs.csv and variant_costs.csv) and committed; nothing reads that data at run time.

``build_xrbench_model(name, width, out)`` writes one CONV_2D per layer (VALID, stride 1, ReLU except the last
layer; float32 weights drawn from a fixed seed). The published layer lists do not always chain (a layer's input
size need not equal the previous layer's output, e.g. where the original network pools or concatenates); there
the builder inserts an adapter — RESHAPE when the element counts match, else SLICE then zero PAD — whose cost is
a copy of the activation, negligible next to the convolutions. A layer whose filter is larger than its input
(counted by the benchmark as a 1-wide output) gets its input zero-padded up to the filter size, so every
layer's MACs equal the benchmark's. ``build_xrbench_segments`` also cuts the model
at the segment boundaries the replay uses (``models/xrbench/costs.json``), each adapter going with the layer it
feeds. Several models are large (DE_midas_v21_small has about 370 M parameters at width 1.0): never built by make.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from ..data import data_path
from . import ModelToolError
from .split import split_model
from .writer import GraphBuilder, write_model

LAYERS_JSON = data_path("models", "xrbench", "layers.json")
COSTS_JSON = data_path("models", "xrbench", "costs.json")
WIDTHS = ("1.0", "0.75", "0.5", "0.25")
FORMAT = "edge-sdrm3-xrbench-layers"


class XRBenchModelError(ModelToolError):
    """An unknown model or width, or a layers/costs file that cannot be used."""


def _width_key(width: float | str) -> str:
    try:
        w = float(width)
    except ValueError:
        raise XRBenchModelError(f"width {width!r}: expected one of {', '.join(WIDTHS)}") from None
    for k in WIDTHS:
        if abs(float(k) - w) < 1e-9:
            return k
    raise XRBenchModelError(f"width {width!r}: expected one of {', '.join(WIDTHS)}")


def _load_json(path: Path, fmt: str | None = None) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise XRBenchModelError(f"{path}: cannot read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise XRBenchModelError(f"{path}: not valid JSON ({e})") from None
    if fmt is not None and doc.get("format") != fmt:
        raise XRBenchModelError(f"{path}: format: expected {fmt!r}, got {doc.get('format')!r}")
    return doc


def load_layers(path: str | Path = LAYERS_JSON) -> dict:
    return _load_json(Path(path), FORMAT)


def model_layers(name: str, width: float | str, path: str | Path = LAYERS_JSON) -> list[dict]:
    """[{name, K, C, Y, X, R, S}] of ``name`` at ``width``, in execution order."""
    doc = load_layers(path)
    if name not in doc["models"]:
        raise XRBenchModelError(f"{path}: no model {name!r} (known: {', '.join(doc['models'])})")
    wi = WIDTHS.index(_width_key(width))
    cols = doc["columns"]
    out = []
    for row in doc["models"][name]["layers"]:
        d = dict(zip(cols, row))
        out.append({"name": d["name"], "K": d["K"][wi], "C": d["C"][wi], "Y": d["Y"], "X": d["X"],
                    "R": d["R"], "S": d["S"]})
    return out


def segment_layer_ranges(name: str, costs_path: str | Path = COSTS_JSON) -> list[tuple[int, int]]:
    doc = _load_json(Path(costs_path))
    try:
        return [tuple(s) for s in doc["models"][name]["segments"]]  # type: ignore[misc]
    except KeyError:
        raise XRBenchModelError(f"{costs_path}: models.{name}.segments: missing") from None


def build_graph(name: str, width: float | str, seed: int = 0,
                layers_path: str | Path = LAYERS_JSON) -> tuple[GraphBuilder, list[int]]:
    """The graph and, per layer, the index of its first operator (adapter or convolution)."""
    layers = model_layers(name, width, layers_path)
    rng = np.random.default_rng(seed)
    g = GraphBuilder(name=f"{name}_w{_width_key(width)}",
                     description=f"edge-sdrm3: XRBench {name} layer shapes at width {_width_key(width)}, random weights")
    first = layers[0]
    x = g.input("input", (1, first["Y"], first["X"], first["C"]))
    starts = []
    for i, L in enumerate(layers):
        starts.append(len(g.operators))
        # a filter larger than its input (a few layers of HT_hand_graph_cnn_half and GE_FBNet_C) is counted by the
        # benchmark as a 1-wide output: zero-pad the input up to the filter so the layer does exactly that work
        want = (1, max(L["Y"], L["R"]), max(L["X"], L["S"]), L["C"])
        have = g.shapes[x]
        if have != want:
            if int(np.prod(have)) == int(np.prod(want)):
                x = g.reshape(x, want, name=f"{L['name']}/adapt_reshape")
            else:
                keep = [min(a, b) for a, b in zip(have, want)]
                if keep != list(have):
                    x = g.slice(x, [0, 0, 0, 0], keep, name=f"{L['name']}/adapt_slice")
                pads = [(0, w - k) for k, w in zip(keep, want)]
                if any(p[1] for p in pads):
                    x = g.pad(x, pads, name=f"{L['name']}/adapt_pad")
        fan_in = L["R"] * L["S"] * L["C"]
        w = rng.standard_normal((L["K"], L["R"], L["S"], L["C"]), dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        b = np.zeros(L["K"], np.float32)
        last = i == len(layers) - 1
        x = g.conv2d(x, g.const(f"{L['name']}/weights", w), g.const(f"{L['name']}/bias", b), stride=1,
                     padding="VALID", activation=None if last else "relu", name=L["name"])
    g.outputs(x)
    return g, starts


def build_xrbench_model(name: str, width: float | str, out: str | Path, seed: int = 0,
                        layers_path: str | Path = LAYERS_JSON) -> Path:
    g, _ = build_graph(name, width, seed, layers_path)
    return write_model(g.model(), out)


def build_xrbench_segments(name: str, width: float | str, out_dir: str | Path, seed: int = 0,
                           layers_path: str | Path = LAYERS_JSON, costs_path: str | Path = COSTS_JSON,
                           whole: str | Path | None = None) -> list[Path]:
    """Write the whole model (to ``whole``, default ``out_dir/NAME_wW.tflite``) and its segments (the replay's
    layer ranges) to ``out_dir``; returns the segment files."""
    g, starts = build_graph(name, width, seed, layers_path)
    ranges = segment_layer_ranges(name, costs_path)
    if ranges[0][0] != 0 or ranges[-1][1] != len(starts) or any(a[1] != b[0] for a, b in itertools.pairwise(ranges)):
        raise XRBenchModelError(f"{costs_path}: models.{name}.segments {ranges} do not tile its {len(starts)} layers")
    out = Path(out_dir)
    path = write_model(g.model(), whole if whole is not None else out / f"{name}_w{_width_key(width)}.tflite")
    cuts = [starts[a] for a, _ in ranges[1:]]
    return split_model(path, len(ranges), out, cuts=cuts)


def export_layers(data_dir: str | Path, out: str | Path = LAYERS_JSON) -> Path:
    """Write layers.json from the benchmark's layer_costs.csv and variant_costs.csv (run once, then commit)."""
    data = Path(data_dir)
    base: dict[str, dict[int, dict]] = {}
    with open(data / "layer_costs.csv", newline="") as f:
        for r in csv.DictReader(f):
            base.setdefault(r["model"], {}).setdefault(int(r["layer_index"]), r)
    kc: dict[tuple[str, int, str], tuple[int, int]] = {}
    with open(data / "variant_costs.csv", newline="") as f:
        for r in csv.DictReader(f):
            kc.setdefault((r["model"], int(r["layer_index"]), _width_key(r["width"])), (int(r["K"]), int(r["C"])))
    models = {}
    for m, layers in base.items():
        rows = []
        for i in sorted(layers):
            r = layers[i]
            if int(r["N"]) != 1 or int(r["stride"]) != 1:
                raise XRBenchModelError(f"{data}: {m} layer {i}: N={r['N']} stride={r['stride']} (expected 1, 1)")
            ks = [kc[(m, i, w)][0] for w in WIDTHS]
            cs = [kc[(m, i, w)][1] for w in WIDTHS]
            rows.append([r["layer_name"], ks, cs, int(r["Y"]), int(r["X"]), int(r["R"]), int(r["S"])])
        models[m] = {"layers": rows}
    doc = {"format": FORMAT, "version": 1,
           "source": "XRBench layer_costs.csv / variant_costs.csv (MAESTRO convention, stride 1, N = 1), "
                     "exported by edge_sdrm3.tflite.xrbench_model export-layers",
           "widths": [float(w) for w in WIDTHS], "columns": ["name", "K", "C", "Y", "X", "R", "S"],
           "models": models}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({k: v for k, v in doc.items() if k != "models"})[:-1] + ', "models": {']
    for j, (m, d) in enumerate(models.items()):
        lines.append(f'{json.dumps(m)}: {{"layers": [')
        lines.append(",\n".join(json.dumps(r, separators=(",", ":")) for r in d["layers"]))
        lines.append("]}" + ("," if j < len(models) - 1 else ""))
    lines.append("}}")
    p.write_text("\n".join(lines) + "\n")
    load_layers(p)  # the file must read back
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge_sdrm3.tflite.xrbench_model")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export-layers", help="write models/xrbench/layers.json from the benchmark's CSV files")
    e.add_argument("--data", required=True, help="folder with layer_costs.csv and variant_costs.csv")
    e.add_argument("-o", "--output", default=str(LAYERS_JSON))
    b = sub.add_parser("build", help="build one model at one width")
    b.add_argument("model")
    b.add_argument("--width", default="1.0")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--segments", action="store_true", help="also write the replay's segments beside it")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "export-layers":
            print(f"wrote {export_layers(args.data, args.output)}")
        elif args.segments:
            for p in build_xrbench_segments(args.model, args.width, Path(args.output).parent, whole=args.output):
                print(p)
        else:
            print(build_xrbench_model(args.model, args.width, args.output))
    except ModelToolError as err:
        print(f"xrbench_model: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
