#!/usr/bin/env python3
"""Distance to the optimum: every policy's UXCost against the clairvoyant optimum of a short window.

Run from the repository root (needs the 'oracle' extra: pip install -e '.[oracle]'):

    nice -n 10 .venv/bin/python tools/bench_oracle.py                 # 42 cells -> docs/results/oracle.{md,json}
    nice -n 10 .venv/bin/python tools/bench_oracle.py --quick         # 4 cells, short windows, a few seconds each
    .venv/bin/python tools/bench_oracle.py --scenarios social_a --platforms dual_4k_ws_os --out-dir /tmp/o

For each cell (scenario x platform of ``_bench_common``) a trace of ``--windows``' first length (0.7 s) is
generated (seed ``--seed``) and ``edge_sdrm3.oracle.optimum`` solves it within ``--time-limit`` seconds; when
CP-SAT cannot prove optimality in that time, the next shorter window is tried (the cell then reports the
first window proven, or the shortest with its bound). On that same trace every baseline (``BASELINES``),
``sdrm3`` and ``edf_firm`` are replayed (native semantics, the run draining) and their gap to the optimum is
``UXCost / UXCost(optimum) - 1``. The same is done with ``--supernet``: ``sdrm3+supernet`` and every
``X+supernet`` baseline against the optimum of the problem they solve: each frame's variant at or above the
selector's accuracy floor (0.9), the completed frames' mean relative accuracy at least the selector's bound
(0.95, the benchmark's target).
A cell in which every model misses its deadline even alone (``edge_sdrm3.feasibility``) is named
infeasible and left out of the summaries. Where the optimum is not proven, the gap is given to the best
schedule found (the true gap is at least that) and to the bound (at most that). CP-SAT starts from the
schedule of the replayed policy with the least UXCost (a hint: it changes how soon a good schedule is found,
never what is optimal), so a schedule found is never worse than every policy's by more than rounding.

Cells run in ``--jobs`` processes, each CP-SAT with ``--workers`` threads. Writes ``oracle.md`` and
``oracle.json`` to ``--out-dir`` (default ``docs/results``) and prints the summary.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402  (puts the repository root on sys.path)
    PLATFORMS, ROOT, SCENARIOS, command_line, csv_list, machine, median, table,
)
from bench_uxcost import git_state, policy_roles  # noqa: E402

from edge_sdrm3.catalog import load_platform, load_scenario  # noqa: E402
from edge_sdrm3.core.engine import Records  # noqa: E402
from edge_sdrm3.core.policies import policy_names  # noqa: E402
from edge_sdrm3.core.supernet import DEFAULT_MIN_ACCURACY  # noqa: E402
from edge_sdrm3.feasibility import infeasible, model_feasibility  # noqa: E402
from edge_sdrm3.oracle import OracleUnavailable, blocks_of_segments, cp_model, optimum  # noqa: E402
from edge_sdrm3.oracle.instance import build_instance  # noqa: E402
from edge_sdrm3.sim.replay import replay  # noqa: E402
from edge_sdrm3.sim.trace import generate  # noqa: E402

WINDOWS = (0.7, 0.5, 0.35, 0.25, 0.15)
GOAL = 0.05  # sdrm3 within 5% of the optimum in every proven cell
OURS, OURS_SN, FIRM = "sdrm3", "sdrm3+supernet", "edf_firm"
KEEP = ("uxcost", "frames_due", "frames_missed", "energy_mj", "accuracy")
MIN_ACCURACY = DEFAULT_MIN_ACCURACY  # the bound the +supernet policies keep to, the --supernet optimum's default
PROBLEM = ("supernet", "floor", "min_accuracy")  # with the window and seed, what defines an optimum's problem
MODES = (  # (key, --supernet, least mean accuracy (None: the oracle's default), title)
    ("plain", False, None, "Largest variants"),
    ("supernet", True, None, f"With the supernet selector (`--supernet` optimum: floor 0.9, mean accuracy >= "
                             f"{MIN_ACCURACY:g})"),
)


def solve_ladder(scenario, spec, windows: list[float], seed: int, supernet: bool, min_acc: float | None,
                 limit: float, workers: int, policies: list[str]):
    """The first window whose optimum is proven (or the last tried): its trace, optimum, the policies' results
    there, and every attempt. CP-SAT starts from the schedule of the policy with the least UXCost."""
    attempts: list[dict] = []
    opt = None
    for w in windows:
        tr = generate(scenario, w, seed)
        res = replays(tr, spec, policies)
        lead = best_of(res, policies)
        rec = Records()
        if lead is not None:
            replay(tr, spec, lead, records=rec)
        segs = rec.segments
        try:
            opt = optimum(tr, spec, supernet=supernet, min_accuracy=min_acc, time_limit_s=limit, workers=workers,
                          hint=blocks_of_segments(tr, spec, segs) if segs else None)
        except Exception as e:  # recorded; a shorter window is tried, and the other cells still run
            attempts.append({"duration_s": w, "error": f"{type(e).__name__}: {e}"})
            continue
        opt.pop("steps", None)
        opt["hint_policy"] = lead
        attempts.append({k: opt[k] for k in ("duration_s", "optimal", "uxcost", "bound", "frames_due",
                                             "frames_missed", "energy_mj", "accuracy", "solve_s") + PROBLEM})
        if opt["optimal"]:
            break
    if opt is None:
        raise RuntimeError(f"{scenario.name}/{spec.platform.name}: every attempt failed: {attempts}")
    return tr, opt, res, attempts


def replays(tr, spec, policies: list[str]) -> dict:
    out = {}
    for p in policies:
        try:
            m, _ = replay(tr, spec, p)
        except Exception as e:  # recorded and reported; the other policies still run
            out[p] = {"error": f"{type(e).__name__}: {e}"}
            continue
        out[p] = {k: m[k] for k in KEEP}
    return out


def gaps(opt: dict, res: dict, names: list[str]) -> dict:
    """Per policy: gap to the optimum found, and to the bound (equal when proven)."""
    out = {}
    for p in names:
        r = res.get(p)
        if not r or "uxcost" not in r:
            continue
        out[p] = {"gap": _gap(r["uxcost"], opt["uxcost"]), "gap_to_bound": _gap(r["uxcost"], opt["bound"])}
    return out


def _gap(x: float, ref: float) -> float | None:
    return x / ref - 1.0 if ref > 0 else None


def best_of(res: dict, names: list[str]) -> str | None:
    ok = [p for p in names if p in res and "uxcost" in res[p]]
    return min(ok, key=lambda p: res[p]["uxcost"]) if ok else None


def problem(scenario, spec, window: float, seed: int, supernet: bool, min_acc: float | None) -> dict:
    """What defines the optimum of a window as the oracle now poses it: the constraints actually imposed (the
    accuracy floor, and the mean accuracy bound after its lowering to what the deadlines allow)."""
    if not supernet:
        return {"duration_s": window, "seed": seed, "supernet": False, "floor": None, "min_accuracy": None}
    want = DEFAULT_MIN_ACCURACY if min_acc is None else min_acc
    inst = build_instance(generate(scenario, window, seed), spec, supernet=True, min_accuracy=want or None)
    return {"duration_s": window, "seed": seed, "supernet": True, "floor": inst.floor,
            "min_accuracy": inst.min_accuracy}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def matches(entry: dict, scenario, spec, seed: int, supernet: bool, min_acc: float | None) -> bool:
    """Whether a cached mode entry (window, optimum, attempts) holds the optimum the ladder would now reach: its
    optimum solves the problem now posed on its window, and every shorter-lived attempt before it (windows the
    ladder tried first) posed the problem now posed there too. An attempt that does not say what it solved is
    taken to have solved its optimum's problem."""
    opt = entry.get("optimum") or {}
    if any(k not in opt for k in PROBLEM):
        return False
    here = problem(scenario, spec, entry["window_s"], seed, supernet, min_acc)
    if not all(_same(opt.get(k), here[k]) for k in here):
        return False
    for att in entry.get("attempts", [])[:-1]:
        then = {k: att.get(k, opt[k]) for k in PROBLEM}
        now = problem(scenario, spec, att["duration_s"], seed, supernet, min_acc)
        if not all(_same(then[k], now[k]) for k in PROBLEM):
            return False
    return True


