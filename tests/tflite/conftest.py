"""Shared helpers for the model-tooling tests: run .tflite files in the LiteRT interpreter, chain segments."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ai_edge_litert = pytest.importorskip("ai_edge_litert.interpreter")
Interpreter = ai_edge_litert.Interpreter

ROOT = Path(__file__).resolve().parents[2]


def run_model(path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def run_chain(paths, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run segments in order, passing tensors by name; returns every tensor produced."""
    env = dict(feeds)
    for p in paths:
        env.update(run_model(p, env))
    return env


def random_feeds(path, seed: int = 0) -> dict[str, np.ndarray]:
    it = Interpreter(model_path=str(path))
    rng = np.random.default_rng(seed)
    feeds = {}
    for d in it.get_input_details():
        if np.dtype(d["dtype"]) == np.float32:
            feeds[d["name"]] = rng.random(tuple(d["shape"]), dtype=np.float32)
        else:
            info = np.iinfo(d["dtype"])
            feeds[d["name"]] = rng.integers(info.min, info.max + 1, tuple(d["shape"])).astype(d["dtype"])
    return feeds


class Runner:
    run = staticmethod(run_model)
    chain = staticmethod(run_chain)
    feeds = staticmethod(random_feeds)
    root = ROOT


@pytest.fixture
def tfl() -> Runner:
    return Runner()
