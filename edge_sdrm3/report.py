"""The metrics of a recorded run: a service log or a replay's ``--record`` file, from its job records.

The same metrics as a replay (DESIGN.md §5), computed from what happened rather than re-simulated, plus
the variants each model ran. ``edge-sdrm3 report RUN`` prints them.
"""
from __future__ import annotations

from collections import Counter

from .catalog import FileFormatError, load_platform
from .core.types import Completion
from .sim.replay import Setup, result
from .sim.trace import read

_COMPLETION_FIELDS = ("model", "frame", "variant", "accelerator", "release_ms", "start_ms", "end_ms",
                      "deadline_ms", "energy_mj", "status", "reason")


def run_metrics(path: str, platform: str | None = None) -> dict:
    tr = read(path)
    if not tr.jobs:
        raise FileFormatError(f"{path}: no job records (a trace from `trace generate` has none; record a run with "
                              f"`replay --record` or the service's log)")
    summary = _last_summary(path)
    name = platform or summary.get("platform")
    if not name:
        raise FileFormatError(f"{path}: the run does not name its platform; give --platform")
    spec = load_platform(name)
    from .catalog import build_costs, build_models

    models = build_models(tr.scenario, None, spec)
    costs = build_costs(models, spec, tr.scenario.cost_table)
    st = Setup(models, costs, {m.name: i for i, m in enumerate(models)})
    comps = []
    for i, rec in enumerate(tr.jobs):
        try:
            comps.append(Completion(*(rec[k] if k != "reason" else rec.get(k, "") for k in _COMPLETION_FIELDS)))
        except KeyError as e:
            raise FileFormatError(f"{path}: job record {i + 1}: missing field {e.args[0]!r}") from None
    busy = [0.0] * len(spec.platform.accelerators)
    ids = [a.id for a in spec.platform.accelerators]
    for c in comps:
        if c.start_ms >= 0 and c.accelerator in ids:  # the job's whole span, on its last accelerator
            busy[ids.index(c.accelerator)] += c.end_ms - c.start_ms
    t0 = min((c.release_ms for c in comps), default=0.0)
    shifted = [c._replace(release_ms=c.release_ms - t0, start_ms=c.start_ms - t0 if c.start_ms >= 0 else -1.0,
                          end_ms=c.end_ms - t0, deadline_ms=c.deadline_ms - t0) for c in comps]
    res = result(summary.get("policy", "recorded"), tr, spec, st, shifted, busy, 0.0)
    variants: dict[str, Counter] = {}
    for rec in tr.jobs:
        if rec.get("status") in ("done", "late"):
            m = rec["model"]
            vi = rec.get("variant", 0)
            vname = rec.get("variant_name") or (models[st.index[m]].variants[vi].name if m in st.index else str(vi))
            variants.setdefault(m, Counter())[vname] += 1
    for m, d in res["models"].items():
        d["variants"] = dict(variants.get(m, {}))
    return res


def _last_summary(path: str) -> dict:
    """The last summary record of a run (the service and ``replay --record`` write the platform and policy)."""
    import json

    last: dict = {}
    with open(path) as f:
        for line in f:
            if '"summary"' in line:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("type") == "summary":
                    last = rec
    return last
