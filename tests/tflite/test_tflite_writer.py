"""The .tflite writer, checked against numpy reference computations in the real LiteRT interpreter."""
from __future__ import annotations

import numpy as np
import pytest

from edge_sdrm3.tflite import ModelToolError
from edge_sdrm3.tflite.writer import GraphBuilder, Quant, read_model, serialize_model


def conv_ref(x, w, b, stride=1, padding="SAME"):
    n, h, wd, _ = x.shape
    k, kh, kw, _ = w.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, oh, ow, k), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + b


def dw_ref(x, w, b):
    _, h, wd, _ = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(wd):
            out[:, i, j, :] = (p[:, i:i + 3, j:j + 3, :] * w[0]).sum(axis=(1, 2))
    return out + b


def test_float_graph_matches_numpy(tfl, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 9, 9, 3)).astype(np.float32)
    w1, b1 = rng.standard_normal((6, 3, 3, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    wd, bd = rng.standard_normal((1, 3, 3, 6)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    wf, bf = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(4).astype(np.float32)

    g = GraphBuilder()
    t = g.input("x", x.shape)
    c = g.conv2d(t, w1, b1, stride=2, padding="SAME", activation="relu", name="conv")
    d = g.depthwise_conv2d(c, wd, bd, name="dw")
    s = g.relu(g.add(c, d, name="sum"), name="relu")
    mp = g.max_pool2d(s, 2, padding="SAME", name="maxpool")
    ap = g.average_pool2d(s, 2, name="avgpool")
    m = g.mean(mp, (1, 2), name="gap")
    fc = g.fully_connected(m, wf, bf, name="fc")
    sm = g.softmax(fc, name="probs")
    r = g.reshape(ap, (1, -1), name="flat")
    g.outputs(sm, r)
    path = g.write(tmp_path / "m.tflite")
    out = tfl.run(path, {"x": x})

    ref_c = np.maximum(conv_ref(x, w1, b1, stride=2), 0)
    ref_s = np.maximum(ref_c + dw_ref(ref_c, wd, bd), 0)
    n, h, w_, k = ref_s.shape
    ps = np.pad(ref_s, ((0, 0), (0, h % 2), (0, w_ % 2), (0, 0)), constant_values=-np.inf)
    ref_mp = ps.reshape(n, ps.shape[1] // 2, 2, ps.shape[2] // 2, 2, k).max(axis=(2, 4))
    ref_ap = ref_s[:, :h // 2 * 2, :w_ // 2 * 2].reshape(n, h // 2, 2, w_ // 2, 2, k).mean(axis=(2, 4))
    logits = ref_mp.mean(axis=(1, 2)) @ wf.T + bf
    e = np.exp(logits - logits.max())
    np.testing.assert_allclose(out["probs"], e / e.sum(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["flat"], ref_ap.reshape(1, -1), rtol=1e-4, atol=1e-4)


def test_pad_and_slice(tfl, tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    g = GraphBuilder()
    t = g.input("x", x.shape)
    g.outputs(g.pad(g.slice(t, [0, 0, 1, 0], [1, 2, 2, 3], name="s"), [(0, 0), (1, 0), (0, 2), (0, 1)], name="p"))
    out = tfl.run(g.write(tmp_path / "p.tflite"), {"x": x})["p"]
    np.testing.assert_array_equal(out, np.pad(x[:, :, 1:3, :3], ((0, 0), (1, 0), (0, 2), (0, 1))))


def test_int8_graph_runs_with_quantization_params(tfl, tmp_path):
    g = GraphBuilder()
    q_in = Quant.per_tensor(0.05, -3)
    x = g.input("x", (1, 4, 4, 2), np.int8, q_in)
    w = g.const("w", np.ones((3, 1, 1, 2), np.int8), Quant((0.1, 0.2, 0.3), (0, 0, 0), axis=0))
    b = g.const("b", np.zeros(3, np.int32), Quant((0.005, 0.01, 0.015), (0, 0, 0)))
    y = g.conv2d(x, w, b, padding="VALID", out_quant=Quant.per_tensor(0.02, 0), name="y")
    g.outputs(y)
    path = g.write(tmp_path / "q.tflite")
    m = read_model(path)
    assert list(m.subgraphs[0].tensors[y].quantization.scale) == pytest.approx([0.02])
    xq = np.full((1, 4, 4, 2), 17, np.int8)  # real value 0.05 * 20 = 1.0 per channel
    out = tfl.run(path, {"x": xq})["y"]
    # real output per channel: 2 inputs x 1.0 x scale (0.1 / 0.2 / 0.3) -> 0.2 / 0.4 / 0.6 -> q = 10 / 20 / 30
    np.testing.assert_array_equal(out[0, 0, 0], [10, 20, 30])


def test_file_identifier_and_empty_buffer_zero(tmp_path):
    g = GraphBuilder()
    g.outputs(g.relu(g.input("x", (1, 2))))
    data = g.to_bytes()
    assert data[4:8] == b"TFL3"
    m = read_model(g.write(tmp_path / "r.tflite"))
    assert m.version == 3 and (m.buffers[0].data is None or len(m.buffers[0].data) == 0)


def test_large_model_layout_stores_buffers_after_flatbuffer(tfl, tmp_path):
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((8, 3, 3, 2)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    g = GraphBuilder()
    g.outputs(g.conv2d(g.input("x", (1, 5, 5, 2)), w, b, name="y"))
    small, large = tmp_path / "s.tflite", tmp_path / "l.tflite"
    small.write_bytes(serialize_model(g.model()))
    large.write_bytes(serialize_model(g.model(), large_threshold=0))  # force the offset layout
    assert large.read_bytes() != small.read_bytes()
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(tfl.run(small, {"x": x})["y"], tfl.run(large, {"x": x})["y"])
    m = read_model(large)
    assert max(len(bb.data) for bb in m.buffers if bb.data is not None) == w.nbytes


def test_writer_refuses_bad_graphs(tmp_path):
    g = GraphBuilder()
    with pytest.raises(ModelToolError, match="input and one output"):
        g.to_bytes()
    x = g.input("x", (1, 6))
    with pytest.raises(ModelToolError, match="element counts"):
        g.reshape(x, (4, 2))
    with pytest.raises(ModelToolError, match="TFL3"):
        (tmp_path / "junk.tflite").write_bytes(b"not a model at all")
        read_model(tmp_path / "junk.tflite")
