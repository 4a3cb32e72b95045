#!/usr/bin/env python3
"""UXCost benchmark: every registered policy on the 7 XRBench scenarios x 6 platforms (42 cells).

Run from the repository root (no installation needed):

    python3 tools/bench_uxcost.py --all            # the full report: 42 cells + SDRM3 ablation
    .venv/bin/python tools/bench_uxcost.py         # same (the full grid includes the ablation)
    python3 tools/bench_uxcost.py --scenarios vr_gaming --platforms dual_4k_ws_os,single_4k_ws --out-dir /tmp/ux

Each cell is a native replay (``edge_sdrm3.sim.replay.replay``) of a ``--duration``-second trace
(``edge_sdrm3.sim.trace.generate``, ``--seed``) with every policy of ``policy_names()``: the nine
baselines and whatever else is registered (SDRM3 and its variants). Per cell it records UXCost, XRBench
score, miss rate, energy and accuracy of each policy, the best baseline (lowest UXCost among
``BASELINES``) and, for each non-baseline policy, the reduction ``1 - UXCost(p) / UXCost(best
baseline)``. Over the cells: the geometric-mean reduction ``1 - exp(mean(log(1 - r)))``, the median
reduction, the number of cells where the policy is worse than the best baseline by more than 1%, and
the number of light cells (best baseline misses < 1% of frames).

The ablation runs ``sdrm3`` with one part switched off at a time (passed as ``policy_config``): each
score term (alpha, beta, gamma = 0), early drops (delta = -1), overload shedding (shed = False) and
the tuner (tune = False). A configuration the policy does not accept is reported as n/a.

Cells run in ``--workers`` processes (default 2), one task per cell; every replay is deterministic, so
the output is the same as a serial run (``--workers 1``). Writes ``uxcost.md`` and ``uxcost.json`` to
``--out-dir`` (default ``docs/results``) and prints the summary.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402  (puts the repository root on sys.path)
    PLATFORMS, ROOT, SCENARIOS, command_line, csv_list, geomean_reduction, machine, median, pct, table,
)

from edge_sdrm3.catalog import load_platform, load_scenario  # noqa: E402
from edge_sdrm3.core.policies import BASELINES, make_policy, policy_names  # noqa: E402
from edge_sdrm3.sim.replay import replay  # noqa: E402
from edge_sdrm3.sim.trace import generate  # noqa: E402

WORSE_TOL = 0.01  # a policy is "worse" in a cell when its reduction is below -1%
LIGHT_MISS = 0.01  # a cell is "light" when its best baseline misses fewer than 1% of frames
HEADLINE = ("sdrm3", "sdrm3+supernet")  # columns of the headline table (n/a when not registered)
ABLATION_BASE = "sdrm3"
ABLATIONS = (  # (label, policy_config)
    ("no fairness (alpha=0)", {"alpha": 0}),
    ("no preference (beta=0)", {"beta": 0}),
    ("no energy (gamma=0)", {"gamma": 0}),
    ("no early drops (delta=-1)", {"delta": -1}),
    ("no overload shedding (shed=False)", {"shed": False}),
    ("no tuner (tune=False)", {"tune": False}),
)
DROP_KEYS = ("policy", "scenario", "platform", "compat", "duration_s", "seed")  # already in the cell / document
MODEL_KEYS = ("miss_rate", "p99_ms", "xrbench_score")  # kept of the per-model breakdown

_traces: dict = {}  # per worker process: (scenario, duration, seed) -> Trace


def _trace(scenario: str, duration: float, seed: int):
    key = (scenario, duration, seed)
    if key not in _traces:
        _traces[key] = generate(load_scenario(scenario), duration, seed)
    return _traces[key]


def _run(tr, spec, policy: str, config: dict | None) -> dict:
    try:
        metrics, _ = replay(tr, spec, policy, policy_config=config)
    except Exception as e:  # recorded and reported; the other cells still run
        return {"error": f"{type(e).__name__}: {e}"}
    out = {k: v for k, v in metrics.items() if k not in DROP_KEYS}
    out["models"] = {name: {k: pm[k] for k in MODEL_KEYS if k in pm} for name, pm in metrics.get("models", {}).items()}
    return out


def run_cell(task: tuple) -> dict:
    """One cell: every policy, then the ablation variants that the policy accepts."""
    scenario, platform, duration, seed, policies, ablations = task
    tr = _trace(scenario, duration, seed)
    spec = load_platform(platform)
    t0 = time.perf_counter()
    results = {p: _run(tr, spec, p, None) for p in policies}
    abl = {}
    for label, cfg in ablations:  # the ablation keeps the run's totals only (no per-model breakdown)
        m = _run(tr, spec, ABLATION_BASE, cfg)
        m.pop("models", None)
        abl[label] = m
    return {"scenario": scenario, "platform": platform, "results": results, "ablation": abl,
            "wall_s": time.perf_counter() - t0}


def accepted(policy: str, config: dict) -> str:
    """'' if the policy's constructor accepts ``config``, else why not."""
    try:
        make_policy(policy, **config)
    except Exception as e:  # TypeError for an unknown key; ValueError / ConfigError for a bad value
        return f"{type(e).__name__}: {e}"
    return ""


