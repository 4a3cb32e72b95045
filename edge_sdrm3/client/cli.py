"""``edge-sdrm3 publish`` and ``edge-sdrm3 status``: the client side of the CLI.

``add_client_parsers(sub)`` adds both subcommands to the main parser's subparsers. Input-file and argument
errors raise ``ConfigError`` (exit 2 in ``cli.main``); a service that does not answer is exit 1.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from . import ClientError, Control, Publisher, default_endpoint, load_curve_keys
from ..publish import FolderImages, PlayReport, SyntheticImages, load_plan, parse_size, play


def cmd_publish(args: argparse.Namespace) -> int:
    plan = load_plan(args.source, args.duration, args.rate_scale, args.seed)
    if args.images:
        images = FolderImages(args.images, parse_size(args.size) if args.size else None)
        what = f"{len(images.images)} images from {args.images}"
    else:
        w, h = parse_size(args.size or "640x480")
        images = SyntheticImages(w, h, seed=args.seed, pattern=args.pattern)
        what = f"synthetic {args.pattern} {w}x{h}"
    counts = plan.counts()
    endpoint = args.endpoint or default_endpoint("frames")
    print(f"publishing {plan.name} to {endpoint} as stream {args.stream!r}: {len(plan.ticks)} frames over "
          f"{plan.duration_s:g} s ({what}); "
          + ", ".join(f"{m} {n}" for m, n in sorted(counts.items())), file=sys.stderr)
    tty = sys.stderr.isatty()

    def show(rep: PlayReport, total_s: float) -> None:
        sys.stderr.write(f"\r\033[K{rep.elapsed_s:5.1f}/{total_s:g} s  sent {rep.sent}  "
                         f"dropped {rep.refused}  lag {rep.max_lag_ms:.1f} ms")
        sys.stderr.flush()

    with Publisher(endpoint, hwm=args.hwm, linger_ms=2000, curve=_curve(args)) as pub:
        rep = play(plan, pub, images, args.stream, progress=show if tty else None)
    if tty:
        sys.stderr.write("\r\033[K")
    print(("interrupted: " if rep.interrupted else "") + rep.line())
    return 130 if rep.interrupted else 0


def _fmt(x: Any, spec: str = ".3f") -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else ("yes" if x else "no")
    if isinstance(x, float):
        return "-" if math.isnan(x) else format(x, spec)
    return str(x)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w[i]}}}" for i in range(len(head)))
    return [fmt.format(*head), fmt.format(*("-" * x for x in w))] + [fmt.format(*r) for r in rows]


def render_status(st: dict) -> str:
    """The control ``status`` reply as text: a summary line, then accelerators, models, errors."""
    out = []
    theta = st.get("theta") or {}
    th = " ".join(f"{k}={_fmt(v)}" for k, v in theta.items()) or "-"
    uptime = st.get("uptime_s")
    out.append(f"policy {st.get('policy', '?')}  theta {th}  uxcost {_fmt(st.get('uxcost'), '.4f')}  "
               f"uptime {_fmt(uptime, '.0f')} s")
    accs = st.get("accelerators") or []
    if accs:
        out.append("")
        out += _table(["accelerator", "kind", "healthy", "busy"],
                      [[str(a.get("id", "?")), str(a.get("kind", "")), _fmt(a.get("healthy")), _fmt(a.get("busy"))]
                       for a in accs])
    models = st.get("models") or {}
    queues = st.get("queues") or {}
    if models or queues:
        out.append("")
        rows = []
        for name in list(models) + [q for q in queues if q not in models]:
            m = models.get(name) or {}
            rate = m.get("miss_rate")
            rows.append([name, _fmt(m.get("due")), _fmt(m.get("missed")),
                         "-" if rate is None else f"{100 * rate:.1f}", _fmt(queues.get(name))])
        out += _table(["model", "due", "missed", "miss %", "queued"], rows)
    errors = {k: v for k, v in (st.get("errors") or {}).items() if v}
    out.append("")
    out.append("errors: " + (", ".join(f"{k} {v}" for k, v in sorted(errors.items())) if errors else "none"))
    return "\n".join(out)


def cmd_status(args: argparse.Namespace) -> int:
    with Control(args.endpoint, timeout_ms=int(args.timeout * 1000), curve=_curve(args)) as ctl:
        st = ctl.status()
    if args.json:
        print(json.dumps(st, sort_keys=True, default=str))
    else:
        print(render_status(st))
    return 0


def _curve(args: argparse.Namespace) -> tuple | None:
    """CURVE keys from --curve-server-key and --curve-key (both or neither)."""
    if not args.curve_server_key and not args.curve_key:
        return None
    if not (args.curve_server_key and args.curve_key):
        raise ClientError("CURVE needs both --curve-server-key and --curve-key")
    return load_curve_keys(args.curve_server_key, args.curve_key)


def _add_curve_args(p: Any) -> None:
    p.add_argument("--curve-server-key", metavar="FILE", default=None,
                   help="CURVE: the service's public key file (server.key), for a service with "
                        "[sockets] curve_secret_key_file")
    p.add_argument("--curve-key", metavar="FILE", default=None,
                   help="CURVE: this client's secret key file (client.key_secret; its public key must be in "
                        "the service's curve_allowed_keys_dir)")


def _client_errors(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ClientError as e:
            print(f"edge-sdrm3: error: {e}", file=sys.stderr)
            return 1
    return run


def add_client_parsers(sub: Any) -> None:
    """Add ``publish`` and ``status`` to the CLI's subparsers."""
    p = sub.add_parser("publish", help="play a scenario or trace to the service as a camera would")
    p.add_argument("source", metavar="SCENARIO_OR_TRACE", help="scenario name or file, or a trace file (.jsonl)")
    p.add_argument("--endpoint", default=None, help=f"frames socket (default {default_endpoint('frames')}; "
                                                     "$EDGE_SDRM3_RUNTIME_DIR moves it)")
    p.add_argument("--duration", type=float, default=None, help="seconds of scenario time (default 10; a trace: all)")
    p.add_argument("--images", metavar="DIR", default=None,
                   help="send the images of DIR, cycled (.npy, .ppm, .pgm; default: synthetic images)")
    p.add_argument("--size", default=None, help="WIDTHxHEIGHT of synthetic images (default 640x480); "
                                                "with --images, resize them to it")
    p.add_argument("--pattern", choices=["shapes", "noise"], default="shapes", help="synthetic image content")
    p.add_argument("--stream", default="cam0", help="stream name (default cam0)")
    p.add_argument("--rate-scale", type=float, default=1.0, metavar="X",
                   help="play X times faster (2 = twice the frame rates; default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of trigger draws and noise images (default 0)")
    p.add_argument("--hwm", type=int, default=64, help="frames queued before new ones are dropped (default 64)")
    _add_curve_args(p)
    p.set_defaults(func=_client_errors(cmd_publish))

    p = sub.add_parser("status", help="the running service's status: policy, accelerators, models, errors")
    p.add_argument("--endpoint", default=None, help=f"control socket (default {default_endpoint('control')})")
    p.add_argument("--json", action="store_true", help="the raw status reply as JSON")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the reply (default 2)")
    _add_curve_args(p)
    p.set_defaults(func=_client_errors(cmd_status))
