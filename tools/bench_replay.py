#!/usr/bin/env python3
"""Replay speed: simulated seconds per wall-clock second of a native replay.

Run from the repository root (no installation needed):

    python3 tools/bench_replay.py
    .venv/bin/python tools/bench_replay.py --scenario ar_assistant --duration 60 --runs 3 \\
        --platforms dual_4k_biglittle_ws_os,quad_8k_ws_os_ws_os,single_4k_ws --policies sdrm3,fcfs,xrbench

A ``--duration``-second trace of ``--scenario`` (default: 60 s of ar_assistant, seed 0) is generated
once (its time is reported, not counted), then ``edge_sdrm3.sim.replay.replay`` runs it for every
policy on every platform, ``--runs`` times each, interleaved (all pairs once, then again), and the
best run of each pair is kept. ``x real time`` is the trace duration over that wall time (set-up of
the models and costs inside ``replay`` included). Target: >= 300x real time; aim: 1000x.

SDRM3 runs with its schedule estimate as installed (compiled where it was built); ``--estimates compiled,pure``
times it with each (switched in place, interleaved with the rest), side by side with the ratio:

    .venv/bin/python tools/bench_replay.py --runs 3 --policies sdrm3,fcfs --estimates compiled,pure
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (active_estimate, command_line, csv_list, estimate_list, machine, table,  # noqa: E402
                           use_estimate)

from edge_sdrm3.catalog import load_platform, load_scenario  # noqa: E402
from edge_sdrm3.core.policies import policy_names  # noqa: E402
from edge_sdrm3.sim.replay import replay  # noqa: E402
from edge_sdrm3.sim.trace import generate  # noqa: E402

TARGET_X = 300.0
AIM_X = 1000.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="ar_assistant")
    ap.add_argument("--duration", type=float, default=60.0, help="trace seconds (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--platforms", type=csv_list,
                    default=["dual_4k_biglittle_ws_os", "quad_8k_ws_os_ws_os", "single_4k_ws"])
    ap.add_argument("--policies", type=csv_list, default=["sdrm3", "fcfs", "xrbench"])
    ap.add_argument("--runs", type=int, default=3, help="runs per pair; the best is kept (default 3)")
    ap.add_argument("--estimates", type=estimate_list, default=None,
                    help="SDRM3's schedule estimates to time side by side: compiled, pure (default: as installed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    estimates = args.estimates or [active_estimate()]
    unknown = [p for p in args.policies if p not in policy_names()]
    if unknown:
        ap.error(f"unknown policies {unknown} (registered: {', '.join(policy_names())})")

    print(f"# {command_line()}")
    print(f"# {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    scenario = load_scenario(args.scenario)
    tr = generate(scenario, args.duration, args.seed)
    t_gen = time.perf_counter() - t0
    specs = {p: load_platform(p) for p in args.platforms}
    due = sum(1 for f in tr.frames if f.fired)
    print(f"trace: {args.scenario}, {args.duration:g} s, seed {args.seed}, {len(tr.frames)} frames "
          f"({due} fired); generated in {t_gen * 1e3:.1f} ms (not counted below)")

    # (a policy other than SDRM3's runs no schedule estimate: "-")
    pairs = [(pol, plat, est) for plat in args.platforms for pol in args.policies
             for est in (estimates if pol.startswith("sdrm3") else ["-"])]
    walls: dict = {pair: [] for pair in pairs}
    frames: dict = {}
    for r in range(args.runs):
        for pair in pairs:
            pol, plat, est = pair
            if est != "-":
                use_estimate(est)
            gc.collect()
            t = time.perf_counter()
            metrics, completions = replay(tr, specs[plat], pol, keep_completions=True)
            walls[pair].append(time.perf_counter() - t)
            frames[pair] = (len(completions), metrics["miss_rate"])
            del metrics, completions

    rows, results = [], []
    for pair in pairs:
        pol, plat, est = pair
        best = min(walls[pair])
        x = args.duration / best
        n, miss = frames[pair]
        results.append({"policy": pol, "platform": plat, "estimate": est, "best_wall_s": best, "walls_s": walls[pair],
                        "x_real_time": x, "frames": n, "miss_rate": miss})
        rows.append([pol, plat, est, f"{best:.3f}", f"{x:.0f}x", f"{n / best / 1e3:.1f}k", f"{100 * miss:.1f}%",
                     "ok" if x >= TARGET_X else "BELOW TARGET"])
    print(table(["policy", "platform", "estimate", "wall s (best)", "x real time", "frames/s", "miss", "target"],
                rows, align="lllrrrrl"))
    print_estimate_ratios(results)
    worst = min(results, key=lambda r: r["x_real_time"])
    print(f"\ntarget: >= {TARGET_X:g}x real time (aim {AIM_X:g}x); slowest: {worst['policy']} on "
          f"{worst['platform']} at {worst['x_real_time']:.0f}x")
    print(f"best of {args.runs} interleaved runs per pair; trace generation {t_gen * 1e3:.1f} ms excluded; "
          f"total wall {time.perf_counter() - t0:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"command": command_line(), "machine": machine(), "scenario": args.scenario,
                                         "duration_s": args.duration, "seed": args.seed, "trace_gen_s": t_gen,
                                         "results": results}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def print_estimate_ratios(results: list[dict]) -> None:
    """Where SDRM3 ran with both estimates: how much faster the replay is with the compiled one."""
    by = {(r["policy"], r["platform"], r["estimate"]): r for r in results}
    for (pol, plat, est), r in by.items():
        pure = by.get((pol, plat, "pure"))
        if est == "compiled" and pure:
            print(f"{pol} on {plat}: compiled estimate {r['x_real_time']:.0f}x, pure {pure['x_real_time']:.0f}x "
                  f"real time ({pure['best_wall_s'] / r['best_wall_s']:.2f}x faster compiled; same frames and miss rate: "
                  f"{'yes' if r['frames'] == pure['frames'] and r['miss_rate'] == pure['miss_rate'] else 'NO'})")


if __name__ == "__main__":
    sys.exit(main())
