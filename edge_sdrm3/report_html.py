"""Figures and a self-contained HTML report of runs and comparisons (``edge-sdrm3 report ... -o/--png``).

Needs matplotlib, an optional extra (``pip install 'edge-sdrm3[report]'``); only ``report`` imports this
module, never the service or the replay. Figures are drawn with the Agg backend (no display) and
embedded in the HTML as base64 PNG, so the file opens offline.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from .core.types import ConfigError
from .report import Run, Sweep, is_baseline, reduction, sweep_summary

INSTALL_HINT = "pip install 'edge-sdrm3[report]'"


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(f"report -o/--png draws with matplotlib, an optional extra: {INSTALL_HINT}") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


BASE = "#9aa5b1"  # a baseline
BEST = "#52606d"  # the best baseline
OURS = {"sdrm3": "#e4572e", "sdrm3+supernet": "#f3a712"}
LATE, DROP = "#d00000", "#000000"


def _model_colors(models: list[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(models) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(models)}


# --- one run ---------------------------------------------------------------------------------------------------

def fig_timeline(plt, run: Run, window: tuple[float, float] | None, title: str):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    col = _model_colors(run.models)
    lo, hi = window if window else (0.0, max([s["end_ms"] for s in run.segments] +
                                                [c.end_ms for c in run.completions] + [1.0]))
    never = [c for c in run.completions if c.status != "done" and not c.accelerator and lo <= c.end_ms <= hi]
    rows = list(run.accelerators) + (["dropped\n(never ran)"] if never else [])
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.75 * len(rows)))
    y_of = {a: len(rows) - 1 - i for i, a in enumerate(rows)}
    by: dict[tuple[str, str], list] = {}
    for s in run.segments:
        if s["end_ms"] > lo and s["start_ms"] < hi and s["accelerator"] in y_of:
            by.setdefault((s["accelerator"], s["model"]), []).append((s["start_ms"], s["end_ms"] - s["start_ms"]))
    few = sum(len(v) for v in by.values()) < 600  # few enough to tell the segments apart by a white edge
    for (acc, m), spans in by.items():
        ax.broken_barh(spans, (y_of[acc] - 0.35, 0.7), facecolors=col[m], edgecolors="white" if few else col[m],
                       linewidth=0.6 if few else 0.4)
    late = [c for c in run.completions if c.status == "late" and lo <= c.end_ms <= hi and c.accelerator in y_of]
    aband = [c for c in run.completions if c.status in ("dropped", "failed") and c.accelerator in y_of
             and lo <= c.end_ms <= hi]
    if late:
        ax.scatter([c.end_ms for c in late], [y_of[c.accelerator] + 0.45 for c in late], marker="v", s=28,
                   color=LATE, zorder=3, clip_on=False)
    if aband:
        ax.scatter([c.end_ms for c in aband], [y_of[c.accelerator] + 0.45 for c in aband], marker="x", s=28,
                   color=DROP, zorder=3, clip_on=False)
    if never:
        y = y_of[rows[-1]]
        ax.scatter([c.end_ms for c in never], [y + 0.3 - 0.6 * run.models.index(c.model) / max(1, len(run.models) - 1)
                                             if c.model in run.models else y for c in never], marker="x",
                   s=22, color=[col.get(c.model, DROP) for c in never], zorder=3)
    ax.set_yticks([y_of[a] for a in rows], rows)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("time (ms)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, loc="left", fontsize=11)
    handles = [Patch(color=col[m], label=m) for m in run.models]
    handles += [Line2D([], [], marker="v", ls="", color=LATE, label="late (finished after its deadline)"),
                Line2D([], [], marker="x", ls="", color=DROP, label="dropped" + (" (coloured: never ran)" if never else ""))]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def fig_models(plt, run: Run):
    col = _model_colors(run.models)
    ms = run.models
    d = run.metrics["models"]
    fig, axs = plt.subplots(2, 2, figsize=(12, 2.2 + 0.9 * len(ms)))
    y = list(range(len(ms)))[::-1]
    ax = axs[0][0]
    vals = [100 * d[m]["miss_rate"] for m in ms]
    ax.barh(y, vals, color=[col[m] for m in ms])
    for yi, v, m in zip(y, vals, ms):
        ax.text(v, yi, f" {v:.1f}% ({d[m]['missed']}/{d[m]['due']})", va="center", fontsize=8)
    ax.set_title("miss rate (%)", loc="left", fontsize=10)
    ax.set_xlim(0, max(vals + [1.0]) * 1.6)
    ax = axs[0][1]
    h = 0.38
    p50 = [d[m]["p50_ms"] for m in ms]
    p99 = [d[m]["p99_ms"] for m in ms]
    ax.barh([v + h / 2 for v in y], p50, height=h, color=[col[m] for m in ms], alpha=0.55, label="p50")
    ax.barh([v - h / 2 for v in y], p99, height=h, color=[col[m] for m in ms], label="p99")
    for yi, a, b in zip(y, p50, p99):
        ax.text(a, yi + h / 2, f" {a:.2f}", va="center", fontsize=7)
        ax.text(b, yi - h / 2, f" {b:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, max(p99 + [1.0]) * 1.2)
    ax.set_title("latency, release to completion (ms): p50 light, p99 dark", loc="left", fontsize=10)
    ax = axs[1][0]
    vals = [d[m]["energy_mj"] / 1000.0 for m in ms]
    ax.barh(y, vals, color=[col[m] for m in ms])
    for yi, v in zip(y, vals):
        ax.text(v, yi, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(vals + [1e-3]) * 1.25)
    ax.set_title("energy (J, missed frames at least their reference)", loc="left", fontsize=10)
    ax = axs[1][1]
    nv = max(len(v) for v in run.variant_names.values()) if run.variant_names else 1
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    y_of = dict(zip(ms, y))
    used = set()
    for c in run.completions:
        if c.completed:
            used.add(c.variant)
    for v in sorted(used):
        pts = [c for c in run.completions if c.completed and c.variant == v]
        names = sorted({run.variant_names[c.model][v] for c in pts if v < len(run.variant_names.get(c.model, []))})
        ax.scatter([c.end_ms / 1000.0 for c in pts], [y_of[c.model] for c in pts], marker="|", s=60,
                   color=cmap(v / max(1, nv - 1)), label=f"variant {v}" + (f" ({', '.join(names)})" if len(names) == 1
                                                                          else "") + (", the largest" if v == 0 else ""))
    ax.set_title("variant that served each completed frame, over time (s)", loc="left", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    for ax in axs.flat:
        ax.set_yticks(y, ms, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_ylim(-0.6, len(ms) - 0.4)
    fig.suptitle(f"per model — {run.label}", x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


def fig_over_time(plt, run: Run):
    wins = run.windows
    n = 3 if run.tuning else 2
    fig, axs = plt.subplots(n, 1, figsize=(12, 1.2 + 1.9 * n), sharex=True)
    edges = [0.0] + [w["t_ms"] / 1000.0 for w in wins]
    wms = wins[0]["window_ms"] if wins else 0
    ax = axs[0]
    ax.stairs([w["uxcost"] for w in wins], edges, baseline=None, color="#1f4e79", lw=1.5,
              label=f"per {wms:g} ms window (job records)")
    pts = [s for s in run.tuning if isinstance(s.get("uxcost"), (int, float))]
    for i, s in enumerate(pts):  # over the window it measured
        t = s["t_ms"] / 1000.0
        w = s.get("window_s") if isinstance(s.get("window_s"), (int, float)) else 0.0
        ax.plot([t - w, t], [s["uxcost"]] * 2, "-", color="#e4572e", lw=2.5, alpha=0.8,
                label="per tuning window (summary records)" if i == 0 else None)
    ux = [w["uxcost"] for w in wins if w["uxcost"] > 0]
    if ux and max(ux) / min(ux) > 30:
        ax.set_yscale("log")
    ax.axhline(run.metrics["uxcost"], color="#888", ls="--", lw=1, label=f"whole run {run.metrics['uxcost']:.4g}")
    ax.set_ylabel("UXCost")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax = axs[1]
    ax.stairs([w["xrbench_score"] for w in wins], edges, baseline=None, color="#2d6a4f", lw=1.5, label="XRBench score")
    ax2 = ax.twinx()
    ax2.stairs([100 * w["miss_rate"] for w in wins], edges, baseline=None, color=LATE, alpha=0.7, lw=1, label="miss rate (%)")
    ax2.set_ylabel("miss rate (%)", color=LATE)
    ax2.set_ylim(bottom=0)
    ax.set_ylabel("XRBench score")
    ax.set_ylim(0, 100)
    ax.legend(handles=ax.patches + ax2.patches, fontsize=8, loc="upper left", bbox_to_anchor=(1.06, 1.0),
              frameon=False)
    if run.tuning:
        ax = axs[2]
        ts = [s["t_ms"] / 1000.0 for s in run.tuning]  # a window's θ is the one it ran with, drawn over the window
        starts = [t - s.get("window_s", 0.0) if isinstance(s.get("window_s"), (int, float)) else t
                  for t, s in zip(ts, run.tuning)]
        names = {"alpha": "α fairness", "beta": "β preference", "gamma": "γ energy", "delta": "δ drop tolerance"}
        for k, c in zip(names, ("#7b2cbf", "#e4572e", "#2d6a4f", "#1f4e79")):
            vals = [s["theta"].get(k) for s in run.tuning]
            if all(isinstance(v, (int, float)) for v in vals):
                for i, (a, b, v) in enumerate(zip(starts, ts, vals)):
                    ax.plot([a, b], [v, v], color=c, lw=2, solid_capstyle="butt", label=names[k] if i == 0 else None)
        ax.set_ylabel("θ per tuning window")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    for ax in axs:
        ax.grid(alpha=0.3)
    axs[-1].set_xlabel("time (s)")
    fig.suptitle(f"over time — {run.label}", x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


# --- several runs ---------------------------------------------------------------------------------------------

def fig_bars(plt, rows: list[dict], title: str):
    pols = [r["policy"] for r in rows]
    red = reduction(rows)
    refs = {b for _, b in red.values()}
    colors = [OURS.get(p, "#c1121f") if not is_baseline(p) else (BEST if p in refs else BASE) for p in pols]
    fig, axs = plt.subplots(1, 4, figsize=(13, 1.6 + 0.32 * len(rows)), sharey=True)
    y = list(range(len(rows)))[::-1]
    panels = [("UXCost (lower is better)", [r["uxcost"] for r in rows], "{:.4g}"),
              ("miss rate (%)", [100 * r["miss_rate"] for r in rows], "{:.1f}"),
              ("energy (J)", [r["energy_mj"] / 1000.0 for r in rows], "{:.1f}"),
              ("accuracy (relative)", [r.get("accuracy", 0.0) for r in rows], "{:.3f}")]
    for ax, (name, vals, fmt) in zip(axs, panels):
        ax.barh(y, vals, color=colors)
        pos = [v for v in vals if v > 0]
        if name.startswith("UXCost") and pos and max(pos) / min(pos) > 30:
            ax.set_xscale("log")
            ax.set_xlim(min(pos) / 1.5, max(pos) * 8)
        elif name.startswith("accuracy"):
            ax.set_xlim(0, 1.18)
        else:
            ax.set_xlim(0, max(vals + [1e-9]) * 1.3)
        for yi, v in zip(y, vals):
            ax.text(v, yi, " " + fmt.format(v), va="center", fontsize=7)
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axs[0].set_yticks(y, pols, fontsize=9)
    for lab in axs[0].get_yticklabels():
        if lab.get_text() in red:
            lab.set_fontweight("bold")
    text = "   ".join(f"{p}: {100 * r:+.1f}% UXCost reduction vs {b}" for p, (r, b) in red.items())
    best = ", ".join(sorted(refs, key=pols.index))
    what = "the best baseline" if len(refs) == 1 else "the best baselines"
    fig.suptitle(title + (f"  (dark grey: {what}, {best})" if best else ""), x=0.01, ha="left", fontsize=11)
    if text:
        fig.text(0.01, 0.005, text, fontsize=9.5, fontweight="bold", color="#9d0208", va="bottom")
    fig.tight_layout(rect=(0, 0.06 if text else 0, 1, 1))
    return fig


def model_miss_grid(rows: list[dict]) -> tuple[list[str], list[list[float]]]:
    """The models (in the first result's order) and their miss rate under each policy, ``grid[model][policy]``
    (nan where a result lacks the model)."""
    models: list[str] = []
    for r in rows:
        models += [m for m in r.get("models", {}) if m not in models]
    return models, [[r.get("models", {}).get(m, {}).get("miss_rate", math.nan) for r in rows] for m in models]


def fig_model_misses(plt, rows: list[dict], title: str):
    """Miss rate per model (rows) and policy (columns), the whole workload's in the last row: which model pays
    for each policy's choices."""
    from matplotlib.colors import LinearSegmentedColormap, PowerNorm

    pols = [r["policy"] for r in rows]
    models, grid = model_miss_grid(rows)
    red = reduction(rows)
    best = {b for _, b in red.values()}  # the best baseline (and the best X+supernet one)
    due = {m: next((r["models"][m]["due"] for r in rows if m in r.get("models", {}) and "due" in r["models"][m]), None)
           for m in models}
    labels = [f"{m}  ({due[m]} due)" if due[m] is not None else m for m in models] + ["all models"]
    data = [[100 * v for v in row] for row in grid] + [[100 * r["miss_rate"] for r in rows]]
    cmap = LinearSegmentedColormap.from_list("misses", ["#ffffff", "#fcbba1", "#ef3b2c", "#67000d"]).with_extremes(
        bad="#e4e7eb")  # grey: the policy's result has no such model
    fig, ax = plt.subplots(figsize=(3.2 + 0.95 * len(pols), 1.5 + 0.42 * len(labels)), layout="constrained")
    # a square-root scale: a few % of misses shows as a tint, not as white
    im = ax.imshow(data, cmap=cmap, norm=PowerNorm(0.5, vmin=0, vmax=100), aspect="auto")
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            if not math.isnan(v):
                txt = "0" if v == 0 else f"{v:.1f}" if v < 9.95 else f"{v:.0f}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=8.5, color="white" if v > 45 else "#1f2933",
                        fontweight="bold" if i == len(data) - 1 else "normal")
    ax.axhline(len(models) - 0.5, color="#1f2933", lw=1.5)
    ax.set_xticks(range(len(pols)), [f"{p} (best)" if p in best else p for p in pols], rotation=35, ha="right",
                  rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    for p, lab in zip(pols, ax.get_xticklabels()):
        if p in red or p in best:
            lab.set_fontweight("bold")
    for j in range(1, len(pols)):  # a line between the baselines and ours
        if is_baseline(pols[j]) != is_baseline(pols[j - 1]):
            ax.axvline(j - 0.5, color="#1f2933", lw=1.5)
    ax.set_xticks([x - 0.5 for x in range(1, len(pols))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(labels))], minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.tick_params(which="minor", length=0)
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, ticks=[0, 1, 5, 10, 20, 40, 60, 80, 100])
    cb.set_label("frames missed (%)")
    ax.set_title(f"miss rate per model and policy (%) — {title}; last row: the whole workload", loc="left",
                 fontsize=10)
    return fig


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


