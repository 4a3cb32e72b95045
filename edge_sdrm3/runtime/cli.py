"""`edge-sdrm3 serve [--config FILE] [--duration S | --check]`: the CLI only builds the Config and runs the Service.

``--check`` validates what a start would use and exits (0: ok; 2: the problem, named on one line), so an edited
config can be tried before ``systemctl restart``: the config and its sockets' settings (endpoints, group, CURVE
keys), the policy, the scenario and platform, the model catalog, and every model file the scenario needs (present,
size and sha256 as the catalog says, loadable by the TFLite runtime, inputs as declared). It binds nothing and
writes nothing (models are not split into segments: the service does that on its first start).
"""
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
    p.add_argument("--check", action="store_true",
                   help="validate the config, catalog and model files, then exit (0 ok, 2 with the problem named)")
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
    if args.check:
        return check(cfg, args.config)
    logging.basicConfig(level=getattr(logging, cfg.log.level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .memory import limit_arenas

    limit_arenas()  # before any thread starts: the loads' threads share the checks' freed memory (runtime/memory.py)
    return Service(cfg, duration_s=args.duration).serve()


def check(cfg, source: str | None) -> int:
    """What a start would refuse, found without starting: one line and 2, or a summary line and 0."""
    from ..core.types import ConfigError as CoreConfigError
    from ..tflite.manifest import default_cache_dir
    from .config import ConfigError
    from .security import Security
    from .service import StartupError, load_workload, make_policy_from

    try:
        Security(cfg.sockets, cfg.runtime_dir)
        make_policy_from(cfg)
        wl = load_workload(cfg, split=False)
    except (ConfigError, StartupError) as e:
        print(f"edge-sdrm3: error: {e}", file=sys.stderr)
        return 2
    except (CoreConfigError, TypeError) as e:  # an unknown policy or a parameter it does not take
        print(f"edge-sdrm3: error: config: [scheduler] policy: {e}", file=sys.stderr)
        return 2
    w = cfg.workload
    cache = w.model_cache or str(default_cache_dir())
    files = sum(len(per) for per in wl.files)
    print(f"edge-sdrm3: {source or 'built-in defaults'}: ok: policy {cfg.scheduler.policy}, scenario "
          f"{wl.scenario.name} ({len(wl.models)} models, {files} model files checked; model cache {cache}) on "
          f"platform {wl.spec.platform.name} ({len(wl.spec.platform.accelerators)} accelerators), "
          f"sockets {cfg.sockets.ingest} {cfg.sockets.results} {cfg.sockets.control}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_sdrm3.runtime.cli serve ...`` (the same command before it is hooked into edge-sdrm3)."""
    ap = argparse.ArgumentParser(prog="edge-sdrm3")
    sub = ap.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    args = ap.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
