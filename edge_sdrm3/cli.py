"""``edge-sdrm3``: replay, compare, trace, scenarios, platforms, profile, oracle.

The CLI only parses arguments and builds what the commands need; the work is in ``sim`` and ``core``.
Errors in input files end the command with a one-line message naming the file, line and field (exit 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from . import __version__
from .catalog import FileFormatError, list_platforms, list_scenarios, load_platform, load_scenario
from .client.cli import add_client_parsers
from .core.engine import Records
from .core.policies import make_policy, policy_names
from .core.policy import as_policy
from .core.records import summary_record
from .core.types import ConfigError
from .report import best_baseline, reduction
from .oracle.cli import add_oracle_parser
from .runtime.cli import add_serve_parser
from .sim import trace as traces
from .sim.replay import replay
from .sim.xrbench_compat import RUN_MS, replay_xrbench
from .sweep.cli import add_sweep_parsers
from .sweep.grid import parse_value
from .tflite.cli import add_models_parser

DEFAULT_DURATION_S = 10.0


def load_source(source: str, duration: float | None, seed: int | None, compat: str) -> traces.Trace:
    """A trace file as it is, or a scenario (name or path) turned into a trace."""
    if duration is not None:
        traces.check_duration(duration)
    if traces.is_trace(source):
        tr = traces.stream(source)
        if duration is not None and duration < tr.duration_s:
            tr.until(duration)
        return tr
    sc = load_scenario(source)
    if compat == "xrbench":
        duration = RUN_MS / 1000.0
    return traces.generate(sc, DEFAULT_DURATION_S if duration is None else duration, 0 if seed is None else seed)


def parse_params(items: list[str] | None) -> dict:
    """``--param alpha=0.1 --param tune=false`` -> {"alpha": 0.1, "tune": False}."""
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        out[key] = parse_value(raw)
    return out


def run_one(tr: traces.Trace, platform: str, policy: str, compat: str, record: str | None,
            show_progress: bool, params: dict | None = None, costs: str = "table") -> dict:
    spec = load_platform(platform)
    learned = measured = None
    if costs == "learned":
        if not tr.costs:
            raise ConfigError("--costs learned: the trace has no cost records (a log of the service with "
                              "[scheduler] learn_costs = true or \"auto\" has them)")
        learned = tr.costs
    if costs == "measured":
        if not tr.segments:
            raise ConfigError("--costs measured: the trace has no segment records (a log of the service with "
                              "[log] segments = true has them)")
        learned, measured = tr.costs, tr.segments
    if compat and costs != "table":
        raise ConfigError(f"--costs {costs}: not with --compat xrbench (its costs are XRBench's)")
    pol, recs = None, traces.Recorder(record) if record and compat != "xrbench" else Records() if record else None
    if compat == "xrbench":
        res, _ = replay_xrbench(tr, spec, policy, policy_config=params, records=recs)
    else:
        progress = _progress(f"{policy} on {spec.platform.name}") if show_progress else None
        pol = make_policy(policy, **(params or {})) if record else None  # kept, to read its tuner's history
        res, _ = replay(tr, spec, policy, policy_config=params, progress=progress, policy=pol, records=recs,
                        learned=learned, measured=measured)
        if progress is not None:
            sys.stderr.write("\r\033[K")
    summary = {k: v for k, v in res.items() if k != "models"}
    if isinstance(recs, traces.Recorder):  # written as the replay went
        recs.close(tr, summary=summary, windows=tuning_windows(pol, res))
    elif recs is not None:
        traces.write(tr, record, jobs=recs.jobs, segments=recs.segments, windows=tuning_windows(pol, res),
                     summary=summary)
    return res


def tuning_windows(policy, res: dict) -> list[dict]:
    """The θ of each tuning window of a replayed policy with a tuner, as summary records like the service's."""
    out, last = [], 0.0
    for t_ms, cost, theta in (as_policy(policy).tuning_history() if policy is not None else ()):
        out.append(summary_record(t_ms, (t_ms - last) / 1000.0, False, res["policy"], res["scenario"], res["platform"],
                                  {"uxcost": cost}, theta=dataclasses.asdict(theta)))
        last = t_ms
    return out


