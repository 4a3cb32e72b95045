"""``edge-sdrm3 profile``: measure every segment of every variant of the catalog's models on each device here,
and write a platform file whose accelerators carry those costs inline (``costs.table = "profile"``).

For each model of ``models/manifest.toml`` whose files are present, each variant is cut into N segments
(``edge_sdrm3.tflite.split``; the split files are cached under the model cache), each segment is loaded on each
device (``hal``), fed inputs of its shape and dtype (seeded random values; a segment's inputs that an earlier
segment produces are that segment's real outputs), warmed up, then invoked ``runs`` times: the median and p90 of
those wall-clock latencies are its latency. Energy per invoke is the best meter's delta (``hal.best_meter``)
over the timed runs, extended by untimed invokes until ``energy_window_s`` has passed (the CPU-time estimate
ticks at 10 ms), divided by the number of invokes; the accelerator records the meter's source. A meter measures
a domain (a package, a board), not the segment: the figure includes what else the domain drew meanwhile.

A device that cannot be opened, or on which no model loads, is left out with one line saying why; a segment a
device refuses (e.g. an Edge TPU given a file not compiled for it) is written as ``null`` (cannot run there).
The format is documented in ``docs/platforms.md``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform as _platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .catalog import PROFILE
from .core.types import ConfigError

FORMAT = "edge-sdrm3-platform"


class ProfileError(ConfigError):
    """Profiling cannot be done as asked (no such model, no usable device...); names what is wrong."""


@dataclass(frozen=True)
class ProfileOptions:
    models: tuple[str, ...] = ()  # () = every model whose files are present
    devices: tuple[str, ...] = ()  # () = hal.discovery.discover()
    segments: int | None = None  # None = the manifest's ``segments`` of each model
    runs: int = 50
    warmup: int = 5
    threads: int | None = None  # CPU threads for 'cpu' (and delegates' CPU ops); None = hal's default
    seed: int = 0
    name: str = "profile"
    energy_window_s: float = 0.2
    watts_per_core: float = 1.0  # for the CPU-time estimate, where no real meter exists
    cache_dir: Path | None = None  # model cache (None = $EDGE_SDRM3_MODEL_CACHE or ~/.cache/edge-sdrm3/models)
    manifest: Path | None = None


@dataclass(frozen=True)
class Measured:
    median_ms: float
    p90_ms: float
    energy_mj: float
    outputs: dict[str, np.ndarray]


def accelerator_id(spec: str) -> str:
    """A device string as an accelerator id: 'edgetpu:usb:0' -> 'edgetpu_usb_0'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.strip()) or "device"


def make_inputs(specs: Sequence[Any], rng: np.random.Generator, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Arrays for a loaded model's inputs: an earlier segment's output of that name where it fits, else random."""
    out = []
    for s in specs:
        x = feeds.get(s.name)
        if x is not None and x.dtype == s.dtype and tuple(x.shape) == tuple(s.shape):
            out.append(x)
            continue
        shape = tuple(max(1, d) for d in s.shape)
        dt = np.dtype(s.dtype)
        if dt.kind == "f":
            out.append(rng.random(shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.random(shape) < 0.5)
        else:
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, int(info.max) + 1, shape, dtype=dt))
    return out


def measure(loaded: Any, inputs: list[np.ndarray], runs: int, warmup: int, meter: Any,
            energy_window_s: float, clock: Callable[[], int] = time.perf_counter_ns) -> Measured:
    """Warm up, time ``runs`` invokes (median, p90), and the meter's energy per invoke."""
    outs = loaded.invoke(inputs)
    for _ in range(max(0, warmup - 1)):
        loaded.invoke(inputs)
    times = []
    j0 = meter.read_joules()
    t_start = clock()
    for _ in range(runs):
        t0 = clock()
        loaded.invoke(inputs)
        times.append((clock() - t0) / 1e6)
    count = runs
    while (clock() - t_start) / 1e9 < energy_window_s:
        loaded.invoke(inputs)
        count += 1
    energy = max(0.0, meter.read_joules() - j0) * 1000.0 / count
    return Measured(statistics.median(times), float(np.percentile(times, 90)), energy,
                    {s.name: o for s, o in zip(loaded.outputs, outs)})


def host_info() -> dict[str, Any]:
    cpu = _platform.processor() or _platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"machine": _platform.machine(), "cpu": cpu, "cpus": os.cpu_count(),
                            "os": _platform.platform(), "python": _platform.python_version()}
    try:
        from hal import runtime_info

        info["runtime"] = runtime_info()
    except Exception as exc:  # noqa: BLE001 - informational only
        info["runtime"] = {"error": str(exc)}
    return info


