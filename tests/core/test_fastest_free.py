"""The rule fcfs, edf, lst, sel and planaria share (``each_to_fastest_free``), written out on the replay's hot path,
against its plain statement: jobs in the given order, each to the free accelerator where its next segment is
fastest with the hand-off where it moves (ties: the lowest index), a job whose segment runs nowhere free waiting.
Random states with hand-off costs, ties, segments that run nowhere and unhealthy accelerators: the same runs.
"""
from __future__ import annotations

import random

from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies._registry import each_to_fastest_free
from edge_sdrm3.core.types import INF, Accelerator, Costs, Job, Model, Platform, Run, Variant


def plain(view, now: float, jobs) -> list:
    free = view.free_accs(now)
    out = []
    for job in jobs:
        if not free:
            break
        a = min(free, key=lambda a: (view.latency(job, a), a))
        if view.latency(job, a) < INF:
            free.remove(a)
            out.append(Run(job, a))
    return out


def test_each_to_fastest_free_is_its_plain_statement() -> None:
    rng = random.Random(5)
    choices = [1.0, 2.0, 2.0, 3.5, INF]  # ties and segments that run nowhere
    runs = waits = 0
    for case in range(300):
        n_acc, n_seg = rng.randint(1, 4), rng.randint(1, 3)
        plat = Platform("p", tuple(Accelerator(f"acc{a}", "emulated") for a in range(n_acc)),
                        handoff_ms=rng.choice([0.0, 0.5, 1.5]))
        lat = [[[[rng.choice(choices) for _ in range(n_seg)] for _ in range(n_acc)]] for _ in range(3)]
        models = tuple(Model(f"m{i}", 10.0, (Variant("full"),), n_seg) for i in range(3))
        costs = Costs(lat, [[[list(r) for r in lv] for lv in lm] for lm in lat])
        disp = Dispatcher(plat, models, costs, policy=None)
        jobs = []
        for k in range(rng.randint(1, 6)):
            m = rng.randrange(3)
            job = Job(k + 1, models[m], m, k, 0.0, 100.0, costs)
            job.seg = rng.randrange(n_seg)
            job.acc = rng.choice([-1] + list(range(n_acc)))
            jobs.append(job)
        view = disp.view
        view.free_at = tuple(rng.choice([0.0, 5.0]) for _ in range(n_acc))
        view.healthy = tuple(rng.random() < 0.85 for _ in range(n_acc))
        got = each_to_fastest_free(view, 1.0, jobs)
        assert got == plain(view, 1.0, jobs), case
        runs += len(got)
        waits += len(jobs) - len(got)
    assert runs > 200 and waits > 200
