"""What ran and what was lost at the capacity and under the root flood, from the job log ``tools/flood.py --keep``
kept.

    python3 tools/flood.py --only roots --keep /tmp/flood-run
    python3 tools/flood_log.py /tmp/flood-run/flood/state/jobs.jsonl [--models]

The windows are found from the log alone, by the rate of the ``roots`` stream's frames: the flood is the run of
seconds at over 60% of the highest rate, its first ``--settle`` seconds (default 2) left out; the capacity hold is
the 12 seconds before it, its first second and its last left out. For each window: the on-time completions per
second, every job's fate (``ontime``, else its reason), the jobs lost after some of their blocks ran, and the
accelerators' busy time per second spent on jobs that completed on time (useful) and on jobs then lost (wasted, by
reason); ``--models`` adds the fates per model. A job counts in the window of its release.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict


def load(path: str) -> tuple[list[dict], dict[tuple[str, int], float], list[float]]:
    """The ``roots`` stream's job records, the busy time of every job (sum of its segment records) and the release
    times of its frame messages (one root model's frames)."""
    jobs, busy, frames = [], defaultdict(float), []
    first = None
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            t = r.get("type")
            if t == "job" and r.get("stream") == "roots":
                jobs.append(r)
            elif t == "segment":
                busy[(r["model"], r["frame"])] += r["end_ms"] - r["start_ms"]
            elif t == "frame" and r.get("stream") == "roots":
                first = first or r["model"]  # a message's first frame record is a root model's
                if r["model"] == first:
                    frames.append(r["release_ms"])
    return jobs, busy, frames


def windows(frames: list[float], settle: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """(capacity hold, flood) as (start, end) in seconds of the service's clock."""
    per_s = Counter(int(t // 1000) for t in frames)
    if not per_s:
        raise ValueError("no frames of stream 'roots' in it (a log tools/flood.py --keep kept?)")
    top = max(per_s.values())
    flood = sorted(s for s, n in per_s.items() if n > 0.6 * top)
    f0, f1 = flood[0], flood[-1]
    return (f0 - 11, f0 - 1), (f0 + settle, f1)


def report(name: str, jobs: list[dict], busy: dict, span: tuple[float, float], models: bool, out) -> None:
    a, b = span
    dur = b - a
    fates, lost_after, wasted, per_model = Counter(), Counter(), Counter(), defaultdict(Counter)
    useful = 0.0
    for j in jobs:
        if not a * 1000 <= j["release_ms"] < b * 1000:
            continue
        fate = "ontime" if j["status"] == "done" else (j["reason"] or j["status"])
        fates[fate] += 1
        per_model[j["model"]][fate] += 1
        t = busy.get((j["model"], j["frame"]), 0.0)
        if fate == "ontime":
            useful += t
        elif t > 0:
            lost_after[fate] += 1
            wasted[fate] += t
    total = useful + sum(wasted.values())
    print(f"{name}: {dur:g} s (service clock {a:g}-{b:g} s): on time {fates['ontime'] / dur:.1f} jobs/s", file=out)
    print(f"  fates: {dict(fates.most_common())}", file=out)
    print(f"  lost after some of it ran: {sum(lost_after.values()) / dur:.1f} jobs/s {dict(lost_after.most_common())}",
          file=out)
    print(f"  busy: useful {useful / dur:.0f} ms/s, wasted {sum(wasted.values()) / dur:.0f} ms/s "
          f"({100 * sum(wasted.values()) / total if total else 0:.0f}%) "
          f"{ {k: round(v / dur) for k, v in wasted.most_common()} }", file=out)
    if models:
        for m, c in sorted(per_model.items()):
            print(f"    {m:20s} {dict(c.most_common())}", file=out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log", help="the job log (DIR/flood/state/jobs.jsonl of tools/flood.py --keep DIR)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of the flood left out first (default 2)")
    ap.add_argument("--models", action="store_true", help="the fates per model too")
    args = ap.parse_args()
    try:
        jobs, busy, frames = load(args.log)
        cap, flood = windows(frames, args.settle)
    except (OSError, ValueError, KeyError) as e:
        print(f"flood_log: {args.log}: {e}", file=sys.stderr)
        return 2
    report("capacity", jobs, busy, cap, args.models, sys.stdout)
    report("flood", jobs, busy, flood, args.models, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
