"""A self-contained HTML report of runs and comparisons (``edge-sdrm3 report ... -o/--png``): the page, its tables
and the figures embedded in it.

Needs matplotlib, an optional extra (``pip install 'edge-sdrm3[report]'``); only ``report`` imports this
module, never the service or the replay. Figures (``report_figures``, ``report_bench_figures``) are drawn with
the Agg backend (no display) and embedded in the HTML as base64 PNG, so the file opens offline.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from .report import Run, Sweep, reduction, sweep_summary
from .report_bench_figures import bench_reductions, fig_benchmark, fig_benchmark_spread, fig_sweep, infeasible
from .report_figures import (
    BASE,
    BEST,
    DROP,
    INSTALL_HINT,
    LATE,
    OURS,
    fig_bars,
    fig_model_misses,
    fig_models,
    fig_over_time,
    fig_timeline,
    model_miss_grid,
    pyplot,
)

__all__ = ["BASE", "BEST", "CSS", "DROP", "INSTALL_HINT", "LATE", "OURS", "bench_reductions", "build", "fig_bars",
           "fig_benchmark", "fig_benchmark_spread", "fig_model_misses", "fig_models", "fig_over_time", "fig_sweep",
           "fig_timeline", "model_miss_grid", "png_bytes", "pyplot", "write_html"]


def _sweep_table(rows: list[dict]) -> str:
    out = ("<table><tr><th>policy</th><th>cells</th><th>mean UXCost</th><th>mean miss rate</th><th>mean energy (mJ)"
           "</th><th>vs best baseline (geomean)</th><th>(median cell)</th><th>worse cells</th><th>better cells</th></tr>")
    for s in rows:
        out += (f'<tr data-policy="{html.escape(s["label"])}"><td>{html.escape(s["label"])}</td><td>{s["cells"]}</td>'
                + _num(s["uxcost"], "uxcost") + _num(s["miss_rate"], "miss_rate") + _num(s["energy_mj"], "energy_mj")
                + "".join(f"<td>{100 * s[k]:+.1f}%</td>" if s[k] is not None else "<td>n/a</td>"
                          for k in ("geomean_reduction", "median_reduction"))
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
                + "".join("<td>infeasible</td>" if infeasible(cell, p) else
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
