"""The model catalog: ``models/manifest.toml`` of the package data (``edge_sdrm3/data/``).

    format = "edge-sdrm3-models"
    version = 1

    [models.NAME]
    task = "classification"                 # required
    description = "..."                     # optional
    location = "repo"                       # "repo": shipped in the package, relative to its models/ folder;
                                            # "cache": relative to the model cache
    source = "mediapipe==0.10.14"           # where "cache" files come from (`edge-sdrm3 models fetch`)
    segments = 1                            # segment count the scheduler uses (>= 1)
    upstream = "palm_detection"             # optional cascade: this model runs on what NAME detected
    trigger = "a palm was detected"         # optional, words
    inputs = [{ name = "image", shape = [1, 8, 8, 1], dtype = "float32",
                layout = "NHWC", channels = "gray", range = [0.0, 1.0] }]
                                            # an image input declares how the service makes a camera image
                                            # into it (docs/protocol.md, "Inputs"): layout "NHWC"; channels
                                            # "RGB" or "gray"; range [lo, hi]: the values 0..255 of a uint8
                                            # image map linearly onto it (float inputs). Without them the
                                            # model takes only its exact input.
    outputs = [{ name = "probs", shape = [1, 10], dtype = "float32" }]

    [[models.NAME.variants]]                # largest first
    name = "w100"
    file = "digits/digits_w100.tflite"
    sha256 = "<64 hex>"
    size = 97544                            # bytes
    accuracy = 0.9844                       # a fraction in [0, 1], or "none" (or absent) when nothing is published
    accuracy_source = "measured: ..."       # required: where the number comes from (or why there is none)
    width = 1.0                             # optional (supernets)
    wheel_path = "mediapipe/modules/..."    # optional: the file inside the source wheel
    edgetpu_file = "..."                    # optional: the Edge TPU compiled file
    segment_files = ["...seg1of4.tflite"]   # optional: pre-split segments, as many as `segments`

Errors name the file and the key (``models.digits.variants[2].sha256: ...``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ModelToolError

from ..data import data_path
from ..tomlfile import TomlFileError, read_toml

MODELS_DIR = data_path("models")
MANIFEST = MODELS_DIR / "manifest.toml"
FORMAT = "edge-sdrm3-models"
CACHE_ENV = "EDGE_SDRM3_MODEL_CACHE"
DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ModelToolError):
    """A manifest that cannot be used; the message names the file and the key."""


def default_cache_dir() -> Path:
    """``$EDGE_SDRM3_MODEL_CACHE``, else ``~/.cache/edge-sdrm3/models``."""
    import os

    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edge-sdrm3" / "models"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    note: str = ""
    layout: str = ""  # "NHWC" for an image input; "": not an image (only the exact input is accepted)
    channels: str = ""  # "RGB" or "gray" (an image input)
    range: tuple[float, float] | None = None  # what uint8 0..255 maps onto, for a float image input

    @property
    def image(self) -> bool:
        """Whether a camera image may be adapted to this input (the catalog declares how)."""
        return bool(self.layout and self.channels)


LAYOUTS = ("NHWC",)
CHANNELS = {"RGB": 3, "gray": 1}


@dataclass(frozen=True)
class VariantEntry:
    name: str
    file: str
    sha256: str
    size: int
    accuracy: float | None
    accuracy_source: str
    width: float | None = None
    wheel_path: str | None = None
    edgetpu_file: str | None = None
    segment_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str
    location: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    variants: tuple[VariantEntry, ...]
    segments: int = 1
    description: str = ""
    source: str = ""
    upstream: str | None = None
    trigger: str = ""

    def base_dir(self, cache_dir: Path | None = None) -> Path:
        return MODELS_DIR if self.location == "repo" else (cache_dir or default_cache_dir())

    def path(self, variant: VariantEntry, cache_dir: Path | None = None) -> Path:
        return self.base_dir(cache_dir) / variant.file

    def relative_accuracy(self, variant: VariantEntry) -> float | None:
        """Accuracy as a fraction of the largest variant's (1.0 for the largest); None when unknown."""
        top = self.variants[0].accuracy
        if variant.accuracy is None or not top:
            return None
        return variant.accuracy / top


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: dict[str, ModelEntry] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"{self.path}: no model {name!r} (known: {', '.join(self.models)})") from None

    def cascade(self, name: str) -> list[str]:
        """``name`` and the models downstream of it, in cascade order (e.g. face -> face landmarks -> iris)."""
        out, frontier = [name], [name]
        while frontier:
            nxt = [m.name for m in self.models.values() if m.upstream in frontier]
            out += nxt
            frontier = nxt
        return out


