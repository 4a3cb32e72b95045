"""A live run replayed from its log: on a timing-only emulated platform (its blocks far longer than the service's
own overhead), the replay of the service's job log with the costs it learned places the jobs where the service
placed them and agrees with it on misses and energy (DESIGN.md §7, Live; tools/bench_live.py measures it under
load for every policy)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from runtime_harness import Running, digits_images, make_workdir, read_log, write_config

from edge_sdrm3.cli import main as cli_main

BLOCK_MS = 16.0  # every block on the fast accelerator; the slow one 2.5 times as long


def _platform(path: Path) -> None:
    """Two timing-only accelerators: ``fast`` (16 ms a block, 1 W) and ``slow`` (40 ms, 0.3 W)."""
    doc = json.loads(path.read_text())
    fast = doc["accelerators"][0]
    for model in fast["costs"]["models"].values():
        for v in model["variants"]:
            v["latency_ms"] = v["latency_p90_ms"] = [BLOCK_MS] * 4
            v["energy_mj"] = [BLOCK_MS] * 4
            v["whole_latency_ms"] = 4 * BLOCK_MS
    fast.update({"id": "fast", "kind": "emulated"})
    fast.pop("device", None)
    fast["costs"]["energy_source"] = "model:test"
    doc["accelerators"] = [fast, {"id": "slow", "kind": "emulated", "idle_power_mw": 0.0,
                                  "costs": {"table": "relative", "of": "fast", "speed": 0.4, "power_mw": 300.0}}]
    path.write_text(json.dumps(doc))


def test_a_live_run_replayed_from_its_log_agrees_with_it(tmp_path: Path, capsys) -> None:
    files = make_workdir(tmp_path, fps=2.5)  # 400-ms deadlines: a message is done in about 115 ms
    _platform(Path(files["platform"]))
    sc = json.loads(Path(files["scenario"]).read_text())
    sc["models"][1] = {"name": "digits_cascade", "fps": 2.5}  # two root models of the same deadline
    Path(files["scenario"]).write_text(json.dumps(sc))
    run = Running(write_config(tmp_path, files, workload={"emulated_compute": "never"},
                               scheduler={"policy": "edf", "supernet": False, "learn_costs": True}), process=True)
    n = 40
    try:
        for i in range(n):  # each message names the roots out of their name order: the service's order decides
            run.send("s", i, [digits_images(1, seed=i)[0]], models=["digits_cascade", "digits"])
            time.sleep(0.15)  # a message's two jobs share the two accelerators, each block to the fastest free one
        res = run.results(n=2 * n, timeout=10)
    finally:
        assert run.stop() == 0
    assert len(res) == 2 * n
    log_path = run.cfg.state_dir / "jobs.jsonl"
    rec = tmp_path / "replay.jsonl"
    assert cli_main(["replay", str(log_path), "--platform", files["platform"], "--policy", "edf", "--costs",
                     "learned", "--record", str(rec), "--json"]) == 0
    capsys.readouterr()

    def jobs_and_blocks(path: Path) -> tuple[dict, dict]:
        recs = read_log(path)
        blocks: dict = {}
        for r in sorted((r for r in recs if r.get("type") == "segment"), key=lambda r: r["start_ms"]):
            blocks.setdefault((r["model"], r["frame"]), []).append(r["accelerator"])
        return {(r["model"], r["frame"]): r for r in recs if r.get("type") == "job"}, blocks

    live, live_blocks = jobs_and_blocks(log_path)
    rep, rep_blocks = jobs_and_blocks(rec)
    assert set(rep) == set(live) and len(live) == 2 * n
    same = sum(rep_blocks.get(k) == b for k, b in live_blocks.items())
    assert same >= 0.9 * len(live), f"{same} of {len(live)} jobs placed alike, block for block"
    assert live_blocks[("digits_cascade", 0)] == ["fast"] * 4  # named first: the fastest, as in the replay
    assert "slow" in live_blocks[("digits", 0)]  # placement mattered

    def missed(jobs: dict) -> float:
        return sum(r["status"] != "done" for r in jobs.values()) / len(jobs)

    def energy(jobs: dict) -> float:
        return sum(r["energy_mj"] for r in jobs.values())

    assert abs(missed(live) - missed(rep)) <= 0.02
    assert abs(energy(live) - energy(rep)) <= 0.05 * energy(rep)


def test_an_overloaded_live_run_replayed_with_its_measured_block_times_takes_its_decisions(tmp_path: Path,
                                                                                           capsys) -> None:
    """Under load, a few milliseconds of a block's real time decide which accelerator frees first; replayed with
    each block's measured time (``--costs measured``), the replay takes the service's decisions: the same jobs
    admitted, run on the same accelerators at the same times, and the same fates."""
    files = make_workdir(tmp_path, fps=2.5)
    _platform(Path(files["platform"]))
    sc = json.loads(Path(files["scenario"]).read_text())
    sc["models"][1] = {"name": "digits_cascade", "fps": 2.5}
    Path(files["scenario"]).write_text(json.dumps(sc))
    run = Running(write_config(tmp_path, files, workload={"emulated_compute": "never"},
                               scheduler={"policy": "edf", "supernet": False, "learn_costs": True}), process=True)
    n = 40
    try:
        for i in range(n):  # a message every 60 ms: about twice what the two accelerators finish in time
            run.send("s", i, [digits_images(1, seed=i)[0]], models=["digits_cascade", "digits"])
            time.sleep(0.06)
        run.results(n=2 * n, timeout=15)
    finally:
        assert run.stop() == 0
    log_path = run.cfg.state_dir / "jobs.jsonl"
    rec = tmp_path / "replay.jsonl"
    assert cli_main(["replay", str(log_path), "--platform", files["platform"], "--policy", "edf", "--costs",
                     "measured", "--record", str(rec), "--json"]) == 0
    capsys.readouterr()

    def runs(path: Path) -> tuple[dict, dict]:
        recs = read_log(path)
        blocks: dict = {}
        for r in sorted((r for r in recs if r.get("type") == "segment"), key=lambda r: r["start_ms"]):
            blocks.setdefault((r["model"], r["frame"]), []).append((r["accelerator"], r["start_ms"]))
        return {(r["model"], r["frame"]): (r["status"], r["reason"]) for r in recs if r.get("type") == "job"}, blocks

    live, live_blocks = runs(log_path)
    rep, rep_blocks = runs(rec)
    assert set(rep) == set(live) and len(live) == 2 * n
    fates = [s for s, _ in live.values()]
    assert fates.count("done") < len(fates) - 5, f"not loaded: {fates}"  # jobs refused or missed: decisions mattered
    def same_blocks(a: list, b: list) -> bool:  # same accelerators, each block started within 10 us
        return len(a) == len(b) and all(x[0] == y[0] and abs(x[1] - y[1]) <= 0.01 for x, y in zip(a, b))

    alike = sum(rep[k] == live[k] and same_blocks(rep_blocks.get(k, []), live_blocks.get(k, [])) for k in live)
    assert alike >= 0.95 * len(live), f"{alike} of {len(live)} jobs alike (fate, blocks and their start times)"