def _progress(label: str):
    def show(frac: float) -> None:
        sys.stderr.write(f"\r{label}: {100 * frac:5.1f}% simulated")
        sys.stderr.flush()
    return show


def _table(rows: list[dict]) -> str:
    head = ["policy", "uxcost", "xrbench", "miss %", "energy mJ", "accuracy", "due", "missed"]
    lines = [[r["policy"], f"{r['uxcost']:.4f}", f"{r['xrbench_score']:.2f}", f"{100 * r['miss_rate']:.1f}",
              f"{r['energy_mj']:.0f}", f"{r['accuracy']:.3f}", str(r["frames_due"]), str(r["frames_missed"])]
             for r in rows]
    w = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w[i]}}}" for i in range(len(head)))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * x for x in w))] + [fmt.format(*x) for x in lines])


def _models_table(r: dict) -> str:
    out = [f"{'model':<24} {'due':>5} {'missed':>6} {'energy mJ':>11} {'p50 ms':>8} {'p99 ms':>8} {'xrbench':>8}"]
    for name, m in r["models"].items():
        out.append(f"{name:<24} {m['due']:>5} {m['missed']:>6} {m['energy_mj']:>11.1f} {m['p50_ms']:>8.2f} "
                   f"{m['p99_ms']:>8.2f} {m['xrbench_score']:>8.2f}")
    util = "  ".join(f"{a} {100 * u:.0f}%" for a, u in r["utilization"].items())
    out.append(f"accelerator utilisation: {util}")
    return "\n".join(out)


def _span(tr: traces.Trace) -> str:
    """How much a replay covered: a generated trace's duration and seed, or a recorded run's frames."""
    if tr.counts is not None:  # a streamed file: its frames were counted, not kept
        n, first, last, jobs = tr.counts["frame"], tr.counts["first_ms"], tr.counts["last_ms"], tr.counts["job"]
        if n is None:  # cut short (--duration): counted again, frame after frame
            n = 0
            for fr in tr.iter_frames():
                n, first, last = n + 1, fr.release_ms if n == 0 else first, fr.release_ms
    else:
        n, jobs = len(tr.frames), len(tr.jobs)
        first, last = (tr.frames[0].release_ms, tr.frames[-1].release_ms) if n else (0.0, 0.0)
    if n and (jobs or tr.duration_s <= 0):
        return f"a recorded run: {n} frames over {(last - first) / 1000.0:.1f} s"
    return f"{tr.duration_s:g} s, seed {tr.seed}"


def cmd_replay(args) -> int:
    tr = load_source(args.source, args.duration, args.seed, args.compat)
    res = run_one(tr, args.platform, args.policy, args.compat, args.record, sys.stderr.isatty() and not args.json,
                  parse_params(args.param), args.costs)
    if args.json:
        print(json.dumps(res, sort_keys=True))
    else:
        print(f"{res['scenario']} on {res['platform']} ({res['compat']}, {_span(tr)})")
        print(_table([res]))
        print()
        print(_models_table(res))
    return 0


