"""Parameters learned offline (``edge-sdrm3 tune``), keyed by workload and platform.

A workload is its models, their rates and their cascades: ``fingerprint`` hashes them into a stable key.
The table holds one entry per (workload, platform); ``lookup`` returns the entry of the exact workload on
the platform, else the nearest entry by ``distance``: the Jaccard distance of the two sets of models, plus
the distance of their total frame rates on a log scale (|ln(r1 / r2)|), plus the difference of their
shares of cascaded models. Entries of the same platform are preferred; another platform's are used only
when the table has none for it.

File (JSON): ``{"format": "edge-sdrm3-params", "version": 1, "entries": [{"workload": FINGERPRINT,
"platform": NAME, "models": [[name, fps, upstream, trigger probability], ...], "params": {...}}, ...]}``
plus whatever else the writer records (the search's figures).
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .types import ConfigError

FORMAT = "edge-sdrm3-params"
VERSION = 1


def workload_of(models: Iterable[Any]) -> tuple[tuple, ...]:
    """Models (the core's ``Model`` or a scenario's) -> ((name, fps, upstream, trigger probability), ...), sorted."""
    return tuple(sorted((m.name, float(m.fps), m.upstream or "", float(m.trigger_probability)) for m in models))


def fingerprint(workload: tuple[tuple, ...]) -> str:
    return hashlib.sha256(json.dumps([list(x) for x in workload]).encode()).hexdigest()[:16]


def distance(a: tuple[tuple, ...], b: tuple[tuple, ...]) -> float:
    """0 for the same workload; grows with the models that differ, the rate ratio and the cascades."""
    if a == b:
        return 0.0
    na, nb = {x[0] for x in a}, {x[0] for x in b}
    jac = 1.0 - len(na & nb) / max(1, len(na | nb))
    ra, rb = sum(x[1] for x in a), sum(x[1] for x in b)
    rate = abs(math.log(ra / rb)) if ra > 0 and rb > 0 else 1.0
    ca = sum(1 for x in a if x[2]) / max(1, len(a))
    cb = sum(1 for x in b if x[2]) / max(1, len(b))
    return jac + rate + abs(ca - cb)


@dataclass(frozen=True)
class Entry:
    workload: tuple[tuple, ...]
    platform: str
    params: dict


class ParamsTable:
    def __init__(self, entries: list[Entry], path: str = "") -> None:
        self.entries = entries
        self.path = path

    def lookup(self, workload: tuple[tuple, ...], platform: str) -> tuple[Entry, float] | None:
        """The entry for ``workload`` on ``platform`` and its distance (0: exact); None for an empty table."""
        same = [e for e in self.entries if e.platform == platform] or self.entries
        best = None
        for e in same:
            d = distance(workload, e.workload)
            if best is None or d < best[1]:
                best = (e, d)
        return best


def parse_table(doc: Any, where: str) -> ParamsTable:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{where}: not a parameter table (field 'format' must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise ConfigError(f"{where}: field 'version': unsupported version {doc.get('version')!r} (known: {VERSION})")
    raw = doc.get("entries")
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: field 'entries' must be a list")
    out = []
    for i, e in enumerate(raw):
        w = f"{where}: entries[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("platform"), str) or not isinstance(e.get("params"), dict):
            raise ConfigError(f"{w}: expected an object with 'platform' (a string), 'models' and 'params' (an object)")
        models = e.get("models")
        try:
            wl = tuple(sorted((str(n), float(f), str(u or ""), float(p)) for n, f, u, p in models))
        except (TypeError, ValueError):
            raise ConfigError(f"{w}: field 'models' must be a list of [name, fps, upstream, trigger probability]") \
                from None
        if any(not (x[1] > 0 and math.isfinite(x[1])) for x in wl):
            raise ConfigError(f"{w}: field 'models': every fps must be a finite number > 0")
        for k, v in e["params"].items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{w}: field 'params': {k} must be finite, got {v!r}")
        out.append(Entry(wl, e["platform"], dict(e["params"])))
    return ParamsTable(out, where)


def load_table(path: str) -> ParamsTable:
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the parameter table ({e.strerror})") from None
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    return parse_table(doc, path)


def table_doc(entries: list[dict], **extra: Any) -> dict:
    """A table's JSON document; each entry: {"models": workload_of(...) as lists, "platform", "params", ...}."""
    for e in entries:
        e["workload"] = fingerprint(tuple(tuple(x) for x in e["models"]))
    return {"format": FORMAT, "version": VERSION, **extra, "entries": entries}
