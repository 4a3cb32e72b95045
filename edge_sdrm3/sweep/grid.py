"""A sweep's grid: scenarios x platforms x policies x seeds x parameter values, from flags or a TOML file.

Every cell is one replay. A cell's key (scenario as given, platform as given, policy, seed, duration,
parameters) names it in the output file, so that a sweep can resume where it stopped.

Parameters go only to the policies that take them (SDRM3's family; the baselines take none): a baseline
is one cell per (scenario, platform, seed), whatever the parameter grid.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..core.types import ConfigError

RANDOM_PREFIX = "random:"
MAX_CELLS = 10_000_000  # a grid larger than this is a typo (e.g. seeds 0..1e9), not a sweep
GRID_KEYS = ("scenarios", "platforms", "policies", "seeds", "duration", "params")


@dataclass(frozen=True)
class Cell:
    """One replay of a sweep. ``scenario``: a scenario name or file, or ``random:N`` (the random mix of
    seed N); ``params``: (key, value) pairs, sorted, given to the policy."""

    scenario: str
    platform: str
    policy: str
    seed: int
    duration_s: float
    params: tuple = ()

    def key(self) -> str:
        """The cell's identity, as a canonical JSON string (what resumption compares)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "platform": self.platform, "policy": self.policy, "seed": self.seed,
                "duration_s": self.duration_s, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> Cell:
        return cls(d["scenario"], d["platform"], d["policy"], int(d["seed"]), float(d["duration_s"]),
                   tuple(sorted(d.get("params", {}).items())))


@dataclass(frozen=True)
class Grid:
    scenarios: tuple[str, ...]
    platforms: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    duration_s: float
    params: tuple[tuple[str, tuple], ...] = ()  # (key, values) in the order given

    def cells(self) -> list[Cell]:
        """Every cell, grouped so that the cells of one trace (scenario, seed) come together."""
        from ..core.policies import make_policy

        keys = [k for k, _ in self.params]
        combos = [tuple(zip(keys, vals)) for vals in itertools.product(*(v for _, v in self.params))]
        per_policy: dict[str, list[tuple]] = {}
        for pol in self.policies:
            taken = []
            for combo in combos:
                try:
                    make_policy(pol, **dict(combo))
                except ConfigError:
                    continue
                taken.append(tuple(sorted(combo)))
            per_policy[pol] = taken if (keys and taken) else [()]
        if keys and all(v == [()] for v in per_policy.values()):
            raise ConfigError(f"no policy of the grid takes the parameters {', '.join(keys)} "
                              f"(policies: {', '.join(self.policies)})")
        out = []
        for sc in self.scenarios:
            for seed in self.seeds:
                for pl in self.platforms:
                    for pol in self.policies:
                        out.extend(Cell(sc, pl, pol, seed, self.duration_s, combo) for combo in per_policy[pol])
        return out


def parse_value(raw: str):
    """A parameter value as typed: true/false, an int, a float, else the string itself."""
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    except ValueError:
        return raw


def int_range(text: str, what: str) -> list[int]:
    """``A..B`` (inclusive) -> [A, ..., B]."""
    a, sep, b = text.partition("..")
    try:
        lo, hi = int(a), int(b)
    except ValueError:
        raise ConfigError(f"{what}: bad range {text!r} (expected FIRST..LAST, two integers)") from None
    if not sep or hi < lo:
        raise ConfigError(f"{what}: bad range {text!r} (expected FIRST..LAST with FIRST <= LAST)")
    if hi - lo >= MAX_CELLS:
        raise ConfigError(f"{what}: range {text!r} has {hi - lo + 1} values, more than a sweep takes ({MAX_CELLS})")
    return list(range(lo, hi + 1))


def split_list(value, what: str) -> list[str]:
    """A comma-separated string or a TOML list -> its items, stripped."""
    if isinstance(value, str):
        items = [x.strip() for x in value.split(",")]
    elif isinstance(value, list):
        items = [str(x).strip() for x in value]
    else:
        raise ConfigError(f"{what}: expected a comma-separated string or a list, got {value!r}")
    items = [x for x in items if x]
    if not items:
        raise ConfigError(f"{what}: empty")
    return items


def parse_scenarios(value) -> list[str]:
    out = []
    for item in split_list(value, "scenarios"):
        if item.startswith(RANDOM_PREFIX):
            rest = item[len(RANDOM_PREFIX):]
            seeds = int_range(rest, f"scenarios: {item!r}") if ".." in rest else [_int(rest, f"scenarios: {item!r}")]
            if seeds[0] < 0:
                raise ConfigError(f"scenarios: {item!r}: the seeds of random mixes are >= 0")
            out.extend(f"{RANDOM_PREFIX}{n}" for n in seeds)
        else:
            out.append(item)
    return out


