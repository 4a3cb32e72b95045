"""``edge-sdrm3 oracle``: the least-UXCost schedule of a short window, and whether it is proven optimal."""
from __future__ import annotations

import argparse
import json

from ..core.supernet import DEFAULT_MIN_ACCURACY
from ..core.types import ConfigError

DEFAULT_WINDOW_S = 0.7  # a scenario's window when --duration is not given: long enough to load, short to prove


def add_oracle_parser(sub) -> None:
    p = sub.add_parser("oracle", help="the clairvoyant optimum of a short window (CP-SAT; extra 'oracle')")
    p.add_argument("source", metavar="SCENARIO_OR_TRACE", help="scenario name or file, or a trace file (.jsonl)")
    p.add_argument("--platform", required=True, help="platform name or file (see `edge-sdrm3 platforms`)")
    p.add_argument("--duration", type=float, default=None,
                   help=f"seconds of frames (default {DEFAULT_WINDOW_S:g}; a trace: all of it)")
    p.add_argument("--seed", type=int, default=None, help="seed for trigger outcomes (default 0)")
    p.add_argument("--supernet", action="store_true",
                   help="choose each job's variant among those whose relative accuracy is >= --floor")
    p.add_argument("--floor", type=float, default=None,
                   help="accuracy floor of --supernet (default: the supernet selector's, 0.9)")
    p.add_argument("--min-accuracy", type=float, default=None, metavar="A",
                   help="with --supernet: the completed frames' mean relative accuracy must be >= A (default: the "
                        f"supernet selector's, {DEFAULT_MIN_ACCURACY:g}, the bound the X+supernet policies keep to, "
                        "lowered where deadlines leave only less accurate variants; 0: no bound but the floor)")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                   help="seconds of CP-SAT in all (default 60); past it, the best schedule found and a bound")
    p.add_argument("--workers", type=int, default=0, help="CP-SAT workers (default: the CPUs, at most 8)")
    p.add_argument("--schedule", action="store_true", help="with --json: add the schedule (one record per block)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_oracle)


def cmd_oracle(args: argparse.Namespace) -> int:
    from ..catalog import load_platform
    from ..cli import load_source
    from . import cp_model, optimum

    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be > 0, got {args.duration!r}")
    if not args.time_limit > 0:
        raise ConfigError(f"--time-limit must be > 0, got {args.time_limit!r}")
    if args.floor is not None and not 0.0 <= args.floor <= 1.0:
        raise ConfigError(f"--floor must be in [0, 1], got {args.floor!r}")
    if args.min_accuracy is not None and not 0.0 <= args.min_accuracy <= 1.0:
        raise ConfigError(f"--min-accuracy must be in [0, 1], got {args.min_accuracy!r}")
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers!r}")
    cp_model()  # a missing OR-Tools is said before any work
    duration = args.duration
    from ..sim import trace as traces

    if duration is None and not traces.is_trace(args.source):
        duration = DEFAULT_WINDOW_S
    tr = load_source(args.source, duration, args.seed, "")
    spec = load_platform(args.platform)
    res = optimum(tr, spec, supernet=args.supernet, floor=args.floor, min_accuracy=args.min_accuracy,
                  time_limit_s=args.time_limit,
                  workers=args.workers, with_schedule=args.schedule)
    if args.json:
        print(json.dumps(res, sort_keys=True))
        return 0
    what = "optimum proven" if res["optimal"] else f"best found, not proven (lower bound {res['bound']:.4f})"
    sup = f", supernet (floor {res['floor']:g})" if args.supernet else ""
    if res["min_accuracy"]:
        sup += f", mean accuracy >= {res['min_accuracy']:g}"
    print(f"{res['scenario']} on {res['platform']} ({res['duration_s']:g} s, seed {res['seed']}{sup}): "
          f"{what} in {res['solve_s']:.1f} s")
    print(f"uxcost {res['uxcost']:.4f}  frames {res['frames_due']} due, {res['frames_missed']} missed  "
          f"energy {res['energy_mj']:.1f} mJ (reference {res['energy_ref_mj']:.1f})  accuracy {res['accuracy']:.3f}")
    return 0
