"""The record schema of a run: one module writes and reads every record a trace holds (docs/traces.md).

A trace (a generated one, a replay's ``--record`` output, the live service's log) is JSON lines: a
``header``, then ``frame`` records, and for a run ``job`` records (one per due frame), ``segment``
records (one per block that ran) and ``summary`` records (per window, and the run's). The workload
engine (``core.engine``) writes job and segment records, the drivers and ``sim.trace`` the header and
frames, ``report`` and ``replay`` read them back. Pure: plain dicts, no I/O.
"""
from __future__ import annotations

from typing import Any

from .types import DROPPED, Completion

FORMAT = "edge-sdrm3-trace"
VERSION = 1

# the fields of a job record that make its Completion, in Completion's order
COMPLETION_FIELDS = ("model", "frame", "variant", "accelerator", "release_ms", "start_ms", "end_ms",
                     "deadline_ms", "energy_mj", "status", "reason")


def header(scenario: Any, duration_s: float, seed: int, **extra: Any) -> dict:
    """Line 1 of a trace: the scenario embedded (a ``catalog.Scenario``), the duration and seed."""
    return {"format": FORMAT, "version": VERSION, "scenario": scenario.to_dict(), "duration_s": duration_s,
            "seed": seed, **extra}


def frame_record(model: str, frame: int, release_ms: float, fired: bool | None = None,
                 stream: str | None = None, stream_frame: int | None = None, ready_ms: float | None = None) -> dict:
    """A frame of a model; ``fired`` only for a triggered model; ``stream``/``stream_frame`` for a live frame, and
    ``ready_ms`` when the service took it in after its release (its arrival)."""
    d: dict = {"type": "frame", "model": model, "frame": frame, "release_ms": release_ms}
    if fired is not None:
        d["fired"] = fired
    if stream is not None:
        d["stream"], d["stream_frame"] = stream, stream_frame
    if ready_ms is not None:
        d["ready_ms"] = ready_ms
    return d


def job_record(c: Completion, variant_name: str, *, energy_source: str = "", stream: str | None = None,
               stream_frame: int | None = None, computed: bool = True) -> dict:
    """One due frame's outcome. ``energy_source`` says where a measured energy came from ("" when modelled or
    when the job never ran); ``computed`` is false when the job ran timing-only (its result has no outputs)."""
    d = {"type": "job", "model": c.model, "frame": c.frame, "variant": c.variant, "accelerator": c.accelerator,
         "release_ms": c.release_ms, "start_ms": c.start_ms, "end_ms": c.end_ms, "deadline_ms": c.deadline_ms,
         "status": c.status, "reason": c.reason, "energy_mj": c.energy_mj,
         "energy_source": energy_source if c.start_ms >= 0 else "", "variant_name": variant_name}
    if stream is not None:
        d["stream"], d["stream_frame"] = stream, stream_frame
    if c.start_ms >= 0 and not computed:
        d["computed"] = False
    return d


def segment_record(model: str, frame: int, variant: int, first_seg: int, n: int, accelerator: str,
                   start_ms: float, end_ms: float, energy_mj: float) -> dict:
    """One execution: ``segments`` consecutive segments from ``segment`` of a job's variant on one accelerator
    (one segment, unless the policy ran the rest of the job at once)."""
    return {"type": "segment", "model": model, "frame": frame, "variant": variant, "segment": first_seg,
            "segments": n, "accelerator": accelerator, "start_ms": start_ms, "end_ms": end_ms,
            "energy_mj": energy_mj}


def cost_record(t_ms: float, model: str, variant_name: str, segment: int, accelerator: str, latency_ms: float,
                energy_mj: float) -> dict:
    """A cost learned while running (``core.estimator``): from ``t_ms`` on, segment ``segment`` of the variant
    costs this much on the accelerator (its latency including the service's dispatch overhead)."""
    return {"type": "cost", "t_ms": t_ms, "model": model, "variant_name": variant_name, "segment": segment,
            "accelerator": accelerator, "latency_ms": latency_ms, "energy_mj": energy_mj}


def summary_record(t_ms: float, window_s: float, final: bool, policy: str, scenario: str, platform: str,
                   figures: dict, **more: Any) -> dict:
    """A window's (or with ``final`` the whole run's) summary: when, what ran, its figures (``core.metrics``), then
    ``more`` (θ, variants in use, utilisation, the run so far, error and drop counts)."""
    return {"type": "summary", "t_ms": t_ms, "window_s": window_s, "final": final, "policy": policy,
            "scenario": scenario, "platform": platform, **figures, **more}


def completion_of(rec: dict) -> Completion:
    """The Completion a job record holds (KeyError names a missing field)."""
    return Completion(*(rec[k] if k != "reason" else rec.get(k, "") for k in COMPLETION_FIELDS))


def missed(model: str, frame: int, release_ms: float, deadline_ms: float, now: float, reason: str) -> Completion:
    """A due frame that never ran (its upstream was dropped or late, it was never released...): dropped at
    ``now``, nothing spent."""
    return Completion(model, frame, 0, "", release_ms, -1.0, now, deadline_ms, 0.0, DROPPED, reason)


def result(policy: str, scenario: str, platform: str, duration_s: float, seed: int, figures: dict,
           compat: str = "") -> dict:
    """A run's summary as ``replay --json`` prints it and a recorded run's last summary record holds it:
    what ran, then its figures (``core.metrics``)."""
    out = {"policy": policy, "scenario": scenario, "platform": platform, "compat": compat or "native",
           "duration_s": duration_s, "seed": seed}
    out.update(figures)
    return out
