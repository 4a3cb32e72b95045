#!/usr/bin/env python3
"""UXCost benchmark: every registered policy on the 7 XRBench scenarios x 6 platforms (42 cells), or on random mixes.

Run from the repository root (no installation needed):

    python3 tools/bench_uxcost.py --all            # the full report: 42 cells + SDRM3 ablation
    python3 tools/bench_uxcost.py --random 60      # 60 random mixes (seeds 1..60) x 6 platforms: uxcost_random.*
    python3 tools/bench_uxcost.py --scenarios vr_gaming --platforms dual_4k_ws_os,single_4k_ws --out-dir /tmp/ux
    python3 tools/bench_uxcost.py --all --ray auto    # on this machine's Ray cluster (or a local Ray instance)

Each cell is a native replay (``edge_sdrm3.sim.replay.replay``) of a ``--duration``-second trace
(``edge_sdrm3.sim.trace.generate``, ``--seed``) with every policy of ``policy_names()``. The roles come from the
registry, never from a list here:

- the *baselines* are ``BASELINES`` (DESIGN.md §4, as registered); the best baseline of a cell is the one with the
  lowest UXCost;
- the *supernet baselines* are the registered ``X+supernet`` policies whose ``X`` is a baseline (with
  ``--every-supernet-baseline``: ``X+supernet`` for every baseline X); a policy of ours whose name ends in
  ``+supernet`` is compared with the best of them (like with like: both may serve narrower variants), or with the
  best baseline when there is none;
- every other policy is *ours* (SDRM3 and its variants): per cell its reduction ``1 - UXCost(p) / UXCost(reference)``.

Over the cells, per policy of ours: the geometric-mean reduction ``1 - exp(mean(log(1 - r)))`` with the median
beside it, the same over the *loaded* cells (the reference misses >= 1% of frames; in the others only energy can
be won), the cells where it is worse than its reference by more than 1% (named), and its mean relative accuracy.
An *infeasible* cell (``edge_sdrm3.feasibility``: every model misses its deadline even alone on the platform,
computed from the costs) is named and left out of the geomeans: any policy misses everything there, and the one that
drops earliest scores best. A cell where a policy misses every frame yet comes out ahead is flagged too.

``--random N`` runs random mixes instead (``edge-sdrm3 scenarios random``, seeds ``--random-seed``..+N-1, default
1..N) on the six platforms, with the same analysis, into ``uxcost_random.md``/``.json``. The ablation runs
``sdrm3`` with one part switched off at a time (``policy_config``); a configuration it does not accept is n/a.

The cell runner (``run_cells``: replays only) is apart from the analysis (``analyse``, ``summarise``: from the
results and the costs) and the output. Every replay is a cell of ``edge-sdrm3 sweep`` (``sweep_cells``: one per
policy and ablation variant), run by the sweep's runner on its executors: ``--workers`` local processes (default
2), or a Ray cluster with ``--ray auto|ADDRESS`` (the ``cluster`` extra). Every replay is deterministic, so the
output is the same as a serial run (``--workers 1``) or on Ray.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402  (puts the repository root on sys.path)
    PLATFORMS, ROOT, SCENARIOS, command_line, csv_list, geomean_reduction, machine, median, pct, table,
)

from edge_sdrm3.catalog import Scenario, load_cost_table, load_platform, load_scenario  # noqa: E402
from edge_sdrm3.core.policies import BASELINES, make_policy, policy_names  # noqa: E402
from edge_sdrm3.feasibility import infeasible, model_feasibility  # noqa: E402
from edge_sdrm3.random_scenarios import random_scenario  # noqa: E402
from edge_sdrm3.sweep.grid import RANDOM_PREFIX, Cell  # noqa: E402
from edge_sdrm3.sweep.runner import execute, make_executor  # noqa: E402
from edge_sdrm3.sweep.runner import run_cell as run_sweep_cell  # noqa: E402

WORSE_TOL = 0.01  # a policy is "worse" in a cell when its reduction is below -1%
WORSE_NAMED = 12  # the summary names at most this many worse cells (the JSON has them all)
LOADED_MISS = 0.01  # a cell is "loaded" when its reference baseline misses at least 1% of frames
SUPERNET = "+supernet"
HEADLINE = ("sdrm3", "sdrm3+supernet")  # columns of the headline table (n/a when not registered)
ABLATION_BASE = "sdrm3"
ABLATIONS = (  # (label, policy_config)
    ("no fairness (alpha=0)", {"alpha": 0}),
    ("no preference (beta=0)", {"beta": 0}),
    ("no energy (gamma=0)", {"gamma": 0}),
    ("no early drops (delta=-1)", {"delta": -1}),
    ("no overload shedding (shed=False)", {"shed": False}),
    ("no tuner (tune=False)", {"tune": False}),
    ("no release hold (hold_place=False)", {"hold_place": False}),
    ("one shedding estimate (fit_estimate=False)", {"fit_estimate": False}),
    ("no value hold (hold_value=False)", {"hold_value": False}),
    ("with the stay-slack rule (stay_slack=True)", {"stay_slack": True}),
    ("no running-job hold (hold_running=False)", {"hold_running": False}),
    ("no cascade hold (hold_cascades=False)", {"hold_cascades": False}),
    ("no energy worth (energy_worth=False)", {"energy_worth": False}),
    ("no running-job shedding (shed_running=False)", {"shed_running": False}),
    ("no running-job booking (book_running=False)", {"book_running": False}),
    ("no spill under overload (spill=False)", {"spill": False}),
)
DROP_KEYS = ("policy", "scenario", "platform", "compat", "duration_s", "seed")  # already in the cell / document
MODEL_KEYS = ("miss_rate", "p99_ms", "xrbench_score")  # kept of the per-model breakdown


# --- roles: which registered policies are baselines, supernet baselines, ours ---------------------------------------

def constructible(name: str) -> bool:
    try:
        make_policy(name)
    except Exception:  # ConfigError: not a policy (a name the registry builds on demand, or not at all)
        return False
    return True


def policy_roles(registered: list[str], can_build: Callable[[str], bool] | None = None) -> dict[str, list[str]]:
    """{"baselines", "supernet_baselines", "ours"}: the baselines as ``BASELINES`` names them (those registered),
    ``X+supernet`` for each baseline X that the registry lists (or, given ``can_build``, that it builds on request),
    and every other registered policy."""
    base = [b for b in BASELINES if b in registered and not b.endswith(SUPERNET)]
    sn = [b + SUPERNET for b in base if b + SUPERNET in registered or can_build is not None and can_build(b + SUPERNET)]
    return {"baselines": base, "supernet_baselines": sn,
            "ours": [p for p in registered if p not in base and p not in sn and p not in BASELINES]}


def reference_group(policy: str, roles: dict[str, list[str]]) -> str:
    """The baselines a policy of ours is compared with: "supernet_baselines" for X+supernet when there are any."""
    return "supernet_baselines" if policy.endswith(SUPERNET) and roles["supernet_baselines"] else "baselines"


# --- the cell runner: one scenario x one platform, every policy, as cells of a sweep (replays only) ------------------

class CellTask(NamedTuple):
    """One cell to run: a scenario on a platform, every policy in ``policies``, then ``ablations``
    (``(label, policy_config)`` of ``ABLATION_BASE``). ``source`` names the scenario for ``edge-sdrm3 sweep``
    (a scenario name, or ``random:N``)."""

    scenario: Scenario
    source: str
    platform: str
    duration_s: float
    seed: int
    policies: tuple[str, ...]
    ablations: tuple[tuple[str, dict], ...] = ()


def sweep_cells(task: CellTask) -> list[Cell]:
    """The replays of a cell, as the cells of a sweep: one per policy, then one per ablation variant."""
    return [Cell(task.source, task.platform, p, task.seed, task.duration_s) for p in task.policies] + \
        [Cell(task.source, task.platform, ABLATION_BASE, task.seed, task.duration_s, tuple(sorted(cfg.items())))
         for _, cfg in task.ablations]


def timed_batch(cells: list[Cell]) -> list[dict]:
    """The sweep's cell runner on each cell, with the replay's wall and CPU time beside its record."""
    out = []
    for cell in cells:
        t0, c0 = time.perf_counter(), time.process_time()
        rec = run_sweep_cell(cell)
        rec["wall_s"], rec["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        out.append(rec)
    return out


def _metrics(rec: dict) -> dict:
    """A replay's figures as the tables keep them (an error as ``{"error": ...}``)."""
    if "error" in rec:
        return {"error": rec["error"]}
    out = {k: v for k, v in rec.items() if k not in DROP_KEYS and k not in ("params", "cell", "wall_s", "cpu_s")}
    out["models"] = {name: {k: pm[k] for k in MODEL_KEYS if k in pm} for name, pm in rec.get("models", {}).items()}
    return out


