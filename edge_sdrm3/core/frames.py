"""What the workload engine (``core.engine``) keeps of a due frame, what it reads of a trace's frames, and where its
records go."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

COMPLETE, RELEASE, WAKE = 0, 1, 2  # the kinds of the engine's events, in their order at equal times


@dataclass(slots=True)
class FrameInfo:
    """A due frame as the engine keeps it beside its core Job (``Job.data``), from its release to its outcome."""

    model: str
    frame: int
    release_ms: float  # the frame's (a cascaded job itself may be released later, when its upstream ends)
    deadline_ms: float
    data: Any = None  # the driver's: a live frame's inputs, and its outputs as its blocks run
    stream: str | None = None  # a live frame: the stream and the stream's frame number it came in
    stream_frame: int | None = None
    energy_source: str = ""  # where the measured energy of its last block came from ("" : modelled)
    computed: bool = True  # false once a block ran timing-only (its result has no outputs)
    ready_ms: float | None = None  # when its jobs may first run, if later than its release (a live frame: once
    # the service had taken it in; the time from its arrival counts against its deadline all the same)
    ended: bool = False  # its outcome is settled


class TraceFrame(Protocol):
    model: str
    frame: int
    release_ms: float
    fired: bool
    ready_ms: float | None  # a live log's frame: when the service had taken it in (None: at its release)


class Sink(Protocol):
    def put(self, record: dict) -> None: ...


class Records:
    """A sink that keeps a run's records in memory, by type (a replay's ``--record``)."""

    def __init__(self) -> None:
        self.jobs: list[dict] = []
        self.segments: list[dict] = []
        self.other: list[dict] = []

    def put(self, record: dict) -> None:
        t = record.get("type")
        (self.jobs if t == "job" else self.segments if t == "segment" else self.other).append(record)


def ready_time(info: FrameInfo) -> float:
    """When a frame's jobs may first run."""
    return info.release_ms if info.ready_ms is None else info.ready_ms