def cached_mode(cached: dict | None, scenario, spec, seed: int, supernet: bool, min_acc: float | None) -> dict | None:
    """Among a cached cell's mode entries (whatever their key), one whose optimum is the one now asked for."""
    for entry in (cached or {}).values():
        if isinstance(entry, dict) and "optimum" in entry and "window_s" in entry \
                and matches(entry, scenario, spec, seed, supernet, min_acc):
            return entry
    return None


def run_cell(task: tuple) -> dict:
    """A cell: per mode, the optimum taken from ``cached`` (an earlier cell of the same settings) where it solves
    the problem now posed (``matches``), else solved; every policy replayed on its window. ``cell["solved"]``:
    the modes solved here."""
    sc_name, platform, windows, seed, limit, workers, roles, *rest = task
    cached = rest[0] if rest else None
    sc = load_scenario(sc_name)
    spec = load_platform(platform)
    feas = model_feasibility(sc, spec)
    cell: dict = {"scenario": sc_name, "platform": platform, "infeasible": infeasible(feas),
                  "infeasible_any_variant": infeasible(feas, any_variant=True), "solved": []}
    t0 = time.perf_counter()
    for mode, sn, min_acc, _ in MODES:
        base = roles["supernet_baselines"] if sn else roles["baselines"]
        ours = [OURS_SN] if sn else [OURS]
        old = cached_mode(cached, sc, spec, seed, sn, min_acc)
        if old is not None:
            opt, attempts = old["optimum"], old["attempts"]
            tr = generate(sc, old["window_s"], seed)
            res = replays(tr, spec, base + ours)
        else:
            tr, opt, res, attempts = solve_ladder(sc, spec, windows, seed, sn, min_acc, limit, workers, base + ours)
            cell["solved"].append(mode)
        best = best_of(res, base)
        g = gaps(opt, res, ours + [FIRM + ("+supernet" if sn else "")])
        if best is not None:
            g["best_baseline"] = gaps(opt, res, [best])[best]
        cell[mode] = {"window_s": tr.duration_s, "optimum": opt, "attempts": attempts, "results": res,
                      "best_baseline": best, "gaps": g}
    cell["wall_s"] = time.perf_counter() - t0
    return cell


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:+.1f}%"


