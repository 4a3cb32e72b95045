"""Scenario, platform and cost-table files: finding them by name or path, validating, building the core's types.

File formats are documented in ``docs/traces.md`` (scenarios, traces) and ``docs/platforms.md``. The shipped
files are package data (``edge_sdrm3/data/``, :mod:`edge_sdrm3.data`).
Every error names the file and the field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .core.types import INF, Accelerator, Costs, Model, Platform, Variant
from .data import data_path
from .fileformat import FileFormatError, _is_real, _need
from .profiles import RELATIVE, ProfiledModel, _check_profiles_agree, _parse_profile, _relative_profile

SCENARIO_DIR = data_path("scenarios")
PLATFORM_DIR = data_path("platforms")
COST_TABLES = {"xrbench": data_path("models", "xrbench", "costs.json")}
PROFILE = "profile"  # costs inline in the platform file, measured by `edge-sdrm3 profile` (edge_sdrm3/profiling.py)


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


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        lineno = path.read_bytes()[: e.start].count(b"\n") + 1
        raise FileFormatError(f"{path}: line {lineno}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (ValueError, RecursionError) as e:  # an integer of more than 4300 digits; arrays nested too deeply
        raise FileFormatError(f"{path}: not valid JSON ({type(e).__name__}: {e})") from None
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
        if not 0 < fps < INF:  # an infinite rate would release frames forever at t = 0
            raise FileFormatError(f"{w}: field 'fps' must be a finite number > 0, got {fps!r}")
        up = m.get("upstream")
        if up is not None and (not isinstance(up, str) or up not in names):
            raise FileFormatError(f"{w}: field 'upstream' {up!r} is not a model listed before it")
        p = m.get("trigger_probability", 1.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise FileFormatError(f"{w}: field 'trigger_probability' must be in [0, 1], got {p!r}")
        dl = m.get("deadline_ms")
        if dl is not None and (not _is_real(dl) or not dl > 0):
            raise FileFormatError(f"{w}: field 'deadline_ms' must be a positive number, got {dl!r}")
        if mname in names:
            raise FileFormatError(f"{w}: field 'name': model {mname!r} listed twice")
        names.add(mname)
        models.append(ScenarioModel(mname, fps, up, float(p), None if dl is None else float(dl)))
    table = doc.get("cost_table", "xrbench")
    if not isinstance(table, str) or table not in COST_TABLES and table != PROFILE:
        raise FileFormatError(f"{where}: field 'cost_table': unknown table {table!r} "
                              f"(known: {', '.join([*COST_TABLES, PROFILE])})")
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        raise FileFormatError(f"{where}: field 'description' must be str, got {desc!r}")
    return Scenario(name, tuple(models), table, desc)


@lru_cache(maxsize=4)
def load_cost_table(name: str) -> dict:
    return _load_json(COST_TABLES[name])


@dataclass(frozen=True)
class PlatformSpec:
    platform: Platform
    units: tuple[str, ...]  # cost-table unit of each accelerator ("" for a profiled one)
    table: str
    profiles: tuple[dict[str, ProfiledModel] | None, ...] = ()  # per accelerator: its inline profile, or None
    faults: tuple = ()  # per accelerator: its injected faults (hal.emulated.FaultSpec) or None; () = none at all


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
    accs, units, tables, profiles, faults = [], [], set(), [], []
    for i, a in enumerate(raw):
        w = f"{where}: accelerators[{i}]"
        if not isinstance(a, dict):
            raise FileFormatError(f"{w}: expected an object")
        aid = _need(a, "id", str, w)
        kind = _need(a, "kind", str, w)
        c = _need(a, "costs", dict, w)
        table = _need(c, "table", str, w + ".costs")
        if table == PROFILE:
            profiles.append(_parse_profile(c, w + ".costs"))
            unit = ""
        elif table == RELATIVE:
            profiles.append(c)  # resolved below, once every accelerator's profile is known
            unit = ""
        elif table not in COST_TABLES:
            raise FileFormatError(f"{w}.costs: field 'table': unknown table {table!r} "
                                  f"(known: {', '.join([*COST_TABLES, PROFILE, RELATIVE])})")
        else:
            unit = _need(c, "unit", str, w + ".costs")
            if unit not in load_cost_table(table)["units"]:
                raise FileFormatError(f"{w}.costs: field 'unit': {unit!r} is not in cost table {table!r}")
            profiles.append(None)
        idle = a.get("idle_power_mw", 0.0)
        if not _is_real(idle) or not idle >= 0:
            raise FileFormatError(f"{w}: field 'idle_power_mw' must be a number >= 0, got {idle!r}")
        device = a.get("device", "")
        if not isinstance(device, str):
            raise FileFormatError(f"{w}: field 'device' must be a device string (e.g. 'cpu:2', 'edgetpu:usb:0')")
        threads = a.get("threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise FileFormatError(f"{w}: field 'threads' must be an integer >= 0, got {threads!r}")
        fault = a.get("fault")
        if fault is not None:
            if kind != "emulated":
                raise FileFormatError(f"{w}: field 'fault': faults are injected into emulated accelerators only "
                                      f"(kind 'emulated'), this one is {kind!r}")
            from hal.emulated import FaultSpec

            try:
                fault = FaultSpec.from_dict(fault)
            except (TypeError, ValueError) as e:
                raise FileFormatError(f"{w}: {e}") from None
        faults.append(fault)
        accs.append(Accelerator(aid, kind, float(idle), device, threads))
        units.append(unit)
        tables.add(table)
    if len({a.id for a in accs}) != len(accs):
        raise FileFormatError(f"{where}: field 'accelerators': ids are not unique")
    for i, prof in enumerate(profiles):
        if isinstance(prof, dict) and prof.get("table") == RELATIVE:
            profiles[i] = _relative_profile(prof, accs, profiles, f"{where}: accelerators[{i}].costs")
    tables = {PROFILE if t == RELATIVE else t for t in tables}
    h = doc.get("handoff", {})
    if not isinstance(h, dict):
        raise FileFormatError(f"{where}: field 'handoff' must be an object")
    hms, hmj = h.get("latency_ms", 0.0), h.get("energy_mj", 0.0)
    for k, v in (("latency_ms", hms), ("energy_mj", hmj)):
        if not _is_real(v) or not v >= 0:
            raise FileFormatError(f"{where}: field 'handoff.{k}' must be a number >= 0, got {v!r}")
    _check_profiles_agree(profiles, where)
    plat = Platform(name, tuple(accs), float(hms), float(hmj))
    return PlatformSpec(plat, tuple(units), tables.pop() if len(tables) == 1 else "xrbench", tuple(profiles),
                        tuple(faults) if any(f is not None for f in faults) else ())


def build_models(scenario: Scenario, widths: tuple[float, ...] | None = (1.0,),
                 spec: PlatformSpec | None = None) -> tuple[Model, ...]:
    """The scenario's models with their variants from the cost table (largest first).

    ``widths=None`` keeps every variant the table has; the default keeps only the largest. A scenario whose
    ``cost_table`` is ``profile`` takes its variants and segment counts from ``spec``'s inline profile."""
    if scenario.cost_table == PROFILE:
        return _profiled_models(scenario, widths, spec)
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


