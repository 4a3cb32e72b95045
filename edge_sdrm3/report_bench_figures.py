"""The figures of benchmark files and sweeps in ``edge-sdrm3 report -o/--png``: each cell's UXCost reduction against
the best baseline (a heat map per policy, or the sorted spread when there are many cells), and a sweep's summary per
policy. Drawn with matplotlib (``report_figures.pyplot``); the page is assembled by ``report_html``.
"""
from __future__ import annotations

import math

from .report import reduction
from .report_figures import BASE, OURS


def _baselines() -> tuple[str, ...]:
    from .core.policies import BASELINES

    return BASELINES


def bench_reductions(bench: dict) -> dict[str, dict[tuple[str, str], float]]:
    """Per policy of ours, per (scenario, platform) cell of a benchmark file: its reduction vs its reference (the
    benchmark's own, ``cell["reduction"]``, where it wrote one; else against the best baseline)."""
    out: dict[str, dict] = {}
    for cell in bench["cells"]:
        key = (cell["scenario"], cell["platform"])
        if isinstance(cell.get("reduction"), dict):
            for p, r in cell["reduction"].items():
                if isinstance(r, (int, float)):
                    out.setdefault(p, {})[key] = float(r)
            continue
        rows = [{"policy": p, **r} for p, r in (cell.get("results") or {}).items() if isinstance(r, dict)
                and "uxcost" in r]
        for p, (r, _) in reduction(rows).items():
            out.setdefault(p, {})[key] = r
    return out


def infeasible(cell: dict, policy: str) -> bool:
    """A cell the benchmark left out for this policy (every model misses even alone)."""
    return bool(cell.get("infeasible_any_variant" if policy.endswith("+supernet") else "infeasible"))


def _reduction_cmap():
    """Red for worse than the reference, white at 0, green for better (UXCost reductions)."""
    from matplotlib.colors import LinearSegmentedColormap, TwoSlopeNorm

    cmap = LinearSegmentedColormap.from_list("reduction", ["#b2182b", "#f4a582", "#f7f7f7", "#a1d99b", "#00441b"])
    return cmap, TwoSlopeNorm(vmin=-50, vcenter=0, vmax=100)


def _pct(v: float) -> str:
    """A reduction as a percentage: one decimal below 10% either way and from 99.5%, else whole; no "-0.0%"."""
    if abs(v) < 0.0005:
        return "0%"
    return f"{100 * v:+.1f}%" if abs(v) < 0.1 or 0.995 <= v < 1 else f"{100 * v:+.0f}%"


def _summary_title(p: str, summ: dict, sep: str = " — ") -> str:
    s = summ.get(p, {})
    g, m = s.get("geomean_reduction"), s.get("median_reduction")
    vs = " vs the best +supernet baseline" if s.get("reference") == "supernet_baselines" else ""
    figures = ", ".join(([f"geomean reduction {_pct(g)}"] if g is not None else [])
                        + ([f"median {_pct(m)}"] if m is not None else []))
    return p + vs + (sep + figures if figures else "")


def fig_benchmark(plt, bench: dict):
    red = bench_reductions(bench)
    pols = [p for p in bench.get("ours", bench.get("policies", red)) if p in red] or list(red)
    scen = bench.get("scenarios") or sorted({k[0] for v in red.values() for k in v})
    if len(scen) > 12:
        return fig_benchmark_spread(plt, bench, red, pols)
    plats = bench.get("platforms") or sorted({k[1] for v in red.values() for k in v})
    out = {(c["scenario"], c["platform"]): c for c in bench["cells"]}
    fig, axs = plt.subplots(1, len(pols), figsize=(5.6 * len(pols) + 1.5, 2.6 + 0.5 * len(scen)), squeeze=False,
                            layout="constrained")
    summ = bench.get("summary", {})
    cmap, norm = _reduction_cmap()
    cmap = cmap.with_extremes(bad="#d9dde3")
    for k, (ax, p) in enumerate(zip(axs[0], pols)):
        grid = [[math.nan if infeasible(out.get((s, pl), {}), p) else red[p].get((s, pl), math.nan) for pl in plats]
                for s in scen]
        im = ax.imshow([[100 * max(v, -0.5) for v in row] for row in grid], cmap=cmap, norm=norm, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if math.isnan(v):
                    if infeasible(out.get((scen[i], plats[j]), {}), p):
                        ax.text(j, i, "infeasible", ha="center", va="center", fontsize=8, color="#52606d",
                                style="italic")
                    continue
                ax.text(j, i, _pct(v), ha="center", va="center",
                        fontsize=9, color="white" if v > 0.6 or v < -0.3 else "black")
        ax.set_xticks(range(len(plats)), plats, fontsize=8, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(scen)), scen if k == 0 else [], fontsize=9)
        if k == 0:
            ax.set_xlabel("platform", fontsize=9)
            ax.set_ylabel("scenario", fontsize=9)
        ax.set_title(_summary_title(p, summ, "\n"), fontsize=11)
    cb = fig.colorbar(im, ax=list(axs[0]), fraction=0.02, pad=0.01)
    cb.set_label("UXCost reduction vs the best baseline (%)")
    fig.suptitle(_benchmark_title(bench) + "; higher is better, grey: infeasible cells (left out)",
                 x=0.01, ha="left", fontsize=12)
    return fig


