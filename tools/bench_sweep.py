#!/usr/bin/env python3
"""Wall time of a sweep grid on each executor: by default the 42-cell table (the 7 XR scenarios x the 6
platforms of the UXCost benchmark, every policy, 10 s replays, seed 0) with 1 and 2 local workers and on a
local Ray instance with 2 CPUs, one executor after the other. Checks that every executor gives the same
records, and prints one line per executor.

    nice -n 10 .venv/bin/python tools/bench_sweep.py
    nice -n 10 .venv/bin/python tools/bench_sweep.py --executors local:2 --scenarios random:0..59 --seeds 0,1,2 \\
        --fraction 0.05          # a random share of a large grid's cells, its wall time extrapolated
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import PLATFORMS, SCENARIOS, command_line, machine  # noqa: E402

from edge_sdrm3.report import sweep_summary, sweep_table  # noqa: E402
from edge_sdrm3.sweep.grid import grid_from  # noqa: E402
from edge_sdrm3.sweep.runner import LocalExecutor, RayExecutor, run_sweep  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--platforms", default=",".join(PLATFORMS))
    ap.add_argument("--policies", default="all")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--executors", default="local:1,local:2,ray:2",
                    help="comma-separated local:N (N worker processes) or ray:N (a local Ray instance of N CPUs)")
    ap.add_argument("--fraction", type=float, default=1.0, help="run this random share of the cells (seeded)")
    ap.add_argument("--summary", action="store_true", help="print the per-policy summary of the records")
    ap.add_argument("--keep", metavar="FILE", help="write the first executor's records here")
    args = ap.parse_args(argv)

    grid = grid_from({"scenarios": args.scenarios, "platforms": args.platforms, "policies": args.policies,
                      "seeds": args.seeds, "duration": args.duration})
    cells = grid.cells()
    total = len(cells)
    if args.fraction < 1.0:
        keep = set(random.Random(0).sample(range(total), max(1, round(total * args.fraction))))
        cells = [c for i, c in enumerate(cells) if i in keep]
    print(f"# {command_line()}\n# {machine()}\n# {len(cells)} of {total} cells "
          f"({len(grid.scenarios)} scenarios x {len(grid.platforms)} platforms x {len(grid.policies)} policies x "
          f"{len(grid.seeds)} seeds), {args.duration:g} s replays", flush=True)
    first = None
    for spec in args.executors.split(","):
        kind, _, n = spec.partition(":")
        t_up = time.perf_counter()
        ex = LocalExecutor(int(n)) if kind == "local" else RayExecutor("auto", int(n))
        up = time.perf_counter() - t_up
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "sweep.jsonl"
            t0 = time.perf_counter()
            run_sweep(cells, str(out), ex)
            wall = time.perf_counter() - t0
            ex.close()
            lines = sorted(out.read_text().splitlines())
        same = "" if first is None else ("; records identical to the first executor's" if lines == first
                                          else "; RECORDS DIFFER from the first executor's")
        extra = f", {wall * total / len(cells):.0f} s extrapolated to all {total} cells" if len(cells) < total else ""
        start = f" after a {up:.1f} s start-up" if up >= 0.05 else ""
        extra += f"; load average {os.getloadavg()[0]:.1f} at the end"
        print(f"{spec}: {len(cells)} cells in {wall:.1f} s{start} ({len(cells) / wall:.2f} cells/s){extra}{same}",
              flush=True)
        if first is None:
            first = lines
            if args.keep:
                Path(args.keep).write_text("\n".join(lines) + "\n")
            if args.summary:
                print(sweep_table(sweep_summary([json.loads(x) for x in lines])), flush=True)
        elif lines != first:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
