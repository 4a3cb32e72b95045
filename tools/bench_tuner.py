#!/usr/bin/env python3
"""Online tuning after a workload change: UXCost per window, and windows until it settles.

Run from the repository root:

    python3 tools/bench_tuner.py
    python3 tools/bench_tuner.py --first vr_gaming --second ar_assistant --platform dual_4k_biglittle_ws_os

The trace plays the first scenario for ``--each`` seconds, then the second (its models replace the
first's). SDRM3 with its online tuner replays it; the tuner notices the change by itself (the set
of models that ran in a window changed). Printed: UXCost and θ per tuning window, the converged
UXCost after the change (median of the last windows), and the number of windows after the change
until UXCost stays within 5% of it. The same trace under SDRM3 with a fixed θ is shown beside it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sdrm3.catalog import Scenario, load_platform, load_scenario  # noqa: E402
from edge_sdrm3.core.policies import make_policy  # noqa: E402
from edge_sdrm3.sim import trace as traces  # noqa: E402
from edge_sdrm3.sim.replay import replay  # noqa: E402


def switching_trace(first: str, second: str, each_s: float, seed: int) -> tuple[traces.Trace, float]:
    a, b = load_scenario(first), load_scenario(second)
    names = {m.name for m in a.models}
    if names & {m.name for m in b.models}:
        raise SystemExit(f"{first} and {second} share models; pick two scenarios with distinct models")
    both = Scenario(f"{first}+{second}", a.models + b.models, a.cost_table, f"{first}, then {second}")
    ta = traces.generate(a, each_s, seed)
    tb = traces.generate(b, each_s, seed)
    shift = each_s * 1000.0
    frames = ta.frames + [traces.Frame(f.model, f.frame, f.release_ms + shift, f.fired) for f in tb.frames]
    frames.sort(key=lambda x: (x.release_ms, x.model, x.frame))
    return traces.Trace(both, 2 * each_s, seed, frames), shift


def settle(costs: list[float], tol: float = 0.05, tail: int = 5) -> tuple[float, int]:
    """Converged value (median of the last ``tail`` windows) and the first index from which every
    window stays within ``tol`` of it."""
    conv = statistics.median(costs[-tail:])
    k = len(costs)
    for i in range(len(costs) - 1, -1, -1):
        if abs(costs[i] - conv) <= tol * conv:
            k = i
        else:
            break
    return conv, k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", default="vr_gaming")
    ap.add_argument("--second", default="ar_assistant")
    ap.add_argument("--platform", default="dual_4k_biglittle_ws_os")
    ap.add_argument("--each", type=float, default=30.0, help="seconds of each scenario (default 30)")
    ap.add_argument("--window-ms", type=float, default=2000.0, help="tuning window (default: the policy default, 2000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    tr, change = switching_trace(args.first, args.second, args.each, args.seed)
    spec = load_platform(args.platform)
    tuned = make_policy("sdrm3", window_ms=args.window_ms)
    res, _ = replay(tr, spec, "sdrm3", policy=tuned)
    fixed = make_policy("sdrm3", window_ms=args.window_ms)
    fixed.tuner.explore = False  # measure the windows, never move θ
    res_fixed, _ = replay(tr, spec, "sdrm3", policy=fixed)

    hist = tuned.tuner.history
    hist_fixed = [c for _, c, _ in fixed.tuner.history]  # windows pair up by their index
    print(f"# python3 tools/bench_tuner.py --first {args.first} --second {args.second} "
          f"--platform {args.platform} --each {args.each:g} --window-ms {args.window_ms:g}")
    print(f"workload change at {change / 1000:g} s; tuning window {args.window_ms:g} ms")
    print(f"{'window end s':>12}  {'UXCost tuned':>12}  {'UXCost fixed θ':>14}  θ used (alpha, beta, gamma, delta)")
    for i, (t, c, th) in enumerate(hist):
        mark = "  <- change" if t - args.window_ms < change <= t else ""
        cf = hist_fixed[i] if i < len(hist_fixed) else None
        print(f"{t / 1000:>12.1f}  {c:>12.5f}  {'-' if cf is None else format(cf, '.5f'):>14}  "
              f"({th.alpha:.3g}, {th.beta:.3g}, {th.gamma:.3g}, {th.delta:.3g}){mark}")
    after = [c for t, c, _ in hist if t - args.window_ms >= change]
    after_fixed = [c for t, c, _ in fixed.tuner.history if t - args.window_ms >= change]
    if len(after) < 6:
        print("too few windows after the change; use a longer --each")
        return 1
    conv, k = settle(after)
    conv_f, k_f = settle(after_fixed)
    print(f"after the change: converged UXCost {conv:.5f} (fixed θ: {conv_f:.5f}); windows until it stays "
          f"within 5%: {k} (fixed θ: {k_f}); target <= 3")
    print(f"whole run: UXCost tuned {res['uxcost']:.5f}, fixed θ {res_fixed['uxcost']:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
