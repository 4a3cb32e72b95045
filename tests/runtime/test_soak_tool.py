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
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\.\d\s+(2x|1x)\s", line)]
    assert len(rows) >= 3 and {r[1] for r in rows} == {"2x", "1x"}, out
    for r in rows:
        sent, done, miss, rss = float(r[2]), float(r[4]), float(r[5]), float(r[8])
        assert 0 <= sent <= 200 and done >= 0 and 0 <= miss <= 100 and 20 < rss < 2000, r
    assert sum(float(r[4]) for r in rows if r[1] == "2x") > 0  # jobs completed under overload
    assert "RSS: first" in out and out.rstrip().endswith("PASS"), out
