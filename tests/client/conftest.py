"""Fixtures of the client tests: ``fake``, a fake service (see _fake_service.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _fake_service import FakeService


@pytest.fixture
def fake(tmp_path: Path) -> Any:
    svc = FakeService(tmp_path)
    yield svc
    svc.close()