def run_cells(tasks: list[CellTask], executor, log: Callable[[str], None]) -> list[dict]:
    """Every task's cell, in the order of ``tasks``: its replays run by ``edge-sdrm3 sweep``'s executor
    (``LocalExecutor``: worker processes; ``RayExecutor``: a Ray cluster)."""
    cells_of = [sweep_cells(t) for t in tasks]
    task_of = {c.key(): i for i, cs in enumerate(cells_of) for c in cs}
    recs: dict[str, dict] = {}
    left = [len(cs) for cs in cells_of]
    finished = 0

    def arrived(rec: dict) -> None:
        nonlocal finished
        key = Cell.from_dict(rec["cell"]).key()
        recs[key] = rec
        i = task_of[key]
        left[i] -= 1
        if not left[i]:
            finished += 1
            wall = sum(recs[c.key()]["wall_s"] for c in cells_of[i])
            log(f"  [{finished}/{len(tasks)}] {tasks[i].scenario.name} {tasks[i].platform} {wall:.1f} s")

    execute([c for cs in cells_of for c in cs], executor, arrived, timed_batch)
    out = []
    for t, cs in zip(tasks, cells_of):
        rs = [recs[c.key()] for c in cs]
        n = len(t.policies)
        abl = {}
        for (label, _), r in zip(t.ablations, rs[n:]):  # the ablation keeps the run's totals only
            m = _metrics(r)
            m.pop("models", None)
            abl[label] = m
        out.append({"scenario": t.scenario.name, "platform": t.platform,
                    "results": {p: _metrics(r) for p, r in zip(t.policies, rs[:n])}, "ablation": abl,
                    "wall_s": sum(r["wall_s"] for r in rs), "cpu_s": sum(r["cpu_s"] for r in rs)})
    return out


