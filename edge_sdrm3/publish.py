"""The scenario player behind ``edge-sdrm3 publish``: sends frames as a camera would.

A scenario (or a trace) becomes a **plan**: the times at which frames leave, each with the root models due
then (cascaded models are not sent: the service runs them when their upstream fires). Frames are paced on
the monotonic clock; a frame that finds the send queue full is dropped and counted, as a camera does
when its consumer is slow, so the player never drifts behind its schedule by queueing.

Images: synthetic (``shapes``: a gradient with moving shapes, or ``noise``: seeded uniform noise; HxWx3
uint8), or the files of a folder, cycled in name order. Supported files: ``.npy`` (uint8 HxW, HxWx1,
HxWx3 or HxWx4; other dtypes are clipped to [0, 255]) and binary or ASCII PPM/PGM (``P6``/``P3``,
``P5``/``P2``; 16-bit samples scaled down). Grey images are repeated to 3 channels, alpha is dropped.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .catalog import load_scenario
from .core.types import ConfigError
from .sim import trace as traces

DEFAULT_DURATION_S = 10.0
IMAGE_SUFFIXES = (".npy", ".ppm", ".pgm", ".pnm")


@dataclass(frozen=True)
class Tick:
    """One frame to send: ``t_s`` after the start, for these root models."""

    t_s: float
    models: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    name: str
    duration_s: float  # after rate scaling
    ticks: tuple[Tick, ...]

    def counts(self) -> Counter[str]:
        """Frames planned per model."""
        return Counter(m for t in self.ticks for m in t.models)


def plan_of(trace: traces.Trace, rate_scale: float = 1.0) -> Plan:
    """The frames of a trace's root models that fired, grouped by release time (÷ ``rate_scale``)."""
    if not rate_scale > 0:
        raise ConfigError(f"--rate-scale must be > 0, got {rate_scale!r}")
    roots = {m.name for m in trace.scenario.models if m.upstream is None}
    by_time: dict[float, list[str]] = {}
    for fr in trace.frames:
        if fr.model in roots and fr.fired:
            by_time.setdefault(round(fr.release_ms, 6), []).append(fr.model)
    ticks = tuple(Tick(t_ms / 1000.0 / rate_scale, tuple(sorted(ms))) for t_ms, ms in sorted(by_time.items()))
    return Plan(trace.scenario.name, trace.duration_s / rate_scale, ticks)


def load_plan(source: str, duration_s: float | None = None, rate_scale: float = 1.0, seed: int = 0) -> Plan:
    """A scenario (name or file; ``duration_s`` default 10 s) or a trace file (all of it, or its first
    ``duration_s``), as a plan. Durations are in scenario time, before ``rate_scale``."""
    if duration_s is not None and not duration_s > 0:
        raise ConfigError(f"--duration must be > 0, got {duration_s!r}")
    if traces.is_trace(source):
        tr = traces.read(source)
        if duration_s is not None and duration_s < tr.duration_s:
            tr.frames = [f for f in tr.frames if f.release_ms < duration_s * 1000.0]
            tr.duration_s = duration_s
    else:
        tr = traces.generate(load_scenario(source), DEFAULT_DURATION_S if duration_s is None else duration_s, seed)
    return plan_of(tr, rate_scale)


# ---- images ----------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (width, height)."""
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must be WIDTHxHEIGHT, e.g. 640x480, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"--size must be positive, got {text!r}")
    return w, h


class ImageSource(Protocol):
    def __call__(self, i: int) -> np.ndarray: ...


