"""XRBench-shaped models: exact layer shapes at a width, the replay's segments, and they run."""
from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from edge_sdrm3.tflite.split import op_cost
from edge_sdrm3.tflite.writer import read_model
from edge_sdrm3.tflite.xrbench_model import (
    COSTS_JSON,
    XRBenchModelError,
    build_graph,
    build_xrbench_model,
    build_xrbench_segments,
    model_layers,
)


def conv_shapes(path):
    m = read_model(path)
    sg = m.subgraphs[0]
    out = []
    for op in sg.operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.CONV_2D:
            out.append((list(sg.tensors[op.inputs[0]].shape), list(sg.tensors[op.inputs[1]].shape),
                        list(sg.tensors[op.outputs[0]].shape)))
    return out


def test_kd_res8_narrow_quarter_width_shapes(tmp_path):
    path = build_xrbench_model("KD_res8_narrow", 0.25, tmp_path / "kd.tflite")
    layers = model_layers("KD_res8_narrow", 0.25)
    shapes = conv_shapes(path)
    assert len(shapes) == len(layers) == 8
    for L, (xin, w, y) in zip(layers, shapes):
        assert xin == [1, L["Y"], L["X"], L["C"]]
        assert w == [L["K"], L["R"], L["S"], L["C"]]
        assert y == [1, L["Y"] - L["R"] + 1, L["X"] - L["S"] + 1, L["K"]]
    assert shapes[0][1] == [5, 3, 3, 1] and shapes[-1][1][0] == 12  # first C and last K are not scaled


def test_segments_match_the_replay_costs_and_run(tfl, tmp_path):
    costs = json.loads(COSTS_JSON.read_text())["models"]["KD_res8_narrow"]
    segs = build_xrbench_segments("KD_res8_narrow", 0.25, tmp_path)
    assert len(segs) == len(costs["segments"]) == 4
    macs = []
    for p in segs:
        m = read_model(p)
        macs.append(sum(op_cost(m, op) for op in m.subgraphs[0].operators
                        if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.CONV_2D))
    assert macs == costs["macs"]["0.25"]
    whole = tmp_path / "KD_res8_narrow_w0.25.tflite"
    feeds = tfl.feeds(whole)
    ref = tfl.run(whole, feeds)
    env = tfl.chain(segs, feeds)
    for k, v in ref.items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(env[k], v)


def test_filter_larger_than_input_is_padded_to_a_one_wide_output():
    g, _ = build_graph("GE_FBNet_C", 0.25)
    m = g.model()
    sg = m.subgraphs[0]
    layers = model_layers("GE_FBNet_C", 0.25)
    convs = [op for op in sg.operators if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.CONV_2D]
    for L, op in zip(layers, convs):
        expect = L["K"] * L["C"] * L["R"] * L["S"] * max(1, L["Y"] - L["R"] + 1) * max(1, L["X"] - L["S"] + 1)
        assert op_cost(m, op) == expect, L["name"]


def test_unknown_model_or_width():
    with pytest.raises(XRBenchModelError, match="no model 'nope'"):
        model_layers("nope", 1.0)
    with pytest.raises(XRBenchModelError, match="width '0.3'"):
        model_layers("KD_res8_narrow", "0.3")
