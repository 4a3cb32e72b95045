"""``edge-sdrm3 sweep [GRID.toml] ...`` and ``edge-sdrm3 tune ...``: the CLI only builds the grid and the
executor; the work is in ``grid``, ``runner`` and ``tune``."""
from __future__ import annotations

import argparse
import sys

from ..core.types import ConfigError


def add_sweep_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="replay a grid of scenarios x platforms x policies x seeds x parameters",
                       description="Every cell of the grid is one replay; one JSON object per cell is appended to "
                                   "-o FILE as it completes, and cells already there are not run again.")
    p.add_argument("grid", nargs="?", metavar="GRID.toml",
                   help="the grid as a TOML file with the keys scenarios, platforms, policies, seeds, duration, "
                        "params (flags given as well override its keys)")
    p.add_argument("--scenarios", help="comma-separated scenario names or files, or random:FIRST..LAST "
                                       "(the random mixes of those seeds)")
    p.add_argument("--platforms", help="comma-separated platform names or files")
    p.add_argument("--policies", help="comma-separated policy names, 'all' (default) or 'baselines'")
    p.add_argument("--seeds", help="comma-separated trace seeds or FIRST..LAST (default 0)")
    p.add_argument("--duration", type=float, help="seconds of frames per replay (default 10)")
    p.add_argument("--param", action="append", metavar="KEY=V1,V2",
                   help="a policy parameter and its values, repeatable: the grid runs every combination "
                        "(only the policies that take the parameter get it)")
    executor_args(p)
    p.add_argument("-o", "--output", metavar="FILE.jsonl",
                   help="append the records here and resume from it (default: print them)")
    p.set_defaults(func=cmd_sweep)

    from .tune import add_tune_parser

    add_tune_parser(sub)



def executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: the CPU count); with --ray auto and no cluster, "
                        "the CPUs of the local Ray instance")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run on a Ray cluster: 'auto' (this machine's cluster, or a local instance when there is "
                        "none) or its address (needs the 'cluster' extra)")


def executor_from(args):
    from .runner import make_executor

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    return make_executor(args.workers, args.ray)


def grid_doc(args) -> tuple[dict, str]:
    """The grid's keys (the TOML file's, overridden by the flags given) and the file's name, if any."""
    from .grid import load_grid_file, parse_param_flag

    doc = load_grid_file(args.grid) if args.grid else {}
    where = args.grid or ""
    for key in ("scenarios", "platforms", "policies", "seeds", "duration"):
        v = getattr(args, key)
        if v is not None:
            doc[key] = v
    if args.param:
        doc["params"] = dict(parse_param_flag(x) for x in args.param)
    return doc, where


def cmd_sweep(args) -> int:
    from ..report import sweep_summary, sweep_table
    from .grid import grid_from
    from .runner import run_sweep

    grid = grid_from(*grid_doc(args))
    cells = grid.cells()
    ex = executor_from(args)
    show = sys.stderr.isatty()
    try:
        if show:
            sys.stderr.write(f"sweep: {len(cells)} cells on {ex.describe()}\n")
        records, skipped = run_sweep(cells, args.output, ex, show)
    finally:
        ex.close()
    if args.output:
        failed = [r for r in records if "error" in r]
        print(f"{args.output}: {len(records)} cells ({skipped} already done, {len(records) - skipped} run"
              f"{f', {len(failed)} failed' if failed else ''})")
        print(sweep_table(sweep_summary(records)))
        for r in failed[:5]:
            print(f"failed: {r['cell']}: {r['error']}")
        return 1 if failed else 0
    return 1 if any("error" in r for r in records) else 0
