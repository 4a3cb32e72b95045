"""The core's vocabulary (DESIGN.md §3): models, variants, accelerators, costs, jobs, decisions, completions.

Times are milliseconds (float) on the driver's clock; energy is millijoules. The core never reads a clock:
every method that needs the time takes ``now``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

INF = math.inf


class CoreError(Exception):
    """Base of the core's errors."""


class ConfigError(CoreError):
    """A model, platform or cost definition that cannot be used; the message names the bad value."""


@dataclass(frozen=True)
class Variant:
    """One supernet sub-network of a model. ``accuracy`` is relative to the largest variant (1.0)."""

    name: str
    width: float = 1.0
    accuracy: float = 1.0
    absolute_accuracy: float | None = None


@dataclass(frozen=True)
class Model:
    """A model of the workload: its rate, deadline, optional upstream, and variants (largest first)."""

    name: str
    fps: float
    variants: tuple[Variant, ...]
    n_segments: int
    deadline_ms: float | None = None  # relative to the frame's release; default: the period
    upstream: str | None = None
    trigger_probability: float = 1.0

    @property
    def period_ms(self) -> float:
        return 1000.0 / self.fps

    @property
    def relative_deadline_ms(self) -> float:
        return self.deadline_ms if self.deadline_ms is not None else self.period_ms


@dataclass(frozen=True)
class Accelerator:
    id: str
    kind: str  # cpu, gpu, edgetpu, npu, emulated
    idle_power_mw: float = 0.0
    device: str = ""  # the hardware layer's device string for the live service (default: the kind)
    threads: int = 0  # CPU threads for a cpu device (0: the service's default)


@dataclass(frozen=True)
class Platform:
    name: str
    accelerators: tuple[Accelerator, ...]
    handoff_ms: float = 0.0  # activation hand-off when a job moves between accelerators at a boundary
    handoff_mj: float = 0.0


