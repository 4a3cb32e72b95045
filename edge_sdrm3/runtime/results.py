"""Results out: one message per due frame on the PUB socket (topic = model), and errors on the ``errors`` topic.

PUB never blocks: a message over its high-water mark is dropped and counted (``results_dropped``).
"""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import zmq

from ..client import protocol
from ..core.engine import FrameInfo
from ..core.types import Completion
from .workload import Workload

log = logging.getLogger("edge_sdrm3.service")


class Results:
    def __init__(self, pub: zmq.Socket, wl: Workload, counters: Counter, errors: Counter) -> None:
        self.pub = pub
        self.wl = wl
        self.counters = counters
        self.errors = errors

    def outcome(self, c: Completion, info: FrameInfo) -> None:
        """A due frame's result: its outputs when it completed (and they were computed), else its status."""
        m = self.wl.models[self.wl.index[c.model]]
        data = info.data
        h = {"stream": info.stream or "", "frame": info.stream_frame if info.stream_frame is not None else -1,
             "model": c.model, "variant": m.variants[c.variant].name, "variant_index": c.variant,
             "accelerator": c.accelerator, "status": c.status, "reason": c.reason, "release_ms": c.release_ms,
             "start_ms": c.start_ms, "end_ms": c.end_ms, "deadline_ms": c.deadline_ms, "energy_mj": c.energy_mj,
             "energy_source": info.energy_source if c.start_ms >= 0 else "",
             "t_capture_ms": data.t_capture_ms if data is not None else None, "slot": c.frame}
        arrays: list[np.ndarray] = []
        if c.completed and data is not None:
            if info.computed:
                vf = self.wl.files[self.wl.index[c.model]][c.variant]
                arrays = [data.feeds[o.name] for o in vf.outputs if o.name in data.feeds]
            else:
                h["computed"] = False
        try:
            self.pub.send_multipart(protocol.encode_result(h, arrays), copy=False, flags=zmq.NOBLOCK)
            self.counters["results_out"] += 1
        except zmq.ZMQError as e:  # PUB drops at its high-water mark; never blocks
            self.counters["results_dropped"] += 1
            log.debug("result not published: %s", e)

    def error(self, code: str, message: str, stream: str | None = None, frame: int | None = None) -> None:
        """Bad input: answered on the ``errors`` topic, counted and logged (the first ten, then every 100th)."""
        self.errors[code] += 1
        n = self.errors[code]
        if n <= 10 or n % 100 == 0:
            log.warning("bad message (%s, #%d): %s%s", code, n, message,
                        f" [stream {stream!r} frame {frame}]" if stream is not None else "")
        try:
            self.pub.send_multipart(protocol.encode_error(code, message, stream=stream, frame=frame, count=n),
                                    flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            self.counters["results_dropped"] += 1
