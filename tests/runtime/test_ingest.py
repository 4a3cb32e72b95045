"""Frames in: the size limit is ``[sockets] max_message_bytes`` to the byte, on a running service."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from runtime_harness import Running, write_config

from edge_sdrm3.client import protocol

LIMIT = 4096


def frame_of(size: int, frame: int) -> list:
    """A frame message for digits of exactly ``size`` bytes: a 1xN grey image (the service resizes it to 8x8)."""
    n = size - 64
    for _ in range(8):
        parts = protocol.encode_frame({"stream": "s", "frame": frame, "models": ["digits"]},
                                      [np.full((1, n), 128, np.uint8)])
        got = sum(len(memoryview(p).cast("B")) for p in parts)
        if got == size:
            return parts
        n += size - got
    raise AssertionError(f"no message of {size} bytes")


def test_a_frame_of_exactly_the_limit_is_served_and_one_byte_more_is_refused(tmp_path: Path, files: dict) -> None:
    run = Running(write_config(tmp_path, files, sockets={"max_message_bytes": LIMIT}))
    try:
        run.push.send_multipart(frame_of(LIMIT, 1), copy=False)
        run.push.send_multipart(frame_of(LIMIT + 1, 2), copy=False)
        got = run.results(until=lambda o: any(h.get("error") for h, _ in o) and any(h.get("model") for h, _ in o))
        served = [h for h, _ in got if h.get("model") == "digits"]
        refused = [h for h, _ in got if h.get("error")]
        assert [h["frame"] for h in served] == [1] and served[0]["status"] in ("done", "late", "dropped")
        assert [(h["error"], h["frame"]) for h in refused] == [("too-large", 2)]
        assert f"message of {LIMIT + 1} bytes" in refused[0]["message"]
    finally:
        assert run.stop() == 0
