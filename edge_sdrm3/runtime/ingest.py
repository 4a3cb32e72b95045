"""Frames in: decode a frame message, plan the jobs it makes, adapt its image to each model's input.

A frame of a stream releases one job per due root model: those the header names, else every root model whose
period has (about) elapsed on that stream — at least 3/4 of its period since its last release there, judged by the
frame's ``t_capture_ms`` (the sender's clock; arrival when absent), so a 30 fps camera feeds a 10 fps model every
third frame despite network jitter. A root model not due on a frame is *skipped* there (counted per model in
``status``). Whether a cascaded model fires on a frame is drawn
from ``random.Random(f"{seed}:{stream}:{frame}:{model}")`` with the scenario's trigger probability (the engine
nests the draws: a child of a frame that did not fire does not fire). A real app would fire on the upstream's
output (a palm was found); the draw stands in for it, and is recorded in the log as the frame's ``fired`` so that
a replay sees the same outcomes. Every input is validated before anything is released; a cascaded model gets the
frame's camera input adapted to its own input (a real pipeline would crop by the upstream's output).

Inputs (docs/protocol.md, "Inputs"): a model runs on its exact input, or on the frame's camera image made into
the input its catalog entry declares (layout, channels, value range); anything else is refused, and a frame
that would run a model without input data is refused (``no-input``): nothing runs on made-up data.

The rate state is per stream, and streams are named by clients: at most ``[sockets] max_streams`` are kept,
the least recently seen forgotten beyond (counted; a forgotten stream's next frame is due at once).
"""
from __future__ import annotations

import logging
import random
from collections import Counter, OrderedDict, defaultdict
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
BACKLOG_MS = 100.0  # frames found waiting behind each other for longer than this are shed until none waits


class Feeds(dict):
    """A job's tensors by name: its model inputs, then every tensor its blocks made. Inputs made from a camera image
    are made on first look-up, by the worker that runs the job's first computed block (:meth:`make`): a frame
    refused at admission never pays for its images' resizing and conversion (under overload that work, done for
    every model of every frame before admission, starved the event loop); a job that runs timing only never pays
    for it; and the event loop never does: made there, between the job's admission and its first block, it delayed
    every block the step after a frame started (5-20 ms a frame of the MediaPipe roots), a wait a replay of the
    log cannot see. Made in the worker, it is part of the first block's measured time (learned costs), which a
    replay does see."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], dict[str, np.ndarray]] | None = None,
                 ready: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(ready or {})
        self._make = make

    def make(self) -> None:
        """The inputs made now (once)."""
        make, self._make = self._make, None
        if make is not None:
            self.update(make())

    def __missing__(self, key: str) -> np.ndarray:
        if self._make is None:
            raise KeyError(key)
        self.make()
        return self[key]


@dataclass
class FrameData:
    """A live frame's data, carried by its job (``FrameInfo.data``): its tensors (:class:`Feeds`)."""

    feeds: Feeds
    t_capture_ms: float | None = None


