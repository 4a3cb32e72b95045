"""Recorded picks under both estimates: a replay's decisions with the compiled schedule estimate are those of the
pure-Python one, to the byte.

Each cell is replayed twice by the command a user runs (`edge-sdrm3 replay ... --json --record FILE`), once as
installed (the compiled estimate where it was built) and once with ``EDGE_SDRM3_PURE=1``: the job and segment
records (every run, drop and end) and the summary must be byte-identical. The cells cover big.LITTLE, four
accelerators, a single one, the supernet selector, shedding and a random workload mix; and the in-process replay
hands none of the policy's estimates to the pure-Python fallback (they all run compiled).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdrm3.catalog import load_platform, load_scenario
from edge_sdrm3.core.policies import sdrm3_estimate
from edge_sdrm3.sim.replay import replay
from edge_sdrm3.sim.trace import generate

try:
    from edge_sdrm3.core.policies import _sdrm3_estimate_c as compiled
except ImportError:
    compiled = None

pytestmark = pytest.mark.skipif(compiled is None, reason="the C estimate is not built here (no C compiler or Python "
                                "headers at install): the pure-Python estimate is the only one")

CELLS = [
    ("ar_assistant", "quad_8k_ws_os_ws_os", "sdrm3", []),
    ("vr_gaming", "dual_4k_biglittle_ws_os", "sdrm3", []),
    ("social_a", "dual_4k_ws_os", "sdrm3+supernet", []),
    ("mediapipe_xr", "headset_placement", "sdrm3", []),
    ("outdoor_a", "single_4k_ws", "sdrm3", ["--param", "shed=0"]),
    ("random:3", "quad_4k_ws_os_ws_os", "sdrm3", []),
]


def cli(args: list[str], cwd: Path, pure: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_SDRM3_PURE"}
    if pure:
        env["EDGE_SDRM3_PURE"] = "1"
    r = subprocess.run([sys.executable, "-m", "edge_sdrm3.cli", *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.mark.parametrize("scenario,platform,policy,params", CELLS, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CELLS])
def test_a_replay_decides_the_same_under_both_estimates(scenario: str, platform: str, policy: str, params: list,
                                                         tmp_path: Path) -> None:
    if scenario.startswith("random:"):
        cli(["scenarios", "random", "--seed", scenario[7:], "-o", str(tmp_path)], tmp_path, pure=False)
        (scenario,) = [str(p) for p in tmp_path.glob("random_*.json")]
    outs = {}
    for pure in (False, True):
        rec = tmp_path / f"run-{pure}.jsonl"
        r = cli(["replay", scenario, "--platform", platform, "--policy", policy, "--duration", "6", *params, "--json",
                 "--record", str(rec)], tmp_path, pure)
        outs[pure] = (r.stdout, rec.read_bytes())
    assert outs[False][1].count(b"\n") > 1000  # a run with many records, not an empty one
    assert outs[False][1] == outs[True][1]
    assert outs[False][0] == outs[True][0]


@pytest.mark.skipif(os.environ.get("EDGE_SDRM3_PURE") == "1", reason="EDGE_SDRM3_PURE=1: the policy runs pure")
def test_a_replay_runs_every_estimate_compiled() -> None:
    assert sdrm3_estimate.COMPILED
    before, calls = compiled.fallbacks(), compiled.calls()
    replay(generate(load_scenario("social_b"), 4, 0), load_platform("dual_4k_biglittle_ws_os"), "sdrm3")
    assert compiled.calls() - calls > 100  # the policy's estimates (shedding, energy guard) ran compiled
    assert compiled.fallbacks() == before