def load_manifest(path: str | Path | None = None) -> Manifest:
    p = Path(path) if path is not None else MANIFEST
    try:
        doc = read_toml(p)
    except TomlFileError as e:
        raise ManifestError(str(e)) from None
    return parse_manifest(doc, p)


def _range_error(v: Any) -> str | None:
    ok = len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and v[0] < v[1]
    return None if ok else f"expected [low, high] with low < high, got {v!r}"


def _range(v: list | None) -> tuple[float, float] | None:
    return None if v is None else (float(v[0]), float(v[1]))


def parse_manifest(doc: dict, path: str | Path = "<manifest>") -> Manifest:
    p = Path(path)
    r = _Reader(str(p))
    if doc.get("format") != FORMAT:
        raise r.fail("format", f"expected {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("version") != 1:
        raise r.fail("version", f"expected 1, got {doc.get('version')!r}")
    models_doc = doc.get("models")
    if not isinstance(models_doc, dict) or not models_doc:
        raise r.fail("models", "missing or empty table")
    models = {name: _model(r, name, m) for name, m in models_doc.items()}
    _check_cascades(r, models)
    return Manifest(p, models)


class _Reader:
    """Reads typed, checked values out of the manifest's tables; its errors name the file and the key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, msg: str) -> ManifestError:
        return ManifestError(f"{self.where}: {key}: {msg}")

    def need(self, d: dict, key: str, typ, ctx: str, default: Any = ..., check=None):
        """``d[key]`` as a ``typ`` (an int is taken for a float) that passes ``check`` (it returns an error message
        or None); ``default`` when absent, or an error when there is none."""
        if key not in d:
            if default is ...:
                raise self.fail(f"{ctx}.{key}", "missing")
            return default
        v = d[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise self.fail(f"{ctx}.{key}", f"expected {getattr(typ, '__name__', typ)}, got {type(v).__name__} {v!r}")
        if check is not None:
            msg = check(v)
            if msg:
                raise self.fail(f"{ctx}.{key}", msg)
        return v

    def specs(self, m: dict, key: str, ctx: str) -> tuple[TensorSpec, ...]:
        """A model's ``inputs`` or ``outputs``: a non-empty list of tensor tables."""
        items = self.need(m, key, list, ctx, check=lambda v: None if v else "empty list")
        return tuple(self.spec(t, f"{ctx}.{key}[{i}]") for i, t in enumerate(items))

    def spec(self, t: Any, c: str) -> TensorSpec:
        """One tensor; an image input declares its layout, channels (matching its shape) and, if float, range."""
        need = self.need
        if not isinstance(t, dict):
            raise self.fail(c, f"expected a table, got {type(t).__name__}")
        shape = need(t, "shape", list, c, check=lambda v: None if all(
            isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1) for d in v) and v
            else "expected a non-empty list of positive integers (-1 for a dynamic dimension)")
        spec = TensorSpec(need(t, "name", str, c), tuple(shape),
                          need(t, "dtype", str, c, check=lambda v: None if v in DTYPES
                               else f"unknown dtype {v!r} (one of {', '.join(DTYPES)})"),
                          need(t, "note", str, c, ""),
                          need(t, "layout", str, c, "", check=lambda v: None if v in LAYOUTS
                               else f"unknown layout {v!r} (one of {', '.join(LAYOUTS)})"),
                          need(t, "channels", str, c, "", check=lambda v: None if v in CHANNELS
                               else f"unknown channels {v!r} (one of {', '.join(CHANNELS)})"),
                          _range(need(t, "range", list, c, None, check=_range_error)))
        if bool(spec.layout) != bool(spec.channels):
            raise self.fail(c, "an image input declares both layout and channels")
        if spec.layout and not (len(shape) == 4 and shape[3] == CHANNELS[spec.channels]):
            raise self.fail(f"{c}.channels", f"{spec.channels} needs an NHWC shape with "
                                             f"{CHANNELS[spec.channels]} channels, the shape is {shape}")
        if spec.layout and spec.dtype.startswith("float") and spec.range is None:
            raise self.fail(f"{c}.range", "a float image input needs its value range, e.g. [0.0, 1.0]")
        return spec


