"""Model tooling: a small .tflite writer, a model splitter, the model catalog and the MediaPipe fetcher.

Nothing here imports ``hal`` or ``edge_sdrm3.core``: these modules read and write model files only.
The flatbuffer schema comes from ``ai_edge_litert.schema_py_generated`` (no TensorFlow).
"""
from __future__ import annotations


from types import ModuleType


class ModelToolError(Exception):
    """A model file, manifest or download that cannot be used; the message names the file and the reason."""


def schema() -> ModuleType:
    """The .tflite flatbuffer schema (object API), from ai-edge-litert. tflite-runtime, the runtime of 32-bit Arm
    boards, does not ship it: there the writer and the splitter refuse with this error instead of an ImportError."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as e:
        raise ModelToolError(f"writing or splitting a .tflite file needs ai-edge-litert's flatbuffer schema, which "
                             f"tflite-runtime does not ship ({e}); do it on a machine with ai-edge-litert and copy "
                             f"the result (README: Boards)") from None
    return schema_py_generated


__all__ = ["ModelToolError", "schema"]
