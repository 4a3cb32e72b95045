"""Model tooling: a small .tflite writer, a model splitter, the model catalog and the MediaPipe fetcher.

Nothing here imports ``hal`` or ``edge_sdrm3.core``: these modules read and write model files only.
The flatbuffer schema comes from ``ai_edge_litert.schema_py_generated`` (no TensorFlow).
"""
from __future__ import annotations


class ModelToolError(Exception):
    """A model file, manifest or download that cannot be used; the message names the file and the reason."""


__all__ = ["ModelToolError"]
