"""The wire protocol under bad input: only ``ProtocolError`` with a documented code and a message naming the field.

``check_one`` (shared with ``tools/fuzz_frame_decoder.py``) runs every decoder on one message and checks an
accepted frame for consistency (arrays match their header entries and parts, and re-encode to the same frame).
"""
from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from fuzz_support import FUZZ, FUZZ_FIELD, load_tool, msgpack_values, mutated, not_of_type
from hypothesis import given
from hypothesis import strategies as st

from edge_sdrm3.client import protocol as p

fuzzer = load_tool("fuzz_frame_decoder")

VALID = {"v": 1, "stream": "cam0", "frame": 7, "t_capture_ms": 12.5, "models": ["digits", "palm"],
         "tensors": [{"shape": [2, 3], "dtype": "float32"}, {"shape": [4], "dtype": "uint8", "model": "digits"}]}
PAYLOADS = [np.zeros((2, 3), np.float32).tobytes(), bytes(4)]


def check_parts(parts: list) -> None:
    fuzzer.check_one(fuzzer.join_message(parts))


def expect(parts: list, code: str, *names: str) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as e:
        p.decode_frame(parts)
    assert e.value.code == code, e.value
    for n in names:
        assert n in e.value.message, (n, e.value.message)
    return e.value


def test_the_valid_message_decodes() -> None:
    h, arrays = p.decode_frame([msgpack.packb(VALID), *PAYLOADS])
    assert h.tensors[1].model == "digits" and arrays[0].shape == (2, 3)
    check_parts([msgpack.packb(VALID), *PAYLOADS])


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_random_bytes_yield_only_protocol_errors(parts: list[bytes]) -> None:
    check_parts(parts)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(VALID)) | st.text(max_size=4), msgpack_values, max_size=7),
       st.lists(st.binary(max_size=32), max_size=4))
def test_random_header_maps_yield_only_protocol_errors(header: dict, payloads: list[bytes]) -> None:
    check_parts([msgpack.packb(header), *payloads])


@FUZZ
@given(mutated(VALID, msgpack_values), st.data())
def test_one_mutated_header_field_is_accepted_or_refused_by_code(doc: tuple, data: st.DataObject) -> None:
    header, _what = doc
    payloads = list(PAYLOADS)
    if data.draw(st.booleans()):  # and sometimes the payload parts are off too
        op = data.draw(st.sampled_from(["drop", "add", "truncate", "extend"]))
        i = data.draw(st.integers(0, len(payloads) - 1))
        if op == "drop":
            del payloads[i]
        elif op == "add":
            payloads.append(data.draw(st.binary(max_size=16)))
        else:
            payloads[i] = payloads[i][:-1] if op == "truncate" else payloads[i] + b"\0"
    check_parts([msgpack.packb(header), *payloads])


@pytest.mark.parametrize("field, types", [("stream", (str,)), ("frame", (int,)), ("t_capture_ms", (float,)),
                                          ("models", (list,)), ("tensors", (list,))])
@FUZZ_FIELD
@given(data=st.data())
def test_a_field_of_the_wrong_type_is_named(field: str, types: tuple, data: st.DataObject) -> None:
    value = data.draw(not_of_type(*types, type(None), values=msgpack_values))
    expect([msgpack.packb({**VALID, field: value}), *PAYLOADS], "bad-header", f"'{field}'")


@pytest.mark.parametrize("field, types", [("shape", (list,)), ("dtype", (str,)), ("model", (str,))])
@FUZZ_FIELD
@given(data=st.data())
def test_a_tensor_entry_of_the_wrong_type_is_named(field: str, types: tuple, data: st.DataObject) -> None:
    value = data.draw(not_of_type(*types, type(None), values=msgpack_values) if field == "model"
                      else not_of_type(*types, values=msgpack_values))
    tensors = [dict(VALID["tensors"][0]), VALID["tensors"][1]]
    tensors[0][field] = value
    expect([msgpack.packb({**VALID, "tensors": tensors}), *PAYLOADS], "bad-header", f"'tensors[0].{field}'")


@FUZZ
@given(msgpack_values.filter(lambda v: not (type(v) is int and v == 1)))
def test_any_version_but_the_integer_1_is_refused(v) -> None:
    expect([msgpack.packb({**VALID, "v": v}), *PAYLOADS], "bad-version", "version" if v is not None else "'v'")


@FUZZ
@given(st.lists(st.integers(0, 2**64 - 1), max_size=40), st.sampled_from(sorted(p.DTYPES)),
       st.binary(max_size=64))
def test_shape_dtype_and_byte_length_must_agree(shape: list[int], dtype: str, payload: bytes) -> None:
    parts = [msgpack.packb({**VALID, "tensors": [{"shape": shape, "dtype": dtype}]}), payload]
    if len(shape) > p.MAX_DIMS:
        expect(parts, "bad-shape", "tensors[0].shape")
        return
    need = math.prod(shape) * p.DTYPES[dtype].itemsize
    if need != len(payload):
        expect(parts, "bad-shape", "part 1", str(len(payload)))
        return
    try:
        _, (a,) = p.decode_frame(parts)
    except p.ProtocolError as e:  # an empty tensor with a dimension numpy cannot hold
        assert e.code == "bad-shape" and 0 in shape, e
    else:
        assert a.shape == tuple(shape) and a.nbytes == len(payload) and not a.flags.writeable


@FUZZ
@given(st.lists(st.integers(-(2**63), -1), min_size=1, max_size=4))
def test_negative_dimensions_are_refused(shape: list[int]) -> None:
    expect([msgpack.packb({**VALID, "tensors": [{"shape": shape, "dtype": "uint8"}]}), b""], "bad-header",
           "tensors[0].shape", ">= 0")


@FUZZ
@given(st.text(max_size=12).filter(lambda s: s not in p.DTYPES))
def test_unknown_dtype_names_are_refused(dtype: str) -> None:
    expect([msgpack.packb({**VALID, "tensors": [{"shape": [1], "dtype": dtype}]}), b"\0"], "bad-dtype",
           "tensors[0].dtype")


@FUZZ
@given(st.integers(0, 70).filter(lambda n: n != 2))
def test_too_many_or_too_few_parts_are_refused(n: int) -> None:
    expect([msgpack.packb(VALID), *([b""] * n)], "parts-mismatch", "2 tensors", f"{n} payload parts")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_capture_time_is_refused(value: float) -> None:
    expect([msgpack.packb({**VALID, "t_capture_ms": value}), *PAYLOADS], "bad-header", "'t_capture_ms'")


@FUZZ
@given(st.lists(st.binary(max_size=48), min_size=1, max_size=5), msgpack_values)
def test_results_requests_and_replies_yield_only_protocol_errors(parts: list[bytes], value) -> None:
    for msg in ([b"topic", msgpack.packb({"v": 1, "tensors": value}), *parts[1:]],
                [msgpack.packb({"v": 1, "cmd": value})], [msgpack.packb({"v": 1, "ok": value})], parts):
        check_parts(msg)
