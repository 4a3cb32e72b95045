"""``--compat xrbench``: the public XRBench simulator's own terms, to reproduce its scores.

Its quirks, on purpose (``shared/data/xrbench/SIMULATOR.md``): a 700-ms run; integer frame intervals
``1000 // fps``; events only on a tick grid of ``1000 // max_fps`` ms and at job completions, frames
injected at the first event at or after their nominal time, deadlines ``(n + 1) * interval``; a job
retired at an event when ``now + 0.01 >= completion``; a queued request dropped when ``deadline < now``;
a dependent request ready once its upstream has retired ``frame + 1`` jobs; the run stops after the
event that injects the last frame, leaving what runs or waits then unscored; its score formula.
The policy (normally ``xrbench``) and the dispatcher are the ones native replay uses.
"""
from __future__ import annotations

from ..catalog import PlatformSpec
from ..core.dispatcher import Dispatcher
from ..core.engine import Sink
from ..core.metrics import model_infos, rt_score, summarize
from ..core.policies import make_policy
from ..core.policy import as_policy
from ..core.records import job_record, missed, result
from ..core.types import DONE, DROPPED, LATE, Completion, Job
from .replay import setup
from .trace import Trace

RUN_MS = 700
RETIRE_TOLERANCE_MS = 0.01
E_MAX_MJ = 1500.0


def replay_xrbench(trace: Trace, spec: PlatformSpec, policy_name: str = "xrbench", *,
                   policy_config: dict | None = None, records: Sink | None = None) -> tuple[dict, list[Completion]]:
    """The run and the jobs it logged; ``records`` receives their job records (this loop keeps no segments)."""
    policy = make_policy(policy_name, **(policy_config or {}))
    st = setup(trace, spec, as_policy(policy).uses_variants)
    models, costs, index = st.models, st.costs, st.index
    disp = Dispatcher(spec.platform, models, costs, policy, fallback=make_policy("fcfs"), drop_strict=True)
    n = len(models)
    interval = [int(1000 // m.fps) for m in models]
    n_frames = [RUN_MS // iv for iv in interval]
    grid = int(1000 // max(m.fps for m in models))
    fired = {(fr.model, fr.frame): fr.fired for fr in trace.frames}
    up = [index[m.upstream] if m.upstream is not None else -1 for m in models]
    next_frame = [0] * n
    retired = [0] * n
    held: list[list[Job]] = [[] for _ in range(n)]  # dependent requests waiting for their upstream
    logged: list[Completion] = []
    next_id = 0
    now = 0.0
    next_tick = 0
    while True:
        # 1. inject every frame whose nominal time has come (the slot draws even if it did not fire)
        for i, m in enumerate(models):
            while next_frame[i] < n_frames[i] and next_frame[i] * interval[i] <= now:
                f = next_frame[i]
                next_frame[i] += 1
                if not fired.get((m.name, f), True):
                    continue
                next_id += 1
                job = Job(next_id, m, i, f, now, float((f + 1) * interval[i]), costs)
                if up[i] >= 0:
                    held[i].append(job)
                else:
                    disp.release(job)
        # 2. retire finished jobs
        for a, job in enumerate(disp.running):
            if job is not None and now + RETIRE_TOLERANCE_MS >= disp.free_at[a]:
                c = disp.segments_done(a, now, end_ms=disp.free_at[a])
                if c is not None:
                    logged.append(c)
                    retired[job.m] += 1
        # 3. drop overdue held requests (the dispatcher drops the queued ones, with the same rule)
        for i in range(n):
            q = held[i]
            while q and q[0].deadline < now:
                j = q.pop(0)
                logged.append(missed(j.model.name, j.frame, j.release, j.deadline, now, "deadline"))
            while q and retired[up[i]] >= q[0].frame + 1:
                disp.release(q.pop(0))
        # 4. dispatch
        _starts, ended = disp.schedule(now)
        logged.extend(ended)
        if all(next_frame[i] >= n_frames[i] for i in range(n)):
            break
        # next event: the next grid tick or the earliest completion still to come
        if now >= next_tick:
            next_tick += grid
        busy = [disp.free_at[a] for a, job in enumerate(disp.running) if job is not None]
        now = min([float(next_tick)] + busy)
    res = _result(trace, spec, st, policy.name, disp, logged, now)
    for c in logged if records is not None else ():
        records.put(job_record(c, models[index[c.model]].variants[c.variant].name))
    return res, logged


def _result(trace: Trace, spec: PlatformSpec, st, policy_name: str, disp: Dispatcher, logged: list[Completion],
            now: float) -> dict:
    """The run's figures as XRBench scores it: work still running at the stop counts only its part before it."""
    busy = [b - max(0.0, disp.free_at[a] - now) if disp.running[a] is not None else b
            for a, b in enumerate(disp.busy_ms)]
    accs = spec.platform.accelerators
    infos = model_infos(st.models, [st.costs.reference_energy(i) for i in range(len(st.models))])
    res = result(policy_name, trace.scenario.name, spec.platform.name, trace.duration_s, trace.seed,
                 summarize(logged, infos, accelerators=[a.id for a in accs], busy_ms=busy,
                           idle_power_mw=[a.idle_power_mw for a in accs], duration_ms=now), compat="xrbench")
    res["xrbench_score"] = xrbench_overall(logged, [m.name for m in st.models])
    res["run_ms"] = now
    return res


def xrbench_overall(logged: list[Completion], model_names: list[str]) -> float:
    """XRBench's Overall Score: per model, sum of RT*EN over completed jobs / (C + D) * (1 - D / (C + D));
    100 x the mean over the models that logged a job."""
    scores = []
    for name in model_names:
        cs = [c for c in logged if c.model == name]
        if not cs:
            continue
        d = sum(1 for c in cs if c.status == DROPPED)
        total = sum(rt_score(c.end_ms - c.deadline_ms) * (E_MAX_MJ - c.energy_mj) / E_MAX_MJ
                    for c in cs if c.status in (DONE, LATE))
        scores.append(total / len(cs) * (1.0 - d / len(cs)))
    return 100.0 * sum(scores) / len(scores) if scores else 0.0