def cmd_compare(args) -> int:
    if args.policies in ("all", "baselines"):  # baselines: every registered policy but SDRM3's
        names = [p for p in policy_names() if args.policies == "all" or not p.startswith("sdrm3")]
    else:
        names = [p.strip() for p in args.policies.split(",") if p.strip()]
    tr = load_source(args.source, args.duration, args.seed, args.compat)
    rows = []
    for i, p in enumerate(names):
        rec = None
        if args.record:
            out = Path(args.record)
            rec = str(out.with_name(f"{out.stem}.{p}{out.suffix or '.jsonl'}"))
        # --param goes to the SDRM3 family (the baselines take no parameters)
        params = parse_params(args.param) if p.startswith("sdrm3") else None
        rows.append(run_one(tr, args.platform, p, args.compat, rec, sys.stderr.isatty() and not args.json, params,
                            args.costs))
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    print(f"{rows[0]['scenario']} on {rows[0]['platform']} ({rows[0]['compat']}, {_span(tr)})")
    print(_table(rows))
    best = best_baseline(rows)
    if best is not None:
        print(f"best baseline: {best['policy']} (UXCost {best['uxcost']:.4f})")
        if best["uxcost"] > 0:
            for policy, (red, ref) in reduction(rows).items():
                vs = "best baseline" if ref == best["policy"] else f"the best +supernet baseline, {ref}"
                print(f"{policy}: {100 * red:+.1f}% UXCost reduction vs {vs}")
    return 0


def cmd_report(args) -> int:
    from .report import Run, Sweep, chrome_trace, load_any, parse_window, sweep_summary, sweep_table

    window = parse_window(args.window)
    items = [(path, load_any(path, args.platform)) for path in args.run]
    runs = [x for _, x in items if isinstance(x, Run)]
    if args.chrome_trace and not runs:
        raise ConfigError("--chrome-trace needs a recorded run (a trace with job records), not only results")
    wrote = []
    if args.output or args.png:
        from .report_html import write_html  # matplotlib, the optional extra: says how to install it if missing

        wrote += write_html(args.output, items, window, args.png)
    if args.chrome_trace:
        with open(args.chrome_trace, "w") as f:
            json.dump(chrome_trace(runs, window), f)
        wrote.append(args.chrome_trace)
    if wrote:
        if not args.json:
            print("wrote " + ", ".join(wrote))
        return 0
    if args.json:
        out = [x.metrics if isinstance(x, Run) else sweep_summary(x.records) if isinstance(x, Sweep) else x
               for _, x in items]
        print(json.dumps(out[0] if len(out) == 1 else out, sort_keys=True))
        return 0
    for i, (path, x) in enumerate(items):
        if i:
            print()
        if isinstance(x, Run):
            _print_run(x.metrics)
        elif isinstance(x, Sweep):
            print(f"{path}: a sweep of {len(x.records)} cells" + (f" ({x.failed} failed)" if x.failed else ""))
            print(sweep_table(sweep_summary(x.records)))
        elif isinstance(x, list):
            print(f"{path}: {x[0].get('scenario', '?')} on {x[0].get('platform', '?')}")
            print(_table(x))
        else:
            print(f"{path}: a benchmark of {len(x['cells'])} cells; draw it with -o report.html or --png DIR")
    return 0


def _print_run(res: dict) -> None:
    print(f"{res['scenario']} on {res['platform']}: recorded run ({res['frames_due']} frames due)")
    print(_table([res]))
    print()
    print(_models_table(res))
    for name, m in res["models"].items():
        if len(m.get("variants", {})) > 1:
            used = ", ".join(f"{v} {n}" for v, n in sorted(m["variants"].items(), key=lambda x: -x[1]))
            print(f"variants of {name}: {used}")


def cmd_demo(args) -> int:
    from .demo import run

    return run(args.seconds)


def cmd_trace_generate(args) -> int:
    traces.check_duration(args.duration)
    sc = load_scenario(args.scenario)
    tr = traces.generate(sc, args.duration, args.seed)
    traces.write(tr, args.output)
    print(f"wrote {args.output}: {len(tr.frames)} frames of {len(sc.models)} models, {args.duration:g} s, "
          f"seed {args.seed}")
    return 0


def cmd_scenarios(args) -> int:
    for name in list_scenarios():
        sc = load_scenario(name)
        print(f"{name:<14} {', '.join(_model_label(m) for m in sc.models)}")
    return 0


