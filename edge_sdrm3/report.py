"""The metrics of a recorded run: a service log or a replay's ``--record`` file, from its job records.

The same metrics as a replay (DESIGN.md §5), computed from what happened rather than re-simulated, plus
the variants each model ran. ``edge-sdrm3 report RUN`` prints them; ``report RUN... -o report.html``
draws them (``report_html``, with matplotlib, an optional extra), ``--chrome-trace`` writes the timeline
in the Trace Event format (here: no plotting library needed).

A run's timeline comes from its ``segment`` records (``replay --record`` and the service's log write
them); without them, from its job records: each job from its start to its end on its last accelerator.
"""
from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from .catalog import FileFormatError, build_costs, build_models, load_platform
from .core.metrics import model_infos, summarize
from .core.policies import BASELINES
from .core.records import completion_of, result
from .core.types import Completion
from .sim.trace import is_trace, read

SDRM3_FAMILY = "sdrm3"  # policies whose name starts with it are ours; the rest of BASELINES are compared against


@dataclass
class Run:
    """A recorded run, times shifted so that its first release is at 0 ms."""

    path: str
    metrics: dict  # as `replay --json`, plus each model's "variants" (name -> completed frames)
    completions: list[Completion]
    segments: list[dict]  # segment records ({model, frame, variant, segment, segments, accelerator, start_ms,
    #                       end_ms, energy_mj}); job spans (segment -1) when the run has no segment records
    has_segments: bool
    accelerators: list[str]
    models: list[str]
    variant_names: dict[str, list[str]]
    windows: list[dict] = field(default_factory=list)  # per window: t_ms (end), window_ms, uxcost, ...
    tuning: list[dict] = field(default_factory=list)  # summary records with a θ: t_ms, uxcost, theta

    @property
    def label(self) -> str:
        return f"{self.metrics['policy']} · {self.metrics['scenario']} on {self.metrics['platform']}"


def run_metrics(path: str, platform: str | None = None) -> dict:
    return load_run(path, platform).metrics


def load_run(path: str, platform: str | None = None) -> Run:
    tr = read(path)
    if not tr.jobs:
        raise FileFormatError(f"{path}: no job records (a trace from `trace generate` has none; record a run with "
                              f"`replay --record` or the service's log)")
    summary = tr.summaries[-1] if tr.summaries else {}
    name = platform or summary.get("platform")
    if not name:
        raise FileFormatError(f"{path}: the run does not name its platform; give --platform")
    spec = load_platform(name)
    models = build_models(tr.scenario, None, spec)
    costs = build_costs(models, spec, tr.scenario.cost_table)
    index = {m.name: i for i, m in enumerate(models)}
    infos = model_infos(models, [costs.reference_energy(i) for i in range(len(models))])
    comps = []
    for i, rec in enumerate(tr.jobs):
        try:
            comps.append(completion_of(rec))
        except KeyError as e:
            raise FileFormatError(f"{path}: job record {i + 1}: missing field {e.args[0]!r}") from None
    ids = [a.id for a in spec.platform.accelerators]
    t0 = min((c.release_ms for c in comps), default=0.0)
    shifted = [c._replace(release_ms=c.release_ms - t0, start_ms=c.start_ms - t0 if c.start_ms >= 0 else -1.0,
                          end_ms=c.end_ms - t0, deadline_ms=c.deadline_ms - t0) for c in comps]
    if tr.segments:
        segs = [{**s, "start_ms": s["start_ms"] - t0, "end_ms": s["end_ms"] - t0} for s in tr.segments]
    else:  # the job's whole span, on its last accelerator
        segs = [{"model": c.model, "frame": c.frame, "variant": c.variant, "segment": -1, "segments": 0,
                 "accelerator": c.accelerator, "start_ms": c.start_ms, "end_ms": c.end_ms, "energy_mj": c.energy_mj}
                for c in shifted if c.start_ms >= 0 and c.accelerator]
    busy = [0.0] * len(ids)
    for s in segs:
        if s["accelerator"] in ids:
            busy[ids.index(s["accelerator"])] += s["end_ms"] - s["start_ms"]
    # a replay's summary names its duration (the idle energy runs to it); the service's windows do not
    duration_ms = 1000.0 * summary.get("duration_s", 0.0) if tr.segments and "t_ms" not in summary else 0.0
    accs = spec.platform.accelerators
    res = result(summary.get("policy", "recorded"), tr.scenario.name, spec.platform.name, tr.duration_s, tr.seed,
                 summarize(shifted, infos, accelerators=ids, busy_ms=busy,
                           idle_power_mw=[a.idle_power_mw for a in accs], duration_ms=duration_ms))
    variants: dict[str, Counter] = {}
    for rec in tr.jobs:
        if rec.get("status") in ("done", "late"):
            m = rec["model"]
            vi = rec.get("variant", 0)
            vname = rec.get("variant_name") or (models[index[m]].variants[vi].name if m in index else str(vi))
            variants.setdefault(m, Counter())[vname] += 1
    for m, d in res["models"].items():
        d["variants"] = dict(variants.get(m, {}))
    run = Run(str(path), res, shifted, segs, bool(tr.segments), ids, [m.name for m in models],
              {m.name: [v.name for v in m.variants] for m in models})
    run.tuning = [{**s, "t_ms": s["t_ms"] - t0} for s in tr.summaries  # on the clock of the job records
                  if isinstance(s.get("theta"), dict) and isinstance(s.get("t_ms"), (int, float)) and not s.get("final")]
    run.windows = windows(shifted, infos)
    return run


