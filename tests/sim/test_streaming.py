"""A replay streams its trace and its records: a generated trace is made as the replay reads it, a trace file is
read as the clock reaches its frames, the engine holds only the frames of the coming instants, and ``--record``
writes as it goes — with the same decisions, figures and bytes as the whole-list paths (``Trace.frames``,
``traces.read``, ``Records`` + ``traces.write``)."""
from __future__ import annotations

import json
import random
from itertools import takewhile

import pytest

from edge_sdrm3.catalog import load_cost_table, load_platform, load_scenario
from edge_sdrm3.cli import main
from edge_sdrm3.core.engine import Records
from edge_sdrm3.random_scenarios import random_scenario
from edge_sdrm3.sim import trace as T
from edge_sdrm3.sim.replay import replay


def reference_frames(scenario, duration_s, seed):
    """The generation rule, written out whole: each model's own seeded draws, nested along a cascade."""
    frames, fired_of = [], {}
    fps = {m.name: m.fps for m in scenario.models}
    for m in scenario.models:
        rng = random.Random(f"{seed}:{m.name}")
        triggered = m.upstream is not None or m.trigger_probability < 1.0
        out = fired_of[m.name] = []
        f = 0
        while f / m.fps < duration_s:
            fired = rng.random() < m.trigger_probability if triggered else True
            if m.upstream is not None:
                up = fired_of[m.upstream]
                k = int(f * fps[m.upstream] / m.fps + 1e-9)
                fired = fired and k < len(up) and up[k]
            out.append(fired)
            frames.append(T.Frame(m.name, f, f * 1000.0 / m.fps, fired))
            f += 1
    return sorted(frames, key=lambda x: (x.release_ms, x.model, x.frame))


def mix(seed):
    return random_scenario(seed, load_cost_table("xrbench"))


@pytest.mark.parametrize("scenario", ["mediapipe_xr", "ar_assistant", "social_a", "random:5"])
def test_a_generated_trace_made_as_it_is_read_has_the_frames_of_the_rule(scenario):
    sc = mix(5) if scenario == "random:5" else load_scenario(scenario)
    tr = T.generate(sc, 7.0, 11)
    assert list(tr.iter_frames()) == reference_frames(sc, 7.0, 11)
    assert list(tr.iter_frames()) == tr.frames  # read again: the same frames


CELLS = [("ar_assistant", "dual_4k_biglittle_ws_os", "sdrm3"), ("social_a", "single_4k_ws", "edf_firm"),
         ("mediapipe_xr", "headset_emulated", "sdrm3"), ("random:5", "dual_4k_ws_os", "lst")]


@pytest.mark.parametrize("scenario,platform,policy", CELLS)
def test_streamed_replay_is_the_replay_of_the_whole_list(scenario, platform, policy):
    sc = mix(5) if scenario == "random:5" else load_scenario(scenario)
    spec = load_platform(platform)
    lazy = T.generate(sc, 4.0, 2)
    whole = T.Trace(sc, 4.0, 2, reference_frames(sc, 4.0, 2))  # a list, as a caller holding frames gives it
    ra, rb = Records(), Records()
    a, ca = replay(lazy, spec, policy, records=ra, keep_completions=True)
    b, cb = replay(whole, spec, policy, records=rb, keep_completions=True)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert [c[:11] for c in ca] == [c[:11] for c in cb]  # every outcome, in order (the job objects aside)
    assert ra.jobs == rb.jobs and ra.segments == rb.segments
    assert a["frames_due"] == sum(f.fired for f in whole.frames) > 0


def test_a_trace_file_streamed_replays_and_records_as_read_whole(tmp_path, capsys):
    """`replay FILE` reads the file as it goes and `--record` writes as it goes; the same bytes as replaying the
    trace `traces.read` gives and writing it with `traces.write`."""
    src = tmp_path / "in.jsonl"
    T.write(T.generate(load_scenario("ar_assistant"), 5.0, 4), src)
    streamed = T.stream(src)
    assert streamed.counts["frame"] == sum(1 for line in src.read_text().splitlines() if '"frame"' in line)
    out = tmp_path / "streamed.jsonl"
    assert main(["replay", str(src), "--platform", "dual_4k_ws_os", "--policy", "edf_firm", "--record", str(out),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)

    whole = T.read(src)
    recs = Records()
    ref, _ = replay(whole, load_platform("dual_4k_ws_os"), "edf_firm", records=recs)
    ref_path = tmp_path / "whole.jsonl"
    T.write(whole, ref_path, jobs=recs.jobs, segments=recs.segments,
            summary={k: v for k, v in ref.items() if k != "models"})
    assert res == ref
    assert out.read_bytes() == ref_path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "streamed.jsonl", "whole.jsonl"]  # no temp


def test_a_file_out_of_time_order_is_read_whole(tmp_path):
    src = tmp_path / "in.jsonl"
    T.write(T.generate(load_scenario("vr_gaming"), 0.5, 0), src)
    lines = src.read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # two frames of the same instant swapped
    src.write_text("".join(lines))
    tr = T.stream(src)
    assert tr.counts is None and tr.frames == T.read(src).frames


def test_a_long_replay_takes_its_frames_as_the_clock_reaches_them():
    """A replay of an hour's trace holds only the frames of the coming instants: at every second of simulated time
    the frames taken from the trace are those released by then (and at most a period of the slowest upstream
    model more), never the rest of the hour."""
    sc = load_scenario("ar_assistant")  # KD at 3 fps cascades ASR: the engine reads a KD period ahead
    tr = T.generate(sc, 3600.0, 0)
    taken = []
    source = tr.iter_frames

    def counted():
        for fr in source():
            taken.append(fr.release_ms)
            yield fr

    lazy = T.Trace(sc, 20.0, 0, source=lambda: takewhile(lambda f: f.release_ms < 20_000.0, counted()))
    ahead = []

    def progress(frac):
        now_ms = frac * 20_000.0
        ahead.append(sum(1 for t in taken if t > now_ms))

    res, comps = replay(lazy, load_platform("dual_4k_ws_os"), "fcfs", progress=progress)
    assert comps is None  # not kept unless asked
    per_s = sum(m.fps for m in sc.models)
    assert len(ahead) >= 15 and max(ahead) <= per_s / min(m.fps for m in sc.models) + len(sc.models)
    assert res["frames_due"] > 500 and len(taken) <= 20 * per_s + len(sc.models)  # only the 20 s read