def cmd_scenarios_random(args) -> int:
    from .catalog import COST_TABLES, load_cost_table
    from .random_scenarios import random_scenario

    if args.seed < 0 or args.count < 1:
        raise ConfigError(f"--seed must be >= 0 and --count >= 1, got --seed {args.seed} --count {args.count}")
    if args.cost_table not in COST_TABLES:
        raise ConfigError(f"--cost-table: unknown table {args.cost_table!r} (known: {', '.join(COST_TABLES)})")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{out}: cannot create the folder ({e.strerror})") from None
    table = load_cost_table(args.cost_table)
    for seed in range(args.seed, args.seed + args.count):
        sc = random_scenario(seed, table, args.cost_table)
        path = out / f"{sc.name}.json"
        try:
            path.write_text(json.dumps(sc.to_dict(), indent=2) + "\n")
        except OSError as e:
            raise ConfigError(f"{path}: cannot write ({e.strerror})") from None
        ms = ", ".join(_model_label(m) for m in sc.models)
        print(f"wrote {path}: {ms}")
    return 0


def _model_label(m) -> str:
    """``ASR_EM_24L@3<-KD_res8_narrow p=0.5 d=80`` (d: a deadline other than the period, in ms)."""
    return (f"{m.name}@{m.fps:g}" + (f"<-{m.upstream} p={m.trigger_probability:g}" if m.upstream else "")
            + (f" d={m.deadline_ms:g}" if m.deadline_ms is not None else ""))


def cmd_platforms(args) -> int:
    if args.detect:
        import hal  # the hardware layer is loaded only when asked for

        print(json.dumps(hal.detect(), indent=2, sort_keys=True, default=str))
        return 0
    for name in list_platforms():
        spec = load_platform(name)
        units = (f"{a.id}={u or ('relative' if a.kind == 'emulated' else 'profile')}"
                 for a, u in zip(spec.platform.accelerators, spec.units))
        print(f"{name:<28} " + ", ".join(units))
    return 0


def cmd_profile(args) -> int:
    from .profiling import main_profile  # loads hal only when asked for
    from .tflite import ModelToolError

    try:
        return main_profile(args)
    except ModelToolError as e:
        raise ConfigError(str(e)) from None


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SCENARIO_OR_TRACE", help="scenario name or file, or a trace file (.jsonl)")
    p.add_argument("--platform", required=True, help="platform name or file (see `edge-sdrm3 platforms`)")
    p.add_argument("--duration", type=float, default=None, help="seconds of frames (default 10; a trace: all)")
    p.add_argument("--seed", type=int, default=None, help="seed for trigger outcomes (default 0)")
    p.add_argument("--compat", choices=["xrbench"], default="", help="replay on the XRBench simulator's terms")
    p.add_argument("--record", metavar="FILE", help="write the run as a trace with job records")
    p.add_argument("--costs", choices=["table", "learned", "measured"], default="table",
                   help="the platform's cost table (default), or a live log's costs as the service learned them "
                        "(its cost records, each from its time on); measured: learned, and each block the replay "
                        "runs as the service did takes the time it took live (its segment records)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a policy parameter, repeatable (sdrm3: alpha, beta, gamma, delta, tune, shed, "
                        "slack_use, window_ms; X+supernet also floor, min_accuracy, selector_window_ms)")



def _add_replay_parsers(sub) -> None:
    """replay, compare, report, demo"""
    p = sub.add_parser("replay", help="replay a scenario or trace with one policy")
    _run_args(p)
    p.add_argument("--policy", required=True, help=f"one of: {', '.join(policy_names())}")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("compare", help="replay with several policies side by side")
    _run_args(p)
    p.add_argument("--policies", default="all",
                   help="comma-separated policy names (any may end in +supernet), 'all' (default: every "
                        "registered policy) or 'baselines' (all but sdrm3*)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="the metrics of recorded runs and results, as tables, an HTML report, "
                                      "PNG figures or a Chrome/Perfetto trace")
    p.add_argument("run", metavar="RUN", nargs="+",
                   help="a recorded run (replay --record, the service's log), or results (replay/compare --json)")
    p.add_argument("--platform", help="the platform it ran on (default: the one its summary records name)")
    p.add_argument("-o", "--output", metavar="REPORT.html",
                   help="write a self-contained HTML report (needs the 'report' extra: matplotlib)")
    p.add_argument("--png", metavar="DIR", help="write each figure as a PNG into DIR (needs the 'report' extra)")
    p.add_argument("--chrome-trace", metavar="FILE",
                   help="write the timeline in the Trace Event format (Perfetto, chrome://tracing)")
    p.add_argument("--window", metavar="START_MS:END_MS", help="zoom the timeline to this span of the run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the service on an emulated headset fed a live XR pipeline, then the report")
    p.add_argument("--seconds", type=float, default=25.0, help="how long to publish (default 25)")
    p.set_defaults(func=cmd_demo)


