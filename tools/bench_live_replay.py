#!/usr/bin/env python3
"""The live workload replayed at multiples of its capacity, without the service: a quick way to study the policies
where tools/bench_live.py runs them live.

    python3 tools/bench_live_replay.py [--loads 1,2,4] [--policies edf_firm,sdrm3] [--seeds 0,1,2] [--seconds 30]
                                       [--capacity 1.53]

As tools/bench_live.py sends them, frames at ``load x capacity`` per second each release every root model of
``mediapipe_xr_slow`` (its cascades follow, drawn per seed), each due one period of its model's scenario rate after
its release; they are replayed natively on ``headset_placement`` with the service's engine rules (admission at
release, a job's next blocks chained up to 10 ms) and the platform's cost table (the live bench replays its logs
with the costs the service learned). ``--capacity``: frames/s at 1x (default: the capacity docs/results/live.md
measured). Prints per load and policy the UXCost of each seed and their mean, the frames missed and the energy.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import _bench_common as common  # puts the repository root on sys.path

from edge_sdrm3.catalog import load_platform, load_scenario
from edge_sdrm3.sim.replay import replay
from edge_sdrm3.sim.trace import Trace, generate

SCENARIO, PLATFORM = "mediapipe_xr_slow", "headset_placement"
ENGINE = {"admission": True, "chain_ms": 10.0}  # the service's defaults (runtime/config.py)


def live_trace(load: float, capacity: float, seconds: float, seed: int) -> Trace:
    """Frames at ``load * capacity`` per second to every model, each due its scenario period after release."""
    sc = load_scenario(SCENARIO)
    rate = load * capacity
    models = tuple(dataclasses.replace(m, fps=rate, deadline_ms=m.deadline_ms or 1000.0 / m.fps) for m in sc.models)
    tr = generate(dataclasses.replace(sc, models=models), seconds, seed)
    tr.engine = dict(ENGINE)
    return tr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", type=common.csv_list, default=["1", "2", "4"], help="multiples of the capacity")
    ap.add_argument("--policies", type=common.csv_list, default=["edf_firm", "sdrm3"])
    ap.add_argument("--seeds", type=common.csv_list, default=["0", "1", "2"], help="trigger draws, one trace each")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of frames per trace (default 30)")
    ap.add_argument("--capacity", type=float, default=1.53, help="frames/s at 1x (default 1.53)")
    args = ap.parse_args(argv)
    try:
        loads = [float(x) for x in args.loads]
        seeds = [int(x) for x in args.seeds]
    except ValueError as e:
        ap.error(f"--loads/--seeds: {e}")
    if args.capacity <= 0 or args.seconds <= 0 or any(x <= 0 for x in loads):
        ap.error("--capacity, --seconds and --loads must be > 0")
    spec = load_platform(PLATFORM)
    print(f"{SCENARIO} on {PLATFORM}, capacity {args.capacity:g} frames/s, {args.seconds:g} s a trace, "
          f"seeds {', '.join(map(str, seeds))}")
    for load in loads:
        traces = [live_trace(load, args.capacity, args.seconds, s) for s in seeds]
        for pol in args.policies:
            rs = [replay(tr, spec, pol)[0] for tr in traces]
            ux = [r["uxcost"] for r in rs]
            print(f"{load:4g}x {pol:>15}: UXCost mean {sum(ux) / len(ux):.4f} ({', '.join(f'{u:.4f}' for u in ux)}); "
                  f"missed {sum(r['frames_missed'] for r in rs)}/{sum(r['frames_due'] for r in rs)}, "
                  f"energy {sum(r['energy_mj'] for r in rs) / len(rs):.0f} mJ a trace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