def _benchmark_title(bench: dict) -> str:
    nb = len(bench.get("baselines", _baselines()))
    what = f"{len(bench['cells'])} cells"
    if bench.get("random"):
        what += f" of {bench['random']['count']} random mixes"
    return (f"UXCost reduction against the best of {nb} baselines, {what} ({bench.get('duration_s', 10):g} s "
            f"replays, seed {bench.get('seed', 0)})")


def fig_benchmark_spread(plt, bench: dict, red: dict, pols: list[str]):
    """Many cells (random mixes): each policy's reductions sorted, one point per feasible cell."""
    out = {(c["scenario"], c["platform"]): c for c in bench["cells"]}
    fig, ax = plt.subplots(figsize=(11, 4.6), layout="constrained")
    summ = bench.get("summary", {})
    lo = 0.0
    for p in pols:
        vals = sorted(100 * v for k, v in red[p].items() if not infeasible(out.get(k, {}), p) and math.isfinite(v))
        if not vals:
            continue
        lo = min(lo, vals[0])
        xs = [100 * (i + 0.5) / len(vals) for i in range(len(vals))]
        worse = sum(1 for v in vals if v < -1.0)
        ax.plot(xs, vals, lw=2, color=OURS.get(p), label=_summary_title(p, summ) + f"; {len(vals)} cells, "
                f"{worse} worse by > 1%")
    ax.axhline(0, color="#1f2933", lw=1)
    ax.axhline(-1, color="#b2182b", lw=1, ls="--", label="1% worse than the best baseline")
    ax.set_ylim(max(-100.0, lo * 1.1 - 2), 102)
    ax.set_xlim(0, 100)
    ax.set_xlabel("cells, sorted by reduction (%)")
    ax.set_ylabel("UXCost reduction vs the best baseline (%)" + ("\n(cut at -100%)" if lo < -100 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", frameon=False)
    ax.set_title(_benchmark_title(bench) + "; higher is better", loc="left", fontsize=11)
    return fig


def fig_sweep(plt, rows: list[dict], title: str):
    """A sweep's summary per policy: mean UXCost and its reduction against the best baseline of each cell."""
    labels = [s["label"] for s in rows]
    colors = [BASE if s["policy"] in _baselines() else OURS.get(s["policy"], "#c1121f") for s in rows]
    fig, axs = plt.subplots(1, 3, figsize=(13, 1.6 + 0.32 * len(rows)), sharey=True)
    y = list(range(len(rows)))[::-1]
    red = [100 * s["geomean_reduction"] if s["geomean_reduction"] is not None else 0.0 for s in rows]
    panels = [("mean UXCost (lower is better)", [s["uxcost"] for s in rows], "{:.4g}"),
              ("mean miss rate (%)", [100 * s["miss_rate"] for s in rows], "{:.1f}"),
              ("UXCost reduction vs best baseline, geomean (%)", red, "{:+.1f}")]
    for ax, (name, vals, fmt) in zip(axs, panels):
        ax.barh(y, vals, color=colors)
        lo, hi = min(vals + [0.0]), max(vals + [1e-9])
        ax.set_xlim(lo * 1.3 if lo < 0 else 0, hi * 1.3 if hi > 0 else 1)
        for yi, v in zip(y, vals):
            ax.text(v, yi, " " + fmt.format(v), va="center", fontsize=7)
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axs[0].set_yticks(y, labels, fontsize=9)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig
