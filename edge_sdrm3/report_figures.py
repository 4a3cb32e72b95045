"""The figures of ``edge-sdrm3 report -o/--png`` for runs and comparisons: one run's timeline, per-model panels and
course over time; policies side by side (bars, miss rate per model). Drawn with matplotlib, an optional extra, on
the Agg backend (no display). Benchmark files and sweeps are drawn by ``report_bench_figures``; the page is
assembled by ``report_html``.
"""
from __future__ import annotations

import math

from .core.types import ConfigError
from .report import Run, is_baseline, reduction

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
