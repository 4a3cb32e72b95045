"""The files the commands read at run time, shipped inside the package and found with ``importlib.resources``.

    scenarios/*.json        the XR scenarios, mediapipe_xr and digits (format: docs/traces.md)
    platforms/*.json        the XRBench platforms, headset_emulated, a profiled host (format: docs/platforms.md)
    models/manifest.toml    the model catalog; models/digits/*.tflite: the supernet trained here
    models/xrbench/         costs.json (per-block latency and energy), layers.json (the models' layer shapes)
    systemd/                the unit and the default config (``make install`` installs them)

The same paths hold in a checkout (editable install), an installed wheel and an sdist: nothing is looked up
relative to the repository. The package must be installed as files (a zip import has no real paths to hand out).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_dir() -> Path:
    """The folder of the shipped data, as a real path."""
    root = resources.files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(f"edge_sdrm3 is imported from a zip ({root}): install it as files (pip install)")
    return root


def data_path(*parts: str) -> Path:
    """A shipped file or folder, e.g. ``data_path("scenarios", "vr_gaming.json")``."""
    return data_dir().joinpath(*parts)
