"""``edge-sdrm3 models list|fetch|split|build-xrbench``: hooked into edge_sdrm3/cli.py by ``add_models_parser``.

Each command returns an exit status; a ``ModelToolError`` becomes one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ModelToolError


def _guard(fn):
    def run(args) -> int:
        try:
            return int(fn(args) or 0)
        except ModelToolError as e:
            print(f"edge-sdrm3: error: {e}", file=sys.stderr)
            return 2
    return run


def cmd_list(args) -> int:
    from .fetch import cached_ok
    from .manifest import load_manifest

    man = load_manifest(args.manifest)
    cache = Path(args.cache) if args.cache else None
    print(f"{'model':<20} {'variant':<12} {'accuracy':>9} {'size kB':>8} {'segs':>4}  {'present':<8} cascade / source")
    for m in man.models.values():
        for i, v in enumerate(m.variants):
            path = m.path(v, cache)
            present = "yes" if cached_ok(path, v) else ("BAD" if path.exists() else "no")
            acc = "-" if v.accuracy is None else f"{100 * v.accuracy:.2f}%"
            extra = (f"after {m.upstream}" if m.upstream else "") if i == 0 else ""
            if i == 0 and m.location == "cache":
                extra = f"{extra}{'; ' if extra else ''}{m.source}"
            print(f"{m.name if i == 0 else '':<20} {v.name:<12} {acc:>9} {v.size / 1000:>8.0f} {m.segments:>4}  "
                  f"{present:<8} {extra}")
    return 0


def cmd_fetch(args) -> int:
    from .fetch import existing_ancestor, fetch_mediapipe, match_owner
    from .manifest import default_cache_dir, load_manifest

    cache = Path(args.cache) if args.cache else default_cache_dir()
    anchor = existing_ancestor(cache)
    got = fetch_mediapipe(cache, load_manifest(args.manifest), wheel=args.wheel)
    for f in got:
        print(f"{f.status:<9} {f.model}/{f.variant}: {f.path}")
    owned = match_owner(cache, anchor)
    print(f"{len(got)} files in {cache}" + (f" ({owned} paths given the owner of {anchor})" if owned else ""))
    return 0


def cmd_split(args) -> int:
    from .split import split_model_info

    infos = split_model_info(args.model, args.segments, args.output)
    total = sum(s.cost for s in infos) or 1
    for i, s in enumerate(infos, 1):
        print(f"segment {i}: ops {s.start}..{s.stop - 1}  cost {100 * s.cost / total:5.1f}%  "
              f"in {', '.join(s.inputs)}  out {', '.join(s.outputs)}  -> {s.path}")
    return 0


def cmd_build_xrbench(args) -> int:
    from .xrbench_model import build_xrbench_model, build_xrbench_segments

    if args.segments:
        out_dir = Path(args.output).parent
        for p in build_xrbench_segments(args.model, args.width, out_dir, seed=args.seed, whole=args.output):
            print(p)
    else:
        print(build_xrbench_model(args.model, args.width, args.output, seed=args.seed))
    return 0


def add_models_parser(sub) -> argparse.ArgumentParser:
    """Add ``models`` and its subcommands to an argparse subparsers object; each sets ``func(args) -> int``."""
    p = sub.add_parser("models", help="the model catalog: list, fetch, split, build XRBench-shaped models")
    msub = p.add_subparsers(dest="models_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--manifest", default=None, help="manifest file (default: the one shipped in the package)")
        q.add_argument("--cache", default=None, help="model cache (default: $EDGE_SDRM3_MODEL_CACHE or "
                                                     "~/.cache/edge-sdrm3/models)")

    q = msub.add_parser("list", help="models, variants, accuracy, and whether each file is present")
    common(q)
    q.set_defaults(func=_guard(cmd_list))

    q = msub.add_parser("fetch", help="download the MediaPipe models into the cache (checks sha256)")
    common(q)
    q.add_argument("--dest", dest="cache", metavar="DIR",
                   help="the model cache to fill (same as --cache), e.g. the service's /var/lib/edge-sdrm3/models; "
                        "run as root into a folder owned by another user, the files are given that user")
    q.add_argument("--wheel", default=None, help="use this mediapipe wheel file instead of downloading it")
    q.set_defaults(func=_guard(cmd_fetch))

    q = msub.add_parser("split", help="cut a .tflite model into N consecutive segments of about equal cost")
    q.add_argument("model", metavar="MODEL.tflite")
    q.add_argument("--segments", type=int, required=True)
    q.add_argument("-o", "--output", required=True, metavar="DIR")
    q.set_defaults(func=_guard(cmd_split))

    q = msub.add_parser("build-xrbench", help="build a .tflite with an XRBench model's layer shapes (random weights)")
    q.add_argument("model", help="e.g. KD_res8_narrow")
    q.add_argument("--width", default="1.0", help="1.0, 0.75, 0.5 or 0.25")
    q.add_argument("-o", "--output", required=True, metavar="FILE")
    q.add_argument("--segments", action="store_true", help="also write the replay's 4 segments beside FILE")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_guard(cmd_build_xrbench))
    return p