def accepted(policy: str, config: dict) -> str:
    """'' if the policy's constructor accepts ``config``, else why not."""
    try:
        make_policy(policy, **config)
    except Exception as e:  # TypeError for an unknown key; ValueError / ConfigError for a bad value
        return f"{type(e).__name__}: {e}"
    return ""


# --- analysis: references, reductions, infeasible cells, summaries -----------------------------------------------

def _ok(m: dict | None) -> bool:
    return m is not None and "error" not in m


def drops_everything(m: dict | None) -> bool:
    """Missed every due frame (nothing done on time)."""
    return _ok(m) and m["frames_due"] > 0 and m["frames_missed"] >= m["frames_due"]


def best_of(res: dict, names: list[str]) -> str | None:
    ok = [b for b in names if _ok(res.get(b))]
    return min(ok, key=lambda b: (res[b]["uxcost"], names.index(b))) if ok else None


def reduction(m: dict, ref: dict) -> float:
    if ref["uxcost"] <= 0:
        return 0.0 if m["uxcost"] <= 0 else -math.inf
    return 1.0 - m["uxcost"] / ref["uxcost"]


def analyse(cell: dict, scenario: Scenario, roles: dict[str, list[str]]) -> None:
    """Adds to ``cell`` (in place): feasibility, the best baselines, each policy of ours' reference and reduction."""
    feas = model_feasibility(scenario, load_platform(cell["platform"]))
    cell["infeasible"] = infeasible(feas)
    cell["infeasible_any_variant"] = infeasible(feas, any_variant=True)
    cell["infeasible_models"] = [f.name for f in feas if f.infeasible]
    res = cell["results"]
    cell["best_baseline"] = best_of(res, roles["baselines"])
    cell["best_supernet_baseline"] = best_of(res, roles["supernet_baselines"])
    bb = res.get(cell["best_baseline"]) if cell["best_baseline"] else None
    cell["loaded"] = bool(bb) and bb["miss_rate"] >= LOADED_MISS
    cell["drops_everything"] = [p for p, m in res.items() if drops_everything(m)]
    cell["reference"], cell["reduction"] = {}, {}
    for p in roles["ours"]:
        if p not in res:
            continue
        ref = cell["best_supernet_baseline" if reference_group(p, roles) == "supernet_baselines" else "best_baseline"]
        cell["reference"][p] = ref
        cell["reduction"][p] = reduction(res[p], res[ref]) if ref and _ok(res[p]) else None
    cell["ablation_reduction"] = {k: (reduction(v, bb) if bb and _ok(v) else None)
                                  for k, v in cell["ablation"].items()}


