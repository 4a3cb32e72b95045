"""What ran and what was lost at the capacity and under the root flood, from the job log ``tools/flood.py --keep``
kept.

    python3 tools/flood.py --only roots --keep /tmp/flood-run
    python3 tools/flood_log.py /tmp/flood-run/flood/state/jobs.jsonl [--models]
    python3 tools/flood.py --only roots --interleave 5 --keep /tmp/flood-run
    python3 tools/flood_log.py /tmp/flood-run/flood/state/jobs.jsonl --phases [--models]

The windows are found from the log alone, by the rate of the ``roots`` stream's frames: the flood is the run of
seconds at over 60% of the highest rate, its first ``--settle`` seconds (default 2) left out; the capacity hold is
the 12 seconds before it, its first second and its last left out. For each window: the on-time completions per
second, every job's fate (``ontime``, else its reason), the jobs lost after some of their blocks ran, and the
accelerators' busy time per second spent on jobs that completed on time (useful) and on jobs then lost (wasted, by
reason); ``--models`` adds the fates per model. A job counts in the window of its release.

``--phases`` reads the interleaved phases instead (``--interleave``: one stream per phase, ``roots/3x/4``; also the
job log of ``tools/soak.py --interleave N --keep DIR``): per scale, the on-time jobs/s and where the rest of the
jobs went: ``refused`` at release, ``displaced`` before any of it ran, ``shed after partial run``, run to the end
``late``, ``dropped unrun`` (shed by the policy, past the deadline in the queue, upstream dropped); then each
overload against 1x by cause.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict

INF = float("inf")


def load(path: str, stream=lambda s: s == "roots") -> tuple[list[dict], dict[tuple[str, int], float], list[float]]:
    """The job records of the streams ``stream(name)`` accepts (default: ``roots``), the busy time of every job
    (sum of its segment records) and the release times of their frame messages (one root model's frames)."""
    jobs, busy, frames = [], defaultdict(float), []
    first = None
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            t = r.get("type")
            if t == "job" and stream(r.get("stream")):
                jobs.append(r)
            elif t == "segment":
                busy[(r["model"], r["frame"])] += r["end_ms"] - r["start_ms"]
            elif t == "frame" and stream(r.get("stream")):
                first = first or r["model"]  # a message's first frame record is a root model's
                if r["model"] == first:
                    frames.append(r["release_ms"])
    return jobs, busy, frames


PHASE = re.compile(r"^(?P<name>[^/]+)/(?P<scale>[0-9.]+)x/(?P<k>[0-9]+)$")

CAUSES = ("ontime", "refused", "displaced", "shed after partial run", "late", "dropped unrun")


def cause(job: dict, busy: float) -> str:
    """Where a job's capacity went: on time; refused at release (``admission``); ``displaced`` by a later job before
    any of it ran; shed after part of it ran (any drop with busy time); run to its end late; dropped unrun (shed
    by the policy, past its deadline in the queue, its upstream dropped)."""
    if job["status"] == "done":
        return "ontime"
    if job["status"] == "late":
        return "late"
    if job.get("reason") == "displaced":
        return "displaced"
    if busy > 0:
        return "shed after partial run"
    return "refused" if job.get("reason") == "admission" else "dropped unrun"


def phases(path: str, settle: float, models: bool, out) -> None:
    """The interleaved phases (tools/interleave.py; streams ``NAME/SCALEx/K``): per scale, the on-time jobs/s and
    where the rest went (:func:`cause`, jobs/s), the busy time useful and wasted, and what each overload loses
    against 1x by cause."""
    jobs, busy, _ = load(path, lambda s: bool(s and PHASE.match(s)))
    span: dict[str, list[float]] = {}
    for j in jobs:  # a phase's window: from its first release (after the settle) to its last
        w = span.setdefault(j["stream"], [INF, -INF])
        w[0], w[1] = min(w[0], j["release_ms"]), max(w[1], j["release_ms"])
    if not span:
        raise ValueError("no interleaved phases in it (streams NAME/SCALEx/K of tools/flood.py or tools/soak.py "
                         "--interleave)")
    per: dict[float, dict] = {}
    for name, (a, b) in span.items():
        p = per.setdefault(float(PHASE.match(name)["scale"]), {"s": 0.0, "n": 0, "c": Counter(), "ontime": [],
                                                               "useful": 0.0, "wasted": Counter(), "m": {}})
        a += 1000 * settle
        if b <= a:
            continue
        p["s"] += (b - a) / 1000
        p["n"] += 1
        got = Counter()
        for j in jobs:
            if j["stream"] == name and a <= j["release_ms"] <= b:
                t = busy.get((j["model"], j["frame"]), 0.0)
                c = cause(j, t)
                got[c] += 1
                p["m"].setdefault(j["model"], Counter())[c] += 1
                if c == "ontime":
                    p["useful"] += t
                elif t > 0:
                    p["wasted"][j.get("reason") or j["status"]] += t
        p["c"] += got
        p["ontime"].append(got["ontime"] / ((b - a) / 1000))
    print(f"interleaved phases (the first {settle:g} s of each left out; jobs by their release; jobs/s):", file=out)
    for scale in sorted(per):
        p = per[scale]
        dur = p["s"] or 1.0
        wasted = sum(p["wasted"].values())
        print(f"{scale:g}x: {p['n']} phases, {p['s']:.0f} s: on time {p['c']['ontime'] / dur:.1f} jobs/s (phases "
              + " ".join(f"{x:.0f}" for x in p["ontime"]) + ")", file=out)
        print("  causes: " + ", ".join(f"{c} {p['c'][c] / dur:.1f}" for c in CAUSES), file=out)
        print(f"  busy: useful {p['useful'] / dur:.0f} ms/s, wasted {wasted / dur:.0f} ms/s "
              f"({100 * wasted / (wasted + p['useful']) if wasted + p['useful'] else 0:.0f}%) "
              f"{ {k: round(v / dur) for k, v in p['wasted'].most_common()} }", file=out)
        if models:
            for m, c in sorted(p["m"].items()):
                print(f"    {m:20s} " + ", ".join(f"{k} {c[k] / dur:.1f}" for k in CAUSES if c[k]), file=out)
    base = per.get(1.0)
    for scale in sorted(x for x in per if x != 1.0 and base and base["s"]):
        p = per[scale]
        d = {c: p["c"][c] / (p["s"] or 1.0) - base["c"][c] / base["s"] for c in CAUSES}
        causes = ", ".join(f"{c} {d[c]:+.1f}" for c in CAUSES[1:])
        print(f"{scale:g}x against 1x (jobs/s): on time {d['ontime']:+.1f}; {causes}", file=out)


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
    ap.add_argument("--phases", action="store_true",
                    help="the interleaved phases of tools/flood.py or tools/soak.py --interleave: where the capacity "
                         "went per scale (on time, refused, displaced, shed after partial run, late, dropped unrun)")
    args = ap.parse_args()
    try:
        if args.phases:
            phases(args.log, args.settle, args.models, sys.stdout)
            return 0
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