def analyse(cell: dict, baselines: list[str], others: list[str]) -> None:
    """Adds the best baseline and the reductions to ``cell`` (in place)."""
    res = cell["results"]
    ok = [b for b in baselines if "error" not in res.get(b, {"error": 1})]
    best = min(ok, key=lambda b: (res[b]["uxcost"], baselines.index(b))) if ok else None
    cell["best_baseline"] = best
    ref = res[best]["uxcost"] if best else None
    cell["light"] = bool(best) and res[best]["miss_rate"] < LIGHT_MISS

    def reduction(m: dict) -> float | None:
        if ref is None or "error" in m:
            return None
        if ref <= 0:
            return 0.0 if m["uxcost"] <= 0 else -math.inf
        return 1.0 - m["uxcost"] / ref

    cell["reduction"] = {p: reduction(res[p]) for p in others}
    cell["ablation_reduction"] = {k: (None if v is None else reduction(v)) for k, v in cell["ablation"].items()}


def summarise(cells: list[dict], get) -> dict:
    """Across cells, for reductions ``get(cell)`` (None where not available)."""
    reds = [get(c) for c in cells]
    have = [r for r in reds if r is not None]
    return {
        "cells": len(have),
        "geomean_reduction": geomean_reduction(have),
        "median_reduction": median(have),
        "worse_cells": sum(1 for r in have if r < -WORSE_TOL),
        "better_cells": sum(1 for r in have if r > WORSE_TOL),
        "min_reduction": min(have) if have else None,
        "max_reduction": max(have) if have else None,
        "geomean_reduction_heavy": geomean_reduction([get(c) for c in cells if not c["light"] and get(c) is not None]),
    }


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


def headline_rows(cells: list[dict], head: list[str]) -> list[list[str]]:
    rows = []
    for c in cells:
        res, bb = c["results"], c["best_baseline"]
        row = [c["scenario"], c["platform"], bb or "n/a", fmt_ux(metric(res, bb, "uxcost")),
               fmt_miss(metric(res, bb, "miss_rate"))]
        for p in head:
            if p not in res:
                row += ["n/a"] * 4
                continue
            acc = metric(res, p, "accuracy")
            row += [fmt_ux(metric(res, p, "uxcost")), fmt_miss(metric(res, p, "miss_rate")),
                    "n/a" if acc is None else f"{acc:.3f}", pct(c["reduction"].get(p))]
        rows.append(row)
    return rows


def summary_lines(summary: dict, n_cells: int, light: int) -> list[str]:
    out = []
    for p, s in summary.items():
        out.append(f"{p}: geomean reduction vs best baseline {pct(s['geomean_reduction'])}, "
                   f"median {pct(s['median_reduction'])}, worse than best baseline by >1% in "
                   f"{s['worse_cells']}/{s['cells']} cells, better by >1% in {s['better_cells']}, "
                   f"range [{pct(s['min_reduction'])}, {pct(s['max_reduction'])}], "
                   f"geomean over the heavy cells {pct(s['geomean_reduction_heavy'])}")
    out.append(f"light cells (best baseline miss rate < {LIGHT_MISS:.0%}): {light}/{n_cells}")
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


