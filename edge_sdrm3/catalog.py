"""Scenario, platform and cost-table files: finding them by name or path, validating, building the core's types.

File formats are documented in ``traces/README.md`` (scenarios, traces) and ``platforms/README.md``.
Every error names the file and the field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .core.types import INF, Accelerator, ConfigError, Costs, Model, Platform, Variant

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = ROOT / "traces"
PLATFORM_DIR = ROOT / "platforms"
COST_TABLES = {"xrbench": ROOT / "models" / "xrbench" / "costs.json"}


class FileFormatError(ConfigError):
    """A scenario, trace, platform or cost file that cannot be read; names the file, line and field."""


@dataclass(frozen=True)
class ScenarioModel:
    name: str
    fps: float
    upstream: str | None = None
    trigger_probability: float = 1.0
    deadline_ms: float | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    models: tuple[ScenarioModel, ...]
    cost_table: str = "xrbench"
    description: str = ""

    def to_dict(self) -> dict:
        ms = []
        for m in self.models:
            d: dict = {"name": m.name, "fps": m.fps}
            if m.upstream is not None:
                d["upstream"] = m.upstream
            if m.trigger_probability != 1.0 or m.upstream is not None:
                d["trigger_probability"] = m.trigger_probability
            if m.deadline_ms is not None:
                d["deadline_ms"] = m.deadline_ms
            ms.append(d)
        return {"format": "edge-sdrm3-scenario", "version": 1, "name": self.name,
                "description": self.description, "cost_table": self.cost_table, "models": ms}


def _find(name_or_path: str, folder: Path, what: str) -> Path:
    p = Path(name_or_path)
    if p.suffix and p.exists():
        return p
    cand = folder / f"{name_or_path}.json"
    if cand.exists():
        return cand
    if p.exists():
        return p
    known = ", ".join(sorted(x.stem for x in folder.glob("*.json")))
    raise FileFormatError(f"unknown {what} {name_or_path!r} (not a file; shipped: {known})")


def _need(d: dict, key: str, typ, where: str):
    if key not in d:
        raise FileFormatError(f"{where}: missing field '{key}'")
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        raise FileFormatError(f"{where}: field '{key}' must be {typ.__name__}, got {v!r}")
    return v


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read ({e.strerror})") from None
    if not isinstance(doc, dict):
        raise FileFormatError(f"{path}: line 1: expected a JSON object")
    return doc


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def list_platforms() -> list[str]:
    return sorted(p.stem for p in PLATFORM_DIR.glob("*.json"))


def scenario_path(name_or_path: str) -> Path:
    return _find(name_or_path, SCENARIO_DIR, "scenario")


def load_scenario(name_or_path: str) -> Scenario:
    path = scenario_path(name_or_path)
    return parse_scenario(_load_json(path), str(path))


def parse_scenario(doc: dict, where: str) -> Scenario:
    if doc.get("format") != "edge-sdrm3-scenario":
        raise FileFormatError(f"{where}: field 'format' must be 'edge-sdrm3-scenario', got {doc.get('format')!r}")
    if doc.get("version") != 1:
        raise FileFormatError(f"{where}: field 'version': unsupported version {doc.get('version')!r} (known: 1)")
    name = _need(doc, "name", str, where)
    raw = _need(doc, "models", list, where)
    if not raw:
        raise FileFormatError(f"{where}: field 'models' is empty")
    models = []
    names = set()
    for i, m in enumerate(raw):
        w = f"{where}: models[{i}]"
        if not isinstance(m, dict):
            raise FileFormatError(f"{w}: expected an object")
        mname = _need(m, "name", str, w)
        fps = _need(m, "fps", float, w)
        if not fps > 0:
            raise FileFormatError(f"{w}: field 'fps' must be > 0, got {fps!r}")
        up = m.get("upstream")
        if up is not None and (not isinstance(up, str) or up not in names):
            raise FileFormatError(f"{w}: field 'upstream' {up!r} is not a model listed before it")
        p = m.get("trigger_probability", 1.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise FileFormatError(f"{w}: field 'trigger_probability' must be in [0, 1], got {p!r}")
        dl = m.get("deadline_ms")
        if dl is not None and (isinstance(dl, bool) or not isinstance(dl, (int, float)) or dl <= 0):
            raise FileFormatError(f"{w}: field 'deadline_ms' must be a positive number, got {dl!r}")
        if mname in names:
            raise FileFormatError(f"{w}: field 'name': model {mname!r} listed twice")
        names.add(mname)
        models.append(ScenarioModel(mname, fps, up, float(p), None if dl is None else float(dl)))
    table = doc.get("cost_table", "xrbench")
    if table not in COST_TABLES:
        raise FileFormatError(f"{where}: field 'cost_table': unknown table {table!r} (known: {', '.join(COST_TABLES)})")
    return Scenario(name, tuple(models), table, doc.get("description", ""))


@lru_cache(maxsize=4)
def load_cost_table(name: str) -> dict:
    return _load_json(COST_TABLES[name])


@dataclass(frozen=True)
class PlatformSpec:
    platform: Platform
    units: tuple[str, ...]  # cost-table unit of each accelerator
    table: str


def load_platform(name_or_path: str) -> PlatformSpec:
    path = _find(name_or_path, PLATFORM_DIR, "platform")
    where = str(path)
    doc = _load_json(path)
    if doc.get("format") != "edge-sdrm3-platform":
        raise FileFormatError(f"{where}: field 'format' must be 'edge-sdrm3-platform', got {doc.get('format')!r}")
    if doc.get("version") != 1:
        raise FileFormatError(f"{where}: field 'version': unsupported version {doc.get('version')!r} (known: 1)")
    name = _need(doc, "name", str, where)
    raw = _need(doc, "accelerators", list, where)
    if not raw:
        raise FileFormatError(f"{where}: field 'accelerators' is empty")
    accs, units, tables = [], [], set()
    for i, a in enumerate(raw):
        w = f"{where}: accelerators[{i}]"
        if not isinstance(a, dict):
            raise FileFormatError(f"{w}: expected an object")
        aid = _need(a, "id", str, w)
        kind = _need(a, "kind", str, w)
        c = _need(a, "costs", dict, w)
        table = _need(c, "table", str, w + ".costs")
        if table not in COST_TABLES:
            raise FileFormatError(f"{w}.costs: field 'table': unknown table {table!r}")
        unit = _need(c, "unit", str, w + ".costs")
        if unit not in load_cost_table(table)["units"]:
            raise FileFormatError(f"{w}.costs: field 'unit': {unit!r} is not in cost table {table!r}")
        idle = a.get("idle_power_mw", 0.0)
        if isinstance(idle, bool) or not isinstance(idle, (int, float)) or idle < 0:
            raise FileFormatError(f"{w}: field 'idle_power_mw' must be a number >= 0, got {idle!r}")
        accs.append(Accelerator(aid, kind, float(idle)))
        units.append(unit)
        tables.add(table)
    if len({a.id for a in accs}) != len(accs):
        raise FileFormatError(f"{where}: field 'accelerators': ids are not unique")
    h = doc.get("handoff", {})
    if not isinstance(h, dict):
        raise FileFormatError(f"{where}: field 'handoff' must be an object")
    hms, hmj = h.get("latency_ms", 0.0), h.get("energy_mj", 0.0)
    for k, v in (("latency_ms", hms), ("energy_mj", hmj)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise FileFormatError(f"{where}: field 'handoff.{k}' must be a number >= 0, got {v!r}")
    plat = Platform(name, tuple(accs), float(hms), float(hmj))
    return PlatformSpec(plat, tuple(units), tables.pop() if len(tables) == 1 else "xrbench")


def build_models(scenario: Scenario, widths: tuple[float, ...] | None = (1.0,)) -> tuple[Model, ...]:
    """The scenario's models with their variants from the cost table (largest first).

    ``widths=None`` keeps every variant the table has; the default keeps only the largest."""
    table = load_cost_table(scenario.cost_table)
    out = []
    for sm in scenario.models:
        if sm.name not in table["models"]:
            raise FileFormatError(f"scenario {scenario.name}: model {sm.name!r} is not in cost table "
                                  f"{scenario.cost_table!r}")
        tm = table["models"][sm.name]
        variants = tuple(Variant(v["name"], v["width"], v["accuracy"]) for v in tm["variants"]
                         if widths is None or v["width"] in widths)
        out.append(Model(sm.name, sm.fps, variants, len(tm["segments"]), sm.deadline_ms, sm.upstream,
                         sm.trigger_probability))
    return tuple(out)


def build_costs(models: tuple[Model, ...], spec: PlatformSpec, table_name: str) -> Costs:
    table = load_cost_table(table_name)
    clock = float(table["clock_hz"]) / 1000.0  # cycles per ms
    lat: list = []
    en: list = []
    for m in models:
        lm, em = [], []
        for v in m.variants:
            key = _width_key(v.width)
            la, ea = [], []
            for unit in spec.units:
                entry = table["units"][unit]["models"].get(m.name, {}).get(key)
                if entry is None:
                    la.append([INF] * m.n_segments)
                    ea.append([INF] * m.n_segments)
                else:
                    la.append([c / clock for c in entry["cycles"]])
                    ea.append([e / 1e6 for e in entry["energy_nj"]])
            lm.append(la)
            em.append(ea)
        lat.append(lm)
        en.append(em)
    return Costs(lat, en)


def model_cycles(model: str, width: float, unit: str, table_name: str = "xrbench") -> int:
    """Whole-model latency in clock cycles (exact integers, for XRBench's tie-breaks)."""
    return sum(load_cost_table(table_name)["units"][unit]["models"][model][_width_key(width)]["cycles"])


def _width_key(w: float) -> str:
    return str(float(w))
