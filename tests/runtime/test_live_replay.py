"""A live run replayed from its log: on a timing-only emulated platform (its blocks far longer than the service's
own overhead), the replay of the service's job log with the costs it learned places the jobs where the service
placed them and agrees with it on misses and energy (DESIGN.md §7, Live; tools/bench_live.py measures it under
load for every policy)."""
from __future__ import annotations

import contextlib
import io
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


def _live_and_replayed(tmp_path: Path, gap_s: float, costs: str) -> tuple[list[dict], list[dict]]:
    """40 messages ``gap_s`` apart, each naming two root models of the same deadline (400 ms) out of their name
    order (the service's order decides), served by ``edf`` learning its costs, then its log replayed with
    ``--costs costs``: the records of the live log and of the replay."""
    files = make_workdir(tmp_path, fps=2.5)  # 400-ms deadlines: a message is done in about 115 ms
    _platform(Path(files["platform"]))
    sc = json.loads(Path(files["scenario"]).read_text())
    sc["models"][1] = {"name": "digits_cascade", "fps": 2.5}  # two root models of the same deadline
    Path(files["scenario"]).write_text(json.dumps(sc))
    run = Running(write_config(tmp_path, files, workload={"emulated_compute": "never"},
                               scheduler={"policy": "edf", "supernet": False, "learn_costs": True}), process=True)
    n = 40
    try:
        for i in range(n):
            run.send("s", i, [digits_images(1, seed=i)[0]], models=["digits_cascade", "digits"])
            time.sleep(gap_s)
        res = run.results(n=2 * n, timeout=15)
    finally:
        assert run.stop() == 0
    assert len(res) == 2 * n
    log_path = run.cfg.state_dir / "jobs.jsonl"
    rec = tmp_path / "replay.jsonl"
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["replay", str(log_path), "--platform", files["platform"], "--policy", "edf", "--costs",
                         costs, "--record", str(rec), "--json"]) == 0
    return read_log(log_path), read_log(rec)


def _jobs_and_blocks(recs: list[dict]) -> tuple[dict, dict]:
    """Job records by (model, frame), and each job's blocks in order as (accelerator, start_ms)."""
    blocks: dict = {}
    for r in sorted((r for r in recs if r.get("type") == "segment"), key=lambda r: r["start_ms"]):
        blocks.setdefault((r["model"], r["frame"]), []).append((r["accelerator"], r["start_ms"]))
    return {(r["model"], r["frame"]): r for r in recs if r.get("type") == "job"}, blocks


def test_a_live_run_replayed_from_its_log_agrees_with_it(tmp_path: Path) -> None:
    # a message every 150 ms: its two jobs share the two accelerators, each block to the fastest free one
    live, rep = (_jobs_and_blocks(r) for r in _live_and_replayed(tmp_path, 0.15, "learned"))
    (live, live_blocks), (rep, rep_blocks) = live, rep
    places = {k: [a for a, _ in b] for k, b in live_blocks.items()}
    rep_places = {k: [a for a, _ in b] for k, b in rep_blocks.items()}
    assert set(rep) == set(live) and len(live) == 80
    same = sum(rep_places.get(k) == b for k, b in places.items())
    assert same >= 0.9 * len(live), f"{same} of {len(live)} jobs placed alike, block for block"
    assert places[("digits_cascade", 0)] == ["fast"] * 4  # named first: the fastest, as in the replay
    assert "slow" in places[("digits", 0)]  # placement mattered

    def missed(jobs: dict) -> float:
        return sum(r["status"] != "done" for r in jobs.values()) / len(jobs)

    def energy(jobs: dict) -> float:
        return sum(r["energy_mj"] for r in jobs.values())

    assert abs(missed(live) - missed(rep)) <= 0.02
    assert abs(energy(live) - energy(rep)) <= 0.05 * energy(rep)


def test_an_overloaded_live_run_replayed_with_its_measured_block_times_takes_its_decisions(tmp_path: Path) -> None:
    """Under load, a few milliseconds of a block's real time decide which accelerator frees first; replayed with
    each block's measured time (``--costs measured``), the replay takes the service's decisions: the same jobs
    admitted, run on the same accelerators at the same times, and the same fates."""
    # a message every 60 ms: about twice what the two accelerators finish in time
    (live, live_blocks), (rep, rep_blocks) = (_jobs_and_blocks(r)
                                              for r in _live_and_replayed(tmp_path, 0.06, "measured"))
    assert set(rep) == set(live) and len(live) == 80
    fates = {k: (r["status"], r["reason"]) for k, r in live.items()}
    assert sum(s == "done" for s, _ in fates.values()) < len(fates) - 5, f"not loaded: {fates}"

    def same_blocks(a: list, b: list) -> bool:  # same accelerators, each block started within 10 us
        return len(a) == len(b) and all(x[0] == y[0] and abs(x[1] - y[1]) <= 0.01 for x, y in zip(a, b))

    alike = sum((rep[k]["status"], rep[k]["reason"]) == fates[k]
                and same_blocks(rep_blocks.get(k, []), live_blocks.get(k, [])) for k in live)
    assert alike >= 0.95 * len(live), f"{alike} of {len(live)} jobs alike (fate, blocks and their start times)"
