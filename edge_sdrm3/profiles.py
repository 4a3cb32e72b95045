"""Costs measured on a device (``"table": "profile"``) or scaled from one (``"table": "relative"``), as platform
files declare them inline (``docs/platforms.md``): parsed and checked, every error naming the file and field."""
from __future__ import annotations

from dataclasses import dataclass

from .core.types import INF
from .fileformat import FileFormatError, _is_real, _need

RELATIVE = "relative"  # an emulated accelerator: a profiled one's costs scaled by a speed factor and a power


@dataclass(frozen=True)
class ProfiledVariant:
    """One variant as profiled on one accelerator; ``inf`` where a segment cannot run there (``null``)."""

    name: str
    width: float | None
    accuracy: float | None  # relative to the largest variant; None = not known
    absolute_accuracy: float | None
    latency_ms: tuple[float, ...]
    energy_mj: tuple[float, ...]


@dataclass(frozen=True)
class ProfiledModel:
    segments: int
    variants: tuple[ProfiledVariant, ...]


def _relative_profile(c: dict, accs: list, profiles: list, where: str) -> dict[str, ProfiledModel]:
    """An emulated accelerator declared relative to a profiled one: ``{"table": "relative", "of": ID,
    "speed": S, "power_mw": P}`` runs every segment S times faster than accelerator ID did when it was
    profiled, drawing P mW while it runs (energy = latency x P)."""
    of = _need(c, "of", str, where)
    ids = [a.id for a in accs]
    if of not in ids:
        raise FileFormatError(f"{where}: field 'of': no accelerator {of!r} (known: {', '.join(ids)})")
    base = profiles[ids.index(of)]
    if not isinstance(base, dict) or base.get("table") == RELATIVE or not base:
        raise FileFormatError(f"{where}: field 'of': accelerator {of!r} has no profile (run `edge-sdrm3 profile`)")
    speed = _need(c, "speed", float, where)
    power = _need(c, "power_mw", float, where)
    if not speed > 0 or not power >= 0:
        raise FileFormatError(f"{where}: fields 'speed' > 0 and 'power_mw' >= 0 needed, got {speed!r}, {power!r}")
    out = {}
    for name, pm in base.items():
        variants = []
        for v in pm.variants:
            lat = tuple(x / speed for x in v.latency_ms)
            variants.append(ProfiledVariant(v.name, v.width, v.accuracy, v.absolute_accuracy, lat,
                                            tuple(x * power / 1000.0 for x in lat)))
        out[name] = ProfiledModel(pm.segments, tuple(variants))
    return out


def _number_list(v: dict, key: str, n: int, where: str, positive: bool, required: bool = True) -> tuple[float, ...]:
    """A list of ``n`` numbers (> 0 when ``positive``, else >= 0) or nulls (-> inf: the segment cannot run there)."""
    if key not in v:
        if required:
            raise FileFormatError(f"{where}: missing field '{key}'")
        return ()
    xs = v[key]
    if not isinstance(xs, list) or len(xs) != n:
        got = f"{len(xs)} entries" if isinstance(xs, list) else repr(xs)
        raise FileFormatError(f"{where}: field '{key}' must be a list of {n} numbers (one per segment, "
                              f"the model's 'segments'), got {got}")
    out = []
    for i, x in enumerate(xs):
        if x is None:
            out.append(INF)
            continue
        if not _is_real(x) or not (x > 0 if positive else x >= 0) or x == INF:
            raise FileFormatError(f"{where}: field '{key}[{i}]' must be a finite number "
                                  f"{'> 0' if positive else '>= 0'} or null, got {x!r}")
        out.append(float(x))
    return tuple(out)


def _fraction(v: dict, key: str, where: str) -> float | None:
    x = v.get(key)
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
        raise FileFormatError(f"{where}: field '{key}' must be a fraction in [0, 1] or null, got {x!r}")
    return float(x)


def _parse_profile(c: dict, where: str) -> dict[str, ProfiledModel]:
    """The inline costs of one profiled accelerator (``{"table": "profile", "models": {...}}``)."""
    raw = _need(c, "models", dict, where)
    src = c.get("energy_source", "")
    if not isinstance(src, str):
        raise FileFormatError(f"{where}: field 'energy_source' must be str, got {src!r}")
    out: dict[str, ProfiledModel] = {}
    for mname, m in raw.items():
        w = f"{where}.models.{mname}"
        if not isinstance(m, dict):
            raise FileFormatError(f"{w}: expected an object")
        n = _need(m, "segments", int, w)
        if n < 1:
            raise FileFormatError(f"{w}: field 'segments' must be >= 1, got {n!r}")
        vs = _need(m, "variants", list, w)
        if not vs:
            raise FileFormatError(f"{w}: field 'variants' is empty")
        variants = []
        for i, v in enumerate(vs):
            wv = f"{w}.variants[{i}]"
            if not isinstance(v, dict):
                raise FileFormatError(f"{wv}: expected an object")
            vname = _need(v, "name", str, wv)
            width = v.get("width")
            if width is not None and (isinstance(width, bool) or not isinstance(width, (int, float))
                                      or not 0.0 < width <= 1.0):
                raise FileFormatError(f"{wv}: field 'width' must be in (0, 1], got {width!r}")
            lat = _number_list(v, "latency_ms", n, wv, True)
            en = _number_list(v, "energy_mj", n, wv, False)
            _number_list(v, "latency_p90_ms", n, wv, True, required=False)  # informational; checked all the same
            variants.append(ProfiledVariant(vname, None if width is None else float(width),
                                            _fraction(v, "accuracy", wv), _fraction(v, "absolute_accuracy", wv),
                                            lat, en))
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise FileFormatError(f"{w}: field 'variants': names are not unique {names}")
        out[mname] = ProfiledModel(n, tuple(variants))
    return out


def _check_profiles_agree(profiles: list, where: str) -> None:
    """A model profiled on several accelerators must have the same segments and variants (in order) on each."""
    first: dict[str, tuple[int, ProfiledModel]] = {}
    for i, prof in enumerate(profiles):
        for name, pm in (prof or {}).items():
            if name not in first:
                first[name] = (i, pm)
                continue
            j, ref = first[name]
            w = f"{where}: accelerators[{i}].costs.models.{name}"
            if pm.segments != ref.segments:
                raise FileFormatError(f"{w}: field 'segments' is {pm.segments}, but {ref.segments} on "
                                      f"accelerators[{j}]")
            if [v.name for v in pm.variants] != [v.name for v in ref.variants]:
                raise FileFormatError(f"{w}: field 'variants' {[v.name for v in pm.variants]} differ from "
                                      f"{[v.name for v in ref.variants]} on accelerators[{j}]")
