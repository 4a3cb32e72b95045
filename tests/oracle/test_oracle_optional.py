"""The oracle is an optional extra: without OR-Tools its command says how to install it, and the replay and the
service never import it (these tests need no OR-Tools)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_missing_ortools_says_how_to_install_it():
    code = ("import sys; sys.modules['ortools'] = None\n"
            "from edge_sdrm3.cli import main\n"
            "sys.exit(main(['oracle', 'social_b', '--platform', 'dual_4k_ws_os', '--duration', '0.05']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1
    assert "pip install" in p.stderr and "oracle" in p.stderr


def test_replay_never_imports_ortools():
    code = ("import sys\n"
            "from edge_sdrm3.cli import main\n"
            "main(['replay', 'social_b', '--platform', 'dual_4k_ws_os', '--duration', '0.2', '--policy', 'sdrm3',"
            " '--json'])\n"
            "import edge_sdrm3.runtime.service\n"
            "sys.exit(1 if 'ortools' in sys.modules else 0)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