class Costs:
    """Cost look-ups of a workload on a platform.

    ``lat[m][v][a][s]`` / ``en[m][v][a][s]``: latency (ms) and energy (mJ) of segment ``s`` of variant
    ``v`` of model ``m`` on accelerator ``a`` (``inf`` where the segment cannot run there). Derived
    tables (best per segment, best remaining suffix, reference energy) are rebuilt by ``refresh``
    after an estimator changes an entry.
    """

    def __init__(self, lat: list, en: list) -> None:
        self.lat = lat
        self.en = en
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the derived tables. When they exist already their innermost lists are updated in place,
        so that jobs holding rows of them (``Job.rem_best``, ``Job.rem_on``) see the new values."""
        old = getattr(self, "rem_best", None)
        if old is not None:
            prev = (self.best_lat, self.rem_best, self.best_en, self.rem_on)
        self.best_lat: list = []  # [m][v][s] min over accelerators
        self.rem_best: list = []  # [m][v][s] sum of best_lat over segments s..end (len n+1, last 0)
        self.best_en: list = []  # [m][v][s] min energy over accelerators
        self.rem_on: list = []  # [m][v][a][s] latency of segments s..end all on accelerator a
        for lm, em in zip(self.lat, self.en):
            bl_m, rb_m, be_m, ro_m = [], [], [], []
            for lv, ev in zip(lm, em):
                n = len(lv[0])
                ro = []
                for la in lv:
                    suf = [0.0] * (n + 1)
                    for s in range(n - 1, -1, -1):
                        suf[s] = suf[s + 1] + la[s]
                    ro.append(suf)
                ro_m.append(ro)
                bl = [min(la[s] for la in lv) for s in range(n)]
                be = [min(ea[s] for ea in ev) for s in range(n)]
                rb = [0.0] * (n + 1)
                for s in range(n - 1, -1, -1):
                    rb[s] = rb[s + 1] + bl[s]
                bl_m.append(bl)
                rb_m.append(rb)
                be_m.append(be)
            self.best_lat.append(bl_m)
            self.rem_best.append(rb_m)
            self.best_en.append(be_m)
            self.rem_on.append(ro_m)
        if old is not None:
            fresh = (self.best_lat, self.rem_best, self.best_en, self.rem_on)
            try:
                for p_, f_ in zip(prev, fresh):
                    _copy_into(p_, f_)
                self.best_lat, self.rem_best, self.best_en, self.rem_on = prev
            except ValueError:  # the shape changed (another workload): the new tables stand
                pass

    def reference_energy(self, m: int) -> float:
        """Largest variant, each segment on the accelerator where it costs least energy."""
        return sum(self.best_en[m][0])

    def set_segment(self, m: int, v: int, a: int, s: int, latency_ms: float, energy_mj: float | None = None) -> None:
        self.lat[m][v][a][s] = latency_ms
        if energy_mj is not None:
            self.en[m][v][a][s] = energy_mj
        self.refresh()


def _copy_into(dst: list, src: list) -> None:
    """Copy nested lists of equal shape, innermost lists in place (ValueError when the shapes differ)."""
    if len(dst) != len(src):
        raise ValueError("shape")
    if dst and not isinstance(dst[0], list):
        dst[:] = src
        return
    for d, s_ in zip(dst, src):
        _copy_into(d, s_)


class Job:
    """One model on one frame. Mutated by the dispatcher only; policies read it."""

    __slots__ = (
        "id", "model", "m", "frame", "release", "deadline", "variant", "seg", "n_segs",
        "last_progress", "acc", "start", "energy", "lat", "en", "rem_best", "rem_on", "running", "data",
    )

    def __init__(self, id: int, model: Model, m: int, frame: int, release: float, deadline: float,
                 costs: Costs, variant: int = 0, data: Any = None) -> None:
        self.id = id
        self.model = model
        self.m = m
        self.frame = frame
        self.release = release
        self.deadline = deadline
        self.seg = 0  # next segment to run
        self.n_segs = model.n_segments
        self.last_progress = release
        self.acc = -1  # accelerator of the last segment run (-1: none yet)
        self.start = -1.0  # start of the first segment (-1: not started)
        self.energy = 0.0  # spent so far (mJ), abandoned work included
        self.running = False
        self.data = data  # what the engine and its driver keep with the job (opaque to policies)
        self.set_variant(variant, costs)

    def set_variant(self, variant: int, costs: Costs) -> None:
        self.variant = variant
        self.lat = costs.lat[self.m][variant]  # [a][s]
        self.en = costs.en[self.m][variant]
        self.rem_best = costs.rem_best[self.m][variant]  # [s]
        self.rem_on = costs.rem_on[self.m][variant]  # [a][s]

    @property
    def started(self) -> bool:
        return self.seg > 0 or self.running

    def __repr__(self) -> str:
        return f"Job({self.model.name}#{self.frame} seg {self.seg}/{self.n_segs} v{self.variant})"


# --- decisions: immutable values a policy returns (named tuples: cheap to make on the hot path) ----------

class Run(NamedTuple):
    """Run the job's next segment (all its remaining segments if ``whole``) on accelerator ``acc``.

    ``variant`` may be given only before the job's first segment.
    """

    job: Job
    acc: int
    variant: int | None = None
    whole: bool = False


class Drop(NamedTuple):
    job: Job
    reason: str


class Wake(NamedTuple):
    """Ask to be consulted again at ``at`` even if nothing is released or completes before."""

    at: float


Decision = Run | Drop | Wake


# --- what happened ------------------------------------------------------------------------------

DONE, LATE, DROPPED, FAILED = "done", "late", "dropped", "failed"


class Completion(NamedTuple):
    model: str
    frame: int
    variant: int
    accelerator: str  # accelerator of the last segment ("" if it never ran)
    release_ms: float
    start_ms: float  # -1 if it never started
    end_ms: float  # completion, or the time it was dropped
    deadline_ms: float
    energy_mj: float
    status: str  # done, late, dropped, failed
    reason: str = ""
    job: Job | None = None  # the job it ended (None for a frame that was never released)

    @property
    def completed(self) -> bool:
        return self.status in (DONE, LATE)


class Start(NamedTuple):
    """What the driver must execute: ``n`` segments of ``job`` from ``first_seg`` on ``acc``."""

    job: Job
    acc: int
    first_seg: int
    n: int
    start_ms: float
    end_ms: float  # predicted end (exact in simulation)
    energy_mj: float


@dataclass
class Counters:
    decisions: int = 0
    invalid_decisions: int = 0
    fallbacks: int = 0
    drops_policy: int = 0
    drops_deadline: int = 0
    retries: int = 0  # jobs put back in the queue after their accelerator failed (Dispatcher.fail(retry=True))
    errors: dict[str, int] = field(default_factory=dict)
