"""Costs learned live (core/estimator.py in the service): an emulated accelerator that is slower than its table says
(its every invoke held 30 ms longer, the platform's ``fault``: a host that cannot keep up with the device it
emulates) is learned, the job log records the learned costs, and ``replay LOG --costs learned`` replays with them."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from runtime_harness import Running, digits_images, make_workdir, read_log, write_config

from edge_sdrm3.cli import main as cli_main

SLOW_MS = 30.0


def test_a_slow_accelerator_is_learned_logged_and_replayed(tmp_path: Path, capsys) -> None:
    files = make_workdir(tmp_path, deadline_ms=1000.0, trigger=0.0)
    doc = json.loads(Path(files["platform"]).read_text())
    doc["accelerators"][1]["fault"] = {"hang_rate": 1.0, "hang_s": SLOW_MS / 1000.0}
    Path(files["platform"]).write_text(json.dumps(doc))
    run = Running(write_config(tmp_path, files, service={"hang_min_ms": 5000.0},
                               scheduler={"policy": "fcfs", "supernet": False, "learn_costs": True}), process=True)
    try:
        for i in range(12):
            run.send("s", i, [digits_images(1, seed=i)[0]], models=["digits"])
            time.sleep(0.15)
        res = run.results(n=12, timeout=10)
    finally:
        assert run.stop() == 0
    assert len(res) == 12
    log_path = run.cfg.state_dir / "jobs.jsonl"
    log = read_log(log_path)
    costs = [r for r in log if r.get("type") == "cost" and r["accelerator"] == "npu0"]
    assert {c["segment"] for c in costs} == {0, 1, 2, 3}
    ran = {(r["model"], r["variant_name"]) for r in log if r.get("type") == "job"}  # the rest: costed, not measured
    last = {c["segment"]: c["latency_ms"] for c in costs if (c["model"], c["variant_name"]) in ran}
    # each invoke is 30 ms late (the table says well under 1 ms); blocks run in one go share their time, so the
    # job's four segments are what is learned for sure
    assert 4 * SLOW_MS * 0.9 <= sum(last.values()) <= 4 * SLOW_MS * 2, last
    live = [r["accelerator"] for r in sorted((r for r in log if r.get("type") == "job"), key=lambda r: r["frame"])]
    # the first job trusted the table (npu0, 4x the cpu's speed); once npu0 was learned slow, the policy moved off it
    assert live[0] == "npu0" and live[-4:] == ["cpu"] * 4

    def replayed(*extra: str) -> list[str]:
        rec = tmp_path / f"replay{len(extra)}.jsonl"
        assert cli_main(["replay", str(log_path), "--platform", files["platform"], "--policy", "fcfs", "--json",
                         "--record", str(rec), *extra]) == 0
        capsys.readouterr()
        return [r["accelerator"] for r in sorted((r for r in read_log(rec) if r.get("type") == "job"),
                                                  key=lambda r: r["frame"])]

    assert replayed() == ["npu0"] * 12  # the table alone: npu0 throughout
    assert replayed("--costs", "learned") == live  # with the costs as they were learned: the live run's placement


@pytest.mark.parametrize("costs,missing", [("learned", "no cost records"), ("measured", "no segment records")])
def test_replay_costs_from_a_log_need_its_records(tmp_path: Path, capsys, costs: str, missing: str) -> None:
    files = make_workdir(tmp_path)
    trace = tmp_path / "t.jsonl"
    assert cli_main(["trace", "generate", files["scenario"], "--duration", "0.2", "-o", str(trace)]) == 0
    capsys.readouterr()
    assert cli_main(["replay", str(trace), "--platform", files["platform"], "--policy", "fcfs", "--costs",
                     costs]) == 2
    assert missing in capsys.readouterr().err