def _nice(x: float) -> float:
    """The 1-2-5 number nearest above x."""
    p = 10 ** math.floor(math.log10(x))
    return next(m * p for m in (1, 2, 5, 10) if m * p >= x)


def windows(comps: list[Completion], infos, window_ms: float | None = None) -> list[dict]:
    """UXCost, XRBench score and miss rate per window of the run, over the frames that ended in it."""
    if not comps:
        return []
    end = max(c.end_ms for c in comps)
    w = window_ms or _nice(max(end / 20.0, 50.0))
    out = []
    n = max(1, math.ceil(end / w + 1e-9))
    buckets: list[list[Completion]] = [[] for _ in range(n)]
    for c in comps:
        buckets[min(n - 1, int(c.end_ms // w))].append(c)
    for i, cs in enumerate(buckets):
        s = summarize(cs, infos, accelerators=[], busy_ms=[])
        out.append({"t_ms": (i + 1) * w, "window_ms": w, "uxcost": s["uxcost"], "xrbench_score": s["xrbench_score"],
                    "miss_rate": s["miss_rate"], "frames_due": s["frames_due"], "energy_mj": s["energy_mj"]})
    return out


# --- result files (`compare --json`, `replay --json`, the benchmark's uxcost.json) ----------------------------

def load_results(path: str) -> list[dict] | dict:
    """A JSON list of results, one result, or a benchmark file (a dict with "cells")."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read ({e.strerror})") from None
    except ValueError as e:
        raise FileFormatError(f"{path}: not a trace and not valid JSON ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("cells"), list):
        return data
    rows = [data] if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise FileFormatError(f"{path}: expected a trace, or results (a JSON list or object from --json)")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not all(k in r for k in ("policy", "uxcost", "miss_rate", "energy_mj")):
            raise FileFormatError(f"{path}: result {i + 1}: expected an object with policy, uxcost, miss_rate, "
                                  f"energy_mj (the output of `replay --json` or `compare --json`)")
    return rows


def load_any(path: str, platform: str | None = None) -> Run | list[dict] | dict | Sweep:
    if is_sweep(path):
        return load_sweep(path)
    return load_run(path, platform) if is_trace(path) else load_results(path)


# --- sweep files (`edge-sdrm3 sweep -o FILE`: one record per cell) ---------------------------------------------

@dataclass
class Sweep:
    path: str
    records: list[dict]  # one per cell with a result (a cell run again after a failure: its last record)
    failed: int = 0  # cells whose last record is an error


def is_sweep(path: str) -> bool:
    """A sweep's output: JSON lines whose first record has a 'cell' (a trace's first line is its header)."""
    try:
        with open(path) as f:
            first = json.loads(f.readline())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(first, dict) and isinstance(first.get("cell"), dict) and "format" not in first


def load_sweep(path: str) -> Sweep:
    from .sweep.runner import cell_key, read_records

    last: dict[str, dict] = {}
    for r in read_records(path):
        last[cell_key(r, path)] = r
    ok = [r for r in last.values() if "error" not in r]
    return Sweep(path, ok, len(last) - len(ok))


def sweep_label(r: dict) -> str:
    """A record's policy with its parameters, e.g. ``sdrm3 alpha=0.1``."""
    params = r.get("params") or {}
    return " ".join([r["policy"]] + [f"{k}={v}" for k, v in sorted(params.items())])


def sweep_summary(records: list[dict]) -> list[dict]:
    """Per policy (with its parameters): cells, mean UXCost, miss rate and energy, and the UXCost reduction
    against the best baseline of each (scenario, platform, seed, duration) as a geometric mean and a median over the
    cells where that baseline's UXCost is > 0, with the cells worse / better than it by more than 1%. A ``+supernet``
    policy is measured against the best ``X+supernet`` baseline of the cell where the sweep ran one (as ``reduction``
    does)."""
    ok = [r for r in records if "error" not in r]
    best: dict[tuple, float] = {}  # per cell: the best plain baseline
    best_sn: dict[tuple, float] = {}  # per cell: the best X+supernet baseline, the reference of any +supernet policy
    for r in ok:
        if is_baseline(r["policy"]) and not r.get("params"):
            g = _sweep_group(r)
            into = best_sn if r["policy"].endswith(SUPERNET) else best
            into[g] = min(into.get(g, math.inf), r["uxcost"])
    out: dict[str, dict] = {}
    for r in ok:
        s = out.setdefault(sweep_label(r), {"label": sweep_label(r), "policy": r["policy"], "params": r.get("params") or {},
                                            "cells": 0, "uxcost": 0.0, "miss_rate": 0.0, "energy_mj": 0.0,
                                            "_logs": [], "worse_cells": 0, "better_cells": 0})
        s["cells"] += 1
        for k in ("uxcost", "miss_rate", "energy_mj"):
            s[k] += r[k]
        g = _sweep_group(r)
        ref = best_sn.get(g, best.get(g)) if r["policy"].endswith(SUPERNET) else best.get(g)
        if ref is not None and ref > 0:
            ratio = r["uxcost"] / ref
            s["_logs"].append(math.log(max(ratio, 1e-12)))
            s["worse_cells"] += ratio > 1.01
            s["better_cells"] += ratio < 0.99
    rows = []
    for s in out.values():
        logs = s.pop("_logs")
        for k in ("uxcost", "miss_rate", "energy_mj"):
            s[k] /= s["cells"]
        s["compared_cells"] = len(logs)
        s["geomean_reduction"] = 1.0 - math.exp(sum(logs) / len(logs)) if logs else None
        s["median_reduction"] = 1.0 - math.exp(statistics.median(logs)) if logs else None
        rows.append(s)
    order = {p: i for i, p in enumerate(BASELINES)}
    rows.sort(key=lambda s: (order.get(s["policy"], len(order)), s["label"]))
    return rows


def _sweep_group(r: dict) -> tuple:
    c = r.get("cell", {})
    return (c.get("scenario", r.get("scenario")), c.get("platform", r.get("platform")), r.get("seed"),
            r.get("duration_s"))


def sweep_table(rows: list[dict]) -> str:
    head = ["policy", "cells", "mean uxcost", "miss %", "energy mJ", "vs best (geomean)", "(median)", "worse", "better"]
    lines = [[s["label"], str(s["cells"]), f"{s['uxcost']:.4f}", f"{100 * s['miss_rate']:.1f}", f"{s['energy_mj']:.0f}",
              *("n/a" if s[k] is None else f"{100 * s[k]:+.1f}%" for k in ("geomean_reduction", "median_reduction")),
              str(s["worse_cells"]), str(s["better_cells"])] for s in rows]
    if not lines:
        return "no results"
    w = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w[i]}}}" for i in range(len(head)))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * x for x in w))] + [fmt.format(*x) for x in lines])


