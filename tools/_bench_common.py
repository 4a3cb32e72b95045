"""Shared helpers of the benchmark scripts in ``tools/`` (stdlib only; not a script itself).

Importing it puts the repository root on ``sys.path`` so that ``edge_sdrm3`` imports without an
installation, whichever directory the scripts are started from.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCENARIOS = ("social_a", "social_b", "outdoor_a", "outdoor_b", "ar_assistant", "ar_gaming", "vr_gaming")
PLATFORMS = ("single_4k_ws", "dual_4k_ws_os", "dual_4k_biglittle_ws_os", "quad_4k_ws_os_ws_os",
             "dual_8k_ws_os", "quad_8k_ws_os_ws_os")


def csv_list(s: str) -> list[str]:
    """``a,b , c`` -> ``['a', 'b', 'c']`` (for argparse)."""
    return [x.strip() for x in s.split(",") if x.strip()]


ESTIMATES = ("compiled", "pure")


def estimate_list(s: str) -> list[str]:
    """``--estimates compiled,pure`` (for argparse): SDRM3's schedule estimates to time side by side."""
    kinds = csv_list(s)
    bad = [k for k in kinds if k not in ESTIMATES]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"estimates are among {', '.join(ESTIMATES)}, comma-separated: not {s!r}")
    from edge_sdrm3.core.policies import sdrm3_estimate
    if "compiled" in kinds and not sdrm3_estimate.COMPILED:
        raise argparse.ArgumentTypeError("the compiled estimate is not there: not built (`make .venv/.installed` "
                                         "builds it where a C compiler is) or EDGE_SDRM3_PURE=1")
    return kinds


def active_estimate() -> str:
    """The schedule estimate SDRM3 runs with as installed: compiled where it was built, else pure."""
    from edge_sdrm3.core.policies import sdrm3_estimate
    return "compiled" if sdrm3_estimate.COMPILED else "pure"


def use_estimate(kind: str) -> None:
    """Switches SDRM3 (every module that took ``_first_late``) to the compiled or the pure-Python estimate, in
    place: a benchmark times both in one run, interleaved, so that the machine's noise hits them alike."""
    from edge_sdrm3.core.policies import sdrm3_estimate as e
    both = {e._first_late_py} | ({e._C.first_late} if e._C is not None else set())
    fn = e._C.first_late if kind == "compiled" else e._first_late_py
    for name, mod in list(sys.modules.items()):
        if name.startswith("edge_sdrm3.") and getattr(mod, "_first_late", None) in both:
            mod._first_late = fn


def command_line() -> str:
    """The command that is running, as one would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_s = str(script.relative_to(ROOT))
    except ValueError:
        script_s = str(script)
    return " ".join(["python3", shlex.quote(script_s)] + [shlex.quote(a) for a in sys.argv[1:]])


def machine() -> str:
    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.machine()}, {os.cpu_count()} CPUs")


def geomean_reduction(reductions: list[float]) -> float | None:
    """Reductions r_i = 1 - x_i/y_i -> 1 - geometric mean of the ratios (1 - r_i)."""
    ratios = [1.0 - r for r in reductions if r is not None and math.isfinite(r)]
    if not ratios:
        return None
    if any(x <= 0 for x in ratios):  # a policy with UXCost 0: the geomean of the ratios is 0
        return 1.0
    return 1.0 - math.exp(sum(math.log(x) for x in ratios) / len(ratios))


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.median(xs) if xs else None


def percentile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in [0, 100])."""
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, math.ceil(q / 100.0 * len(sorted_xs)) - 1))
    return sorted_xs[k]


def pct(x: float | None, digits: int = 1, sign: bool = True) -> str:
    if x is None:
        return "n/a"
    return f"{100.0 * x:+.{digits}f}%" if sign else f"{100.0 * x:.{digits}f}%"


def num(x: float | None, fmt: str = ".4f") -> str:
    return "n/a" if x is None else format(x, fmt)


def table(headers: list[str], rows: list[list[str]], markdown: bool = False, align: str | None = None) -> str:
    """A plain-text (aligned) or Markdown table. ``align``: one 'l'/'r' per column (default: first
    column left, the others right)."""
    align = align or ("l" + "r" * (len(headers) - 1))
    if markdown:
        sep = ["---" if a == "l" else "---:" for a in align]
        lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]

    def fmt(r: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if a == "l" else str(c).rjust(w)
                         for c, w, a in zip(r, widths, align)).rstrip()

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])
