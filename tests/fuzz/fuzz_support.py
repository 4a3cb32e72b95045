"""Shared strategies of the fuzz tests: odd values per file format, and one-field mutations of a valid document.

A mutation picks one node of a valid document (any depth) and replaces it with an odd value, deletes it,
adds an unknown key or entry next to it, or duplicates a list entry; the parser must then either accept
the document or refuse it with its own typed error.
"""
from __future__ import annotations

import copy
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"

#: deterministic (CI), no deadline (first calls import and cache), modest: the whole suite in ~20 s
FUZZ = settings(derandomize=True, deadline=None, max_examples=100, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
#: for the parametrized one-field tests (one run per field): fewer examples each
FUZZ_FIELD = settings(FUZZ, max_examples=20)

_HUGE = [2**31, 2**53 + 1, 2**63 - 1, 2**64 - 1, -(2**63)]

#: values msgpack can carry (ints within 64 bits, bytes)
msgpack_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.sampled_from(_HUGE),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.binary(max_size=12),
    st.lists(st.integers(-3, 2**64 - 1), max_size=5), st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3) | st.text(max_size=3), max_size=3),
)
#: values JSON (as Python writes and reads it: NaN, Infinity, integers of any size) can carry
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([*_HUGE, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.integers() | st.none() | st.floats(), max_size=5), st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3) | st.text(max_size=3), max_size=3),
)
#: values TOML can carry (64-bit integers, no null, dates)
toml_values = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.dates(), st.datetimes(), st.times(),
    st.lists(st.integers(-3, 2**63 - 1), max_size=5), st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3) | st.text(max_size=3), max_size=3),
)


def paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every node of a JSON-like document, as a path of keys and indices (the root is ``()``)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, (*prefix, i))


def _at(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: Any, values: st.SearchStrategy, skip_root: bool = True) -> tuple[Any, str]:
    """``doc`` (deep-copied) with one node changed; returns (document, what was done) for the failure report."""
    doc = copy.deepcopy(doc)
    candidates = [p for p in paths(doc) if p or not skip_root]
    path = draw(st.sampled_from(candidates))
    node = _at(doc, path)
    ops = ["replace"] + (["delete"] if path else []) + (["add"] if isinstance(node, (dict, list)) else []) \
        + (["duplicate"] if isinstance(node, list) and node else [])
    op = draw(st.sampled_from(ops))
    if op == "replace":
        value = draw(values)
        if path:
            _at(doc, path[:-1])[path[-1]] = value
        else:
            doc = value
        return doc, f"{op} {path} with {value!r}"
    if op == "delete":
        parent = _at(doc, path[:-1])
        del parent[path[-1]]
        return doc, f"{op} {path}"
    if op == "duplicate":
        node.append(copy.deepcopy(node[draw(st.integers(0, len(node) - 1))]))
        return doc, f"{op} an entry of {path}"
    value = draw(values)
    if isinstance(node, dict):
        key = draw(st.text(min_size=1, max_size=8))
        node[key] = value
        return doc, f"add {path}.{key} = {value!r}"
    node.insert(draw(st.integers(0, len(node))), value)
    return doc, f"insert {value!r} into {path}"


def not_of_type(*types: type, values: st.SearchStrategy = json_values) -> st.SearchStrategy:
    """Odd values of none of ``types`` (``bool`` counts apart from ``int``; ``int`` counts as a number only when
    ``float`` is named, as the parsers accept an integer where they want a number)."""
    def ok(v: Any) -> bool:
        if isinstance(v, bool):
            return bool not in types
        if isinstance(v, int):
            return int not in types and float not in types
        return not isinstance(v, tuple(t for t in types if t is not bool and t is not int))
    return values.filter(ok)


FIELD = re.compile(r"field '|\w\[\d+\]|missing field")


def load_tool(name: str) -> ModuleType:
    """A script of ``tools/`` as a module (they are not a package)."""
    path = ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