class Ingest:
    """Turns frame messages into the engine's frames. ``error(code, message, stream, frame)`` answers bad input."""

    def __init__(self, wl: Workload, engine: Engine, *, seed: int, max_message_bytes: int, max_queue: int,
                 counters: Counter, error: Callable[..., None], max_streams: int = 1024,
                 backlog_ms: float = BACKLOG_MS) -> None:
        self.wl = wl
        self.engine = engine
        self.seed = seed
        self.max_message_bytes = max_message_bytes
        self.max_queue = max_queue
        self.counters = counters
        self.error = error
        self.max_streams = max_streams
        self.backlog_ms = backlog_ms
        self.shed = 0  # frame messages shed unread (the ingest too far behind)
        # stream -> {root model: the time (capture, else arrival) of its last release there}; least recent first
        self._last_root: OrderedDict[str, dict[str, float]] = OrderedDict()
        self.skipped: Counter = Counter()  # root model -> frames it was not due on (rate)
        self.streams_forgotten = 0
        self._behind_since: float | None = None  # since when messages keep waiting behind each other

    def streams(self) -> dict:
        """The per-stream state, for ``status``."""
        return {"tracked": len(self._last_root), "max": self.max_streams, "forgotten": self.streams_forgotten}

    def admission_status(self) -> dict:
        """Admission, for ``status``: on or off, the jobs refused at release, the fate of those admitted, and the
        frame messages shed unread at ingest (:meth:`run`)."""
        eng = self.engine
        return {"on": eng.admission, "refused": eng.drops.get("admission", 0), "frames_shed": self.shed,
                "admitted_on_time": eng.admission_counts["on time"], "admitted_missed": eng.admission_counts["missed"]}

    async def run(self, pull, now: Callable[[], float], kick: Callable[[float | None], None]) -> None:
        """Frame messages off the PULL socket (a plain ZeroMQ socket, not an asyncio one), until cancelled.

        A frame is taken in by a reader callback of the event loop, one message per loop iteration: the first
        at once when the socket's descriptor signals, each further one that waits already in the next
        iteration, after whatever else is ready (blocks' ends, scheduling steps), so a queued burst does not
        starve them. Not an awaited ``recv_multipart`` of zmq.asyncio: its future, the task's wake-up and a
        yield per frame took three loop iterations, and the loop's way back to its wait once the frame's first
        block was handed off (the next future) delayed that block, whose worker thread needs the GIL to start.
        Measured on the 2-core dev VM, a lone digits job, the services before and after run in turns with one
        client: 0.81 -> 0.57 ms median added over a bare invoke (as tools/bench_service.py, part b, counts it).

        Shedding: while messages keep waiting behind each other, the ingest is behind the senders; once it has
        been so for ``backlog_ms`` the frames still waiting are older than that and the event loop is saturated
        (frames' jobs, their results and records, the scheduling steps): the messages found waiting are then
        shed unread, each answered with one ``overloaded`` error, nothing of them due, until the socket is found
        empty. Shedding costs little beside taking a frame in (its jobs' admission, records and results), so the
        loop keeps time for the work it admitted, and ``status`` answers (docs/protocol.md, "Overload")."""
        import asyncio

        import zmq

        loop = asyncio.get_running_loop()
        fd = pull.getsockopt(zmq.FD)
        reader = _Reader(self, pull, now, kick, loop)
        loop.add_reader(fd, reader.signalled)
        loop.call_soon(reader.signalled)  # what was queued before the reader was added (the fd may not signal it)
        try:
            await loop.create_future()  # until cancelled (shutdown)
        finally:
            reader.closed = True
            loop.remove_reader(fd)

    def take(self, parts: list, t: float, behind: bool, now: Callable[[], float],
             kick: Callable[[float | None], None]) -> None:
        """One frame message, received at ``t``; ``behind``: another one waited already behind it."""
        self.counters["frames_in"] += 1
        shed = False
        if behind:
            if self._behind_since is None:
                self._behind_since = t
            shed = t - self._behind_since > self.backlog_ms
        else:
            self._behind_since = None
        try:
            # the step decides as of the time the frame's jobs were released, as a replay of the log does
            kick(self.on_frame(parts, t, now, shed=shed))
        except ProtocolError as e:
            self.error(e.code, e.message, *_peek_ids(parts))
        except Exception:  # noqa: BLE001 - a bug must not stop ingest; it is logged and counted
            log.exception("frame handling failed")
            self.error("internal", "the service failed on this frame (see its log)", *_peek_ids(parts))

    def on_frame(self, parts: list, now: float, clock: Callable[[], float] | None = None,
                 shed: bool = False) -> float | None:
        """A frame message that arrived at ``now``; ``clock``: the service's clock, read again once the frame is
        decoded, when its jobs reach the engine (the log says both: a replay releases them to the policy when the
        service did, their deadlines counted from the arrival); the inputs of the jobs admitted are made by their
        worker (:class:`Feeds`).
        ``shed``: the message is answered from its header alone, every root refused (``admission``).
        Returns the time its jobs were released (None when shed: nothing to schedule)."""
        hdr, arrays = protocol.decode_frame(parts, self.max_message_bytes)
        due = self.due_roots(hdr, now)
        if shed:
            self.shed += 1
            stream, frame = hdr.stream, hdr.frame
            plan = self._plan(due, stream, frame)
            self._seen(stream, due, hdr.t_capture_ms if hdr.t_capture_ms is not None else now)
            self.engine.admit(now, plan, {}, stream=stream, stream_frame=frame, refuse="admission")
            return None
        untagged = next((a for a, t in zip(arrays, hdr.tensors) if t.model is None), None)
        tagged: dict[str, list[np.ndarray]] = defaultdict(list)
        for a, t in zip(arrays, hdr.tensors):
            if t.model is not None:
                tagged[t.model].append(a)
        stream, frame = hdr.stream, hdr.frame
        plan = self._plan(due, stream, frame)
        # inputs of every model the frame may run, validated before anything is released
        data = {name: FrameData(self.inputs_maker(name, untagged, tagged.get(name)), hdr.t_capture_ms)
                for name, fired, _ in plan if fired}
        self._seen(stream, due, hdr.t_capture_ms if hdr.t_capture_ms is not None else now)
        self.counters["frames_accepted"] += 1
        ready = now if clock is None else max(now, clock())
        self.engine.admit(ready, plan, data, stream=stream, stream_frame=frame, arrived_ms=now)
        self.engine.bound_queue(ready, self.max_queue)
        return ready

    def _plan(self, due: list[str], stream: str, frame: int) -> list[tuple[str, bool, str | None]]:
        return self.engine.plan(due, lambda child: random.Random(f"{self.seed}:{stream}:{frame}:{child}").random())

    def _seen(self, stream: str, due: list[str], t: float) -> None:
        """The rate state: ``due`` released on ``stream`` at ``t`` (the stream least recently seen forgotten
        beyond ``max_streams``)."""
        last = self._last_root.get(stream)
        if last is None:
            last = self._last_root[stream] = {}
            while len(self._last_root) > self.max_streams:
                self._last_root.popitem(last=False)
                self.streams_forgotten += 1
        else:
            self._last_root.move_to_end(stream)
        for r in due:
            last[r] = t

    def due_roots(self, hdr, now: float) -> list[str]:
        """The root models this frame releases: the header's ``models``, else those whose period has passed."""
        wl = self.wl
        for t in hdr.tensors:
            if t.model is not None and t.model not in wl.index:
                raise ProtocolError("unknown-model", f"tensors: model {t.model!r} is not in scenario "
                                                     f"{wl.scenario.name} (models: {', '.join(wl.index)})")
        if hdr.models is None:
            t = hdr.t_capture_ms if hdr.t_capture_ms is not None else now
            last = self._last_root.get(hdr.stream, {})
            due = []
            for r in wl.roots:
                since = t - last.get(r, -INF)
                if since >= RATE_SLACK * wl.models[wl.index[r]].period_ms or since < 0:  # < 0: the sender's clock
                    due.append(r)  # went back (a restarted camera): start again
                else:
                    self.skipped[r] += 1
            return due
        for name in hdr.models:
            if name not in wl.index:
                raise ProtocolError("unknown-model", f"field 'models': {name!r} is not in scenario "
                                                     f"{wl.scenario.name} (models: {', '.join(wl.index)})")
            up = wl.models[wl.index[name]].upstream
            if up is not None:
                raise ProtocolError("bad-header", f"field 'models': {name!r} is cascaded from {up!r}: it runs "
                                                  f"when {up} fires on the frame")
        return list(dict.fromkeys(hdr.models))

    def inputs_maker(self, name: str, untagged: np.ndarray | None, tagged: list[np.ndarray] | None) -> Feeds:
        """The inputs of ``name``, validated now (ProtocolError): the exact tensors, or a camera image made into the
        model's input on first look-up (:class:`Feeds`)."""
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
            return Feeds(ready={sp.name: x for sp, x in zip(specs, tagged)})
        if untagged is None:
            raise ProtocolError("no-input", f"the frame has no input for {name}: neither a camera image (an "
                                            f"untagged part) nor a part tagged for it")
        if len(specs) > 1:
            raise ProtocolError("no-input", f"{name} takes {len(specs)} inputs: tag one part for each "
                                            f"(a camera image makes only a one-input model's input)")
        key = specs[0].name
        same = as_is(untagged, specs[0])
        if same is not None:  # nothing to make: ready now (a job's first block then finds it, no call to make it)
            return Feeds(ready={key: same})
        declared = self.wl.declared.get(name) or ()
        make = adapter(untagged, specs[0], name, declared[0] if declared else None)
        return Feeds(lambda: {key: make()})


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def as_is(x: np.ndarray, spec: IOSpec) -> np.ndarray | None:
    """Part 0 as the input ``spec`` when it is that input already (the same shape and dtype, or the same values with
    dimensions of size 1 added or left out: a view), else None."""
    if x.dtype != spec.dtype:
        return None
    if x.shape == spec.shape:
        return x
    return x.reshape(spec.shape) if _squeezed(x.shape) == _squeezed(spec.shape) else None