def _profiled_models(scenario: Scenario, widths: tuple[float, ...] | None,
                     spec: PlatformSpec | None) -> tuple[Model, ...]:
    if spec is None or not any(spec.profiles):
        plat = "no platform" if spec is None else f"platform {spec.platform.name!r}"
        raise FileFormatError(f"scenario {scenario.name}: field 'cost_table': 'profile' takes the costs from a "
                              f"platform made by `edge-sdrm3 profile`, and {plat} has no profiled accelerator")
    out = []
    for sm in scenario.models:
        pm = next((p[sm.name] for p in spec.profiles if p and sm.name in p), None)
        if pm is None:
            have = sorted({n for p in spec.profiles if p for n in p})
            raise FileFormatError(f"scenario {scenario.name}: model {sm.name!r} is not in the profile of platform "
                                  f"{spec.platform.name!r} (profiled: {', '.join(have)})")
        # the largest-only default (widths=(1.0,)) keeps the first variant of a model without widths
        kept = [v for i, v in enumerate(pm.variants) if widths is None
                or (v.width if v.width is not None else (1.0 if i == 0 else None)) in widths]
        variants = tuple(Variant(v.name, 1.0 if v.width is None else v.width,
                                 1.0 if v.accuracy is None else v.accuracy, v.absolute_accuracy) for v in kept)
        out.append(Model(sm.name, sm.fps, variants, pm.segments, sm.deadline_ms, sm.upstream,
                         sm.trigger_probability))
    return tuple(out)


def _profiled_costs(models: tuple[Model, ...], spec: PlatformSpec) -> Costs:
    lat: list = []
    en: list = []
    for m in models:
        lm, em = [], []
        for v in m.variants:
            la, ea = [], []
            for prof in spec.profiles or (None,) * len(spec.units):
                pm = prof.get(m.name) if prof else None
                pv = next((x for x in pm.variants if x.name == v.name), None) if pm else None
                la.append(list(pv.latency_ms) if pv else [INF] * m.n_segments)
                ea.append(list(pv.energy_mj) if pv else [INF] * m.n_segments)
            lm.append(la)
            em.append(ea)
        lat.append(lm)
        en.append(em)
    return Costs(lat, en)


def build_costs(models: tuple[Model, ...], spec: PlatformSpec, table_name: str) -> Costs:
    """Latency and energy per model, variant, accelerator and segment: from the cost table ``table_name``, or
    from the platform's inline profiles when it is ``profile`` (``inf`` where an accelerator lacks the model)."""
    if table_name == PROFILE:
        return _profiled_costs(models, spec)
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
                entry = table["units"][unit]["models"].get(m.name, {}).get(key) if unit else None
                if entry is None:
                    la.append([INF] * m.n_segments)
                    ea.append([INF] * m.n_segments)
                else:
                    la.append([c / clock for c in entry["cycles"]])
                    ea.append([e / 1e6 for e in entry["energy_nj"]])
            lm.append(la)
            em.append(ea)
        if all(x == INF for la in lm for xs in la for x in xs):
            raise FileFormatError(f"platform {spec.platform.name}: no accelerator has costs for model {m.name!r} in "
                                  f"cost table {table_name!r} (a profiled platform needs a scenario with "
                                  f"cost_table 'profile')")
        lat.append(lm)
        en.append(em)
    return Costs(lat, en)


def model_cycles(model: str, width: float, unit: str, table_name: str = "xrbench") -> int:
    """Whole-model latency in clock cycles (exact integers, for XRBench's tie-breaks)."""
    return sum(load_cost_table(table_name)["units"][unit]["models"][model][_width_key(width)]["cycles"])


def _width_key(w: float) -> str:
    return str(float(w))
