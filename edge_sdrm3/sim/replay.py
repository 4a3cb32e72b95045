"""Replay a trace in simulated time on an emulated platform, with the same core the live service uses.

Native semantics (DESIGN.md §6): frames are released at their trace times; a cascaded frame that fired
(and whose upstream frame fired: a trigger inside a frame that never happened is not due)
is released when the upstream job of the corresponding frame completes on time (at the later of that
completion and its own release time), and counts as missed without running if the upstream job was
dropped, late or failed; firm deadlines (the dispatcher's rule): a queued job is dropped at its
deadline, a running one at its next block boundary; the run drains.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable

from ..catalog import PlatformSpec, build_costs, build_models
from ..core.dispatcher import Dispatcher
from ..core.metrics import model_infos, summarize
from ..core.policies import make_policy
from ..core.types import DONE, DROPPED, INF, Completion, Costs, Job, Model, Start
from .engine import COMPLETE, RELEASE, WAKE, Engine
from .trace import Frame, Trace


@dataclass
class Setup:
    models: tuple[Model, ...]
    costs: Costs
    index: dict[str, int]


def setup(trace: Trace, spec: PlatformSpec, policy: Any) -> Setup:
    widths = None if getattr(policy, "uses_variants", False) else (1.0,)
    models = build_models(trace.scenario, widths, spec)
    costs = build_costs(models, spec, trace.scenario.cost_table)
    return Setup(models, costs, {m.name: i for i, m in enumerate(models)})


def completion_record(c: Completion) -> dict:
    return {"model": c.model, "frame": c.frame, "variant": c.variant, "accelerator": c.accelerator,
            "release_ms": c.release_ms, "start_ms": c.start_ms, "end_ms": c.end_ms,
            "deadline_ms": c.deadline_ms, "status": c.status, "reason": c.reason, "energy_mj": c.energy_mj}


def segment_record(s: Start, spec: PlatformSpec) -> dict:
    """One execution: ``segments`` consecutive segments from ``segment`` of a job's variant on one accelerator
    (one segment, unless the policy ran the rest of the job at once)."""
    j = s.job
    return {"model": j.model.name, "frame": j.frame, "variant": j.variant, "segment": s.first_seg,
            "segments": s.n, "accelerator": spec.platform.accelerators[s.acc].id,
            "start_ms": s.start_ms, "end_ms": s.end_ms, "energy_mj": s.energy_mj}


def result(policy_name: str, trace: Trace, spec: PlatformSpec, st: Setup, completions: list[Completion],
           busy_ms: list[float], duration_ms: float, compat: str = "") -> dict:
    ref = [st.costs.reference_energy(i) for i in range(len(st.models))]
    accs = spec.platform.accelerators
    out = {"policy": policy_name, "scenario": trace.scenario.name, "platform": spec.platform.name,
           "compat": compat or "native", "duration_s": trace.duration_s, "seed": trace.seed}
    out.update(summarize(completions, model_infos(st.models, ref), accelerators=[a.id for a in accs],
                         busy_ms=busy_ms, idle_power_mw=[a.idle_power_mw for a in accs], duration_ms=duration_ms))
    return out


def replay(trace: Trace, spec: PlatformSpec, policy_name: str, *, policy_config: dict | None = None,
           progress: Callable[[float], None] | None = None, policy: Any = None,
           record_segments: list[dict] | None = None) -> tuple[dict, list[Completion]]:
    """Run ``trace`` natively; returns the metrics dict and one completion per due frame.

    ``policy`` is an already made policy object (its state, e.g. a tuner's history, stays readable).
    ``record_segments``: a list that receives one segment record (``segment_record``) per execution the
    dispatcher starts, for ``--record`` and the report's timeline (None, the default: nothing is kept)."""
    if policy is None:
        policy = make_policy(policy_name, **(policy_config or {}))
    st = setup(trace, spec, policy)
    models, costs, index = st.models, st.costs, st.index
    disp = Dispatcher(spec.platform, models, costs, policy, fallback=make_policy("fcfs"))
    observe = getattr(policy, "observe", None)
    eng = Engine()
    completions: list[Completion] = []

    # cascaded frames wait for their upstream: children[(upstream, upstream frame)] -> [frame, ...]
    up_releases: dict[str, list[float]] = {}
    up_frames: dict[str, list[Frame]] = {}
    for fr in trace.frames:
        up_releases.setdefault(fr.model, []).append(fr.release_ms)
        up_frames.setdefault(fr.model, []).append(fr)
    children: dict[tuple[str, int], list] = {}
    for fr in trace.frames:
        m = models[index[fr.model]]
        if not fr.fired:  # its trigger did not fire: the frame is not due
            continue
        if m.upstream is None:
            eng.at(fr.release_ms, RELEASE, fr)
        else:
            rel = up_releases.get(m.upstream, [])
            k = bisect_right(rel, fr.release_ms + 1e-9) - 1
            if k < 0:  # no upstream frame before it: it can never be released
                completions.append(_missed(fr, m, "no upstream frame"))
                continue
            up = up_frames[m.upstream][k]
            if not up.fired:  # the upstream frame itself was never due: neither is this one
                continue
            children.setdefault((m.upstream, up.frame), []).append(fr)

    next_id = 0

    def make_job(fr, release: float) -> Job:
        nonlocal next_id
        next_id += 1
        m = models[index[fr.model]]
        return Job(next_id, m, index[fr.model], fr.frame, release, fr.release_ms + m.relative_deadline_ms, costs)

    def finished(c: Completion, now: float) -> None:
        completions.append(c)
        if observe is not None:
            observe(c, now)
        kids = children.pop((c.model, c.frame), None)
        if not kids:
            return
        for fr in kids:
            if c.status == DONE:
                if fr.release_ms > now:
                    eng.at(fr.release_ms, RELEASE, (fr, fr.release_ms))
                else:
                    disp.release(make_job(fr, now))
            else:
                finished(_missed(fr, models[index[fr.model]], f"upstream {c.status}", now), now)

    pending_wake = INF
    duration_ms = trace.duration_s * 1000.0
    last_report = 0.0
    while eng:
        now, kind, payload = eng.pop()
        if kind == COMPLETE:
            c = disp.segments_done(payload, now)
            if c is not None:
                finished(c, now)
        elif kind == RELEASE:
            if isinstance(payload, tuple):  # a cascaded frame whose upstream finished before its release
                disp.release(make_job(payload[0], payload[1]))
            else:
                disp.release(make_job(payload, payload.release_ms))
        elif now == pending_wake:
            pending_wake = INF
        t = eng.peek_time()
        if t is not None and t == now:
            continue  # handle every event of this instant before asking the policy
        starts, ended = disp.schedule(now)
        for c in ended:
            finished(c, now)
        for s in starts:
            eng.at(s.end_ms, COMPLETE, s.acc)
        if record_segments is not None:
            record_segments.extend(segment_record(s, spec) for s in starts)
        w = disp.wake_at
        if w < pending_wake:
            pending_wake = w
            eng.at(w, WAKE)
        if progress is not None and now - last_report >= 1000.0:
            last_report = now
            progress(min(1.0, now / duration_ms) if duration_ms else 1.0)
    for c in disp.drop(list(disp.ready), eng.now, "stalled"):  # nothing left that could run them
        finished(c, eng.now)
    for key, kids in sorted(children.items()):  # upstream frames that never ran at all
        for fr in kids:
            completions.append(_missed(fr, models[index[fr.model]], "upstream never ran"))
    return result(policy.name, trace, spec, st, completions, disp.busy_ms, duration_ms), completions


def _missed(fr, m: Model, reason: str, now: float | None = None) -> Completion:
    t = fr.release_ms if now is None else now
    return Completion(fr.model, fr.frame, 0, "", fr.release_ms, -1.0, t, fr.release_ms + m.relative_deadline_ms,
                      0.0, DROPPED, reason)
