"""`edge-sdrm3 serve [--config FILE] [--duration S]`: the CLI only builds the Config and runs the Service."""
from __future__ import annotations

import argparse
import logging
import sys


def add_serve_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="run the scheduler service (ZeroMQ frames in, results out)",
                       description="Run the live service: frames in over ZeroMQ, SDRM3 on this board's "
                                   "accelerators, results and a job log out (docs/protocol.md).")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TOML config (default: built-in defaults; the shipped edge-sdrm3.toml documents every key)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop by itself after S seconds (demos, tests); default: until SIGTERM/SIGINT")
    p.set_defaults(func=cmd_serve)
    return p


def cmd_serve(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .service import Service

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"edge-sdrm3: error: {e}", file=sys.stderr)
        return 2
    if args.duration is not None and not args.duration > 0:
        print(f"edge-sdrm3: error: --duration must be > 0, got {args.duration}", file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, cfg.log.level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return Service(cfg, duration_s=args.duration).serve()


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_sdrm3.runtime.cli serve ...`` (the same command before it is hooked into edge-sdrm3)."""
    ap = argparse.ArgumentParser(prog="edge-sdrm3")
    sub = ap.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    args = ap.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
