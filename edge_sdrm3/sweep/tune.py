"""``edge-sdrm3 tune``: SDRM3's parameters searched offline per workload and platform, on training seeds.

The search is a seeded random search run as sweep cells (``runner.execute``), so it runs on the same
executors as a sweep (local processes, or a Ray cluster with ``--ray``) and gives the same table on
both. Ray Tune was not used: it pulls pandas and pyarrow in, and its per-trial machinery costs more than
a trial here (one trial is a few sub-second replays); a random search needs neither, and with a fixed
seed it is reproducible. Round 1 draws ``--trials`` parameter sets around the defaults; round 2
perturbs the best of round 1 (``--trials`` / 2 more). The defaults are always a candidate, so an entry
is never worse than the defaults on the training seeds.

The parameters searched are read from the policy's constructor: its keyword arguments with a
number or true/false default, and the fields of its θ (``params()``). Ranges: a
positive default d spans [d/4, 4d] on a log scale (at most 1 when d < 1), a zero default [0, 1],
true/false either.

``--judge TABLE`` replays the policy with its defaults and with ``params_table=TABLE`` on the cells given
(held-out seeds, other workloads) and prints the gain.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import random
import sys
from pathlib import Path

from ..core.params_table import load_table, table_doc, workload_of
from ..core.policies import make_policy
from ..core.types import ConfigError
from .grid import Cell, grid_from
from .runner import Progress, execute, scenario_of

SKIP = {"theta", "params_table"}  # not parameters to search: θ as a whole (its fields are), the table itself


def searchable(policy: str) -> dict[str, object]:
    """The policy's parameters with their defaults (numbers and true/false), read from its constructor."""
    obj = make_policy(policy)
    out: dict[str, object] = {}
    sig = inspect.signature(type(obj).__init__)
    for name, p in sig.parameters.items():
        if name in SKIP or p.default is inspect.Parameter.empty:
            continue
        if isinstance(p.default, (bool, int, float)):
            out[name] = p.default
    for k, v in obj.params().items():  # θ's fields, through the policy contract
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def sample(defaults: dict, rng: random.Random, around: dict | None = None, spread: float = 1.0) -> dict:
    """One parameter set: uniform over the ranges (``around`` None), or ``around`` perturbed."""
    out = {}
    for k, d in defaults.items():
        if isinstance(d, bool):
            out[k] = (not around[k]) if around is not None and rng.random() < 0.15 else \
                around[k] if around is not None else rng.random() < 0.5
            continue
        if isinstance(d, int):
            base = float(around[k]) if around is not None else float(d)
            v = base * math.exp(rng.uniform(-0.5, 0.5) * spread) if around is not None else \
                d * math.exp(rng.uniform(-math.log(4), math.log(4)))
            out[k] = max(1, round(v))
            continue
        if around is not None:
            b = around[k]
            v = b * math.exp(rng.gauss(0.0, 0.3 * spread)) if b > 0 else b + rng.gauss(0.0, 0.1 * spread)
        else:
            v = d * math.exp(rng.uniform(-math.log(4), math.log(4))) if d > 0 else rng.uniform(0.0, 1.0)
        if 0 < d < 1:
            v = min(v, 1.0)
        out[k] = round(v, 6)
    return out


def _score(recs: list[dict]) -> float:
    return sum(r["uxcost"] for r in recs) / len(recs) if recs else math.inf


