"""Fixtures of the runtime tests (helpers in runtime_harness.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime_harness import Running, make_workdir, write_config


@pytest.fixture
def files(tmp_path: Path) -> dict:
    return make_workdir(tmp_path)


@pytest.fixture
def service(tmp_path: Path, files: dict):
    svc = Running(write_config(tmp_path, files), process=True)
    yield svc
    if svc.thread.is_alive():
        svc.stop()