def adapt(x: np.ndarray, spec: IOSpec, model: str, declared=None) -> np.ndarray:
    """Part 0 made into the model input ``spec`` at once (:func:`adapter`)."""
    return adapter(x, spec, model, declared)()


def adapter(x: np.ndarray, spec: IOSpec, model: str, declared=None) -> Callable[[], np.ndarray]:
    """Make part 0 into the model input ``spec`` by the rule of docs/protocol.md ("Inputs"):

    - the exact input (shape and dtype), or the same values with dimensions of size 1 added or left out, as is;
    - else a camera image (H×W, H×W×C or 1×H×W×C with C = 1 or 3, ``uint8`` or the input's float dtype), when
      the catalog declares the input an image (``declared``: a manifest ``TensorSpec`` with layout, channels,
      range): nearest-neighbour resize to the input's H×W; RGB from grey by repeating the channel, grey from
      RGB by the mean of the three; a ``uint8`` image's 0..255 mapped linearly onto the declared range for a
      float input, kept for a ``uint8`` input, shifted by -128 for an ``int8`` one; a float image taken as
      already in the declared range.

    Anything else is refused at once: ProtocolError ``bad-shape`` or ``bad-dtype`` naming the model and the rule.
    What is returned makes the input when called (the checks are cheap, the resizing and conversion are not)."""
    same = as_is(x, spec)
    if same is not None:
        return lambda: same
    want = f"{model}'s input {list(spec.shape)} {spec.dtype}"
    if declared is None or not declared.image:
        raise ProtocolError("bad-shape", f"part 0 ({list(x.shape)} {x.dtype}) is not {want}, and the catalog declares "
                                         f"no image layout for {model}: send its exact input")
    img = x[0] if x.ndim == 4 and x.shape[0] == 1 else x
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3) or min(img.shape[:2]) == 0:
        raise ProtocolError("bad-shape", f"part 0 of shape {list(x.shape)} is not a camera image (HxW, HxWx1 or "
                                         f"HxWx3) that can be made into {want}")
    dst = spec.dtype
    float_in = dst.kind == "f"
    if not (x.dtype == np.uint8 or (float_in and x.dtype == dst)):
        raise ProtocolError("bad-dtype", f"part 0 is a {x.dtype} image: {want} is made from a uint8 image"
                                         + (f" or a {dst} one already in its range" if float_in else ""))
    if not (float_in or dst in (np.uint8, np.int8)):
        raise ProtocolError("bad-dtype", f"{want}: no image rule for {dst} inputs; send its exact input")
    return lambda: _image_input(x, img, spec, declared)


