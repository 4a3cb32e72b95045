"""Frames in: decode a frame message, plan the jobs it makes, adapt its image to each model's input.

A frame of a stream releases one job per due root model: those the header names, else every root model whose
period has (about) elapsed on that stream — at least 3/4 of its period since its last release there, so a 30 fps
camera feeds a 10 fps model every third frame despite jitter. Whether a cascaded model fires on a frame is drawn
from ``random.Random(f"{seed}:{stream}:{frame}:{model}")`` with the scenario's trigger probability (the engine
nests the draws: a child of a frame that did not fire does not fire). A real app would fire on the upstream's
output (a palm was found); the draw stands in for it, and is recorded in the log as the frame's ``fired`` so that
a replay sees the same outcomes. Every input is validated before anything is released; a cascaded model gets the
frame's camera input adapted to its own input (a real pipeline would crop by the upstream's output).
"""
from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..client import protocol
from ..client.protocol import ProtocolError
from ..core.engine import Engine
from ..core.types import INF
from .executors import IOSpec
from .workload import Workload

log = logging.getLogger("edge_sdrm3.service")

RATE_SLACK = 0.75  # a root model is due on a stream once this share of its period has passed


@dataclass
class FrameData:
    """A live frame's data, carried by its job (``FrameInfo.data``): the inputs, then every tensor its blocks made."""

    feeds: dict[str, np.ndarray]
    t_capture_ms: float | None = None


class Ingest:
    """Turns frame messages into the engine's frames. ``error(code, message, stream, frame)`` answers bad input."""

    def __init__(self, wl: Workload, engine: Engine, *, seed: int, max_message_bytes: int, max_queue: int,
                 counters: Counter, error: Callable[..., None]) -> None:
        self.wl = wl
        self.engine = engine
        self.seed = seed
        self.max_message_bytes = max_message_bytes
        self.max_queue = max_queue
        self.counters = counters
        self.error = error
        self._last_root: dict[tuple[str, str], float] = {}  # (stream, root model) -> its last release there

    async def run(self, pull, now: Callable[[], float], kick: Callable[[], None]) -> None:
        import asyncio

        while True:
            parts = await pull.recv_multipart(copy=False)
            await asyncio.sleep(0)  # a queued burst must not starve scheduling and completions
            self.counters["frames_in"] += 1
            try:
                self.on_frame(parts, now())
                kick()
            except ProtocolError as e:
                self.error(e.code, e.message, *_peek_ids(parts))
            except Exception:  # noqa: BLE001 - a bug must not stop ingest; it is logged and counted
                log.exception("frame handling failed")
                self.error("internal", "the service failed on this frame (see its log)", *_peek_ids(parts))

    def on_frame(self, parts: list, now: float) -> None:
        hdr, arrays = protocol.decode_frame(parts, self.max_message_bytes)
        due = self.due_roots(hdr, now)
        untagged = next((a for a, t in zip(arrays, hdr.tensors) if t.model is None), None)
        tagged: dict[str, list[np.ndarray]] = defaultdict(list)
        for a, t in zip(arrays, hdr.tensors):
            if t.model is not None:
                tagged[t.model].append(a)
        stream, frame = hdr.stream, hdr.frame
        plan = self.engine.plan(due, lambda child: random.Random(f"{self.seed}:{stream}:{frame}:{child}").random())
        # inputs of every model the frame may run, validated before anything is released
        data = {name: FrameData(self.inputs_for(name, untagged, tagged.get(name)), hdr.t_capture_ms)
                for name, fired, _ in plan if fired}
        for r in due:
            self._last_root[(stream, r)] = now
        self.counters["frames_accepted"] += 1
        self.engine.admit(now, plan, data, stream=stream, stream_frame=frame)
        self.engine.bound_queue(now, self.max_queue)

    def due_roots(self, hdr, now: float) -> list[str]:
        """The root models this frame releases: the header's ``models``, else those whose period has passed."""
        wl = self.wl
        for t in hdr.tensors:
            if t.model is not None and t.model not in wl.index:
                raise ProtocolError("unknown-model", f"tensors: model {t.model!r} is not in scenario "
                                                     f"{wl.scenario.name} (models: {', '.join(wl.index)})")
        if hdr.models is None:
            return [r for r in wl.roots
                    if now - self._last_root.get((hdr.stream, r), -INF) >= RATE_SLACK * wl.models[wl.index[r]].period_ms]
        for name in hdr.models:
            if name not in wl.index:
                raise ProtocolError("unknown-model", f"field 'models': {name!r} is not in scenario "
                                                     f"{wl.scenario.name} (models: {', '.join(wl.index)})")
            up = wl.models[wl.index[name]].upstream
            if up is not None:
                raise ProtocolError("bad-header", f"field 'models': {name!r} is cascaded from {up!r}: it runs "
                                                  f"when {up} fires on the frame")
        return list(dict.fromkeys(hdr.models))

    def inputs_for(self, name: str, untagged: np.ndarray | None, tagged: list[np.ndarray] | None) -> dict:
        vf = self.wl.files[self.wl.index[name]][0]
        specs = vf.inputs
        if tagged:
            if len(tagged) != len(specs):
                raise ProtocolError("bad-shape", f"{len(tagged)} tensors tagged for {name}, it takes {len(specs)} inputs")
            for i, (x, sp) in enumerate(zip(tagged, specs)):
                if x.dtype != sp.dtype:
                    raise ProtocolError("bad-dtype", f"input {i} of {name}: dtype {x.dtype}, expected {sp.dtype}")
                if x.shape != sp.shape:
                    raise ProtocolError("bad-shape", f"input {i} of {name}: shape {list(x.shape)}, "
                                                     f"expected {list(sp.shape)}")
            return {sp.name: x for sp, x in zip(specs, tagged)}
        if untagged is None:  # no payload at all: synthetic load, the model runs on zeros
            return {sp.name: np.zeros(sp.shape, sp.dtype) for sp in specs}
        feeds = {specs[0].name: adapt(untagged, specs[0], name)}
        for sp in specs[1:]:
            feeds[sp.name] = np.zeros(sp.shape, sp.dtype)
        return feeds



