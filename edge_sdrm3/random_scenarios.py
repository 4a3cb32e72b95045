"""Random scenarios: workload mixes no policy was designed on (``edge-sdrm3 scenarios random``).

``random_scenario(seed, table)`` draws one mix over the models of a cost table (the decoded JSON of
``edge_sdrm3/data/models/xrbench/costs.json``); the same seed and table give the same scenario on every machine
(``random.Random`` seeded with an integer draws the same numbers on every Python version this project supports).

What a mix looks like, and why:

- 3 to 7 distinct models of the table.
- Cascades: a model may hang off one listed before it (chains at most three models deep, as MediaPipe's
  face detection -> face landmarks -> iris), firing with a probability from 0.25 to 1.0. A cascaded model runs at
  its upstream's rate, as in every shipped scenario.
- Rates from 3 to 120 fps, from the rates cameras and sensors run at. A root's rate is drawn among those at which
  each of its chains (the largest variants, summed) fits in the period on a typical unit of the table (the median
  unit for each model): a model at a rate no accelerator could sustain tells nothing about a scheduler. Whether the
  whole mix fits a given platform is left to chance. Measured with ``edf`` on the six benchmark platforms (seeds
  1-15, 3 s): two thirds of the cells miss nothing, the rest miss 0.6-73%.
- About a third of the models get a deadline shorter than the period (40-90% of it), never below 1.25x the best
  case of its chain (each model on the table's fastest unit for it), so that it stays reachable somewhere.

Pure: no file or clock; the CLI writes the files.
"""
from __future__ import annotations

import random
import statistics

from .catalog import Scenario, ScenarioModel

RATES = (3.0, 5.0, 10.0, 15.0, 20.0, 24.0, 30.0, 45.0, 60.0, 72.0, 90.0, 120.0)  # frames per second
MIN_MODELS, MAX_MODELS = 3, 7
MAX_DEPTH = 3  # models in a cascade chain, its root included
CASCADE_P = 0.35  # chance that a model (after the first) hangs off an earlier one
SHORT_DEADLINE_P = 0.35  # chance that a model's deadline is shorter than its period
HEADROOM = 1.0  # a chain on typical units may take at most this fraction of the period
DEADLINE_FLOOR = 1.25  # a short deadline is at least this multiple of the chain's best case


def unit_latencies_ms(table: dict, model: str) -> list[float]:
    """Latency of the model's largest variant run whole on each unit of the table that has it, in ms, sorted."""
    widths = [v["width"] for v in table["models"][model]["variants"]]
    key = str(float(max(widths)))
    per_ms = float(table["clock_hz"]) / 1000.0
    return sorted(sum(u["models"][model][key]["cycles"]) / per_ms for u in table["units"].values()
                  if key in u["models"].get(model, {}))


def random_scenario(seed: int, table: dict, table_name: str = "xrbench") -> Scenario:
    """One random mix over ``table``'s models (see the module's docstring), named ``random_<seed>``."""
    rng = random.Random(seed)
    names = sorted(m for m in table["models"] if any(m in u["models"] for u in table["units"].values()))
    if len(names) < MIN_MODELS:
        raise ValueError(f"cost table {table_name!r} has {len(names)} models; a random mix needs {MIN_MODELS}")
    chosen = rng.sample(names, rng.randint(MIN_MODELS, min(MAX_MODELS, len(names))))
    lat = {m: unit_latencies_ms(table, m) for m in chosen}
    typical = {m: statistics.median(xs) for m, xs in lat.items()}

    upstream: dict[str, str | None] = {}
    depth: dict[str, int] = {}
    chain_typ: dict[str, float] = {}  # the chain from its root down to this model, on typical units
    chain_best: dict[str, float] = {}  # ... on the fastest units
    for i, m in enumerate(chosen):
        parents = [p for p in chosen[:i] if depth[p] < MAX_DEPTH]
        up = rng.choice(parents) if parents and rng.random() < CASCADE_P else None
        upstream[m] = up
        depth[m] = 1 if up is None else depth[up] + 1
        chain_typ[m] = typical[m] + (0.0 if up is None else chain_typ[up])
        chain_best[m] = lat[m][0] + (0.0 if up is None else chain_best[up])

    def root(m: str) -> str:
        while upstream[m] is not None:
            m = upstream[m]  # type: ignore[assignment]
        return m

    fps: dict[str, float] = {}
    for m in chosen:
        if upstream[m] is None:
            longest = max(chain_typ[x] for x in chosen if root(x) == m)
            allowed = [r for r in RATES if longest <= HEADROOM * 1000.0 / r] or [RATES[0]]
            fps[m] = rng.choice(allowed)
    models = []
    for m in chosen:
        rate = fps[root(m)]
        period = 1000.0 / rate
        deadline = None
        if rng.random() < SHORT_DEADLINE_P:
            lo = max(0.4 * period, DEADLINE_FLOOR * chain_best[m])
            hi = 0.9 * period
            if lo < hi:
                deadline = round(rng.uniform(lo, hi), 1)
        p = 1.0 if upstream[m] is None else round(rng.uniform(0.25, 1.0), 2)
        models.append(ScenarioModel(m, rate, upstream[m], p, deadline))
    desc = (f"random mix, seed {seed} (edge-sdrm3 scenarios random): {len(models)} models, "
            f"{sum(1 for x in models if x.upstream)} cascaded, "
            f"{sum(1 for x in models if x.deadline_ms is not None)} with a deadline shorter than the period")
    return Scenario(scenario_name(seed), tuple(models), table_name, desc)


def scenario_name(seed: int) -> str:
    """``random_0001`` for seed 1 (the file is ``random_0001.json``)."""
    return f"random_{seed:04d}"
