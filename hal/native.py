"""Native libraries of the devices: their names per platform, finding and loading them, what they write to stderr.

One table per delegate maps the platform to its library's file name (as pycoral's edgetpu.py does for
libedgetpu); :func:`load_library` dlopens one with a typed error that names it; native code reports some
failures (LiteRT's 'No adapters found') only on file descriptor 2, which :func:`captured_native_stderr` reads.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence

from hal import runtime
from hal.errors import DeviceUnavailable

log = logging.getLogger(__name__)

# Native library of each delegate, per platform (as pycoral's edgetpu.py does for libedgetpu).
EDGETPU_LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}
GPU_DELEGATE_LIBRARY = {
    "linux": "libtensorflowlite_gpu_delegate.so",
    "darwin": "libtensorflowlite_gpu_delegate.dylib",
    "win32": "tensorflowlite_gpu_delegate.dll",
}


def platform_key() -> str:
    return "darwin" if sys.platform == "darwin" else "win32" if sys.platform.startswith("win") else "linux"


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to fd 2 (LiteRT reports e.g. 'No adapters found' only there).

    Process-wide while active, so used only around short probes/compiles. The full text is logged at
    DEBUG; callers put its error lines into the exception they raise.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            if text:
                log.debug("native stderr during probe:\n%s", text)
            lines.extend(text.splitlines())


def salient(lines: Sequence[str], limit: int = 3) -> str:
    """The few native log lines that say what went wrong (compiler-plugin noise left out)."""
    keep: list[str] = []
    for line in lines:
        if "CompilerPlugin" in line or not re.search(r"ERROR|Failed to|No adapters|not accelerated", line):
            continue
        text = re.sub(r"^.*?\] ", "", line.strip().lstrip("└ ")).strip()
        if text and text not in keep:
            keep.append(text)
    return "; ".join(keep[-limit:])


def load_library(library: str, what: str) -> ctypes.CDLL:
    """dlopen a native library, turning absence into DeviceUnavailable that names it.

    Done before load_delegate so that a missing library is reported cleanly (the runtime's Delegate
    otherwise leaves a half-built object whose finaliser prints a traceback).
    """
    try:
        return ctypes.CDLL(library)
    except OSError as exc:
        raise DeviceUnavailable(f"{what}: cannot load {library}: {exc}") from exc


def find_npu_dispatch() -> str:
    """The first LiteRT vendor dispatch directory whose library (and its dependencies) loads here."""
    rt = runtime.select_runtime()
    if rt.name != "ai_edge_litert":
        raise DeviceUnavailable(f"npu: needs ai_edge_litert's vendor dispatch, runtime is {rt.name}")
    base = os.path.join(os.path.dirname(os.path.abspath(str(rt.module.__file__))), "vendors")
    pattern = "LiteRtDispatch*.dll" if platform_key() == "win32" else "libLiteRtDispatch_*.so"
    libraries = sorted(glob.glob(os.path.join(base, "*", "dispatch", pattern)))
    if not libraries:
        raise DeviceUnavailable(f"npu: no LiteRT vendor dispatch library installed under {base}/*/dispatch")
    failures = []
    for lib in libraries:
        try:
            load_library(lib, "npu")
            return os.path.dirname(lib)
        except DeviceUnavailable as exc:
            failures.append(str(exc).removeprefix("npu: "))
    raise DeviceUnavailable("npu: no vendor dispatch library loads: " + "; ".join(failures))