def _model(r: _Reader, name: str, m: Any) -> ModelEntry:
    """One ``[models.NAME]`` table: its fields, its variants (distinct names), where its files come from."""
    ctx = f"models.{name}"
    if not isinstance(m, dict):
        raise r.fail(ctx, f"expected a table, got {type(m).__name__}")
    need = r.need
    location = need(m, "location", str, ctx, "repo",
                    check=lambda v: None if v in ("repo", "cache") else f"expected 'repo' or 'cache', got {v!r}")
    segments = need(m, "segments", int, ctx, 1, check=lambda v: None if v >= 1 else "must be >= 1")
    vdocs = need(m, "variants", list, ctx, check=lambda v: None if v else "a model needs at least one variant")
    variants = [_variant(r, v, f"{ctx}.variants[{i}]", segments) for i, v in enumerate(vdocs)]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise r.fail(f"{ctx}.variants", f"duplicate variant names {names}")
    if location == "cache" and not need(m, "source", str, ctx, ""):
        raise r.fail(f"{ctx}.source", "a model whose files live in the cache must say where they come from")
    return ModelEntry(
        name=name,
        task=need(m, "task", str, ctx),
        location=location,
        inputs=r.specs(m, "inputs", ctx),
        outputs=r.specs(m, "outputs", ctx),
        variants=tuple(variants),
        segments=segments,
        description=need(m, "description", str, ctx, ""),
        source=need(m, "source", str, ctx, ""),
        upstream=need(m, "upstream", str, ctx, None),
        trigger=need(m, "trigger", str, ctx, ""),
    )


def _variant(r: _Reader, v: Any, c: str, segments: int) -> VariantEntry:
    """One ``[[models.NAME.variants]]`` table; ``segments``: the model's segment count (its segment files')."""
    if not isinstance(v, dict):
        raise r.fail(c, f"expected a table, got {type(v).__name__}")
    need = r.need
    acc = v.get("accuracy")
    if acc == "none":
        acc = None
    elif acc is not None:
        acc = need(v, "accuracy", float, c,
                   check=lambda x: None if 0.0 <= x <= 1.0 else f"must be a fraction in [0, 1], got {x}")
    seg_files = tuple(need(v, "segment_files", list, c, [], check=lambda x: None if not x or (
        len(x) == segments and all(isinstance(s, str) for s in x))
        else f"expected {segments} file names (the model's segment count)"))
    return VariantEntry(
        name=need(v, "name", str, c),
        file=need(v, "file", str, c, check=lambda x: None if x.endswith(".tflite") else "expected a .tflite file"),
        sha256=need(v, "sha256", str, c, check=lambda x: None if _SHA.match(x)
                    else "expected 64 lower-case hex digits"),
        size=need(v, "size", int, c, check=lambda x: None if x > 0 else "must be > 0"),
        accuracy=acc,
        accuracy_source=need(v, "accuracy_source", str, c, check=lambda x: None if x.strip() else "empty"),
        width=need(v, "width", float, c, None, check=lambda x: None if 0 < x <= 1 else "must be in (0, 1]"),
        wheel_path=need(v, "wheel_path", str, c, None),
        edgetpu_file=need(v, "edgetpu_file", str, c, None),
        segment_files=seg_files,
    )


def _check_cascades(r: _Reader, models: dict[str, ModelEntry]) -> None:
    """Every ``upstream`` names a model of the manifest, and no cascade loops back on itself."""
    for m in models.values():
        if m.upstream is not None and m.upstream not in models:
            raise r.fail(f"models.{m.name}.upstream", f"no model {m.upstream!r} in the manifest")
    for m in models.values():  # cascades must be acyclic
        seen, cur = {m.name}, m.upstream
        while cur is not None:
            if cur in seen:
                raise r.fail(f"models.{m.name}.upstream", "the cascade loops back on itself")
            seen.add(cur)
            cur = models[cur].upstream