def _segment_files(entry: Any, variant: Any, n: int, cache: Path, say: Callable[[str], None]) -> list[Path]:
    """The variant's N segment files, split once and cached under ``cache/segments/``."""
    from .tflite.split import split_model

    src = entry.path(variant, cache)
    if n == 1:
        return [src]
    out = cache / "segments" / entry.name / f"{variant.name}-{variant.sha256[:12]}-{n}"
    stem = Path(variant.file).name.removesuffix(".tflite")
    files = [out / f"{stem}.seg{i}of{n}.tflite" for i in range(1, n + 1)]
    if all(f.exists() for f in files):
        return files
    say(f"splitting {entry.name}/{variant.name} into {n} segments -> {out}")
    return split_model(src, n, out)


def profile(opts: ProfileOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure and return the platform document (see the module docstring)."""
    import hal

    from .tflite import ModelToolError
    from .tflite.manifest import default_cache_dir, load_manifest

    if opts.runs < 1 or opts.warmup < 0 or (opts.segments is not None and opts.segments < 1):
        raise ProfileError(f"--runs must be >= 1, --warmup >= 0, --segments >= 1 (got {opts.runs}, {opts.warmup}, "
                           f"{opts.segments})")
    try:
        manifest = load_manifest(opts.manifest)
    except ModelToolError as e:
        raise ProfileError(str(e)) from None
    cache = opts.cache_dir or default_cache_dir()
    chosen = _choose_models(opts, manifest, cache, say)
    devices = _open_devices(opts, say)

    skipped_meters: list[tuple[str, str]] = []
    meter = hal.best_meter(watts_per_core=opts.watts_per_core, skipped=skipped_meters)
    say(f"energy meter: {meter.source}")
    files = _split_all(chosen, opts, cache, say)

    accelerators = []
    try:
        for dev in devices:
            acc = _profile_device(dev, chosen, files, opts, meter, cache, say)
            if acc is not None:
                accelerators.append(acc)
    finally:
        for dev in devices:
            dev.close()
    if not accelerators:
        raise ProfileError(f"no device could run any model (tried: {', '.join(d.spec for d in devices)})")
    return _platform_doc(opts, accelerators, meter.source, skipped_meters)


def _choose_models(opts: ProfileOptions, manifest: Any, cache: Path,
                   say: Callable[[str], None]) -> list[tuple[Any, list[Any]]]:
    """(model entry, its variants whose files are present): the named models (their files must be present), else
    every model with files present."""
    chosen = []
    for name in opts.models or tuple(manifest.models):
        if name not in manifest.models:
            raise ProfileError(f"--models: no model {name!r} in {manifest.path} (known: {', '.join(manifest.models)})")
        entry = manifest.models[name]
        present = [v for v in entry.variants if entry.path(v, cache).exists()]
        if not present:
            msg = f"model {name}: no variant file present under {entry.base_dir(cache)}"
            if entry.location == "cache":
                msg += " (run `edge-sdrm3 models fetch`)"
            if opts.models:
                raise ProfileError(msg)
            say(f"{msg}; left out")
            continue
        if len(present) < len(entry.variants):
            say(f"model {name}: variants {[v.name for v in entry.variants if v not in present]} not present; "
                "left out")
        chosen.append((entry, present))
    if not chosen:
        raise ProfileError(f"no model to profile: no variant file present (cache: {cache})")
    return chosen


def _open_devices(opts: ProfileOptions, say: Callable[[str], None]) -> list[Any]:
    """The named devices, else what ``hal.discover()`` finds, opened; one that fails is skipped with one line."""
    import hal
    from hal.errors import HalError

    if opts.devices:
        specs = list(dict.fromkeys(d.strip() for d in opts.devices if d.strip()))
    else:
        found = hal.discover()
        for sk in found.skipped:
            say(f"device {sk.spec} skipped: {sk.reason}")
        specs = [d.spec for d in found]
    devices = []
    for spec in specs:
        try:
            devices.append(hal.open_device(spec, threads=opts.threads))
        except HalError as e:
            say(f"device {spec} skipped: {e}")
    if not devices:
        raise ProfileError(f"no device could be profiled (tried: {', '.join(specs) or 'none found'})")
    return devices


def _split_all(chosen: list[tuple[Any, list[Any]]], opts: ProfileOptions, cache: Path,
               say: Callable[[str], None]) -> dict[tuple[str, str], list[Path]]:
    """Each (model, variant)'s segment files, split once and shared by every device."""
    from .tflite import ModelToolError

    files: dict[tuple[str, str], list[Path]] = {}
    for entry, present in chosen:
        n = opts.segments or entry.segments
        for v in present:
            try:
                files[(entry.name, v.name)] = _segment_files(entry, v, n, cache, say)
            except ModelToolError as e:
                raise ProfileError(f"model {entry.name} variant {v.name}: cannot split into {n} segments: {e}") \
                    from None
    return files


def _profile_device(dev: Any, chosen: list[tuple[Any, list[Any]]], files: dict[tuple[str, str], list[Path]],
                    opts: ProfileOptions, meter: Any, cache: Path, say: Callable[[str], None]) -> dict[str, Any] | None:
    """The accelerator record of one device, with every model that runs on it; None (and one line) when none
    does."""
    acc_id = accelerator_id(dev.spec)
    models: dict[str, Any] = {}
    refusals: list[str] = []
    for entry, present in chosen:
        n = opts.segments or entry.segments
        variants = []
        for v in present:
            rec = _profile_variant(dev, entry, v, files[(entry.name, v.name)], n, opts, meter, cache, refusals)
            if rec is None:
                continue
            variants.append(rec)
            med, en, whole = rec["latency_ms"], rec["energy_mj"], rec.get("whole_latency_ms")
            seg_txt = " + ".join("-" if x is None else f"{x:.3f}" for x in med)
            whole_txt = f" (sum {sum(x for x in med if x):.3f}; whole model {whole:.3f} ms)" if whole else ""
            say(f"{acc_id} {entry.name}/{v.name}: {seg_txt} ms{whole_txt}, "
                f"{sum(x for x in en if x):.4f} mJ")
        if variants:
            models[entry.name] = {"segments": n, "variants": variants}
    for r in refusals:
        say(f"device {dev.spec} refused {r}")
    if not models:
        say(f"device {dev.spec} skipped: no model loads on it")
        return None
    info = dev.info
    acc: dict[str, Any] = {"id": acc_id, "kind": info.kind, "device": dev.spec, "backend": info.backend}
    if info.threads is not None:
        acc["threads"] = info.threads
    acc["idle_power_mw"] = 0.0
    acc["costs"] = {"table": PROFILE, "energy_source": meter.source, "models": models}
    return acc


def _profile_variant(dev: Any, entry: Any, v: Any, segs: list[Path], n: int, opts: ProfileOptions, meter: Any,
                     cache: Path, refusals: list[str]) -> dict[str, Any] | None:
    """One variant's record on ``dev``: each segment measured in turn, fed the earlier segments' outputs; a
    segment the device refuses is ``None`` (and a line in ``refusals``). None when no segment runs."""
    from hal.errors import HalError

    rng = np.random.default_rng(opts.seed)
    feeds: dict[str, np.ndarray] = {}
    med: list[float | None] = []
    p90: list[float | None] = []
    en: list[float | None] = []
    for seg in segs:
        try:
            loaded = dev.load(seg)
            try:
                m = measure(loaded, make_inputs(loaded.inputs, rng, feeds), opts.runs, opts.warmup,
                            meter, opts.energy_window_s)
            finally:
                loaded.close()
        except HalError as e:
            refusals.append(f"{entry.name}/{v.name} {seg.name}: {e}")
            med.append(None)
            p90.append(None)
            en.append(None)
            continue
        feeds.update(m.outputs)
        med.append(round(m.median_ms, 6))
        p90.append(round(m.p90_ms, 6))
        en.append(round(m.energy_mj, 6))
    if all(x is None for x in med):
        return None
    top = entry.variants[0].accuracy
    rec: dict[str, Any] = {"name": v.name}
    if v.width is not None:
        rec["width"] = v.width
    rec["accuracy"] = (round(v.accuracy / top, 4) if v.accuracy is not None and top else None)
    rec["absolute_accuracy"] = v.accuracy
    rec["latency_ms"] = med
    rec["latency_p90_ms"] = p90
    rec["energy_mj"] = en
    whole = _whole_ms(dev, entry.path(v, cache), n, med, opts, meter)
    if whole is not None:
        rec["whole_latency_ms"] = whole
    return rec


def _platform_doc(opts: ProfileOptions, accelerators: list[dict[str, Any]], energy_source: str,
                  skipped_meters: list[tuple[str, str]]) -> dict[str, Any]:
    """The platform document around the measured accelerators, with how and where they were measured."""
    host = host_info()
    return {
        "format": FORMAT,
        "version": 1,
        "name": opts.name,
        "description": f"measured by `edge-sdrm3 profile` on {host['cpu']} ({host['cpus']} CPUs)",
        "profiled": {
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": host,
            "runs": opts.runs,
            "warmup": opts.warmup,
            "seed": opts.seed,
            "inputs": "seeded random (numpy default_rng(seed)); later segments get the earlier segments' outputs",
            "energy_source": energy_source,
            "energy_meters_skipped": [{"source": s, "reason": r} for s, r in skipped_meters],
            "energy_window_s": opts.energy_window_s,
        },
        "accelerators": accelerators,
        "handoff": {"latency_ms": 0.0, "energy_mj": 0.0},
    }


def _whole_ms(dev: Any, path: Path, n: int, med: list[float | None], opts: ProfileOptions,
              meter: Any) -> float | None:
    """The whole (unsplit) model's median latency on ``dev``, to compare with the sum of its segments."""
    from hal.errors import HalError

    if n == 1:
        return med[0]
    try:
        loaded = dev.load(path)
        try:
            rng = np.random.default_rng(opts.seed)
            m = measure(loaded, make_inputs(loaded.inputs, rng, {}), opts.runs, opts.warmup, meter, 0.0)
        finally:
            loaded.close()
    except HalError:
        return None
    return round(m.median_ms, 6)


def write_profile(doc: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=1) + "\n")
    return p


def main_profile(args: Any) -> int:
    """The ``profile`` subcommand (edge_sdrm3/cli.py)."""
    def split(s: str | None) -> tuple[str, ...]:
        return tuple(x.strip() for x in (s or "").split(",") if x.strip())

    opts = ProfileOptions(models=split(args.models), devices=split(args.devices), segments=args.segments,
                          runs=args.runs, warmup=args.warmup, threads=args.threads, seed=args.seed,
                          name=args.name or Path(args.output).stem, energy_window_s=args.energy_window,
                          watts_per_core=args.watts_per_core,
                          cache_dir=Path(args.cache) if args.cache else None)
    doc = profile(opts, say=lambda s: print(s, file=sys.stderr))
    out = write_profile(doc, args.output)
    accs = ", ".join(f"{a['id']} ({len(a['costs']['models'])} models)" for a in doc["accelerators"])
    print(f"wrote {out}: platform {doc['name']!r}, accelerators {accs}")
    return 0