def _infeasible(cell: dict, policy: str) -> bool:
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
        grid = [[math.nan if _infeasible(out.get((s, pl), {}), p) else red[p].get((s, pl), math.nan) for pl in plats]
                for s in scen]
        im = ax.imshow([[100 * max(v, -0.5) for v in row] for row in grid], cmap=cmap, norm=norm, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if math.isnan(v):
                    if _infeasible(out.get((scen[i], plats[j]), {}), p):
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
        vals = sorted(100 * v for k, v in red[p].items() if not _infeasible(out.get(k, {}), p) and math.isfinite(v))
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


def _sweep_table(rows: list[dict]) -> str:
    out = ("<table><tr><th>policy</th><th>cells</th><th>mean UXCost</th><th>mean miss rate</th><th>mean energy (mJ)"
           "</th><th>vs best baseline (geomean)</th><th>worse cells</th><th>better cells</th></tr>")
    for s in rows:
        g = s["geomean_reduction"]
        out += (f'<tr data-policy="{html.escape(s["label"])}"><td>{html.escape(s["label"])}</td><td>{s["cells"]}</td>'
                + _num(s["uxcost"], "uxcost") + _num(s["miss_rate"], "miss_rate") + _num(s["energy_mj"], "energy_mj")
                + (f"<td>{100 * g:+.1f}%</td>" if g is not None else "<td>n/a</td>")
                + f'<td>{s["worse_cells"]}</td><td>{s["better_cells"]}</td></tr>')
    return out + "</table>"


# --- output -----------------------------------------------------------------------------------------------------

def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_")


def build(items: list[tuple[str, object]], window: tuple[float, float] | None = None) -> tuple[list, list[str]]:
    """Figures (name, caption, png bytes) and HTML sections for the loaded inputs: (path, Run | rows | bench)."""
    plt = pyplot()
    figs: list[tuple[str, str, bytes]] = []
    sections: list[str] = []

    def add(name: str, caption: str, fig) -> str:
        data = png_bytes(fig)
        plt.close(fig)
        figs.append((name, caption, data))
        return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
                f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(caption)}</figcaption></figure>')

    runs = [x for _, x in items if isinstance(x, Run)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for _, x in items:
        rows = [x.metrics] if isinstance(x, Run) else x if isinstance(x, list) else []
        for r in rows:
            groups.setdefault((r.get("scenario", "?"), r.get("platform", "?"), r.get("compat", "native"),
                               r.get("duration_s"), r.get("seed")), []).append(r)
    for i, (path, x) in enumerate(items):
        if isinstance(x, Sweep):
            rows = sweep_summary(x.records)
            name = "sweep" if sum(isinstance(y, Sweep) for _, y in items) == 1 else f"sweep_{i + 1}"
            sections.append(f"<h2>Sweep: {html.escape(path)} ({len(x.records)} cells"
                            + (f", {x.failed} failed" if x.failed else "") + ")</h2>"
                            + add(name, "per policy over the sweep's cells: mean UXCost, mean miss rate, and the "
                                        "geomean UXCost reduction against the best baseline of each cell",
                                  fig_sweep(plt, rows, f"{path}: {len(x.records)} cells")) + _sweep_table(rows))
    for path, x in items:
        if isinstance(x, dict):  # a benchmark file
            sections.append(f"<h2>Benchmark: {html.escape(path)}</h2>" + add(
                _slug(Path(path).stem) or "uxcost", "UXCost reduction of SDRM3 against the best baseline, per cell",
                fig_benchmark(plt, x)) + _bench_table(x))
    for (sc, pl, *_), rows in groups.items():
        if len(rows) > 1:
            sfx = "" if sum(len(g) > 1 for g in groups.values()) == 1 else f"_{_slug(sc)}_{_slug(pl)}_{len(figs)}"
            sections.append(f"<h2>Policies side by side: {html.escape(sc)} on {html.escape(pl)}</h2>"
                            + add(f"bars{sfx}", f"UXCost, miss rate, energy and accuracy per policy: {sc} on {pl}",
                                  fig_bars(plt, rows, f"{sc} on {pl}")) + _results_table(rows)
                            + add(f"model_misses{sfx}", f"miss rate per model and policy: {sc} on {pl}",
                                  fig_model_misses(plt, rows, f"{sc} on {pl}")) + _model_misses_table(rows))
        elif not any(r is run.metrics for run in runs for r in rows):
            sections.append(f"<h2>{html.escape(rows[0]['policy'])}: {html.escape(sc)} on {html.escape(pl)}</h2>"
                            + _results_table(rows))
    for i, run in enumerate(runs):
        sfx = "" if len(runs) == 1 else f"_{i + 1}"
        parts = [f"<h2>Run: {html.escape(run.label)}</h2><p class=src>{html.escape(run.path)}"
                 + ("" if run.has_segments else " — no segment records: the timeline shows each job from its "
                    "start to its end on its last accelerator") + "</p>", _results_table([run.metrics], run)]
        span = max([c.end_ms for c in run.completions] + [1.0])
        parts.append(add(f"timeline{sfx}", "timeline per accelerator" + (f", {window[0]:g}–{window[1]:g} ms"
                                                                         if window else ", whole run"),
                         fig_timeline(plt, run, window, f"timeline — {run.label}")))
        if window is None:
            periods = [1000.0 / m.fps for m in _scenario_models(run)] or [100.0]
            hi = min(span, max(100.0, min(500.0, 3 * max(periods))))
            if hi < span * 0.8:
                parts.append(add(f"timeline_detail{sfx}", f"timeline, first {hi:g} ms (choose another with "
                                                          f"--window START_MS:END_MS)",
                                 fig_timeline(plt, run, (0.0, hi), f"timeline, 0–{hi:g} ms — {run.label}")))
        parts.append(add(f"models{sfx}", "per model: miss rate, latency, energy, variant over time",
                         fig_models(plt, run)))
        parts.append(add(f"over_time{sfx}", "UXCost, XRBench score, miss rate" + (" and θ" if run.tuning else "")
                         + " per window", fig_over_time(plt, run)))
        sections.append("\n".join(parts))
    return figs, sections


def _scenario_models(run: Run):
    from .sim.trace import read

    return read(run.path).scenario.models


def _num(v: float, key: str) -> str:
    return f'<td data-key="{key}" data-value="{v!r}">{v:.6g}</td>'


def _results_table(rows: list[dict], run: Run | None = None) -> str:
    red = reduction(rows)
    head = ("<table><tr><th>policy</th><th>UXCost</th><th>XRBench</th><th>miss rate</th><th>energy (mJ)</th>"
            "<th>accuracy</th><th>frames due</th><th>missed</th><th>vs best baseline</th></tr>")
    body = []
    for r in rows:
        vs = f"{100 * red[r['policy']][0]:+.1f}% ({red[r['policy']][1]})" if r["policy"] in red else ""
        body.append(f'<tr data-policy="{html.escape(r["policy"])}"><td>{html.escape(r["policy"])}</td>'
                    + _num(r["uxcost"], "uxcost") + _num(r.get("xrbench_score", 0.0), "xrbench_score")
                    + _num(r["miss_rate"], "miss_rate") + _num(r["energy_mj"], "energy_mj")
                    + _num(r.get("accuracy", 0.0), "accuracy") + f'<td>{r.get("frames_due", "")}</td>'
                    + f'<td>{r.get("frames_missed", "")}</td><td>{vs}</td></tr>')
    out = head + "".join(body) + "</table>"
    if run is not None:
        m = run.metrics
        out += ("<table><tr><th>model</th><th>due</th><th>missed</th><th>miss rate</th><th>p50 (ms)</th>"
                "<th>p99 (ms)</th><th>energy (mJ)</th><th>XRBench</th><th>variants (completed frames)</th></tr>")
        for name, d in m["models"].items():
            var = ", ".join(f"{v} {n}" for v, n in sorted(d.get("variants", {}).items(), key=lambda x: -x[1]))
            out += (f'<tr data-model="{html.escape(name)}"><td>{html.escape(name)}</td><td>{d["due"]}</td>'
                    f'<td>{d["missed"]}</td>' + _num(d["miss_rate"], "miss_rate") + _num(d["p50_ms"], "p50_ms")
                    + _num(d["p99_ms"], "p99_ms") + _num(d["energy_mj"], "energy_mj")
                    + _num(d["xrbench_score"], "xrbench_score") + f"<td>{html.escape(var)}</td></tr>")
        out += "</table><table><tr><th>accelerator</th><th>utilisation</th></tr>" + "".join(
            f'<tr data-accelerator="{html.escape(a)}"><td>{html.escape(a)}</td>' + _num(u, "utilization") + "</tr>"
            for a, u in m["utilization"].items()) + "</table>"
    return out


def _model_misses_table(rows: list[dict]) -> str:
    models, grid = model_miss_grid(rows)
    out = "<table><tr><th>miss rate</th>" + "".join(f"<th>{html.escape(r['policy'])}</th>" for r in rows) + "</tr>"
    for m, row in zip(models, grid):
        out += f'<tr data-model="{html.escape(m)}"><td>{html.escape(m)}</td>' + "".join(
            "<td></td>" if math.isnan(v) else
            f'<td data-key="miss_rate" data-policy="{html.escape(r["policy"])}" data-value="{v!r}">{v:.4g}</td>'
            for r, v in zip(rows, row)) + "</tr>"
    return out + "</table>"


def _bench_table(bench: dict) -> str:
    red = bench_reductions(bench)
    pols = list(red)
    out = "<table><tr><th>scenario</th><th>platform</th>" + "".join(f"<th>{html.escape(p)}</th>" for p in pols) + "</tr>"
    for cell in bench["cells"]:
        key = (cell["scenario"], cell["platform"])
        out += (f"<tr><td>{html.escape(key[0])}</td><td>{html.escape(key[1])}</td>"
                + "".join("<td>infeasible</td>" if _infeasible(cell, p) else
                          f"<td>{100 * red[p][key]:+.1f}%</td>" if key in red[p] else "<td></td>" for p in pols)
                + "</tr>")
    return out + "</table>"


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;
padding:0 1em;color:#1f2933}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}img{max-width:100%}
figcaption{color:#52606d;font-size:.85em}.src{color:#52606d;font-size:.85em}"""


def write_html(path: str, items: list[tuple[str, object]], window=None, png_dir: str | None = None) -> list[str]:
    """Write the report (and the PNGs); returns the files written."""
    from . import __version__

    figs, sections = build(items, window)
    written = []
    if png_dir:
        d = Path(png_dir)
        d.mkdir(parents=True, exist_ok=True)
        for name, _, data in figs:
            (d / f"{name}.png").write_bytes(data)
            written.append(str(d / f"{name}.png"))
    if path:
        inputs = ", ".join(html.escape(p) for p, _ in items)
        doc = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>edge-sdrm3 report</title>"
               f"<style>{CSS}</style></head><body><h1>edge-sdrm3 report</h1><p class=src>from {inputs} "
               f"(edge-sdrm3 {html.escape(__version__)}). UXCost = (E / E_ref) × (missed + 1) / (due + 1), lower is "
               f"better; rates are fractions.</p>" + "\n".join(sections) + "</body></html>\n")
        Path(path).write_text(doc)
        written.insert(0, path)
    return written