def parse_seeds(value) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    out: list[int] = []
    for item in split_list(value, "seeds"):
        out.extend(int_range(item, "seeds") if ".." in item else [_int(item, "seeds")])
    return out


def parse_policies(value) -> list[str]:
    """Names, ``all`` (every registered policy) or ``baselines`` (every registered one but SDRM3's), as in compare."""
    from ..core.policies import policy_names

    known = policy_names()
    out: list[str] = []
    for item in split_list(value, "policies"):
        names = known if item == "all" else [p for p in known if not p.startswith("sdrm3")] if item == "baselines" \
            else [item]
        for n in names:
            if n not in known:
                raise ConfigError(f"policies: unknown policy {n!r} (known: {', '.join(known)}, all, baselines)")
            if n not in out:
                out.append(n)
    return out


def parse_duration(value) -> float:
    from ..sim.trace import check_duration

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"duration: expected a number of seconds, got {value!r}")
    try:
        d = float(value)
    except ValueError:
        raise ConfigError(f"duration: expected a number of seconds, got {value!r}") from None
    check_duration(d, "duration")
    return d


def parse_param_flag(item: str) -> tuple[str, list]:
    """``--param alpha=0.05,0.1`` -> ("alpha", [0.05, 0.1])."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--param {item!r}: expected KEY=V1,V2,...")
    vals = [parse_value(v) for v in raw.split(",") if v.strip()]
    if not vals:
        raise ConfigError(f"--param {item!r}: no values")
    return key.strip(), vals


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{what}: expected an integer, got {text!r}") from None


def _check_values(key: str, vals: list) -> tuple:
    for v in vals:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"params: {key}: values must be finite, got {v!r}")
        if not isinstance(v, (bool, int, float, str)):
            raise ConfigError(f"params: {key}: expected numbers, true/false or strings, got {v!r}")
    return tuple(vals)


def grid_from(doc: dict, where: str = "") -> Grid:
    """A grid from a dict with the keys of ``GRID_KEYS`` (a TOML file, or the flags gathered)."""
    pre = f"{where}: " if where else ""
    unknown = [k for k in doc if k not in GRID_KEYS]
    if unknown:
        raise ConfigError(f"{pre}unknown key {unknown[0]!r} (known: {', '.join(GRID_KEYS)})")
    for k in ("scenarios", "platforms"):
        if k not in doc:
            raise ConfigError(f"{pre}{k}: missing (--{k} or the key '{k}')")
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{pre}params: expected a table of KEY = [values], got {params!r}")
    try:
        grid = Grid(tuple(parse_scenarios(doc["scenarios"])), tuple(split_list(doc["platforms"], "platforms")),
                    tuple(parse_policies(doc.get("policies", "all"))), tuple(parse_seeds(doc.get("seeds", 0))),
                    parse_duration(doc.get("duration", 10.0)),
                    tuple((k, _check_values(k, v if isinstance(v, list) else [v])) for k, v in params.items()))
    except ConfigError as e:
        raise ConfigError(f"{pre}{e}") from None
    n = len(grid.scenarios) * len(grid.platforms) * len(grid.policies) * len(grid.seeds)
    for _, v in grid.params:
        n *= len(v)
    if n > MAX_CELLS:
        raise ConfigError(f"{pre}the grid has {n} cells, more than a sweep takes ({MAX_CELLS})")
    _check_sources(grid, pre)
    return grid


def _check_sources(grid: Grid, pre: str) -> None:
    """Every scenario and platform loads (a typo fails now, not in a worker an hour later)."""
    from ..catalog import load_platform, load_scenario

    from .runner import random_scenario

    randoms = [sc for sc in grid.scenarios if sc.startswith(RANDOM_PREFIX)]
    if randoms:
        random_scenario(int(randoms[0][len(RANDOM_PREFIX):]))  # the generator is there
    for sc in grid.scenarios:
        if not sc.startswith(RANDOM_PREFIX):
            try:
                load_scenario(sc)
            except ConfigError as e:
                raise ConfigError(f"{pre}scenarios: {e}") from None
    for pl in grid.platforms:
        try:
            load_platform(pl)
        except ConfigError as e:
            raise ConfigError(f"{pre}platforms: {e}") from None


def load_grid_file(path: str | Path) -> dict:
    """A grid's TOML file as a dict (checked by ``grid_from``)."""
    from ..tomlfile import TomlFileError, read_toml

    try:
        return read_toml(path)
    except TomlFileError as e:
        raise ConfigError(str(e)) from None
