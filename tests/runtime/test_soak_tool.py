"""tools/soak.py runs against a real service for a few seconds and reports sane figures (the long run is a script,
not a test: `python3 tools/soak.py --seconds 120`)."""
from __future__ import annotations

import re
import subprocess
import sys

from runtime_harness import ROOT


def test_soak_script_runs_briefly_and_reports_sane_figures() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "soak.py"), "--scenario", "digits", "--rate", "40",
                          "--seconds", "3", "--normal-seconds", "1.5", "--every", "1", "--warmup", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\.\d\s+(2x|norm)\s", line)]
    assert len(rows) >= 3 and {r[1] for r in rows} == {"2x", "norm"}, out
    for r in rows:
        sent, done, miss, rss = float(r[2]), float(r[4]), float(r[5]), float(r[8])
        assert 0 <= sent <= 200 and done >= 0 and 0 <= miss <= 100 and 20 < rss < 2000, r
    assert sum(float(r[4]) for r in rows if r[1] == "2x") > 0  # jobs completed under overload
    assert "RSS: first" in out and out.rstrip().endswith("PASS"), out


def test_soak_4x_mode_reports_the_capacity_held() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "soak.py"), "--scenario", "digits", "--rate", "40",
                          "--4x", "--hold-seconds", "2", "--seconds", "2", "--normal-seconds", "1", "--every", "1",
                          "--warmup", "1"], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)
    out = res.stdout
    phases = {line.split()[1] for line in out.splitlines() if re.match(r"\s+\d+\.\d\s+(1x|2x|4x|norm)\s", line)}
    assert phases == {"1x", "2x", "4x", "norm"}, out
    held = next(line for line in out.splitlines() if line.startswith("capacity held:"))
    ratios = [int(x) for x in re.findall(r"(\d+)%", held.split("against 1x:")[1])[:2]]
    assert len(ratios) == 2 and all(r >= 0 for r in ratios), held
    # the exit status says whether the target was met, and the last line agrees
    assert (res.returncode == 0) == out.rstrip().endswith("PASS") == all(r >= 90 for r in ratios), out
