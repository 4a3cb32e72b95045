"""Results out: one message per due frame on the PUB socket (topic = model), and errors on the ``errors`` topic.

PUB never blocks. Results are bounded in bytes (docs/protocol.md, "Bounds"), ``[sockets] results_max_bytes``:

- per subscriber: the PUB high-water mark is set from half that budget and the largest result message the
  workload can make (``results_hwm`` at most), so a subscriber that stops reading holds at most half the
  budget; beyond, PUB drops that subscriber's results (ZeroMQ does not say which: other subscribers lose nothing);
- in total: output parts of 64 KiB or more go zero-copy and are tracked until ZeroMQ releases them; a result
  whose outputs would take the bytes held past the budget is not sent (counted: ``results_dropped_bytes``).
  Smaller parts are copied by ZeroMQ (pyzmq's copy threshold) and bounded by the high-water mark alone.

A completed job whose blocks ran timing-only (an emulated accelerator under ``emulated_compute``) has status
``timed`` and no outputs: a result never says ``done`` without them.
"""
from __future__ import annotations

import logging
from collections import Counter, deque
from typing import Any

import numpy as np
import zmq

from ..client import protocol
from ..core.engine import FrameInfo
from ..core.types import Completion
from .workload import Workload

log = logging.getLogger("edge_sdrm3.service")


HEADER_BYTES = 1024  # a result header's bytes, generously (the stream name is the client's: up to its own size)
TRACK_MIN_BYTES = zmq.COPY_THRESHOLD  # smaller parts are copied by pyzmq (its tracker is done at once)
_MORE, _LAST = int(zmq.SNDMORE | zmq.NOBLOCK), int(zmq.NOBLOCK)  # a result's parts: PUB never blocks


def largest_result_bytes(wl: Workload) -> int:
    """The largest result message the workload can make: every output of its largest variant, plus a header."""
    return HEADER_BYTES + max((sum(int(np.prod(o.shape)) * o.dtype.itemsize for o in vf.outputs)
                               for per in wl.files for vf in per), default=0)


def subscriber_hwm(wl: Workload, max_bytes: int, hwm: int) -> int:
    """The PUB high-water mark (messages) that holds at most half of ``max_bytes`` for one subscriber."""
    return max(1, min(hwm, (max_bytes // 2) // largest_result_bytes(wl)))


class Results:
    def __init__(self, pub: zmq.Socket, wl: Workload, counters: Counter, errors: Counter,
                 max_bytes: int = 32 << 20) -> None:
        self.pub = pub
        self.wl = wl
        self.counters = counters
        self.errors = errors
        self.max_bytes = max_bytes
        self._held: deque = deque()  # (tracker, bytes) of zero-copy results ZeroMQ may still hold
        self.held_bytes = 0
        self.by_status: Counter = Counter()  # results published, by status
        self.observe: Any = None  # prometheus.Metrics.observe, when [metrics] is enabled

    def held(self) -> int:
        """Bytes of zero-copy results not yet released by ZeroMQ (the trackers done are forgotten)."""
        q = self._held
        while q and q[0][0].done:
            self.held_bytes -= q.popleft()[1]
        if q and len(q) > 64:  # an old stalled message must not hide the release of the ones behind it
            keep = deque()
            for t, n in q:
                if t.done:
                    self.held_bytes -= n
                else:
                    keep.append((t, n))
            self._held = keep
        return self.held_bytes

    def status(self) -> dict:
        return {"max_bytes": self.max_bytes, "held_bytes": self.held(), "hwm": self.pub.getsockopt(zmq.SNDHWM),
                "published": dict(self.by_status), "dropped_bytes": self.counters["results_dropped_bytes"]}

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
        computed = c.completed and data is not None and info.computed
        if computed:
            vf = self.wl.files[self.wl.index[c.model]][c.variant]
            arrays = [data.feeds[o.name] for o in vf.outputs if o.name in data.feeds]
        elif c.completed:
            h["status"] = "timed"  # ran to its end timing-only: no outputs (never "done" with nothing)
        h["computed"] = computed
        if self.observe is not None:
            self.observe(c.model, h["status"], c.reason, c.release_ms, c.end_ms, c.status == "done")
        big = sum(a.nbytes for a in arrays if a.nbytes >= TRACK_MIN_BYTES)
        if big and self.held() + big > self.max_bytes:
            self.counters["results_dropped_bytes"] += 1
            self.counters["results_dropped"] += 1
            return
        try:
            parts = protocol.encode_result(h, arrays)
            if big:
                self._held.append((self._send(parts, True), big))
                self.held_bytes += big
            else:
                self._send(parts, False)
            self.counters["results_out"] += 1
            self.by_status[h["status"]] += 1
        except zmq.ZMQError as e:  # PUB drops at its high-water mark; never blocks
            self.counters["results_dropped"] += 1
            log.debug("result not published: %s", e)

    def _send(self, parts: list, track: bool) -> Any:
        """``parts`` as one message, zero-copy (pyzmq copies the parts below its copy threshold); the last part's
        tracker with ``track``. Part by part with the flags as plain ints: ``send_multipart`` checks each part's
        type and combines enum flags per part, which took about 0.03 ms of a result's send after an idle
        moment on the 2-core dev VM (its caches cold)."""
        send = self.pub.send
        for p in parts[:-1]:
            send(p, _MORE, copy=False, track=track)
        return send(parts[-1], _LAST, copy=False, track=track)

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