def gap_cell(g: dict | None, proven: bool) -> str:
    if not g or g.get("gap") is None:
        return "n/a"
    if proven:
        return pct(g["gap"])
    return f"{pct(g['gap'])}..{pct(g['gap_to_bound'])}"


def summarise(cells: list[dict], mode: str, key: str) -> dict:
    """Over the feasible cells whose optimum is proven: the gaps of ``key``."""
    xs, over = [], []
    for c in cells:
        m = c[mode]
        if _excluded(c, mode) or not m["optimum"]["optimal"] or key not in m["gaps"]:
            continue
        g = m["gaps"][key]["gap"]
        if g is None:
            continue
        xs.append(g)
        if g > GOAL:
            over.append(f"{c['scenario']}/{c['platform']} ({pct(g)})")
    if not xs:
        return {"cells": 0}
    geo = math.exp(sum(math.log(1.0 + g) for g in xs) / len(xs)) - 1.0
    return {"cells": len(xs), "within_5pct": sum(g <= GOAL for g in xs), "max_gap": max(xs), "median_gap": median(xs),
            "geomean_gap": geo, "over_5pct": over}


def _excluded(c: dict, mode: str) -> bool:
    return c["infeasible_any_variant"] if mode != "plain" else c["infeasible"]


def write_markdown(path: Path, doc: dict) -> None:
    cells = doc["cells"]
    L = ["# Distance to the optimum (`tools/bench_oracle.py`)", "",
         f"Command: `{doc['command']}`  ", f"Machine: {doc['machine']}  ", f"Code: {doc['git']}  ",
         f"Seed {doc['seed']}; windows tried {', '.join(f'{w:g}' for w in doc['windows'])} s (the first proven "
         f"optimal is kept); CP-SAT time limit {doc['time_limit_s']:g} s per attempt, {doc['workers']} worker(s); "
         f"{doc['wall_s'] / 60:.1f} min in all.", "",
         "Gap = UXCost / UXCost(optimum) − 1 on the same trace (native semantics, the run draining). Where the "
         "optimum is not proven the gap is shown as `to best found..to bound`. *best baseline*: the lowest UXCost "
         "among the baselines (with `--supernet`: among the `X+supernet` baselines). Infeasible cells (every model "
         "misses alone) are marked and left out of the summary.", "",
         "The optimum (`edge-sdrm3 oracle`, `edge_sdrm3/oracle/`): CP-SAT over optional block intervals per "
         "accelerator, firm deadlines, drops, cascades released on their upstream's on-time completion, hand-offs "
         "and (with `--supernet`) one variant per job at or above the accuracy floor, the completed frames' mean "
         f"relative accuracy at least {MIN_ACCURACY:g} (the bound the supernet selector keeps to, "
         "`--min-accuracy`, lowered where deadlines leave only less accurate variants); UXCost minimised exactly "
         "(least misses, then least energy for each number of misses until the bound prunes). Integers: times in "
         "nanoseconds (the cost table's cycles at 1 GHz are whole nanoseconds; releases and latencies rounded up, "
         "deadlines down, so an integer schedule is feasible in floats), energies in nanojoules (only to choose "
         "between schedules: every figure is computed in floats from the schedule, and checked by an independent "
         "feasibility check and `core.metrics.summarize`). CP-SAT starts from the schedule of the replayed policy "
         "with the least UXCost, which never changes what is optimal.", ""]
    for mode, sn, _, title in MODES:
        ours, firm = (OURS_SN, FIRM + "+supernet") if sn else (OURS, FIRM)
        L += [f"## {title}", ""]
        if sn:
            L += ["Both sides solve the same problem: every frame's variant at or above the accuracy floor (0.9) "
                  f"and the completed frames' mean relative accuracy at least {MIN_ACCURACY:g}. The selector plans "
                  "from the start which share of each model's frames runs which variant (the accuracy budget spent "
                  "where it saves most energy, further steps when the load or the misses ask for them; "
                  "`edge_sdrm3/core/supernet.py`); the optimum chooses every frame's variant with hindsight.", ""]
        s = doc["summary"][mode]
        for key, label in ((ours, f"`{ours}`"), (firm, f"`{firm}`"), ("best_baseline", "best baseline")):
            x = s[key]
            if not x.get("cells"):
                L.append(f"- {label}: no proven cell")
                continue
            L.append(f"- {label}: within 5% of the optimum in {x['within_5pct']} of {x['cells']} proven cells; "
                     f"gap median {pct(x['median_gap'])}, geomean {pct(x['geomean_gap'])}, max {pct(x['max_gap'])}")
        over = s[ours].get("over_5pct") or []
        L.append(f"- goal (`{ours}` within 5% in every proven cell): "
                 + ("**met**" if s[ours].get("cells") and not over else "**not met**")
                 + (f"; over 5%: {', '.join(over)}" if over else ""))
        L.append(f"- proven: {s['proven']} of {s['feasible']} feasible cells; shortened: "
                 f"{', '.join(s['shortened']) or 'none'}; not proven: {', '.join(s['unproven']) or 'none'}")
        L.append("")
        hdr = ["scenario", "platform", "window s", "proven", "optimum", "missed/due", "accuracy", ours, firm,
               "best baseline", "its gap"]
        rows = []
        for c in cells:
            m = c[mode]
            o = m["optimum"]
            proven = o["optimal"]
            name = c["scenario"] + (" (infeasible)" if _excluded(c, mode) else "")
            rows.append([name, c["platform"], f"{m['window_s']:g}", "yes" if proven else "no",
                         f"{o['uxcost']:.4f}" if proven else f"{o['bound']:.4f}..{o['uxcost']:.4f}",
                         f"{o['frames_missed']}/{o['frames_due']}", f"{o['accuracy']:.3f}",
                         gap_cell(m["gaps"].get(ours), proven), gap_cell(m["gaps"].get(firm), proven),
                         m["best_baseline"] or "n/a", gap_cell(m["gaps"].get("best_baseline"), proven)])
        L += [table(hdr, rows, markdown=True, align="llllrrr" + "rrlr"), ""]
    path.write_text("\n".join(L))