def best_baseline(rows: list[dict]) -> dict | None:
    """The result of the baseline (DESIGN.md §4) with the lowest UXCost among ``rows``, if any."""
    base = [r for r in rows if r["policy"] in BASELINES]
    return min(base, key=lambda r: r["uxcost"]) if base else None


def reduction(rows: list[dict]) -> dict[str, tuple[float, str]]:
    """Each policy of ours' UXCost reduction (a fraction) against its reference, and the reference's name: the best
    baseline; for an ``X+supernet`` of ours, the best ``X+supernet`` baseline among ``rows`` if there is one."""
    plain = best_baseline(rows)
    sn = best_supernet_baseline(rows)
    out = {}
    for r in rows:
        if is_baseline(r["policy"]):
            continue
        best = sn if sn is not None and r["policy"].endswith(SUPERNET) else plain
        if best is not None:
            out[r["policy"]] = (1.0 - r["uxcost"] / best["uxcost"] if best["uxcost"] > 0 else 0.0, best["policy"])
    return out


SUPERNET = "+supernet"


def is_supernet_baseline(policy: str) -> bool:
    """``X+supernet`` for a baseline X: a baseline with the supernet selector."""
    return policy.endswith(SUPERNET) and policy[: -len(SUPERNET)] in BASELINES


