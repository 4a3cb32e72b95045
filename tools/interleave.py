"""Capacity and overload measured side by side: short phases at 1x and at each overload in turn, every overload
phase between two capacity phases, so that both see the same minutes of a shared, noisy host.

Used by ``tools/soak.py --interleave N`` (1x, 2x, 1x, 4x, 1x, ... N rounds) and ``tools/flood.py --interleave N``
(1x, 3x, 1x, ...). Each phase sets the sender's rate and its stream (``<name>/<scale>x/<phase>``, so that
``tools/flood_log.py`` finds the phases in the job log), waits ``settle_s`` (the previous phase's backlog ends) and
counts the on-time completions per second over ``phase_s`` from the service's ``status``. The figures: per overload,
the ratio of each phase to the mean of the two capacity phases around it (the pair ratio), their median and
spread, the ratio of the medians of the phases, and the host's load average over the phases.

Also the capacity ramp both tools start from (:func:`calibrate`).
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field

from edge_sdrm3.client import Control


def calibrate(ctl: Control, sender, *, step_s: float, start: float = 1.0, factor: float = 1.25,
              max_miss: float = 0.1, say=print) -> tuple[float, float]:
    """The capacity: frames/s raised ``factor`` a step from ``start``, each step held ``step_s`` (after a settle
    of a third of it, at least 0.5 s), until two steps in a row miss more than ``max_miss`` of their jobs once one
    step did not, or two steps in a row add less than 5% to the most on-time completions per second so far, or
    two steps in a row fall below half of it. The capacity is the rate of the step with the most on-time
    completions per second among those that missed at most ``max_miss`` (a single noisy step neither ends the ramp
    nor sets the capacity); when none did (a service that misses that much at any load), the step with the most
    on-time completions, said so. Returns (frames/s, on-time jobs/s of that step)."""
    steps: list[tuple[float, float, float]] = []  # (rate, on-time/s, miss)
    r, failed, flat, fell = start, 0, 0, 0
    for _ in range(40):
        sender.rate = r
        time.sleep(max(0.5, step_s / 3))  # settle: what the previous step queued ends
        j0, t0 = _jobs(ctl.status()), time.monotonic()
        time.sleep(step_s)
        j1, t1 = _jobs(ctl.status()), time.monotonic()
        due, missed = j1[0] - j0[0], j1[1] - j0[1]
        miss = missed / due if due else 1.0
        ontime = (due - missed) / (t1 - t0)
        steps.append((r, ontime, miss))
        say(f"calibrate: {r:.2f} frames/s: {due / (t1 - t0):.1f} jobs/s due, {ontime:.1f} on time, miss "
            f"{100 * miss:.1f}%")
        before = max((x[1] for x in steps[:-1]), default=0.0)
        best = max(before, ontime)
        failed = failed + 1 if miss > max_miss else 0
        flat = flat + 1 if ontime < 1.05 * before else 0
        passed = any(x[2] <= max_miss for x in steps)
        fell = fell + 1 if ontime < 0.5 * best else 0
        if (failed >= 2 and passed) or flat >= 2 or fell >= 2 or due == 0:
            break
        r *= factor
    sender.rate = 0.0
    ok = [x for x in steps if x[2] <= max_miss]
    pick = max(ok or steps, key=lambda x: x[1])
    how = f"the step with the most on-time completions among those with <= {100 * max_miss:.0f}% missed" if ok \
        else f"no step had <= {100 * max_miss:.0f}% missed: the step with the most on-time completions"
    say(f"capacity: {pick[0]:.2f} frames/s, {pick[1]:.1f} on-time jobs/s ({how})")
    return pick[0], pick[1]


def _jobs(st: dict) -> tuple[int, int]:
    due = sum(m["due"] for m in st["models"].values())
    return due, sum(m["missed"] for m in st["models"].values())


@dataclass
class Phase:
    scale: float
    index: int  # its place in the schedule
    ontime_s: float = 0.0  # on-time completions per second
    due_s: float = 0.0
    miss: float = 0.0
    load: float = 0.0  # the host's 1-minute load average at the phase's end


@dataclass
class Figures:
    scale: float
    pairs: list[float] = field(default_factory=list)  # each phase against the mean of the 1x phases around it
    ontime: list[float] = field(default_factory=list)
    capacity: list[float] = field(default_factory=list)  # every 1x phase

    @property
    def median_pair(self) -> float:
        return statistics.median(self.pairs) if self.pairs else 0.0

    @property
    def ratio_of_medians(self) -> float:
        cap = statistics.median(self.capacity) if self.capacity else 0.0
        return statistics.median(self.ontime) / cap if cap > 0 and self.ontime else 0.0


def schedule(scales: tuple[float, ...], rounds: int) -> list[float]:
    """The scale of every phase: 1x first and last, and between any two overload phases."""
    out = [1.0]
    for _ in range(rounds):
        for s in scales:
            out += [s, 1.0]
    return out


def stream_name(name: str, scale: float, k: int) -> str:
    return f"{name}/{scale:g}x/{k}"


def run(ctl, sender, rate: float, scales: tuple[float, ...], rounds: int, *, phase_s: float, settle_s: float,
        name: str, jobs, say=print) -> list[Phase]:
    """The phases of :func:`schedule` at ``rate`` frames/s x their scale; ``jobs(status)``: (due, missed) so far."""
    phases: list[Phase] = []
    for k, scale in enumerate(schedule(scales, rounds)):
        sender.stream = stream_name(name, scale, k)
        sender.rate = rate * scale
        time.sleep(settle_s)
        j0, t0 = jobs(ctl.status()), time.monotonic()
        time.sleep(phase_s)
        j1, t1 = jobs(ctl.status()), time.monotonic()
        due, missed = j1[0] - j0[0], j1[1] - j0[1]
        ph = Phase(scale, k, (due - missed) / (t1 - t0), due / (t1 - t0), missed / due if due else 0.0,
                   os.getloadavg()[0])
        phases.append(ph)
        say(f"phase {k:2d} {scale:g}x ({rate * scale:.2f} frames/s, stream {sender.stream}): {ph.due_s:.1f} jobs/s "
            f"due, {ph.ontime_s:.1f} on time, miss {100 * ph.miss:.1f}%, load average {ph.load:.2f}")
    sender.rate = 0.0
    return phases


def figures(phases: list[Phase]) -> dict[float, Figures]:
    """Per overload scale: the pair ratios (each phase against the mean of its neighbouring 1x phases)."""
    caps = [p.ontime_s for p in phases if p.scale == 1.0]
    out: dict[float, Figures] = {}
    for k, p in enumerate(phases):
        if p.scale == 1.0:
            continue
        f = out.setdefault(p.scale, Figures(p.scale, capacity=caps))
        f.ontime.append(p.ontime_s)
        around = [q.ontime_s for q in (phases[k - 1] if k else None, phases[k + 1] if k + 1 < len(phases) else None)
                  if q is not None and q.scale == 1.0]
        ref = sum(around) / len(around) if around else 0.0
        if ref > 0:
            f.pairs.append(p.ontime_s / ref)
    return out


def report(phases: list[Phase], say=print, target: float = 0.9) -> tuple[dict[float, Figures], list[str]]:
    """Prints the figures; returns them and the failures (a median pair ratio below ``target``)."""
    figs = figures(phases)
    caps = [p.ontime_s for p in phases if p.scale == 1.0]
    loads = [p.load for p in phases]
    if caps:
        say(f"interleaved: 1x on time {statistics.median(caps):.1f} jobs/s median over {len(caps)} phases "
            f"(min {min(caps):.1f}, max {max(caps):.1f}); load average {min(loads):.2f}-{max(loads):.2f} "
            f"(median {statistics.median(loads):.2f})")
    failures = []
    for s, f in figs.items():
        if not f.pairs:
            continue
        say(f"interleaved {s:g}x: on time {statistics.median(f.ontime):.1f} jobs/s median; pair ratios "
            + " ".join(f"{100 * r:.0f}%" for r in f.pairs)
            + f"; median pair ratio {100 * f.median_pair:.0f}% (spread {100 * min(f.pairs):.0f}-"
              f"{100 * max(f.pairs):.0f}%), ratio of medians {100 * f.ratio_of_medians:.0f}% "
              f"(target >= {100 * target:.0f}%)")
        if f.median_pair < target:
            failures.append(f"interleaved {s:g}x: median pair ratio {100 * f.median_pair:.0f}% (< {100 * target:.0f}%)")
    return figs, failures