def mode_summary(cells: list[dict], mode: str) -> dict:
    ours, firm = (OURS_SN, FIRM + "+supernet") if mode != "plain" else (OURS, FIRM)
    feas = [c for c in cells if not _excluded(c, mode)]
    return {ours: summarise(cells, mode, ours), firm: summarise(cells, mode, firm),
            "best_baseline": summarise(cells, mode, "best_baseline"),
            "feasible": len(feas), "proven": sum(c[mode]["optimum"]["optimal"] for c in feas),
            "shortened": [f"{c['scenario']}/{c['platform']} ({c[mode]['window_s']:g} s)" for c in feas
                          if c[mode]["optimum"]["optimal"]
                          and c[mode]["window_s"] < c[mode]["attempts"][0]["duration_s"]],
            "unproven": [f"{c['scenario']}/{c['platform']}" for c in feas if not c[mode]["optimum"]["optimal"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=csv_list, default=list(SCENARIOS))
    ap.add_argument("--platforms", type=csv_list, default=list(PLATFORMS))
    ap.add_argument("--windows", type=lambda s: [float(x) for x in csv_list(s)], default=list(WINDOWS),
                    help="window lengths to try, longest first (default 0.7,0.5,0.35,0.25,0.15)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="CP-SAT seconds per attempt (default 60)")
    ap.add_argument("--workers", type=int, default=2, help="CP-SAT threads per cell (default 2)")
    ap.add_argument("--jobs", type=int, default=1, help="cells at once, in processes (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="4 cells, windows 0.3,0.15 s, 10-s limit (a smoke test)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--cache", type=Path, metavar="CELLS.jsonl",
                    help="append each finished cell here, and take the cells already there (same settings) as done")
    ap.add_argument("--markdown-from", type=Path, metavar="ORACLE.json",
                    help="only rewrite oracle.md in --out-dir from the results of an earlier run")
    ap.add_argument("--optima-from", type=Path, metavar="CELLS.jsonl",
                    help="take each cell's optima from an earlier run's --cache file (same settings) where they solve "
                         "the problem now posed (same window, floor and mean accuracy bound), solve the others, and "
                         "replay the policies on the same windows (minutes instead of the solver's half hour)")
    a = ap.parse_args(argv)
    if a.markdown_from:
        write_markdown(a.out_dir / "oracle.md", json.loads(a.markdown_from.read_text()))
        return 0
    try:
        cp_model()
    except OracleUnavailable as e:
        print(f"bench_oracle: {e}", file=sys.stderr)
        return 2
    if a.quick:
        a.scenarios, a.platforms = ["social_b", "outdoor_b"], ["single_4k_ws", "dual_4k_ws_os"]
        a.windows, a.time_limit = [0.3, 0.15], 10.0
    roles = policy_roles(policy_names())
    tasks = [(s, p, a.windows, a.seed, a.time_limit, a.workers, roles) for s in a.scenarios for p in a.platforms]
    t0 = time.perf_counter()
    cells: list[dict] = []

    def done(c: dict) -> None:
        cells.append(c)
        parts = []
        for mode, sn, *_ in MODES:
            m = c[mode]
            g = m["gaps"].get(OURS_SN if sn else OURS, {}).get("gap")
            parts.append(f"{mode} {m['window_s']:g} s {'proven' if m['optimum']['optimal'] else 'NOT proven'} "
                         f"{m['optimum']['uxcost']:.4f} ours {pct(g)}")
        how = f"solved {'+'.join(c['solved'])}" if c.get("solved") else "optima reused"
        print(f"[{len(cells)}/{len(tasks)}] {c['scenario']}/{c['platform']}: {'; '.join(parts)} ({c['wall_s']:.0f} s, "
              f"{how})", flush=True)

    settings = {"windows": a.windows, "seed": a.seed, "time_limit_s": a.time_limit, "workers": a.workers}

    def load(path: Path | None) -> dict:
        if path is None or not path.exists():
            return {}
        out = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                c = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"bench_oracle: {path}:{n}: not a JSON line: {e}") from None
            if c.get("settings") == settings:
                out[(c["scenario"], c["platform"])] = c  # the last line of a cell wins
        return out

    try:
        earlier = load(a.optima_from)
        have = load(a.cache)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    todo = []
    for t in tasks:
        key = (t[0], t[1])
        c = have.get(key)
        if not a.optima_from and c is not None and all(
                c.get(m) is not None and cached_mode({m: c[m]}, load_scenario(t[0]), load_platform(t[1]), a.seed,
                                                     sn, acc) is not None for m, sn, acc, _ in MODES):
            done(c)  # a finished cell of the same settings, every optimum as now posed: taken as it is
            continue
        pool_of = {**{f"from:{m}": e for m, e in (earlier.get(key) or {}).items()},
                   **{f"cache:{m}": e for m, e in (c or {}).items()}}
        todo.append(t + (pool_of or None,))

    def finished(c: dict) -> None:
        done(c)
        if a.cache:
            with open(a.cache, "a") as f:
                f.write(json.dumps({**c, "settings": settings}) + "\n")

    if a.jobs > 1:
        with multiprocessing.Pool(a.jobs) as pool:
            for c in pool.imap_unordered(run_cell, todo):
                finished(c)
    else:
        for t in todo:
            finished(run_cell(t))
    for c in cells:
        c.pop("settings", None)
        c.pop("solved", None)
    order = {(t[0], t[1]): i for i, t in enumerate(tasks)}
    cells.sort(key=lambda c: order[(c["scenario"], c["platform"])])
    doc = {"command": command_line(), "machine": machine(), "git": git_state(), "seed": a.seed, "windows": a.windows,
           "time_limit_s": a.time_limit, "workers": a.workers, "wall_s": time.perf_counter() - t0,
           "summary": {m[0]: mode_summary(cells, m[0]) for m in MODES}, "cells": cells}
    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / "oracle.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
    write_markdown(a.out_dir / "oracle.md", doc)
    for mode, *_ in MODES:
        s = doc["summary"][mode]
        print(f"{mode}: proven {s['proven']}/{s['feasible']} feasible cells")
        for k, v in s.items():
            if isinstance(v, dict) and v.get("cells"):
                print(f"  {k}: within 5% in {v['within_5pct']}/{v['cells']}, median {pct(v['median_gap'])}, "
                      f"geomean {pct(v['geomean_gap'])}, max {pct(v['max_gap'])}")
    print(f"wrote {a.out_dir / 'oracle.md'} and oracle.json ({doc['wall_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
