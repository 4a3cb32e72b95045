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
from .report import Run, reduction

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
    best = next(iter(red.values()))[1] if red else None
    colors = [OURS.get(p, "#c1121f") if p not in _baselines() else (BEST if p == best else BASE) for p in pols]
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
    text = "   ".join(f"{p}: {100 * r:+.1f}% UXCost reduction vs the best baseline ({b})" for p, (r, b) in red.items())
    fig.suptitle(title + (f"  (dark grey: the best baseline, {best})" if best else ""), x=0.01, ha="left", fontsize=11)
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
    best = next(iter(red.values()))[1] if red else None
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
    ax.set_xticks(range(len(pols)), [f"{p} (best)" if p == best else p for p in pols], rotation=35, ha="right",
                  rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    for p, lab in zip(pols, ax.get_xticklabels()):
        if p in red or p == best:
            lab.set_fontweight("bold")
    for j in range(1, len(pols)):  # a line between the baselines and ours
        if (pols[j] in red) != (pols[j - 1] in red):
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
    """Per policy of ours, per (scenario, platform) cell of a benchmark file: its reduction vs the best baseline."""
    out: dict[str, dict] = {}
    for cell in bench["cells"]:
        rows = [{"policy": p, **r} for p, r in (cell.get("results") or {}).items() if isinstance(r, dict)
                and "uxcost" in r]
        for p, (r, _) in reduction(rows).items():
            out.setdefault(p, {})[(cell["scenario"], cell["platform"])] = r
    return out


def fig_benchmark(plt, bench: dict):
    red = bench_reductions(bench)
    pols = [p for p in bench.get("policies", red) if p in red] or list(red)
    scen = bench.get("scenarios") or sorted({k[0] for v in red.values() for k in v})
    plats = bench.get("platforms") or sorted({k[1] for v in red.values() for k in v})
    fig, axs = plt.subplots(1, len(pols), figsize=(5.6 * len(pols) + 1.5, 2.6 + 0.5 * len(scen)), squeeze=False,
                            layout="constrained")
    summ = bench.get("summary", {})
    for k, (ax, p) in enumerate(zip(axs[0], pols)):
        grid = [[red[p].get((s, pl), math.nan) for pl in plats] for s in scen]
        im = ax.imshow([[100 * v for v in row] for row in grid], cmap="Greens", vmin=0, vmax=100, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(j, i, f"{100 * v:.1f}%" if 0.995 <= v < 1 else f"{100 * v:.0f}%", ha="center", va="center", fontsize=9,
                            color="white" if v > 0.6 else "black")
        ax.set_xticks(range(len(plats)), plats, fontsize=8, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(scen)), scen if k == 0 else [], fontsize=9)
        if k == 0:
            ax.set_xlabel("platform", fontsize=9)
            ax.set_ylabel("scenario", fontsize=9)
        g = summ.get(p, {}).get("geomean_reduction")
        ax.set_title(f"{p}" + (f" — geomean {100 * g:.0f}% lower UXCost" if g is not None else ""), fontsize=11)
    cb = fig.colorbar(im, ax=list(axs[0]), fraction=0.02, pad=0.01)
    cb.set_label("UXCost reduction vs the best baseline (%)")
    nb = len(bench.get("baselines", _baselines()))
    fig.suptitle(f"UXCost reduction against the best of {nb} baselines per cell "
                 f"({bench.get('duration_s', 10):g} s replays, seed {bench.get('seed', 0)}); higher is better",
                 x=0.01, ha="left", fontsize=12)
    return fig


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
    for path, x in items:
        if isinstance(x, dict):  # a benchmark file
            sections.append(f"<h2>Benchmark: {html.escape(path)}</h2>" + add(
                "uxcost", "UXCost reduction of SDRM3 against the best baseline, per scenario and platform",
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
                + "".join(f"<td>{100 * red[p][key]:+.1f}%</td>" if key in red[p] else "<td></td>" for p in pols) + "</tr>")
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