def tune(grid, policy: str, trials: int, executor, search_seed: int = 0, names: list[str] | None = None,
         show_progress: bool = False) -> dict:
    """The table's document for every (scenario, platform) of ``grid`` over its seeds."""
    defaults = searchable(policy)
    if names:
        bad = [n for n in names if n not in defaults]
        if bad:
            raise ConfigError(f"--search: {policy} has no parameter {bad[0]!r} (searchable: {', '.join(defaults)})")
        defaults = {k: v for k, v in defaults.items() if k in names}
    rng = random.Random(search_seed)
    workloads = [(s, p) for s in grid.scenarios for p in grid.platforms]
    cand: dict[tuple, list[dict]] = {w: [dict(defaults)] + [sample(defaults, rng) for _ in range(trials)]
                                     for w in workloads}

    def run(cands: dict[tuple, list[dict]]) -> dict[tuple, list[float]]:
        cells = [Cell(s, p, policy, seed, grid.duration_s, tuple(sorted(c.items())))
                 for (s, p), cs in cands.items() for c in cs for seed in grid.seeds]
        by = {}
        prog = Progress(len(cells), 0, show_progress, "tune")
        try:
            recs = execute(cells, executor, prog)
        finally:
            prog.end()
        for r in recs:
            if "error" in r:
                raise ConfigError(f"tune: a trial failed: {r['cell']}: {r['error']}")
            by.setdefault(Cell.from_dict(r["cell"]).key(), r)
        out = {}
        for (s, p), cs in cands.items():
            out[(s, p)] = [_score([by[Cell(s, p, policy, seed, grid.duration_s, tuple(sorted(c.items()))).key()]
                                   for seed in grid.seeds]) for c in cs]
        return out

    scores = run(cand)
    best = {w: min(range(len(cand[w])), key=lambda i: (scores[w][i], i)) for w in workloads}
    more = {w: [sample(defaults, rng, cand[w][best[w]]) for _ in range(max(1, trials // 2))] for w in workloads}
    scores2 = run(more)
    entries = []
    for w in workloads:
        allc = cand[w] + more[w]
        alls = scores[w] + scores2[w]
        i = min(range(len(allc)), key=lambda k: (alls[k], k))
        sc = scenario_of(w[0])
        entries.append({"scenario": w[0], "platform": w[1], "models": [list(x) for x in workload_of(sc.models)],
                        "params": allc[i], "train_uxcost_default": alls[0], "train_uxcost": alls[i]})
    return table_doc(entries, policy=policy, train_seeds=list(grid.seeds), duration_s=grid.duration_s,
                     trials=trials, search_seed=search_seed, searched=list(defaults))


def judge(table: str, grid, policy: str, executor) -> dict:
    """The policy with its defaults against ``params_table=table`` on every cell of ``grid``."""
    tab = load_table(table)  # a bad table fails here, not in every cell
    cells = []
    for s in grid.scenarios:
        for p in grid.platforms:
            for seed in grid.seeds:
                cells.append(Cell(s, p, policy, seed, grid.duration_s))
                cells.append(Cell(s, p, policy, seed, grid.duration_s, (("params_table", table),)))
    recs = {Cell.from_dict(r["cell"]).key(): r for r in execute(cells, executor)}
    failed = [r for r in recs.values() if "error" in r]
    if failed:
        raise ConfigError(f"judge: a cell failed: {failed[0]['cell']}: {failed[0]['error']}")
    pairs = [(recs[cells[i].key()]["uxcost"], recs[cells[i + 1].key()]["uxcost"]) for i in range(0, len(cells), 2)]
    per_cell = []
    for i in range(0, len(cells), 2):
        c = cells[i]
        found = tab.lookup(workload_of(scenario_of(c.scenario).models), c.platform)
        per_cell.append({"scenario": c.scenario, "platform": c.platform, "seed": c.seed, "uxcost_default": pairs[i // 2][0],
                         "uxcost_tuned": pairs[i // 2][1], "distance": None if found is None else found[1]})
    d = sum(a for a, _ in pairs) / len(pairs)
    t = sum(b for _, b in pairs) / len(pairs)
    logs = [math.log(max(b, 1e-9) / a) for a, b in pairs if a > 0]
    return {"cells": len(pairs), "uxcost_default": d, "uxcost_tuned": t,
            "gain": (1.0 - t / d) if d > 0 else 0.0,
            "geomean_gain": (1.0 - math.exp(sum(logs) / len(logs))) if logs else None,
            "better_cells": sum(1 for a, b in pairs if b < a * 0.99),
            "worse_cells": sum(1 for a, b in pairs if b > a * 1.01), "per_cell": per_cell}


def merged(path: str, doc: dict) -> dict:
    """The table at ``path`` with ``doc``'s entries added (replacing those of the same workload and platform)."""
    load_table(path)  # a valid table, or a clear error
    old = json.loads(Path(path).read_text())
    new = {(e["workload"], e["platform"]) for e in doc["entries"]}
    keep = [e for e in old["entries"] if (e.get("workload"), e.get("platform")) not in new]
    return {**doc, "entries": keep + doc["entries"], "merged_from": old.get("merged_from", []) + [
        {k: v for k, v in old.items() if k not in ("entries", "merged_from")}]}


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    from .cli import executor_args

    p = sub.add_parser("tune", help="search SDRM3's parameters per workload and platform (a table for params_table)",
                       description="Searches the policy's parameters on the training seeds of each scenario x "
                                   "platform and writes a table that `--param params_table=FILE` loads; "
                                   "with --judge TABLE, compares the table with the defaults instead.")
    p.add_argument("--scenarios", required=True, help="comma-separated scenarios, or random:FIRST..LAST")
    p.add_argument("--platforms", required=True, help="comma-separated platforms")
    p.add_argument("--seeds", default="0,1", help="training seeds (default 0,1); with --judge, held-out seeds")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per replay (default 10)")
    p.add_argument("--policy", default="sdrm3", help="the policy to tune (default sdrm3)")
    p.add_argument("--trials", type=int, default=16, help="random parameter sets per workload (default 16; "
                                                          "then half as many around the best)")
    p.add_argument("--search", metavar="NAMES", help="comma-separated parameters to search (default: all)")
    p.add_argument("--search-seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--judge", metavar="TABLE", help="compare TABLE with the defaults on the cells given")
    p.add_argument("-o", "--output", metavar="TABLE.json", help="where the table goes (required without --judge)")
    p.add_argument("--merge", action="store_true",
                   help="add the entries to the table already at -o (an entry of the same workload and platform "
                        "is replaced) instead of writing a new one")
    p.add_argument("--json", action="store_true", help="with --judge: the figures as JSON")
    executor_args(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from .cli import executor_from

    if not args.judge and not args.output:
        raise ConfigError("tune: -o TABLE.json is required (or --judge TABLE)")
    if not 1 <= args.trials <= 10_000:
        raise ConfigError(f"--trials must be between 1 and 10000, got {args.trials}")
    grid = grid_from({"scenarios": args.scenarios, "platforms": args.platforms, "policies": args.policy,
                      "seeds": args.seeds, "duration": args.duration})
    names = [x.strip() for x in args.search.split(",") if x.strip()] if args.search else None
    ex = executor_from(args)
    show = sys.stderr.isatty()
    try:
        if args.judge:
            res = judge(args.judge, grid, args.policy, ex)
            if args.json:
                print(json.dumps(res, sort_keys=True))
            else:
                print(f"{args.judge} on {res['cells']} cells: mean UXCost {res['uxcost_default']:.4f} with the "
                      f"defaults, {res['uxcost_tuned']:.4f} with the table: gain {100 * res['gain']:+.1f}% "
                      f"(geomean per cell {100 * (res['geomean_gain'] or 0):+.1f}%; better in {res['better_cells']}, "
                      f"worse in {res['worse_cells']})")
            return 0
        doc = tune(grid, args.policy, args.trials, ex, args.search_seed, names, show)
    finally:
        ex.close()
    if args.merge and Path(args.output).exists():
        doc = merged(args.output, doc)
    Path(args.output).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    d = sum(e["train_uxcost_default"] for e in doc["entries"]) / len(doc["entries"])
    t = sum(e["train_uxcost"] for e in doc["entries"]) / len(doc["entries"])
    print(f"wrote {args.output}: {len(doc['entries'])} entries; on the training seeds mean UXCost "
          f"{d:.4f} with the defaults, {t:.4f} tuned ({100 * (1 - t / d) if d > 0 else 0.0:+.1f}%)")
    return 0
