"""Nonsense sizes are refused at once with a one-line error (exit 2), before any frame is made."""
import json
import resource

import pytest

from edge_sdrm3.catalog import SCENARIO_DIR, load_scenario
from edge_sdrm3.cli import main
from edge_sdrm3.sim.trace import MAX_DURATION_S, TraceSizeError, generate


@pytest.mark.parametrize("duration, msg", [("-1", "got -1.0"), ("0", "got 0.0"), ("nan", "got nan"),
                                           ("1e9", "at most 86400 s"), ("inf", "got inf")])
def test_replay_refuses_a_nonsense_duration(capsys, duration, msg):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["replay", "vr_gaming", "--platform", "single_4k_ws", "--policy", "fcfs",
                 "--duration", duration]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--duration" in err and msg in err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: nothing was built


def test_a_trace_file_with_a_negative_duration_is_refused(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    assert main(["trace", "generate", "vr_gaming", "-o", str(path), "--duration", "0.5"]) == 0
    assert main(["replay", str(path), "--platform", "single_4k_ws", "--policy", "fcfs", "--duration", "-1"]) == 2
    assert main(["trace", "generate", "vr_gaming", "-o", str(path), "--duration", "-3"]) == 2
    assert capsys.readouterr().err.count("must be > 0") == 2


def test_a_huge_frame_rate_is_refused_not_hung(tmp_path, capsys):
    doc = json.loads((SCENARIO_DIR / "vr_gaming.json").read_text())
    doc["models"][0]["fps"] = 1e308
    path = tmp_path / "fast.json"
    path.write_text(json.dumps(doc))
    assert main(["replay", str(path), "--platform", "single_4k_ws", "--policy", "fcfs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than a replay takes" in err
    # a day is allowed; past it, or past the frame limit, generate refuses too
    sc = load_scenario("vr_gaming")
    with pytest.raises(TraceSizeError):
        generate(sc, MAX_DURATION_S * 1.01)
    assert len(generate(sc, 0.1).frames) > 0
