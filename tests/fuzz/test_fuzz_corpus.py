"""Every input kept in ``tests/fuzz/corpus/`` goes through its parser again, so that what fuzzing found stays fixed.

- ``frame_decoder/``: inputs of ``tools/fuzz_frame_decoder.py`` (found crashes, renamed ``regression-*`` once
  fixed, and the inputs that reached new coverage); each runs through that tool's ``check_one`` (valid or not).
- ``scenario/``, ``platform/``, ``trace/``, ``manifest/``, ``config/``: bad files, one per bug found; each must be
  refused with the parser's own error, naming the file (and, in a trace, the line; in the config, the key).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fuzz_support import CORPUS, load_tool

from edge_sdrm3.catalog import FileFormatError, load_platform, load_scenario
from edge_sdrm3.runtime.config import ConfigError, load_config
from edge_sdrm3.sim import trace
from edge_sdrm3.tflite.manifest import ManifestError, load_manifest

fuzzer = load_tool("fuzz_frame_decoder")


def _files(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).glob("*") if p.is_file())


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


FRAMES = _files("frame_decoder")


def test_the_corpus_holds_the_regressions() -> None:
    assert sum(p.name.startswith("regression-") for p in FRAMES) >= 5
    for kind in ("scenario", "platform", "trace", "manifest", "config"):
        assert _files(kind), kind


@pytest.mark.parametrize("path", FRAMES, ids=_ids(FRAMES))
def test_frame_decoder_corpus(path: Path) -> None:
    fuzzer.check_one(path.read_bytes())


LOADERS = {"scenario": (load_scenario, FileFormatError), "platform": (load_platform, FileFormatError),
           "trace": (trace.read, FileFormatError), "manifest": (load_manifest, ManifestError),
           "config": (load_config, ConfigError)}
FILES = [(kind, p) for kind in LOADERS for p in _files(kind)]


@pytest.mark.parametrize("kind, path", FILES, ids=[f"{k}/{p.name}" for k, p in FILES])
def test_bad_file_corpus(kind: str, path: Path) -> None:
    load, error = LOADERS[kind]
    with pytest.raises(error) as e:
        load(str(path))
    if kind == "config":  # a config error names the section and key, or the file when it is no TOML at all
        assert re.match(r"config: (\[\w+\] \w+|" + re.escape(str(path)) + r"): ", str(e.value)), e.value
    else:
        assert str(path) in str(e.value), e.value
    if kind == "trace":
        assert re.search(rf"{re.escape(str(path))}: line \d+: ", str(e.value)), e.value
