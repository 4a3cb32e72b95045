"""The live service's workload: scenario, platform, models with every variant, costs, each variant's segment files
(checked against the catalog and split once), and the policy the configuration names."""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import catalog
from ..core.policies import make_policy
from ..core.scores import Theta
from ..core.types import ConfigError as CoreConfigError
from ..core.types import Model
from .config import Config
from .executors import IOSpec, VariantFiles, model_io, segment_files

log = logging.getLogger("edge_sdrm3.service")


class StartupError(Exception):
    """The service cannot start; the message says what is missing or wrong."""



@dataclass
class Workload:
    scenario: catalog.Scenario
    spec: catalog.PlatformSpec
    models: tuple[Model, ...]
    costs: Any
    index: dict[str, int]
    files: list[list[VariantFiles]]  # [model][variant]
    children: dict[str, list[str]]  # model -> its cascaded models (scenario order)
    declared: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # model -> its catalog inputs (layout, range)

    @property
    def roots(self) -> list[str]:
        return [m.name for m in self.models if m.upstream is None]


def default_scenario(cache: Path | None) -> str:
    """mediapipe_xr when every MediaPipe model of the catalog is in the cache, else digits."""
    try:
        from ..tflite.fetch import missing

        return "digits" if missing(None, cache) else "mediapipe_xr"
    except Exception as e:  # noqa: BLE001 - a broken cache only changes the default
        log.info("model cache not usable (%s): default scenario digits", e)
        return "digits"


def load_workload(cfg: Config, split: bool = True) -> Workload:
    """Scenario, platform, models with every variant, costs, and each variant's segment files (split once).

    ``split=False`` (``edge-sdrm3 serve --check``) checks every file and loads it once, but splits nothing and
    writes nothing: each variant's "segments" are then its whole file."""
    from ..tflite.manifest import default_cache_dir, load_manifest

    w = cfg.workload
    cache = Path(w.model_cache).expanduser() if w.model_cache else default_cache_dir()
    name = w.scenario or default_scenario(cache)
    try:
        scenario = catalog.load_scenario(name)
        spec = catalog.load_platform(w.platform)
        models = catalog.build_models(scenario, None, spec)  # every variant: the policy may be switched live
        costs = catalog.build_costs(models, spec, scenario.cost_table)
    except CoreConfigError as e:
        raise StartupError(f"workload: {e}") from None
    try:
        manifest = load_manifest(w.catalog or None)
    except Exception as e:  # noqa: BLE001 - ManifestError (names the file and key), or a bad path
        raise StartupError(f"workload: catalog: {e}") from None
    files: list[list[VariantFiles]] = []
    for m in models:
        try:
            entry = manifest[m.name]
        except Exception as e:  # ManifestError
            raise StartupError(f"workload: scenario {scenario.name}: {e}") from None
        per = []
        for v in m.variants:
            ve = next((x for x in entry.variants if x.name == v.name), None)
            if ve is None:
                raise StartupError(f"workload: model {m.name}: variant {v.name!r} of the platform profile is not in "
                                   f"the catalog (edge_sdrm3/data/models/manifest.toml)")
            path = entry.path(ve, cache)
            if not path.exists():
                hint = " (run `edge-sdrm3 models fetch`)" if entry.location == "cache" else ""
                raise StartupError(f"workload: model {m.name} variant {v.name}: file {path} not found{hint}")
            where = f"workload: model {m.name} variant {v.name}: file {path}"
            check_model_file(path, ve, where)
            try:
                ins, outs = model_io(path)
            except Exception as e:  # noqa: BLE001 - load errors of many kinds, all fatal here
                raise StartupError(f"{where}: not a model the runtime can load: {e}") from None
            check_io(entry.inputs, ins, where)
            try:
                segs = segment_files(m.name, path, v.name, ve.sha256 or "nosha0000000", m.n_segments, cache) \
                    if split else [path]
            except Exception as e:  # noqa: BLE001 - split errors of many kinds, all fatal here
                raise StartupError(f"{where}: cannot be split into {m.n_segments} segments: {e}") from None
            per.append(VariantFiles(m.name, v.name, tuple(segs), ins, outs))
        files.append(per)
    children: dict[str, list[str]] = defaultdict(list)
    for m in models:
        if m.upstream is not None:
            children[m.upstream].append(m.name)
    return Workload(scenario, spec, models, costs, {m.name: i for i, m in enumerate(models)}, files,
                    dict(children), {m.name: manifest[m.name].inputs for m in models})


def changed_variants(old: Workload, new: Workload) -> list[tuple[str, str]]:
    """The (model, variant)s whose files changed between two loads of the catalog (a new file: a new sha256, so
    new segment files). StartupError when the models or variants themselves changed: that needs a restart."""
    if [[m.name] + [v.name for v in m.variants] for m in new.models] != \
            [[m.name] + [v.name for v in m.variants] for m in old.models]:
        raise StartupError("the scenario's models or variants changed; restart the service to use them")
    return [(a.model, a.variant) for per_old, per_new in zip(old.files, new.files)
            for a, b in zip(per_old, per_new) if a.segments != b.segments]


def check_model_file(path: Path, ve: Any, where: str) -> None:
    """The catalog's size and sha256 of a variant file against the file (a truncated or changed file is refused:
    its cached segments are named by that sha256)."""


    try:
        data = path.read_bytes()
    except OSError as e:
        raise StartupError(f"{where}: cannot read ({e.strerror or e})") from None
    if ve.size and len(data) != ve.size:
        raise StartupError(f"{where}: {len(data)} bytes, the catalog says {ve.size} (truncated or replaced?)")
    if ve.sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != ve.sha256.lower():
            raise StartupError(f"{where}: sha256 {digest} does not match the catalog's {ve.sha256}")


def check_io(declared: Any, actual: tuple[IOSpec, ...], where: str) -> None:
    """The model's inputs against the catalog's ``inputs`` (count, shape, dtype), when the catalog declares them."""
    if not declared:
        return
    if len(declared) != len(actual):
        raise StartupError(f"{where}: the model has {len(actual)} inputs, the catalog declares {len(declared)}")
    for i, (d, a) in enumerate(zip(declared, actual)):
        if tuple(d.shape) != tuple(a.shape) or np.dtype(d.dtype) != a.dtype:
            raise StartupError(f"{where}: input {i} ({a.name}) is {list(a.shape)} {a.dtype.name}, the catalog "
                               f"declares {list(d.shape)} {np.dtype(d.dtype).name}")


def make_policy_from(cfg: Config, name: str | None = None) -> Any:
    """The configured policy: sdrm3 with θ, the tuner and (``supernet``) the selector; any other by name."""
    s = cfg.scheduler
    name = name or s.policy
    if name in ("sdrm3", "sdrm3+supernet"):
        theta = Theta(s.alpha, s.beta, s.gamma, s.delta)
        if name == "sdrm3+supernet" or s.supernet:
            return make_policy("sdrm3+supernet", theta=theta, tune=s.tuner, floor=s.floor)
        return make_policy("sdrm3", theta=theta, tune=s.tuner)
    return make_policy(name)

