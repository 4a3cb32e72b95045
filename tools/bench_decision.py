#!/usr/bin/env python3
"""Cost of one scheduling decision: microseconds per ``policy.pick(view, now)`` call.

Run from the repository root (no installation needed):

    python3 tools/bench_decision.py                      # sdrm3, fcfs, edf; 4/16/64 jobs x 1/2/4 accelerators
    .venv/bin/python tools/bench_decision.py --policies heft,xrbench --reps 3000 --json /tmp/decision.json

The state is synthetic but shaped like the one at a completion event in a replay: the models of an
XRBench scenario (``--scenario``, e.g. ar_assistant; default ``mix``: the models of all seven) with their
costs on a platform with 1, 2 or 4 accelerators (single_4k_ws, dual_4k_ws_os, quad_4k_ws_os_ws_os);
N ready jobs in a ``Dispatcher``'s ready list (release order) with varied models (weighted by fps),
releases, deadlines and progress (some jobs part-way through their segments, last run on some
accelerator; 90% of them of a model that can meet its deadline on the platform and released so that
they still could on their own, the others any model, released up to 95% of a deadline ago);
exactly one accelerator free and every other one busy with a running job. The view is
filled as ``Dispatcher.schedule`` fills it, and only ``pick`` is timed (``time.perf_counter_ns``).

For each repetition the policies run in round-robin order (rotated each repetition) on the same state,
so that noise on the machine hits them alike; ``--states`` different random states are cycled through.
The garbage collector is off while timing (``--gc`` keeps it on). Decisions are not applied: each pick
sees the same state again. ``--event`` says which pick: ``completion`` (default) as above, where no job
arrived since the policy's last pick; ``release``: before each timed pick (untimed) the state's jobs get
new ids, in the same order, as if they had just been released, so a policy that checks new work (SDRM3's
overload shedding runs only when a job newer than those it checked is ready) does that check every pick
(and may then drop jobs). Reports, per pick call: median, p99 and mean microseconds, and the mean
number of decisions (Run/Drop/Wake) a pick returns. Target: SDRM3 <= 20 us median and <= 100 us p99
at 16 jobs x 4 accelerators.

SDRM3 picks with its schedule estimate as installed (compiled where it was built); ``--estimates compiled,pure``
times its picks with each (switched in place between the timed calls, in the same round-robin), side by side:

    .venv/bin/python tools/bench_decision.py --jobs 16 --accs 4 --estimates compiled,pure
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (SCENARIOS, active_estimate, command_line, csv_list, estimate_list, machine,  # noqa: E402
                           percentile, table, use_estimate)

from edge_sdrm3.catalog import build_costs, build_models, load_platform, load_scenario  # noqa: E402
from edge_sdrm3.core.dispatcher import Dispatcher  # noqa: E402
from edge_sdrm3.core.policies import make_policy, policy_names  # noqa: E402
from edge_sdrm3.core.policy import as_policy  # noqa: E402
from edge_sdrm3.core.types import INF, Drop, Job, Run  # noqa: E402

PLATFORM_FOR = {1: "single_4k_ws", 2: "dual_4k_ws_os", 4: "quad_4k_ws_os_ws_os"}
TARGET_CELL = (16, 4)
TARGET_MEDIAN_US = 20.0
TARGET_P99_US = 100.0
NOW = 5000.0  # ms into the run


def load_models(scenario: str, widths):
    """(models, cost table) of one scenario, or of every XRBench scenario (``mix``; first one wins)."""
    if scenario != "mix":
        sc = load_scenario(scenario)
        return build_models(sc, widths), sc.cost_table
    seen, out, table_name = set(), [], "xrbench"
    for name in SCENARIOS:
        sc = load_scenario(name)
        table_name = sc.cost_table
        for m in build_models(sc, widths):
            if m.name not in seen:
                seen.add(m.name)
                out.append(m)
    return tuple(out), table_name


class State:
    """One dispatcher with N ready jobs, one free accelerator and the others busy."""

    def __init__(self, spec, models, costs, n_jobs: int, seed: int, hopeful: float = 0.9) -> None:
        rng = random.Random(seed)
        plat = spec.platform
        n_acc = len(plat.accelerators)
        self.disp = disp = Dispatcher(plat, models, costs, policy=None)
        weights = [m.fps for m in models]
        next_id = 0

        def usable(m: int, s: int) -> list[int]:
            return [a for a in range(n_acc) if costs.lat[m][0][a][s] < INF]

        # models that can meet their deadline here at all (best case, nothing else running); a model
        # that cannot is dropped on release by a policy that sheds, so it rarely sits in a queue
        feasible = [m for m in range(len(models)) if costs.rem_best[m][0][0] < models[m].relative_deadline_ms]
        f_weights = [models[m].fps for m in feasible]

        def new_job(release: float, hope: bool = False) -> Job:
            nonlocal next_id
            next_id += 1
            if hope and feasible:
                m = rng.choices(feasible, f_weights)[0]
            else:
                m = rng.choices(range(len(models)), weights)[0]
            model = models[m]
            return Job(next_id, model, m, int(release // model.period_ms), release,
                       release + model.relative_deadline_ms, costs)

        jobs = []
        for _ in range(n_jobs):
            # released up to one period ago (the oldest would be dropped at their deadline anyway)
            hope = rng.random() < hopeful
            j = new_job(0.0, hope)
            rel = j.model.relative_deadline_ms
            if j.n_segs > 1 and rng.random() < 0.3:  # part-way: some segments ran already
                j.seg = rng.randint(1, j.n_segs - 1)
            # released a while ago, but (mostly) still able to meet its deadline on its own: a queue
            # full of hopeless jobs would only time the drop path
            slack = rel - j.rem_best[j.seg]
            if slack > 0 and hope:
                j.release = NOW - rng.uniform(0.0, 0.9) * slack
            else:
                j.release = NOW - rng.uniform(0.0, 0.95) * rel
            j.deadline = j.release + rel
            j.last_progress = j.release
            if j.seg > 0:
                j.acc = rng.choice(usable(j.m, j.seg - 1) or [0])
                j.start = j.release + rng.uniform(0.0, 0.3) * (NOW - j.release)
                j.last_progress = rng.uniform(j.start, NOW)
            jobs.append(j)
        jobs.sort(key=lambda j: j.release)
        for j in jobs:  # ids in release order, as a driver would assign them
            disp.release(j)

        free = rng.randrange(n_acc)
        for a in range(n_acc):
            if a == free:
                disp.free_at[a] = NOW
                continue
            r = new_job(NOW - rng.uniform(0.0, 20.0))
            r.seg = rng.randint(1, r.n_segs)  # its segment seg-1 is running on a
            r.acc = a
            r.start = r.release
            r.running = True
            seg_lat = r.lat[a][r.seg - 1]
            disp.running[a] = r
            disp.free_at[a] = NOW + rng.uniform(0.1, 1.0) * (seg_lat if seg_lat < INF else 5.0)

    def renumber(self, first: int) -> int:
        """New ids from ``first`` for every job of the state, in the order of their ids: the jobs look just
        released to a policy, and their order (ties are broken by id) is kept. Returns the next free id."""
        d = self.disp
        for j in sorted([j for j in d.ready] + [j for j in d.running if j is not None], key=lambda j: j.id):
            j.id = first
            first += 1
        return first

    def view(self):
        """The view exactly as ``Dispatcher.schedule`` fills it before asking the policy."""
        d = self.disp
        v = d.view
        v.ready = tuple(d.ready)
        v.running = tuple(d.running)
        v.free_at = tuple(d.free_at)
        v.healthy = tuple(d.healthy)
        return v


def bench_cell(policy_names_: list[str], n_jobs: int, n_acc: int, platform: str, scenario: str,
               reps: int, n_states: int, seed: int, keep_gc: bool, event: str = "completion",
               estimates: list[str] | None = None) -> dict:
    """Times each policy's pick (``estimates``, beside the names: the schedule estimate each runs with, "-" for
    none; results keyed by (name, estimate))."""
    estimates = estimates or ["-"] * len(policy_names_)
    spec = load_platform(platform)
    if len(spec.platform.accelerators) != n_acc:
        raise SystemExit(f"platform {platform} has {len(spec.platform.accelerators)} accelerators, not {n_acc}")
    policies = [make_policy(p) for p in policy_names_]
    # a policy that picks variants sees every variant, as in a replay (sim.replay.setup)
    states_by_widths: dict = {}
    state_sets = []
    for pol in policies:
        widths = None if as_policy(pol).uses_variants else (1.0,)
        if widths not in states_by_widths:
            models, table_name = load_models(scenario, widths)
            costs = build_costs(models, spec, table_name)
            states_by_widths[widths] = [State(spec, models, costs, n_jobs, seed * 1000003 + k)
                                        for k in range(n_states)]
        state_sets.append(states_by_widths[widths])

    n = len(policies)
    times = [[0] * reps for _ in range(n)]
    decisions = [0] * n
    kinds = [[0, 0] for _ in range(n)]  # Run, Drop
    for k in range(n_states):  # warm-up (also builds the policies' per-workload caches)
        for i, pol in enumerate(policies):
            if estimates[i] != "-":
                use_estimate(estimates[i])
            pol.pick(state_sets[i][k].view(), NOW)
    gc.collect()
    if not keep_gc:
        gc.disable()
    clock = time.perf_counter_ns
    next_id = 1 << 20  # above every id the states were built with
    try:
        for r in range(reps):
            k = r % n_states
            for step in range(n):
                i = (r + step) % n
                if event == "release":
                    next_id = state_sets[i][k].renumber(next_id)
                if estimates[i] != "-":
                    use_estimate(estimates[i])
                view = state_sets[i][k].view()
                pick = policies[i].pick
                t0 = clock()
                out = pick(view, NOW)
                t1 = clock()
                times[i][r] = t1 - t0
                decisions[i] += len(out)
                if out:
                    kinds[i][0] += sum(1 for d in out if isinstance(d, Run))
                    kinds[i][1] += sum(1 for d in out if isinstance(d, Drop))
    finally:
        gc.enable()
    res = {}
    for i, name in enumerate(policy_names_):
        ts = sorted(times[i])
        res[name, estimates[i]] = {
            "median_us": statistics.median(ts) / 1e3, "p99_us": percentile(ts, 99) / 1e3,
            "mean_us": sum(ts) / len(ts) / 1e3, "max_us": ts[-1] / 1e3,
            "decisions_per_pick": decisions[i] / reps, "runs_per_pick": kinds[i][0] / reps,
            "drops_per_pick": kinds[i][1] / reps, "reps": reps,
        }
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", type=csv_list, default=[],
                    help="further policies to time next to sdrm3, fcfs and edf (comma-separated)")
    ap.add_argument("--jobs", type=csv_list, default=["4", "16", "64"], help="ready-job counts (default 4,16,64)")
    ap.add_argument("--accs", type=csv_list, default=["1", "2", "4"], help="accelerator counts (default 1,2,4)")
    ap.add_argument("--scenario", default="mix",
                    help="scenario whose models make the jobs, or 'mix' (every XRBench model; default)")
    ap.add_argument("--reps", type=int, default=3000, help="timed picks per policy and cell (default 3000)")
    ap.add_argument("--states", type=int, default=16, help="distinct random states per cell (default 16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gc", action="store_true", help="leave the garbage collector on while timing")
    ap.add_argument("--event", choices=("completion", "release"), default="completion",
                    help="the pick timed: at a completion (no new job since the last pick; default) or right "
                         "after a release (the jobs look new, so a policy's checks of new work run)")
    ap.add_argument("--estimates", type=estimate_list, default=None,
                    help="SDRM3's schedule estimates to time side by side: compiled, pure (default: as installed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    estimates = args.estimates or [active_estimate()]

    registered = policy_names()
    names = ["sdrm3", "fcfs", "edf"] + [p for p in args.policies if p not in ("sdrm3", "fcfs", "edf")]
    unknown = [p for p in names if p not in registered]
    if unknown:
        ap.error(f"unknown policies {unknown} (registered: {', '.join(registered)})")
    # (policy, the schedule estimate it picks with: SDRM3's once per estimate, "-" for the others)
    entries = [(p, e) for p in names for e in (estimates if p.startswith("sdrm3") else ["-"])]
    jobs = [int(x) for x in args.jobs]
    accs = [int(x) for x in args.accs]
    bad = [a for a in accs if a not in PLATFORM_FOR]
    if bad:
        ap.error(f"accelerator counts must be among {sorted(PLATFORM_FOR)}")

    print(f"# {command_line()}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# {machine()}; load average {load}; scenario {args.scenario}; {args.reps} picks per policy and cell over "
          f"{args.states} states, each at a {args.event}; gc {'on' if args.gc else 'off'} while timing")
    t0 = time.perf_counter()
    results = []
    rows = []
    for nj in jobs:
        for na in accs:
            res = bench_cell([p for p, _ in entries], nj, na, PLATFORM_FOR[na], args.scenario, args.reps,
                             args.states, args.seed, args.gc, args.event, [e for _, e in entries])
            for p, est in entries:
                r = res[p, est]
                results.append({"jobs": nj, "accelerators": na, "platform": PLATFORM_FOR[na], "policy": p,
                                "estimate": est, **r})
                rows.append([str(nj), str(na), p, est, f"{r['median_us']:.1f}", f"{r['p99_us']:.1f}",
                             f"{r['mean_us']:.1f}", f"{r['decisions_per_pick']:.2f}",
                             f"{r['runs_per_pick']:.2f}", f"{r['drops_per_pick']:.2f}"])
    print(table(["jobs", "accs", "policy", "estimate", "median us", "p99 us", "mean us", "decisions/pick", "runs",
                 "drops"], rows, align="rrllrrrrrr"))
    wall = time.perf_counter() - t0
    nj, na = TARGET_CELL
    tgt = next((r for r in results if r["policy"] == "sdrm3" and r["jobs"] == nj and r["accelerators"] == na), None)
    print_ratios(results)
    print(f"\ntarget: sdrm3 <= {TARGET_MEDIAN_US:g} us median and <= {TARGET_P99_US:g} us p99 per pick "
          f"at {nj} jobs x {na} accelerators")
    if tgt:
        ok = tgt["median_us"] <= TARGET_MEDIAN_US and tgt["p99_us"] <= TARGET_P99_US
        print(f"measured: {tgt['median_us']:.1f} us median, {tgt['p99_us']:.1f} us p99 -> "
              f"{'MET' if ok else 'NOT MET'}")
    print(f"(wall {wall:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({"command": command_line(), "machine": machine(), "scenario": args.scenario,
                                         "reps": args.reps, "states": args.states, "gc": args.gc, "event": args.event,
                                         "results": results}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def print_ratios(results: list[dict]) -> None:
    """SDRM3's median pick over fcfs's in the same cell, per estimate (the faster core's aim: within 2x)."""
    for r in results:
        fcfs = next((f for f in results if f["policy"] == "fcfs" and (f["jobs"], f["accelerators"]) ==
                     (r["jobs"], r["accelerators"])), None)
        if r["policy"] == "sdrm3" and fcfs:
            print(f"{r['jobs']} jobs x {r['accelerators']} accs: sdrm3 ({r['estimate']} estimate) / fcfs median "
                  f"{r['median_us'] / fcfs['median_us']:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
