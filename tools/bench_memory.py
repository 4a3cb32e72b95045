"""Peak memory of a replay against its length: `edge-sdrm3 replay SCENARIO --duration D` for each duration and
policy, each in a fresh process, its peak resident set size read from the kernel (``os.wait4``'s rusage).

A replay streams its trace and its records, so its peak should stay flat from a minute to an hour.

    nice -n 10 .venv/bin/python tools/bench_memory.py                        # vr_gaming, 60/600/3600 s, fcfs, sdrm3
    .venv/bin/python tools/bench_memory.py --durations 60,600 --policies fcfs --record
    .venv/bin/python tools/bench_memory.py --source /path/to/other/checkout   # the same runs on other code
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

RUN = "import sys; from edge_sdrm3.cli import main; sys.exit(main())"


def peak_rss_mb(argv: list[str], env: dict, cwd: str) -> tuple[float, float, int]:
    """The command's peak RSS (MB), its wall time (s) and exit code."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode:
        sys.stderr.write(err)
    return usage.ru_maxrss / 1024.0, time.perf_counter() - t0, p.returncode  # ru_maxrss: KB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="vr_gaming")
    ap.add_argument("--platform", default="dual_4k_ws_os")
    ap.add_argument("--policies", default="fcfs,sdrm3")
    ap.add_argument("--durations", default="60,600,3600", help="seconds, comma-separated")
    ap.add_argument("--record", action="store_true", help="also write the run with --record (to a temporary file)")
    ap.add_argument("--source", help="a checkout whose edge_sdrm3 to measure instead of the installed one")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = os.path.abspath(args.source)
    print(f"replay {args.scenario} on {args.platform}{' --record' if args.record else ''}"
          f"{' (code: ' + args.source + ')' if args.source else ''}")
    print(f"{'policy':<8} {'duration s':>10} {'peak RSS MB':>12} {'wall s':>8}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:  # run from here: the current directory is not on the path
        for policy in args.policies.split(","):
            for d in args.durations.split(","):
                argv = [sys.executable, "-c", RUN, "replay", args.scenario, "--platform", args.platform,
                        "--policy", policy, "--duration", d, "--json"]
                if args.record:
                    argv += ["--record", os.path.join(tmp, "run.jsonl")]
                mb, wall, rc = peak_rss_mb(argv, env, tmp)
                failed += rc != 0
                print(f"{policy:<8} {float(d):>10g} {mb:>12.1f} {wall:>8.1f}" + ("  FAILED" if rc else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