def write_markdown(path: Path, doc: dict, head: list[str], others: list[str], policies: list[str]) -> None:
    cells = doc["cells"]
    L = [f"# UXCost benchmark ({doc['duration_s']:g} s native replays, seed {doc['seed']})", "",
         "Made by (from the repository root):", "", "```", doc["command"], "```", "",
         f"Code: {doc['git']}. {len(cells)} cells; the reduction is 1 - UXCost(policy) / UXCost(best "
         f"baseline), the best baseline being the lowest UXCost among {', '.join(doc['baselines'])}. "
         "The geomean reduction is 1 - exp(mean(log(1 - reduction))). Lower UXCost is better.", "",
         "## Headline", ""]
    hdr = ["scenario", "platform", "best baseline", "UXCost", "miss"]
    for p in head:
        hdr += [f"{p} UXCost", f"{p} miss", f"{p} acc", f"{p} reduction"]
    L += [table(hdr, headline_rows(cells, head), markdown=True, align="lll" + "r" * (len(hdr) - 3)), ""]
    L += ["- " + s for s in summary_lines(doc["summary"], len(cells), doc["light_cells"])]
    if doc["errors"]:
        L += ["", "**Errors:**", ""] + [f"- {e}" for e in doc["errors"]]
    L += ["", "## UXCost of every policy", "",
          "Best baseline in bold; reductions of the non-baseline policies are in the headline table and the JSON.", ""]
    rows = []
    for c in cells:
        r = [c["scenario"], c["platform"]]
        for p in policies:
            v = fmt_ux(metric(c["results"], p, "uxcost"))
            r.append(f"**{v}**" if p == c["best_baseline"] else v)
        rows.append(r)
    L += [table(["scenario", "platform"] + policies, rows, markdown=True, align="ll" + "r" * len(policies)), ""]
    if doc["ablation"]:
        L += ["## SDRM3 ablation", "",
              f"`{ABLATION_BASE}` with one part switched off (its `policy_config`); reduction vs the best "
              "baseline of each cell; the last column is the geomean ratio against full SDRM3 "
              "(negative: the part helps). n/a: the policy does not accept the configuration.", ""]
        L += [table(["variant", "config", "geomean reduction", "median", "worse cells", "vs full sdrm3"],
                    ablation_rows(doc["ablation"]), markdown=True, align="ll" + "rrrr"), ""]
        nas = [f"{k}: {s['na']}" for k, s in doc["ablation"].items() if s.get("na")]
        if nas:
            L += ["Not accepted:", ""] + [f"- {x}" for x in nas] + [""]
    L += [f"Wall time {doc['run']['wall_s']:.0f} s with {doc['run']['workers']} worker(s); {doc['run']['machine']}.", ""]
    path.write_text("\n".join(L))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of trace per cell (default 10)")
    ap.add_argument("--seed", type=int, default=0, help="trace seed (default 0)")
    ap.add_argument("--scenarios", type=csv_list, default=None, help="comma-separated scenarios (default: all 7)")
    ap.add_argument("--platforms", type=csv_list, default=None, help="comma-separated platforms (default: all 6)")
    ap.add_argument("--policies", type=csv_list, default=None,
                    help="comma-separated policies (default: every registered one; the baselines are always run)")
    ap.add_argument("--all", action="store_true", help="the full report: every cell and the ablation")
    ap.add_argument("--ablation", action="store_true",
                    help="run the SDRM3 ablation (default only when the grid is not narrowed)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the ablation")
    ap.add_argument("--workers", type=int, default=2, help="worker processes, one cell per task (default 2; 1: serial)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results",
                    help="where uxcost.md and uxcost.json go (default docs/results)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)

    if args.all and (args.scenarios or args.platforms or args.no_ablation):
        ap.error("--all runs every cell and the ablation; drop --scenarios/--platforms/--no-ablation")
    scenarios = args.scenarios or list(SCENARIOS)
    platforms = args.platforms or list(PLATFORMS)
    registered = policy_names()
    baselines = [b for b in BASELINES if b in registered]
    wanted = args.policies or registered
    unknown = [p for p in wanted if p not in registered]
    if unknown:
        ap.error(f"unknown policies {unknown} (registered: {', '.join(registered)})")
    others = [p for p in wanted if p not in BASELINES]
    policies = baselines + others
    head = [p for p in HEADLINE]  # shown even when absent (n/a), plus any other non-baseline policy
    head += [p for p in others if p not in head]
    full_grid = not args.scenarios and not args.platforms
    do_ablation = (args.all or args.ablation or full_grid) and not args.no_ablation and ABLATION_BASE in registered

    ablations, abl_na = [], {}
    if do_ablation:
        for label, cfg in ABLATIONS:
            why = accepted(ABLATION_BASE, cfg)
            if why:
                abl_na[label] = why
            else:
                ablations.append((label, cfg))

    tasks = [(s, p, args.duration, args.seed, policies, ablations) for s in scenarios for p in platforms]
    order = {(s, p): i for i, (s, p, *_rest) in enumerate(tasks)}
    t0 = time.perf_counter()
    print(f"{len(tasks)} cells x {len(policies)} policies" + (f" + {len(ablations)} ablation variants" if ablations else "")
          + f", {args.duration:g} s replays, seed {args.seed}, {args.workers} worker(s)", file=sys.stderr)
    cells = []
    if args.workers > 1 and len(tasks) > 1:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ctx.Pool(min(args.workers, len(tasks))) as pool:
            for c in pool.imap_unordered(run_cell, tasks):
                cells.append(c)
                print(f"  [{len(cells)}/{len(tasks)}] {c['scenario']} {c['platform']} {c['wall_s']:.1f} s", file=sys.stderr)
    else:
        for t in tasks:
            cells.append(run_cell(t))
            c = cells[-1]
            print(f"  [{len(cells)}/{len(tasks)}] {c['scenario']} {c['platform']} {c['wall_s']:.1f} s", file=sys.stderr)
    cells.sort(key=lambda c: order[(c["scenario"], c["platform"])])
    wall = time.perf_counter() - t0

    errors = []
    for c in cells:
        analyse(c, baselines, others)
        for p, m in list(c["results"].items()) + [(f"{ABLATION_BASE} [{k}]", v) for k, v in c["ablation"].items()]:
            if "error" in m:
                errors.append(f"{c['scenario']} / {c['platform']} / {p}: {m['error']}")
    summary = {p: summarise(cells, lambda c, p=p: c["reduction"][p]) for p in others}
    light = sum(1 for c in cells if c["light"])

    abl_summary = {}
    if do_ablation:
        full = summary.get(ABLATION_BASE) or summarise(cells, lambda c: None)
        for label, cfg in ABLATIONS:
            s = {"config": json.dumps(cfg)}
            if label in abl_na:
                s["na"] = abl_na[label]
            else:
                s.update(summarise(cells, lambda c, k=label: c["ablation_reduction"][k]))
                g, gf = s["geomean_reduction"], full["geomean_reduction"]
                s["vs_full"] = None if g is None or gf is None or gf >= 1 else 1.0 - (1.0 - g) / (1.0 - gf)
            abl_summary[label] = s

    for c in cells:  # keep the JSON's per-cell timing out of the comparable part
        c["wall_s"] = round(c["wall_s"], 3)
    doc = {
        "command": command_line(), "git": git_state(), "duration_s": args.duration, "seed": args.seed,
        "scenarios": scenarios, "platforms": platforms, "policies": policies, "baselines": baselines,
        "worse_tolerance": WORSE_TOL, "light_miss_rate": LIGHT_MISS, "light_cells": light,
        "summary": summary, "ablation": abl_summary, "errors": errors, "cells": cells,
        "run": {"wall_s": round(wall, 1), "workers": args.workers, "machine": machine()},
    }

    # stdout: the headline and the summary
    hdr = ["scenario", "platform", "best", "UXCost", "miss"]
    for p in head:
        hdr += [p, "miss", "acc", "red"]
    print(table(hdr, headline_rows(cells, head), align="lll" + "r" * (len(hdr) - 3)))
    print()
    for line in summary_lines(summary, len(cells), light):
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
    print(f"\nwall {wall:.1f} s, {args.workers} worker(s)")
    if not args.no_write:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "uxcost.json").write_text(dump_json(_rounded(doc)))
        write_markdown(args.out_dir / "uxcost.md", doc, head, others, policies)
        print(f"wrote {args.out_dir / 'uxcost.md'} and {args.out_dir / 'uxcost.json'}")
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
