"""split_model: segments run in sequence equal the whole model; refusals are clear."""
from __future__ import annotations


import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from edge_sdrm3.tflite.manifest import ManifestError, default_cache_dir, load_manifest
from edge_sdrm3.tflite.split import SplitError, balanced_cuts, split_model, split_model_info
from edge_sdrm3.tflite.writer import GraphBuilder, Quant, read_model, write_model
from edge_sdrm3.data import data_path

DIGITS = sorted(data_path("models", "digits").glob("*.tflite"))


def _outputs(path):
    return [t for t in (read_model(path).subgraphs[0].outputs or [])]


def assert_equivalent(tfl, model, segments, exact=False, seed=0):
    feeds = tfl.feeds(model, seed)
    whole = tfl.run(model, feeds)
    env = tfl.chain(segments, feeds)
    for name, ref in whole.items():
        if exact:
            np.testing.assert_array_equal(env[name], ref, err_msg=name)
        else:
            np.testing.assert_allclose(env[name], ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_digits_models_are_shipped():
    assert [p.name for p in DIGITS] == ["digits_w100.tflite", "digits_w25.tflite", "digits_w50.tflite",
                                        "digits_w75.tflite"]


@pytest.mark.parametrize("model", DIGITS, ids=lambda p: p.stem)
@pytest.mark.parametrize("n", [1, 2, 4])
def test_digits_split_equivalence(tfl, tmp_path, model, n):
    segs = split_model(model, n, tmp_path)
    assert len(segs) == n and all(p.exists() for p in segs)
    assert_equivalent(tfl, model, segs, exact=True)  # same kernels on the same inputs: bit-identical


def branchy_model(path, dtype=np.float32):
    """conv -> [3 convs] -> add(skip from the first conv) -> conv: the skip tensor crosses every inner cut."""
    rng = np.random.default_rng(3)
    g = GraphBuilder(name="branchy")
    q = dtype == np.int8

    def w(shape):
        if q:
            return g.const(None, rng.integers(-20, 20, shape).astype(np.int8),
                           Quant(tuple(0.02 + 0.001 * i for i in range(shape[0])), (0,) * shape[0], axis=0))
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    def b(n, in_scale=0.05):
        if q:
            return g.const(None, rng.integers(-50, 50, n).astype(np.int32),
                           Quant(tuple(in_scale * (0.02 + 0.001 * i) for i in range(n)), (0,) * n))
        return rng.standard_normal(n).astype(np.float32) * 0.1

    act_q = Quant.per_tensor(0.05, -5) if q else None
    x = g.input("x", (1, 8, 8, 3), dtype, Quant.per_tensor(0.02, 0) if q else None)
    skip = g.conv2d(x, w((8, 3, 3, 3)), b(8, 0.02), activation="relu", name="skip", out_quant=act_q)
    h = skip
    for i in range(3):
        h = g.conv2d(h, w((8, 3, 3, 8)), b(8), activation="relu", name=f"body{i}", out_quant=act_q)
    s = g.add(h, skip, name="sum", out_quant=Quant.per_tensor(0.08, -3) if q else None)
    y = g.conv2d(s, w((4, 1, 1, 8)), b(4, 0.08), name="head", out_quant=Quant.per_tensor(0.1, 2) if q else None)
    p = g.max_pool2d(y, 2, name="pool")
    g.outputs(g.reshape(p, (1, -1), name="out"), skip)  # an early tensor is also a model output
    return g.write(path)


def test_branch_crossing_several_cuts(tfl, tmp_path):
    model = branchy_model(tmp_path / "branchy.tflite")
    infos = split_model_info(model, 4, tmp_path / "segs")
    assert len(infos) == 4
    # the skip tensor leaves segment 1 and enters the segment that holds the add, skipping those between
    assert "skip" in infos[0].outputs
    # ops: skip 0, body0..2 1-3, sum 4, head 5, pool 6, reshape 7
    seg_of = [next(i for i, s in enumerate(infos) if s.start <= k < s.stop) for k in range(8)]
    assert seg_of[4] - seg_of[0] >= 2  # the skip tensor crosses at least two cuts
    assert "skip" in infos[seg_of[4]].inputs
    assert [i for i, s in enumerate(infos) if "skip" in s.inputs] == sorted({seg_of[1], seg_of[4]} - {seg_of[0]})
    assert_equivalent(tfl, model, [s.path for s in infos])


def test_int8_model_is_bit_exact(tfl, tmp_path):
    model = branchy_model(tmp_path / "branchy_int8.tflite", np.int8)
    m = read_model(model)
    assert m.subgraphs[0].tensors[0].type == fb.TensorType.INT8
    for n in (2, 3, 5):
        segs = split_model(model, n, tmp_path / f"s{n}")
        assert_equivalent(tfl, model, segs, exact=True)
        # quantization parameters travel with the crossing tensors
        for p in segs:
            for t in read_model(p).subgraphs[0].tensors:
                if t.type == fb.TensorType.INT8:
                    assert t.quantization is not None and len(t.quantization.scale)


def test_constants_copied_only_where_used(tmp_path):
    model = branchy_model(tmp_path / "b.tflite")
    whole = read_model(model)
    const_bytes = sum(len(b.data) for b in whole.buffers if b.data is not None)
    segs = split_model(model, 3, tmp_path / "s")
    per_seg = [sum(len(b.data) for b in read_model(p).buffers if b.data is not None) for p in segs]
    assert sum(per_seg) == const_bytes
    names = [{t.name for t in read_model(p).subgraphs[0].tensors} for p in segs]
    whole_names = {t.name for t in whole.subgraphs[0].tensors}
    assert set().union(*names) == whole_names


def test_balanced_cuts_minimise_the_largest_segment():
    assert balanced_cuts([5, 5, 5, 5], 2) == [2]
    assert balanced_cuts([1, 100, 1, 1, 100], 3) in ([2, 4], [1, 2])
    cuts = balanced_cuts([10, 1, 1, 1, 1, 1, 1, 1, 1, 10], 3)
    assert max(sum(s) for s in np.split(np.array([10, 1, 1, 1, 1, 1, 1, 1, 1, 10]), cuts)) == 10
    assert balanced_cuts([1, 1, 1], 3) == [1, 2]
    with pytest.raises(SplitError, match="4 segments out of 3"):
        balanced_cuts([1, 1, 1], 4)


def test_explicit_cuts_and_bad_cuts(tfl, tmp_path):
    model = DIGITS[0]
    segs = split_model(model, 3, tmp_path, cuts=[2, 5])
    assert_equivalent(tfl, model, segs, exact=True)
    with pytest.raises(SplitError, match="non-empty segments"):
        split_model(model, 3, tmp_path, cuts=[5, 2])


def _with_subgraphs(src, dst, n_extra=1, op=None):
    m = read_model(src)
    for _ in range(n_extra):
        m.subgraphs.append(m.subgraphs[0])
    if op is not None:
        oc = fb.OperatorCodeT()
        oc.builtinCode = op
        oc.deprecatedBuiltinCode = min(op, 127)
        oc.version = 1
        m.operatorCodes.append(oc)
        m.subgraphs[0].operators[0].opcodeIndex = len(m.operatorCodes) - 1
    return write_model(m, dst)


def test_refuses_several_subgraphs(tmp_path):
    bad = _with_subgraphs(DIGITS[0], tmp_path / "two.tflite")
    with pytest.raises(SplitError, match="has 2 subgraphs"):
        split_model(bad, 2, tmp_path / "out")


@pytest.mark.parametrize("op,name", [(fb.BuiltinOperator.WHILE, "WHILE"), (fb.BuiltinOperator.IF, "IF"),
                                     (fb.BuiltinOperator.CALL_ONCE, "CALL_ONCE")])
def test_refuses_control_flow(tmp_path, op, name):
    bad = _with_subgraphs(DIGITS[0], tmp_path / "cf.tflite", n_extra=0, op=op)
    with pytest.raises(SplitError, match=f"operator 0 is {name} \\(control flow\\)"):
        split_model(bad, 2, tmp_path / "out")


def test_refuses_more_segments_than_ops(tmp_path):
    with pytest.raises(SplitError, match="cannot make 50 segments"):
        split_model(DIGITS[0], 50, tmp_path)


def _mediapipe_files():
    cache = default_cache_dir()
    try:
        man = load_manifest()
    except ManifestError:  # pragma: no cover
        return []
    return [pytest.param(m.path(v, cache), id=f"{m.name}-{v.name}") for m in man.models.values()
            if m.location == "cache" for v in m.variants]


@pytest.mark.parametrize("model", _mediapipe_files())
def test_mediapipe_split_equivalence(tfl, tmp_path, model):
    if not model.exists():
        pytest.skip(f"{model.name} not in the model cache (run `edge-sdrm3 models fetch`)")
    segs = split_model(model, 4, tmp_path)
    assert_equivalent(tfl, model, segs, exact=True)
