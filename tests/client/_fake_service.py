"""A fake edge-sdrm3 service for the client tests: the wire protocol on raw pyzmq sockets and msgpack.

It does not use ``edge_sdrm3.client.protocol``, so the client is checked against the protocol as written,
not against the encoder it shares with the service.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import msgpack
import numpy as np
import zmq


class FakeService:
    """PULL (records every frame), PUB (the test publishes), REP (answers with ``handler``)."""

    def __init__(self, tmp: Path) -> None:
        self.frames_ep = f"ipc://{tmp}/frames.sock"
        self.results_ep = f"ipc://{tmp}/results.sock"
        self.control_ep = f"ipc://{tmp}/control.sock"
        self.ctx = zmq.Context()
        self.frames: list[tuple[dict, list[np.ndarray], list[bool]]] = []  # header, arrays, zero-copy flags
        self.by_models: Counter[tuple[str, ...]] = Counter()
        self.requests: list[dict] = []
        self.handler: Callable[[dict], dict] = lambda req: {"v": 1, "ok": True, "cmd": req["cmd"]}
        self.mute = 0  # swallow this many requests without replying
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.bind(self.results_ep)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    def _run(self) -> None:
        pull = self.ctx.socket(zmq.PULL)
        rep = self.ctx.socket(zmq.REP)
        for s in (pull, rep):
            s.setsockopt(zmq.LINGER, 0)
        pull.bind(self.frames_ep)
        rep.bind(self.control_ep)
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        poller.register(rep, zmq.POLLIN)
        self._ready.set()
        while not self._stop.is_set():
            ready = dict(poller.poll(20))
            if pull in ready:
                parts = pull.recv_multipart(copy=False)
                h = msgpack.unpackb(parts[0].buffer, raw=False)
                arrays = [np.frombuffer(p.buffer, dtype=t["dtype"]).reshape(t["shape"])
                          for t, p in zip(h["tensors"], parts[1:])]
                # a zero-copy receive: the array is a view into the zmq.Frame's memory
                views = [not a.flags.owndata for a in arrays]
                self.frames.append((h, arrays, views))
                self.by_models[tuple(h.get("models") or ())] += 1
            if rep in ready:
                req = msgpack.unpackb(rep.recv(), raw=False)
                self.requests.append(req)
                if self.mute:
                    self.mute -= 1
                    time.sleep(0.3)  # the client gives up meanwhile; this late reply goes to a closed socket
                rep.send(msgpack.packb(self.handler(req), use_bin_type=True))
        pull.close()
        rep.close()

    def publish(self, topic: str, header: dict, arrays: list[np.ndarray] = ()) -> None:
        h = {"v": 1, **header, "tensors": [{"shape": list(a.shape), "dtype": a.dtype.name} for a in arrays]}
        self.pub.send_multipart([topic.encode(), msgpack.packb(h, use_bin_type=True), *arrays])

    def wait_frames(self, n: int, timeout_s: float = 5.0) -> None:
        end = time.monotonic() + timeout_s
        while len(self.frames) < n and time.monotonic() < end:
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pub.close()
        self.ctx.term()


RESULT = {"stream": "cam0", "frame": 7, "model": "digits", "variant": 1, "variant_name": "w75",
          "accelerator": "cpu:1", "status": "done", "reason": "", "release_ms": 10.0, "start_ms": 10.5,
          "end_ms": 12.25, "deadline_ms": 26.7, "energy_mj": 0.4, "energy_source": "cpu-time"}