class SyntheticImages:
    """Frame ``i`` as a new HxWx3 uint8 array: seeded noise, or shapes moving over a gradient."""

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0, pattern: str = "shapes") -> None:
        if pattern not in ("shapes", "noise"):
            raise ConfigError(f"unknown image pattern {pattern!r} (shapes, noise)")
        self.width, self.height, self.pattern = width, height, pattern
        self._rng = np.random.default_rng(seed)
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        self._background = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                                     np.full((height, width), 96.0, np.float32)], axis=-1).astype(np.uint8)
        yy, xx = np.ogrid[-1.0:1.0:complex(0, 2 * max(4, min(width, height) // 8)),
                          -1.0:1.0:complex(0, 2 * max(4, min(width, height) // 8))]
        self._disc = (xx * xx + yy * yy) <= 1.0

    def __call__(self, i: int) -> np.ndarray:
        h, w = self.height, self.width
        if self.pattern == "noise":
            return self._rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img = self._background.copy()
        s = max(2, min(w, h) // 6)  # a square sweeping right, one sweeping down, a disc on a circle
        x0 = (i * 7) % max(1, w - s)
        img[h // 4: h // 4 + s, x0: x0 + s] = (255, 64, 0)
        y0 = (i * 5) % max(1, h - s)
        img[y0: y0 + s, w // 2: w // 2 + s] = (0, 200, 255)
        d = self._disc.shape[0]
        if d < min(h, w):
            cx = int((w - d) / 2 * (1 + 0.8 * np.cos(i * 0.05)))
            cy = int((h - d) / 2 * (1 + 0.8 * np.sin(i * 0.05)))
            region = img[cy: cy + d, cx: cx + d]
            region[self._disc[: region.shape[0], : region.shape[1]]] = (255, 255, 255)
        return img


def _to_rgb8(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype != np.uint8:
        if a.dtype.kind not in "uif" and a.dtype != np.bool_:
            raise ConfigError(f"{where}: unsupported dtype {a.dtype}")
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ConfigError(f"{where}: expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {list(a.shape)}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def _read_pnm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise ConfigError(f"{path}: not a PGM/PPM file (magic {magic!r}; supported: P2, P3, P5, P6)")
    channels = 3 if magic in (b"P3", b"P6") else 1
    fields: list[int] = []
    pos = 2
    while len(fields) < 3:  # width, height, maxval, separated by whitespace and '#' comments
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise ConfigError(f"{path}: malformed header")
        fields.append(int(data[start:pos]))
    w, h, maxval = fields
    if not 0 < maxval < 65536:
        raise ConfigError(f"{path}: maxval {maxval} out of range")
    count = w * h * channels
    if magic in (b"P5", b"P6"):
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        raw = data[pos + 1: pos + 1 + count * dtype.itemsize]  # one whitespace byte after maxval
        if len(raw) != count * dtype.itemsize:
            raise ConfigError(f"{path}: {len(raw)} bytes of pixels, expected {count * dtype.itemsize}")
        a = np.frombuffer(raw, dtype=dtype)
    else:
        a = np.array(data[pos:].split(), dtype=np.int64)
        if a.size < count:
            raise ConfigError(f"{path}: {a.size} samples, expected {count}")
        a = a[:count]
    a = a.reshape(h, w, channels)
    if maxval != 255:
        a = (a.astype(np.float32) * (255.0 / maxval) + 0.5).astype(np.uint8)
    return a.astype(np.uint8, copy=False)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 (``.npy``, ``.ppm``, ``.pgm``, ``.pnm``)."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            a = np.load(p, allow_pickle=False)
        elif p.suffix.lower() in (".ppm", ".pgm", ".pnm"):
            a = _read_pnm(p)
        else:
            raise ConfigError(f"{p}: unsupported image file (supported: {', '.join(IMAGE_SUFFIXES)})")
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: cannot read image ({e})") from None
    return _to_rgb8(a, str(p))


def resize_nearest(img: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    rows = (np.arange(height) * h // height).astype(np.intp)
    cols = (np.arange(width) * w // width).astype(np.intp)
    return np.ascontiguousarray(img[rows[:, None], cols[None, :]])


class FolderImages:
    """The images of a folder (loaded once), cycled; resized (nearest neighbour) when ``size`` is given."""

    def __init__(self, folder: str | Path, size: tuple[int, int] | None = None) -> None:
        d = Path(folder)
        if not d.is_dir():
            raise ConfigError(f"--images {d}: not a directory")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ConfigError(f"--images {d}: no image files (supported: {', '.join(IMAGE_SUFFIXES)})")
        self.files = files
        imgs = [read_image(p) for p in files]
        self.images = [resize_nearest(a, *size) if size else a for a in imgs]
        for a in self.images:
            a.setflags(write=False)  # sent zero-copy many times: never written

    def __call__(self, i: int) -> np.ndarray:
        return self.images[i % len(self.images)]


# ---- the player ------------------------------------------------------------------------------------------


class FrameSink(Protocol):
    def send(self, stream: str, frame: int, arrays: Sequence[np.ndarray], models: Sequence[str] | None = None,
             t_capture_ms: float | None = None, *, block: bool = True) -> object: ...


@dataclass
class PlayReport:
    planned: int
    sent: int = 0
    refused: int = 0  # dropped at the sender: the send queue was full
    per_model: Counter[str] = field(default_factory=Counter)  # frames sent per model
    elapsed_s: float = 0.0
    max_lag_ms: float = 0.0  # worst lateness of a send against its schedule
    interrupted: bool = False

    def line(self) -> str:
        models = ", ".join(f"{m} {n}" for m, n in sorted(self.per_model.items()))
        return (f"{self.sent}/{self.planned} frames in {self.elapsed_s:.1f} s, {self.refused} dropped (queue full), "
                f"max lag {self.max_lag_ms:.1f} ms" + (f"; {models}" if models else ""))


def play(plan: Plan, sink: FrameSink, images: ImageSource, stream: str = "cam0", *,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         progress: Callable[[PlayReport, float], None] | None = None, progress_every_s: float = 0.25) -> PlayReport:
    """Send the plan's frames on schedule; frame ids count the plan's ticks from 0. Returns what was sent.

    Each frame's image is made before waiting for its time, so the send itself is on time;
    ``t_capture_ms`` is the monotonic clock (ms) at the send. Ctrl-C stops early (``interrupted``)."""
    rep = PlayReport(planned=len(plan.ticks))
    t0 = clock()
    next_progress = t0
    try:
        for i, tick in enumerate(plan.ticks):
            img = images(i)
            due = t0 + tick.t_s
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            now = clock()
            rep.max_lag_ms = max(rep.max_lag_ms, (now - due) * 1000.0)
            if sink.send(stream, i, [img], models=tick.models, t_capture_ms=now * 1000.0, block=False):
                rep.sent += 1
                rep.per_model.update(tick.models)
            else:
                rep.refused += 1
            if progress is not None and now >= next_progress:
                rep.elapsed_s = now - t0
                progress(rep, plan.duration_s)
                next_progress = now + progress_every_s
        end = t0 + plan.duration_s  # a camera run lasts its duration, not until its last frame
        if end > clock():
            sleep(end - clock())
    except KeyboardInterrupt:
        rep.interrupted = True
    rep.elapsed_s = clock() - t0
    return rep