def is_baseline(policy: str) -> bool:
    return policy in BASELINES or is_supernet_baseline(policy)


def best_supernet_baseline(rows: list[dict]) -> dict | None:
    """The ``X+supernet`` baseline with the lowest UXCost among ``rows``, if any."""
    base = [r for r in rows if is_supernet_baseline(r["policy"])]
    return min(base, key=lambda r: r["uxcost"]) if base else None


def parse_window(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    a, sep, b = text.partition(":")
    try:
        lo, hi = float(a), float(b)
    except ValueError:
        lo = hi = float("nan")
    if not sep or not lo < hi or lo < 0:
        raise FileFormatError(f"--window {text!r}: expected START_MS:END_MS with 0 <= START < END")
    return lo, hi


# --- Trace Event format (Perfetto, chrome://tracing) ----------------------------------------------------------

def chrome_trace(runs: list[Run], window: tuple[float, float] | None = None) -> dict:
    """One process per run, one thread (track) per accelerator; an "X" event per segment (per job without
    segment records), an instant event per miss; times in µs."""
    ev: list[dict] = []
    for pid, run in enumerate(runs, 1):
        ev.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": run.label}})
        for tid, acc in enumerate(run.accelerators, 1):
            ev.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": acc}})
            ev.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
        tid_of = {a: i for i, a in enumerate(run.accelerators, 1)}
        status = {(c.model, c.frame): c for c in run.completions}
        for s in run.segments:
            if window and not (s["end_ms"] > window[0] and s["start_ms"] < window[1]):
                continue
            c = status.get((s["model"], s["frame"]))
            args = {"frame": s["frame"], "variant": run.variant_names.get(s["model"], [])[s["variant"]]
                    if 0 <= s.get("variant", 0) < len(run.variant_names.get(s["model"], [])) else s.get("variant"),
                    "energy_mj": s["energy_mj"], "job": c.status if c else ""}
            if s.get("segment", -1) >= 0:
                args["segment"] = s["segment"] if s.get("segments", 1) == 1 else \
                    f"{s['segment']}-{s['segment'] + s['segments'] - 1}"
            ev.append({"name": s["model"], "cat": "segment" if run.has_segments else "job", "ph": "X",
                       "ts": s["start_ms"] * 1000.0, "dur": (s["end_ms"] - s["start_ms"]) * 1000.0,
                       "pid": pid, "tid": tid_of.get(s["accelerator"], 0), "args": args})
        missed = [c for c in run.completions if c.status != "done"]
        if any(not c.accelerator for c in missed):
            ev.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": len(run.accelerators) + 1,
                       "args": {"name": "dropped (never ran)"}})
        for c in missed:
            if window and not window[0] <= c.end_ms <= window[1]:
                continue
            ev.append({"name": f"{c.status}: {c.model}#{c.frame}", "cat": "miss", "ph": "i", "s": "t",
                       "ts": c.end_ms * 1000.0, "pid": pid,
                       "tid": tid_of.get(c.accelerator, len(run.accelerators) + 1),
                       "args": {"reason": c.reason, "deadline_ms": c.deadline_ms}})
    return {"traceEvents": ev, "displayTimeUnit": "ms"}
