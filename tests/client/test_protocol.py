"""The wire protocol: round trips, zero-copy views, and every error code named."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest

from edge_sdrm3.client import protocol as p


def test_frame_round_trip_is_zero_copy_and_typed() -> None:
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = np.zeros((5,), np.uint8)
    parts = p.encode_frame({"stream": "cam0", "frame": 7, "t_capture_ms": 12.5, "models": ["digits"],
                            "tensors": [{}, {"model": "digits"}]}, [a, b])
    h, (x, y) = p.decode_frame(parts)
    assert (h.stream, h.frame, h.t_capture_ms, h.models) == ("cam0", 7, 12.5, ("digits",))
    assert h.tensors[0] == p.TensorSpec((2, 3, 4), "float32") and h.tensors[1].model == "digits"
    np.testing.assert_array_equal(x, a)
    assert np.shares_memory(x, a)  # the payload part is a view of the array, and the array a view of the part


@pytest.mark.parametrize("parts, code", [
    ([b"\xc1"], "bad-msgpack"),
    ([msgpack.packb([1, 2])], "bad-msgpack"),
    ([msgpack.packb({"stream": "s", "frame": 0, "tensors": []})], "bad-version"),
    ([msgpack.packb({"v": 2, "stream": "s", "frame": 0, "tensors": []})], "bad-version"),
    ([msgpack.packb({"v": 1, "frame": 0, "tensors": []})], "bad-header"),
    ([msgpack.packb({"v": 1, "stream": "s", "frame": -1, "tensors": []})], "bad-header"),
    ([msgpack.packb({"v": 1, "stream": "s", "frame": 0, "tensors": [{"shape": [2], "dtype": "complex64"}]}),
      b"12345678"], "bad-dtype"),
    ([msgpack.packb({"v": 1, "stream": "s", "frame": 0, "tensors": [{"shape": [2], "dtype": "float32"}]}),
      b"1234"], "bad-shape"),
    ([msgpack.packb({"v": 1, "stream": "s", "frame": 0, "tensors": [{"shape": [1], "dtype": "uint8"}]})],
     "parts-mismatch"),
])
def test_each_malformed_frame_raises_its_code(parts, code) -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.decode_frame(parts)
    assert e.value.code == code and e.value.message
    assert code in p.ERROR_CODES


def test_oversize_is_refused_before_parsing() -> None:
    parts = p.encode_frame({"stream": "s", "frame": 0}, [np.zeros(100, np.uint8)])
    with pytest.raises(p.ProtocolError) as e:
        p.decode_frame(parts, max_bytes=50)
    assert e.value.code == "too-large"


def test_the_size_limit_is_the_whole_message_to_the_byte() -> None:
    parts = p.encode_frame({"stream": "s", "frame": 0}, [np.zeros(1000, np.uint8)])
    size = sum(len(memoryview(x).cast("B")) for x in parts)  # header and payload
    assert p.decode_frame(parts, max_bytes=size)[0].stream == "s"
    with pytest.raises(p.ProtocolError) as e:
        p.decode_frame(parts, max_bytes=size - 1)
    assert e.value.code == "too-large" and f"message of {size} bytes" in e.value.message


def test_results_errors_and_control_round_trip() -> None:
    out = np.ones((1, 10), np.float32)
    h, (y,) = p.decode_result(p.encode_result({"model": "digits", "frame": 3, "status": "done"}, [out]))
    assert h["topic"] == "digits" and h["v"] == 1 and h["tensors"] == [{"shape": [1, 10], "dtype": "float32"}]
    np.testing.assert_array_equal(y, out)
    h, arrays = p.decode_result(p.encode_error("bad-shape", "part 1: 7 bytes", stream="s", frame=None, count=2))
    assert (h["topic"], h["error"], h["stream"], h["count"], arrays) == ("errors", "bad-shape", "s", 2, [])
    assert "frame" not in h
    assert p.decode_request(p.encode_request("set-params", params={"alpha": 1})) == ("set-params",
                                                                                    {"params": {"alpha": 1}})
    with pytest.raises(p.ProtocolError) as e:
        p.decode_request(p.encode_request("frobnicate"))
    assert e.value.code == "unknown-command"
    ok = p.decode_reply(p.encode_reply({"policy": "sdrm3", "x": np.float32(1.5)}))
    assert ok == {"policy": "sdrm3", "x": 1.5, "v": 1, "ok": True} and p.reply_result(ok)["x"] == 1.5
    err = p.decode_reply(p.encode_reply(error=p.ProtocolError("bad-argument", "no")))
    assert err == {"v": 1, "ok": False, "error": "bad-argument", "message": "no"}
    with pytest.raises(p.ProtocolError):
        p.reply_result(err)