def cell_name(c: dict) -> str:
    return f"{c['scenario']}/{c['platform']}"


def excluded(c: dict, policy: str) -> bool:
    """An infeasible cell for this policy: every model misses alone (a supernet policy: even at its fastest variant)."""
    return c["infeasible_any_variant"] if policy.endswith(SUPERNET) else c["infeasible"]


def summarise(cells: list[dict], policy: str, get: Callable[[dict], float | None]) -> dict:
    """Across the feasible cells, for reductions ``get(cell)`` (None where not available) of ``policy``."""
    feasible = [c for c in cells if not excluded(c, policy) and get(c) is not None]
    reds = [get(c) for c in feasible]
    loaded = [c for c in feasible if _loaded_for(c, policy)]
    worse = [(c, get(c)) for c in feasible if get(c) < -WORSE_TOL]  # type: ignore[operator]
    return {
        "cells": len(reds),
        "geomean_reduction": geomean_reduction(reds),
        "median_reduction": median(reds),
        "loaded_cells": len(loaded),
        "geomean_reduction_loaded": geomean_reduction([get(c) for c in loaded]),
        "median_reduction_loaded": median([get(c) for c in loaded]),
        "worse_cells": len(worse),
        "worse": [f"{cell_name(c)} ({pct(r)})" for c, r in worse],
        "better_cells": sum(1 for r in reds if r > WORSE_TOL),  # type: ignore[operator]
        "min_reduction": min(reds) if reds else None,  # type: ignore[type-var]
        "max_reduction": max(reds) if reds else None,  # type: ignore[type-var]
        "infeasible": [cell_name(c) for c in cells if excluded(c, policy)],
        "wins_by_dropping_everything": [cell_name(c) for c in feasible if policy in c["drops_everything"]
                                        and get(c) > 0],  # type: ignore[operator]
    }


def _loaded_for(c: dict, policy: str) -> bool:
    """The cell is loaded for ``policy``: its reference baseline misses at least LOADED_MISS of the frames."""
    ref = c["reference"].get(policy, c["best_baseline"])
    m = c["results"].get(ref) if ref else None
    return _ok(m) and m["miss_rate"] >= LOADED_MISS


def accuracy_summary(cells: list[dict], policy: str) -> dict:
    """Mean and lowest relative accuracy of ``policy`` and of its reference over the feasible cells."""
    feasible = [c for c in cells if not excluded(c, policy)]
    own = [c["results"][policy]["accuracy"] for c in feasible if _ok(c["results"].get(policy))]
    ref = [c["results"][c["reference"][policy]]["accuracy"] for c in feasible if c["reference"].get(policy)]
    return {"accuracy_mean": sum(own) / len(own) if own else None, "accuracy_min": min(own) if own else None,
            "reference_accuracy_mean": sum(ref) / len(ref) if ref else None}


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "edge_sdrm3"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" (edge_sdrm3/ modified)" if dirty else "")