def _add_data_parsers(sub) -> None:
    """trace, scenarios, platforms, profile"""
    p = sub.add_parser("trace", help="trace files")
    tsub = p.add_subparsers(dest="trace_command", required=True)
    g = tsub.add_parser("generate", help="generate a trace from a scenario")
    g.add_argument("scenario")
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--duration", type=float, default=DEFAULT_DURATION_S)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_trace_generate)

    p = sub.add_parser("scenarios", help="list the shipped scenarios, or write random ones")
    p.set_defaults(func=cmd_scenarios)
    ssub = p.add_subparsers(dest="scenarios_command")
    g = ssub.add_parser("random", help="write random scenario files (workload mixes over a cost table's models)")
    g.add_argument("--seed", type=int, required=True, help="seed of the first file (integer >= 0)")
    g.add_argument("--count", type=int, default=1, help="how many files, seeds SEED..SEED+COUNT-1 (default 1)")
    g.add_argument("--cost-table", default="xrbench", help="the cost table whose models are mixed (default xrbench)")
    g.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for random_NNNN.json (created)")
    g.set_defaults(func=cmd_scenarios_random)
    p = sub.add_parser("platforms", help="list the shipped platforms, or --detect what this machine has")
    p.add_argument("--detect", action="store_true",
                   help="the TFLite runtime, usable accelerators (and why others are skipped), energy meter")
    p.set_defaults(func=cmd_platforms)
    p = sub.add_parser("profile", help="measure the catalog's models on this machine's devices; write a platform file")
    p.add_argument("--models", default=None,
                   help="comma-separated catalog models (default: all whose files are present)")
    p.add_argument("--devices", default=None, help="comma-separated device strings, e.g. cpu:1,cpu:2,edgetpu "
                                                    "(default: every device hal discovers)")
    p.add_argument("--segments", type=int, default=None, help="cut each variant into N segments "
                                                              "(default: the manifest's 'segments' of each model)")
    p.add_argument("--runs", type=int, default=50, help="timed invokes per segment (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed invokes first (default 5)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for 'cpu' (default: the CPU count)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--name", default=None, help="platform name (default: the output file's stem)")
    p.add_argument("--energy-window", type=float, default=0.2, metavar="S",
                   help="meter each segment over at least S seconds of invokes (default 0.2)")
    p.add_argument("--watts-per-core", type=float, default=1.0, help="for the CPU-time energy estimate (default 1)")
    p.add_argument("--cache", default=None, help="model cache (default: $EDGE_SDRM3_MODEL_CACHE or "
                                                 "~/.cache/edge-sdrm3/models)")
    p.add_argument("-o", "--output", required=True, metavar="PROFILE.json")
    p.set_defaults(func=cmd_profile)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edge-sdrm3", description="Real-time multi-model scheduler for XR devices.")
    ap.add_argument("--version", action="version", version=f"edge-sdrm3 {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_replay_parsers(sub)
    _add_data_parsers(sub)
    add_models_parser(sub)
    add_oracle_parser(sub)
    add_sweep_parsers(sub)
    add_serve_parser(sub)
    add_client_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileFormatError, ConfigError) as e:
        print(f"edge-sdrm3: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