def _image_input(x: np.ndarray, img: np.ndarray, spec: IOSpec, declared) -> np.ndarray:
    """The camera image ``img`` (part 0 ``x`` as H×W×C, checked by :func:`adapter`) made into the input ``spec``."""
    dst = spec.dtype
    float_in = dst.kind == "f"
    _, h, w, c = spec.shape
    rows = (np.arange(h) * img.shape[0]) // h
    cols = (np.arange(w) * img.shape[1]) // w
    out = img[rows][:, cols]
    if out.shape[2] != c:
        out = np.repeat(out, c, axis=2) if out.shape[2] == 1 else out.mean(axis=2, keepdims=True, dtype=np.float32)
    if float_in:
        if x.dtype == np.uint8:
            lo, hi = declared.range
            out = out.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    elif dst == np.uint8:
        out = np.rint(out) if out.dtype.kind == "f" else out
    else:  # int8
        out = np.rint(out).astype(np.int16) - 128 if out.dtype.kind == "f" else out.astype(np.int16) - 128
    return np.ascontiguousarray(out.astype(dst, copy=False)).reshape(spec.shape)


class _Reader:
    """The event loop's reader of the PULL socket (:meth:`Ingest.run`): one message per call. A ZeroMQ socket's
    descriptor signals that its state may have changed, not that a message waits, and only until its events
    are read: so after each message the events are read, and a message that waits already is taken by a call
    in the next loop iteration (at most one such call pending), one that comes later by the descriptor."""

    __slots__ = ("ingest", "pull", "now", "kick", "loop", "pending", "closed", "_again", "_pollin", "_flags")

    def __init__(self, ingest: Ingest, pull, now: Callable[[], float], kick: Callable[[float | None], None],
                 loop) -> None:
        import zmq

        self.ingest, self.pull, self.now, self.kick, self.loop = ingest, pull, now, kick, loop
        self.pending = False  # a call for the next message is scheduled
        self.closed = False
        self._again = zmq.Again
        self._pollin = int(zmq.POLLIN)
        self._flags = int(zmq.NOBLOCK)

    def signalled(self) -> None:
        if not self.pending:
            self._readable()

    def next(self) -> None:
        self.pending = False
        self._readable()

    def _readable(self) -> None:
        import zmq

        if self.closed or self.pull.closed:
            return
        try:
            parts = self.pull.recv_multipart(self._flags, copy=False)
            behind = self.pull.getsockopt(zmq.EVENTS) & self._pollin
        except self._again:
            return
        except zmq.ZMQError as e:  # the socket closed under us (shutdown)
            log.debug("ingest: %s", e)
            return
        if behind:  # the next one in the next loop iteration, after what else is ready
            self.pending = True
            self.loop.call_soon(self.next)
        self.ingest.take(parts, self.now(), bool(behind), self.now, self.kick)


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
