"""The one place that chooses the TFLite runtime.

Preference: ``ai_edge_litert.interpreter`` (LiteRT, current wheels, also has ``CompiledModel`` for the
GPU/NPU accelerators), else ``tflite_runtime.interpreter`` (older boards, e.g. Coral images). Nothing
else in the project imports either module directly, so a board with only one of them works unchanged,
and ``edge-sdrm3 platforms --detect`` can say which one it got (:func:`runtime_info`).

The choice is made lazily, on first use, so that importing :mod:`hal` never fails on a machine without
a runtime (replay on a laptop needs none); using it then raises :class:`~hal.errors.RuntimeMissing`.
``Interpreter`` and ``load_delegate`` are module attributes resolved on access (PEP 562).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from hal.errors import RuntimeMissing

# (import name of the interpreter module, distribution name for the version), in order of preference.
_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


@dataclass(frozen=True)
class Runtime:
    """The selected runtime: its interpreter module and what it is."""

    name: str  # top-level package: 'ai_edge_litert' or 'tflite_runtime'
    version: str
    module: ModuleType  # the *.interpreter module

    @functools.cached_property
    def has_compiled_model(self) -> bool:
        """LiteRT CompiledModel API (GPU/NPU accelerators) importable. Asked on demand, not when the runtime is
        selected: importing it loads ml_dtypes and the tensor-buffer wrappers (+7 MB resident, 0.2-0.8 s), which
        a process that only runs Interpreters on the CPU (the service on emulated accelerators) never needs."""
        return _has_compiled_model(self.name)


def _version_of(distribution: str, package: ModuleType | None) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(package, "__version__", "unknown"))


def _has_compiled_model(package: str) -> bool:
    if package != "ai_edge_litert":
        return False
    try:
        importlib.import_module("ai_edge_litert.compiled_model")
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def select_runtime() -> Runtime:
    """Import the preferred TFLite runtime once and describe it; RuntimeMissing if there is none."""
    failures: list[str] = []
    for module_name, distribution in _CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            failures.append(f"{module_name}: {exc}")
            continue
        package = module_name.split(".", 1)[0]
        return Runtime(package, _version_of(distribution, sys.modules.get(package)), module)
    raise RuntimeMissing(
        "no TFLite runtime: install ai-edge-litert (pip install ai-edge-litert) or tflite-runtime; tried "
        + "; ".join(failures)
    )


def runtime_info() -> dict[str, Any]:
    """What `edge-sdrm3 platforms --detect` prints about the runtime (raises RuntimeMissing if none)."""
    rt = select_runtime()
    return {
        "runtime": rt.name,
        "version": rt.version,
        "module": rt.module.__name__,
        "compiled_model": rt.has_compiled_model,
    }


def make_interpreter(
    model_path: str | None, *, num_threads: int, delegates: Sequence[Any] = (), model_content: bytes | None = None
) -> Any:
    """Build an Interpreter with an explicit thread count (the runtime's default is not ours to guess).

    With no delegates the default op resolver applies XNNPACK on CPU. Raises ValueError/RuntimeError
    from the runtime unchanged; devices.py turns them into typed errors that name the file.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    rt = select_runtime()
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if model_content is not None:
        kwargs["model_content"] = model_content
    else:
        kwargs["model_path"] = model_path
    if delegates:
        kwargs["experimental_delegates"] = list(delegates)
    return rt.module.Interpreter(**kwargs)


def __getattr__(name: str) -> Any:
    """Expose ``Interpreter`` and ``load_delegate`` of the selected runtime as module attributes."""
    if name in ("Interpreter", "load_delegate"):
        return getattr(select_runtime().module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