def adapt(x: np.ndarray, spec: IOSpec, model: str) -> np.ndarray:
    """Make a camera image (or an exact input) into the model input ``spec``: as is when it matches; else a
    nearest-neighbour resize of an HxW[xC] image to the input's HxW, channels averaged / repeated, uint8 scaled
    to [0, 1] for float inputs. Raises ProtocolError(bad-shape) when it is not an image of that kind."""
    if x.shape == spec.shape and x.dtype == spec.dtype:
        return x
    if x.dtype == spec.dtype and x.size == int(np.prod(spec.shape)) and len(x.shape) != len(spec.shape):
        return x.reshape(spec.shape)
    img = x[0] if x.ndim == 4 and x.shape[0] == 1 else x
    if img.ndim == 2:
        img = img[:, :, None]
    target = spec.shape[1:] if len(spec.shape) == 4 and spec.shape[0] == 1 else spec.shape
    if img.ndim != 3 or len(target) != 3 or min(img.shape[:2]) == 0:
        raise ProtocolError("bad-shape", f"part 0 of shape {list(x.shape)} {x.dtype} cannot be made into the input of "
                                         f"{model} ({list(spec.shape)} {spec.dtype}): not an HxWxC image")
    h, w, c = target
    rows = (np.arange(h) * img.shape[0]) // h
    cols = (np.arange(w) * img.shape[1]) // w
    out = img[rows][:, cols]
    if out.shape[2] != c:
        out = out.mean(axis=2, keepdims=True) if c == 1 else np.resize(out, (h, w, c)) if out.shape[2] != 1 \
            else np.repeat(out, c, axis=2)
    src, dst = x.dtype, spec.dtype
    if dst.kind == "f":
        out = out.astype(dst) / (255.0 if src == np.uint8 else 1.0)
    elif src.kind == "f":
        out = np.clip(out * (255.0 if dst == np.uint8 else 127.0), np.iinfo(dst).min, np.iinfo(dst).max)
    elif src == np.uint8 and dst == np.int8:
        out = out.astype(np.int16) - 128
    try:
        return np.ascontiguousarray(out.astype(dst, copy=False)).reshape(spec.shape)
    except (TypeError, ValueError) as e:
        raise ProtocolError("bad-dtype", f"part 0 ({x.dtype}) cannot be converted to {model}'s input {dst}: {e}") \
            from None




def _peek_ids(parts: list) -> tuple[str | None, int | None]:
    """The stream and frame of a message that failed validation, when its header says them."""
    try:
        import msgpack

        h = msgpack.unpackb(protocol._buffer(parts[0]), raw=False)
        stream = h.get("stream") if isinstance(h, dict) else None
        frame = h.get("frame") if isinstance(h, dict) else None
        return (stream if isinstance(stream, str) else None,
                frame if isinstance(frame, int) and not isinstance(frame, bool) else None)
    except Exception:  # noqa: BLE001 - best effort only
        return None, None
