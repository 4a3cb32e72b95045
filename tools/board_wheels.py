#!/usr/bin/env python3
"""What installs where: each dependency of edge-sdrm3, resolved against the package index for each board.

For every board (CPU architecture, glibc, the OS's Python) the requirements of pyproject.toml are evaluated with
that board's environment markers (plus the ``tflite-runtime`` extra where there is no ai-edge-litert), and each
one is resolved by pip for that platform and Python, binary wheels only (``pip install --dry-run --only-binary
:all: --platform ... --python-version ...``; pip fetches only the metadata it needs). The table says which wheel
pip would take, or that there is none. Needs network access to the index; run from the repository:

    python3 tools/board_wheels.py             # every board (about a minute)
    python3 tools/board_wheels.py --boards pi-os-bookworm-armhf
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Board:
    name: str
    what: str
    machine: str  # platform_machine
    glibc: tuple[int, int]
    python: str
    extras: tuple[str, ...] = ()


BOARDS = (
    Board("pi-os-bookworm-arm64", "Raspberry Pi OS Bookworm 64-bit (Pi 3/4/5)", "aarch64", (2, 36), "3.11"),
    Board("pi-os-trixie-arm64", "Raspberry Pi OS Trixie 64-bit", "aarch64", (2, 41), "3.13"),
    Board("jetpack-6", "Jetson Orin, JetPack 6 (Ubuntu 22.04)", "aarch64", (2, 35), "3.10"),
    Board("ubuntu-24.04-arm64", "Ubuntu 24.04 arm64 (e.g. Pi 5, Orin with a newer OS)", "aarch64", (2, 39), "3.12"),
    Board("pi-os-bookworm-armhf", "Raspberry Pi OS Bookworm 32-bit (armv7l)", "armv7l", (2, 36), "3.11",
          ("tflite-runtime",)),
    Board("pi-os-trixie-armhf", "Raspberry Pi OS Trixie 32-bit (armv7l)", "armv7l", (2, 41), "3.13",
          ("tflite-runtime",)),
    Board("debian-12-x86_64", "Debian 12 x86_64 (a laptop, CI)", "x86_64", (2, 36), "3.11"),
)


def platforms(b: Board) -> list[str]:
    """Every wheel platform tag a pip on that board accepts (manylinux_2_17 .. its glibc, and plain linux)."""
    tags = [f"manylinux_{b.glibc[0]}_{minor}_{b.machine}" for minor in range(b.glibc[1], 16, -1)]
    return tags + [f"manylinux2014_{b.machine}", f"linux_{b.machine}"]


def requirements(b: Board) -> list[Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = {"platform_machine": b.machine, "python_version": b.python, "python_full_version": b.python + ".0",
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    raw = list(meta["dependencies"]) + [r for e in b.extras for r in meta["optional-dependencies"][e]]
    out = []
    for line in raw:
        r = Requirement(line)
        if r.marker is None or r.marker.evaluate({**env, "extra": ""}):
            out.append(r)
    # the same name twice (numpy>=1.23 and the extra's numpy<2): one requirement with both bounds
    merged: dict[str, Requirement] = {}
    for r in out:
        if r.name in merged:
            merged[r.name] = Requirement(f"{r.name}{merged[r.name].specifier & r.specifier}")
        else:
            merged[r.name] = Requirement(f"{r.name}{r.specifier}")
    return list(merged.values())


def resolve(req: Requirement, b: Board, tmp: Path) -> str:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "-q",
           "--only-binary=:all:", "--python-version", b.python, "--target", str(tmp / "t"), "--report", "-"]
    for p in platforms(b):
        cmd += ["--platform", p]
    r = subprocess.run(cmd + [str(req)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return "no wheel"
    got = json.loads(r.stdout)["install"][0]
    return got["download_info"]["url"].rsplit("/", 1)[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boards", default="", help="comma-separated board names (default: all)")
    args = ap.parse_args()
    wanted = [x for x in args.boards.split(",") if x]
    unknown = set(wanted) - {b.name for b in BOARDS}
    if unknown:
        ap.error(f"unknown board(s) {', '.join(sorted(unknown))} (known: {', '.join(b.name for b in BOARDS)})")
    with tempfile.TemporaryDirectory() as d:
        for b in BOARDS:
            if wanted and b.name not in wanted:
                continue
            extra = f", extra [{','.join(b.extras)}]" if b.extras else ""
            print(f"== {b.name}: {b.what}; Python {b.python}, glibc {b.glibc[0]}.{b.glibc[1]}, {b.machine}{extra}")
            for req in requirements(b):
                print(f"   {str(req):<34} {resolve(req, b, Path(d))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
