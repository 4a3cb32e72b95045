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

    python3 tools/bench_live_replay.py --log DIR [--policies edf_firm,sdrm3]

replays the job log that ``tools/bench_live.py --keep DIR`` kept instead: each of its runs (stream ``POLICY@LOAD``)
with each policy of ``--policies`` on the frames that run took in, as tools/bench_live.py replays a run with its own
policy (the service's engine rules, its frames when the service took them in, the costs as it learned them), so that
the policies are compared on the same arrivals. Prints per run and policy the UXCost, the miss rate and the energy.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

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


def replay_log(directory: Path, policies: list[str]) -> None:
    """Each run of the job log kept in ``directory`` (``tools/bench_live.py --keep``) replayed with each policy."""
    from bench_live import PAUSE_S, _frame_streams, figures

    from edge_sdrm3.core.metrics import model_infos
    from edge_sdrm3.runtime.config import load_config
    from edge_sdrm3.runtime.workload import make_policy_from
    from edge_sdrm3.sim import trace as traces
    from edge_sdrm3.sim.replay import setup

    log, cfg = directory / "live" / "state" / "jobs.jsonl", directory / "live" / "bench.toml"
    tr, spec, conf = traces.read(log), load_platform(PLATFORM), load_config(cfg)
    st = setup(tr, spec, True)
    infos = model_infos(st.models, [st.costs.reference_energy(i) for i in range(len(st.models))])
    accs = [a.id for a in spec.platform.accelerators]
    stream_of = {(r["model"], r["frame"]): r.get("stream") for r in _frame_streams(log)}
    runs = sorted({s for s in stream_of.values() if s and "@" in s}, key=lambda s: (float(s.split("@")[1]), s))
    for stream in runs:
        frames = [f for f in tr.frames if stream_of.get((f.model, f.frame)) == stream]
        last = max((f.release_ms for f in frames), default=0.0) + PAUSE_S * 1000.0
        sub = Trace(tr.scenario, 0.0, tr.seed, frames, costs=[c for c in tr.costs if c["t_ms"] <= last],
                    engine=tr.engine)
        for pol in policies:
            _, done = replay(sub, spec, pol, policy=make_policy_from(conf, pol), learned=sub.costs,
                             keep_completions=True)
            f = figures(done, infos, accs)
            print(f"{stream:>20} {pol:>15}: UXCost {f['uxcost']:.4f} miss {100 * f['miss_rate']:5.1f}% "
                  f"energy {f['energy_mj']:8.0f} mJ", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", type=common.csv_list, default=["1", "2", "4"], help="multiples of the capacity")
    ap.add_argument("--policies", type=common.csv_list, default=["edf_firm", "sdrm3"])
    ap.add_argument("--seeds", type=common.csv_list, default=["0", "1", "2"], help="trigger draws, one trace each")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of frames per trace (default 30)")
    ap.add_argument("--capacity", type=float, default=1.53, help="frames/s at 1x (default 1.53)")
    ap.add_argument("--log", type=Path, metavar="DIR", help="replay the runs of tools/bench_live.py --keep DIR")
    args = ap.parse_args(argv)
    if args.log is not None:
        if not (args.log / "live" / "state" / "jobs.jsonl").is_file():
            ap.error(f"--log: no job log at {args.log / 'live' / 'state' / 'jobs.jsonl'}")
        replay_log(args.log, args.policies)
        return 0
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