def fmt_ux(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def fmt_miss(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:.1f}%"


def metric(res: dict, p: str, key: str):
    m = res.get(p)
    if m is None or "error" in m:
        return None
    return m[key]


def cell_note(c: dict) -> str:
    if c["infeasible"]:
        return "infeasible" + ("" if c["infeasible_any_variant"] else " (not with narrower variants)")
    return "loaded" if c["loaded"] else "light"


def headline_columns(head: list[str], roles: dict[str, list[str]]) -> list[str]:
    hdr = ["scenario", "platform", "cell", "best baseline", "UXCost", "miss"]
    if roles["supernet_baselines"]:
        hdr += ["best +supernet baseline", "UXCost", "miss", "acc"]
    for p in head:
        hdr += [f"{p} UXCost", f"{p} miss", f"{p} acc", f"{p} reduction"]
    return hdr


def headline_rows(cells: list[dict], head: list[str], roles: dict[str, list[str]]) -> list[list[str]]:
    """Per cell: its kind, the best baseline(s), each policy of ours with its reduction (! = it missed every frame)."""
    rows = []
    for c in cells:
        res, bb, sb = c["results"], c["best_baseline"], c["best_supernet_baseline"]
        row = [c["scenario"], c["platform"], cell_note(c), bb or "n/a", fmt_ux(metric(res, bb, "uxcost")),
               fmt_miss(metric(res, bb, "miss_rate"))]
        if roles["supernet_baselines"]:
            acc = metric(res, sb, "accuracy")
            row += [sb or "n/a", fmt_ux(metric(res, sb, "uxcost")), fmt_miss(metric(res, sb, "miss_rate")),
                    "n/a" if acc is None else f"{acc:.3f}"]
        for p in head:
            if p not in res:
                row += ["n/a"] * 4
                continue
            acc = metric(res, p, "accuracy")
            red = pct(c["reduction"].get(p)) + (" !" if p in c["drops_everything"] else "")
            row += [fmt_ux(metric(res, p, "uxcost")), fmt_miss(metric(res, p, "miss_rate")),
                    "n/a" if acc is None else f"{acc:.3f}", red]
        rows.append(row)
    return rows


def summary_lines(doc: dict) -> list[str]:
    out = []
    for p, s in doc["summary"].items():
        ref = "the best +supernet baseline" if s["reference"] == "supernet_baselines" else "the best baseline"
        acc = "n/a" if s["accuracy_mean"] is None else f"{s['accuracy_mean']:.3f} (lowest {s['accuracy_min']:.3f}"
        if s["accuracy_mean"] is not None:
            acc += "" if s["reference_accuracy_mean"] is None else \
                f"; {ref} {s['reference_accuracy_mean']:.3f}"
            acc += ")"
        names = s["worse"][:WORSE_NAMED] + ([f"{len(s['worse']) - WORSE_NAMED} more in the table"]
                                            if len(s["worse"]) > WORSE_NAMED else [])
        worse = f" ({', '.join(names)})" if names else ""
        out.append(f"{p} vs {ref}: geomean UXCost reduction {pct(s['geomean_reduction'])} "
                   f"(median {pct(s['median_reduction'])}) over {s['cells']} feasible cells; "
                   f"{pct(s['geomean_reduction_loaded'])} (median {pct(s['median_reduction_loaded'])}) over the "
                   f"{s['loaded_cells']} loaded ones; worse by >1% in {s['worse_cells']}/{s['cells']} cells{worse}, "
                   f"better by >1% in {s['better_cells']}; range [{pct(s['min_reduction'])}, "
                   f"{pct(s['max_reduction'])}]; mean relative accuracy {acc}")
        if s["wins_by_dropping_everything"]:
            out.append(f"{p} misses every frame yet comes out ahead in: {', '.join(s['wins_by_dropping_everything'])}")
    cells = doc["cells"]
    inf = [cell_name(c) for c in cells if c["infeasible"]]
    out.append("infeasible cells (every model misses its deadline even alone; left out of the geomeans): "
               + (", ".join(inf) if inf else "none"))
    loaded = sum(1 for c in cells if c["loaded"] and not c["infeasible"])
    out.append(f"loaded cells (the best baseline misses >= {LOADED_MISS:.0%} of frames): {loaded}/{len(cells)}")
    hollow = [f"{cell_name(c)} ({c['best_baseline']})" for c in cells
              if c["best_baseline"] in c["drops_everything"] and not c["infeasible"]]
    if hollow:
        out.append("feasible cells whose best baseline misses every frame: " + ", ".join(hollow))
    return out


def ablation_rows(abl: dict) -> list[list[str]]:
    rows = []
    for label, s in abl.items():
        if s.get("na"):
            rows.append([label, s["config"], "n/a", "n/a", "n/a", "n/a"])
        else:
            rows.append([label, s["config"], pct(s["geomean_reduction"]), pct(s["median_reduction"]),
                         f"{s['worse_cells']}/{s['cells']}", pct(s["vs_full"])])
    return rows


def mix_lines(scenarios: dict[str, Scenario]) -> list[str]:
    """One line per random mix: its models (name@fps, <-upstream p=..., d=deadline ms)."""
    out = []
    for name, sc in scenarios.items():
        ms = ", ".join(f"{m.name}@{m.fps:g}" + (f"<-{m.upstream} p={m.trigger_probability:g}" if m.upstream else "")
                       + (f" d={m.deadline_ms:g}" if m.deadline_ms is not None else "") for m in sc.models)
        out.append(f"`{name}`: {ms}")
    return out


def write_markdown(path: Path, doc: dict, head: list[str], roles: dict[str, list[str]],
                   scenarios: dict[str, Scenario]) -> None:
    cells = doc["cells"]
    what = f"{doc['random']['count']} random mixes" if doc.get("random") else "XRBench scenarios"
    sn = roles["supernet_baselines"]
    L = [f"# UXCost benchmark, {what} ({doc['duration_s']:g} s native replays, seed {doc['seed']})", "",
         "Made by (from the repository root):", "", "```", doc["command"], "```", "",
         f"Code: {doc['git']}. {len(cells)} cells. The reduction is 1 - UXCost(policy) / UXCost(reference); the "
         f"reference is the best baseline, the lowest UXCost among {', '.join(doc['baselines'])}"
         + (f"; for a `+supernet` policy of ours, the best of {', '.join(sn)}" if sn else "") + ". "
         "The geomean reduction is 1 - exp(mean(log(1 - reduction))). Lower UXCost is better. "
         f"A cell is *loaded* when its best baseline misses >= {LOADED_MISS:.0%} of frames (in the *light* ones only "
         "energy can be won), *infeasible* when every model misses its deadline even alone on the platform (its "
         "best-case latency, from the costs, exceeds its deadline): infeasible cells are left out of the summaries. "
         "`!` after a reduction: the policy missed every frame in that cell.", "",
         "## Summary", ""]
    L += ["- " + x for x in summary_lines(doc)]
    if doc["errors"]:
        L += ["", "**Errors:**", ""] + [f"- {e}" for e in doc["errors"]]
    L += ["", "## Per cell", ""]
    hdr = headline_columns(head, roles)
    L += [table(hdr, headline_rows(cells, head, roles), markdown=True, align="llll" + "r" * (len(hdr) - 4)), ""]
    L += ["## UXCost of every policy", "", "Best baseline in bold.", ""]
    policies = doc["policies"]
    rows = []
    for c in cells:
        r = [c["scenario"], c["platform"]]
        for p in policies:
            v = fmt_ux(metric(c["results"], p, "uxcost"))
            r.append(f"**{v}**" if p in (c["best_baseline"], c["best_supernet_baseline"]) else v)
        rows.append(r)
    L += [table(["scenario", "platform"] + policies, rows, markdown=True, align="ll" + "r" * len(policies)), ""]
    if doc["ablation"]:
        L += ["## SDRM3 ablation", "",
              f"`{ABLATION_BASE}` with one part switched off (its `policy_config`); reduction vs the best "
              "baseline of each feasible cell; the last column is the geomean ratio against full SDRM3 "
              "(negative: the part helps). n/a: the policy does not accept the configuration.", ""]
        L += [table(["variant", "config", "geomean reduction", "median", "worse cells", "vs full sdrm3"],
                    ablation_rows(doc["ablation"]), markdown=True, align="ll" + "rrrr"), ""]
        nas = [f"{k}: {s['na']}" for k, s in doc["ablation"].items() if s.get("na")]
        if nas:
            L += ["Not accepted:", ""] + [f"- {x}" for x in nas] + [""]
    if doc.get("random"):
        r = doc["random"]
        L += ["## The mixes", "", f"Written by `edge-sdrm3 scenarios random --seed {r['first_seed']} --count "
              f"{r['count']} -o DIR` (model@fps, <-upstream p=trigger probability, d=deadline in ms when shorter "
              "than the period):", ""] + ["- " + x for x in mix_lines(scenarios)] + [""]
    run = doc["run"]
    where = f"on {run['executor']}" if run.get("executor") else f"with {run['workers']} worker(s)"
    L += [f"Wall time {run['wall_s']:.0f} s {where}, the replays {run['cpu_s']:.0f} s of CPU; "
          f"{run['machine']}.", ""]
    path.write_text("\n".join(L))


def ablation_summary(cells: list[dict], summary: dict, abl_na: dict) -> dict:
    """Per ablation variant: its summary against the best baseline, and its geomean against full SDRM3's."""
    full = summary.get(ABLATION_BASE) or summarise(cells, ABLATION_BASE, lambda c: None)
    out = {}
    for label, cfg in ABLATIONS:
        s = {"config": json.dumps(cfg)}
        if label in abl_na:
            s["na"] = abl_na[label]
        else:
            s.update(summarise(cells, ABLATION_BASE, lambda c, k=label: c["ablation_reduction"].get(k)))
            g, gf = s["geomean_reduction"], full["geomean_reduction"]
            s["vs_full"] = None if g is None or gf is None or gf >= 1 else 1.0 - (1.0 - g) / (1.0 - gf)
        out[label] = s
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of trace per cell (default 10)")
    ap.add_argument("--seed", type=int, default=0, help="trace seed (default 0)")
    ap.add_argument("--scenarios", type=csv_list, default=None, help="comma-separated scenarios (default: all 7)")
    ap.add_argument("--platforms", type=csv_list, default=None, help="comma-separated platforms (default: all 6)")
    ap.add_argument("--policies", type=csv_list, default=None,
                    help="comma-separated policies (default: every registered one; the baselines are always run)")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="run N random mixes (edge-sdrm3 scenarios random) instead of the XRBench scenarios; "
                         "writes uxcost_random.md/.json")
    ap.add_argument("--random-seed", type=int, default=1, help="seed of the first random mix (default 1)")
    ap.add_argument("--every-supernet-baseline", action="store_true",
                    help="compare +supernet policies of ours with X+supernet for every baseline X, not only those "
                         "the registry lists")
    ap.add_argument("--all", action="store_true", help="the full report: every cell and the ablation")
    ap.add_argument("--ablation", action="store_true",
                    help="run the SDRM3 ablation (default only on the full XRBench grid)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the ablation")
    ap.add_argument("--workers", type=int, default=2,
                    help="local worker processes (default 2; 1: serial); with --ray, the CPUs of a local Ray instance")
    ap.add_argument("--ray", metavar="auto|ADDRESS",
                    help="run the replays on a Ray cluster, as `edge-sdrm3 sweep --ray` (auto: this machine's cluster, "
                         "or a local instance)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results",
                    help="where uxcost.md and uxcost.json (uxcost_random.*) go (default docs/results)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)

    if args.all and (args.scenarios or args.platforms or args.no_ablation):
        ap.error("--all runs every cell and the ablation; drop --scenarios/--platforms/--no-ablation")
    if args.random < 0 or args.random_seed < 0:
        ap.error("--random and --random-seed must be >= 0")
    if args.random and args.scenarios:
        ap.error("--random replaces the scenarios; drop --scenarios")
    if args.random:
        table_ = load_cost_table("xrbench")
        seeds = range(args.random_seed, args.random_seed + args.random)
        mixes = [random_scenario(s, table_) for s in seeds]
        sources = [f"{RANDOM_PREFIX}{s}" for s in seeds]
    else:
        sources = list(args.scenarios or SCENARIOS)
        mixes = [load_scenario(s) for s in sources]
    scenarios = {sc.name: sc for sc in mixes}
    platforms = args.platforms or list(PLATFORMS)
    registered = policy_names()
    roles = policy_roles(registered, constructible if args.every_supernet_baseline else None)
    wanted = args.policies or registered
    unknown = [p for p in wanted if p not in registered and not constructible(p)]
    if unknown:
        ap.error(f"unknown policies {unknown} (registered: {', '.join(registered)})")
    ours = [p for p in wanted if p not in roles["baselines"] and p not in roles["supernet_baselines"]]
    roles["ours"] = ours
    sn_wanted = any(reference_group(p, roles) == "supernet_baselines" for p in ours) or \
        any(p in roles["supernet_baselines"] for p in wanted)
    if not sn_wanted:
        roles["supernet_baselines"] = []
    policies = roles["baselines"] + roles["supernet_baselines"] + ours
    head = [p for p in HEADLINE if p in ours or not args.policies]  # shown even when absent (n/a)
    head += [p for p in ours if p not in head]
    full_grid = not args.scenarios and not args.platforms and not args.random
    do_ablation = (args.all or args.ablation or full_grid) and not args.no_ablation and ABLATION_BASE in registered

    ablations, abl_na = [], {}
    if do_ablation:
        for label, cfg in ABLATIONS:
            why = accepted(ABLATION_BASE, cfg)
            if why:
                abl_na[label] = why
            else:
                ablations.append((label, cfg))

    tasks = [CellTask(sc, src, p, args.duration, args.seed, tuple(policies), tuple(ablations))
             for sc, src in zip(mixes, sources) for p in platforms]
    executor = make_executor(args.workers, args.ray)
    t0 = time.perf_counter()
    print(f"{len(tasks)} cells x {len(policies)} policies" + (f" + {len(ablations)} ablation variants" if ablations else "")
          + f", {args.duration:g} s replays, seed {args.seed}, {executor.describe()}", file=sys.stderr)
    try:
        cells = run_cells(tasks, executor, lambda line: print(line, file=sys.stderr))
    finally:
        executor.close()
    wall = time.perf_counter() - t0

    errors = []
    for c in cells:
        analyse(c, scenarios[c["scenario"]], roles)
        for p, m in list(c["results"].items()) + [(f"{ABLATION_BASE} [{k}]", v) for k, v in c["ablation"].items()]:
            if "error" in m:
                errors.append(f"{c['scenario']} / {c['platform']} / {p}: {m['error']}")
    summary = {}
    for p in ours:
        summary[p] = {"reference": reference_group(p, roles),
                      **summarise(cells, p, lambda c, p=p: c["reduction"].get(p)), **accuracy_summary(cells, p)}
    abl_summary = ablation_summary(cells, summary, abl_na) if do_ablation else {}

    cpu = sum(c["cpu_s"] for c in cells)
    for c in cells:  # keep the JSON's per-cell timing out of the comparable part
        c["wall_s"] = round(c["wall_s"], 3)
        c["cpu_s"] = round(c["cpu_s"], 3)
    doc = {
        "command": command_line(), "git": git_state(), "duration_s": args.duration, "seed": args.seed,
        "random": {"first_seed": args.random_seed, "count": args.random} if args.random else None,
        "scenarios": list(scenarios), "platforms": platforms, "policies": policies,
        "baselines": roles["baselines"], "supernet_baselines": roles["supernet_baselines"], "ours": ours,
        "worse_tolerance": WORSE_TOL, "loaded_miss_rate": LOADED_MISS,
        "loaded_cells": sum(1 for c in cells if c["loaded"] and not c["infeasible"]),
        "infeasible_cells": [cell_name(c) for c in cells if c["infeasible"]],
        "summary": summary, "ablation": abl_summary, "errors": errors, "cells": cells,
        "run": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "workers": args.workers, "machine": machine(),
                **({"executor": executor.describe()} if args.ray else {})},
    }

    # stdout: the per-cell table and the summary
    hdr = headline_columns(head, roles)
    print(table(hdr, headline_rows(cells, head, roles), align="llll" + "r" * (len(hdr) - 4)))
    print()
    for line in summary_lines(doc):
        print(line)
    if abl_summary:
        print()
        print(table(["ablation", "config", "geomean red", "median", "worse", "vs full"], ablation_rows(abl_summary),
                    align="ll" + "rrrr"))
        for k, s in abl_summary.items():
            if s.get("na"):
                print(f"  n/a {k}: {s['na']}")
    if errors:
        print(f"\n{len(errors)} replay(s) failed:", *errors, sep="\n  ")
    print(f"\nwall {wall:.1f} s, {executor.describe()}; the replays took {cpu:.1f} s of CPU")
    if not args.no_write:
        stem = "uxcost_random" if args.random else "uxcost"
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / f"{stem}.json").write_text(dump_json(_rounded(doc)))
        write_markdown(args.out_dir / f"{stem}.md", doc, head, roles, scenarios)
        print(f"wrote {args.out_dir / (stem + '.md')} and {args.out_dir / (stem + '.json')}")
    return 1 if errors else 0


def dump_json(doc: dict) -> str:
    """Valid JSON, one top-level key per line and one cell per line (small, and diffs by cell)."""
    parts = []
    for k, v in doc.items():
        if k == "cells":
            body = ",\n  ".join(json.dumps(c, separators=(",", ":")) for c in v)
            parts.append(f'"cells": [\n  {body}\n ]')
        else:
            parts.append(f"{json.dumps(k)}: {json.dumps(v)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def _rounded(x):
    """Floats to 7 significant digits (plenty for a report; keeps the JSON small); inf/nan as strings."""
    if isinstance(x, float):
        return float(f"{x:.7g}") if math.isfinite(x) else str(x)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x


if __name__ == "__main__":
    sys.exit(main())
