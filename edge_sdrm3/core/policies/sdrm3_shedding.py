"""SDRM3's overload shedding: Moore-Hodgson checks that pick the queued jobs to drop, and the check that shedding
them pays.

The rule: under overload, the jobs shed by Moore-Hodgson checks: first against a bound every schedule obeys, over
the queue and the known next periodic releases (``overload_victims``: sure misses, so a long job gives way to the
frames about to arrive), then against an estimate of the queue's schedule (``overload_victims_list``: likely misses
on heterogeneous accelerators, which the bound cannot see; a running job with blocks left after the one in flight is a
candidate there too, in place of queued jobs shed anyway, where that sheds no more frames at stake and saves more energy,
``energy_saved``: with as many misses, UXCost falls with the energy, and a missed frame is charged its reference
energy anyway). Victims are shed only where that estimate (the queue,
the running jobs and the known next releases, frames at stake weighted by cascaded children) shows the kept jobs
making at least as many frames on time as keeping them all, the victims counted as missed (``shedding_pays``;
keeping them all is judged by the better of two estimates, the second letting a block that would wait take a free
accelerator on which its job still ends in time); otherwise every job is kept. ``upcoming_releases`` is the
look-ahead of the known next releases (also used by the energy guard and the release hold).

Why: measured with tools/bench_uxcost.py (seed 0; the figures in ``sdrm3.py``'s docstring), on 60 random mixes x 6
platforms (5 s) the geomean UXCost reduction is +14.1% (+35.7% over the loaded cells), +5.2% and +15.4% without the
value hold, the release hold and the second shedding estimate. Where it still loses (overloaded heterogeneous mixes),
the schedule estimate behind the shedding is too pessimistic, or a long job's blocks, which the overload bound
treats as preemptible, push out tight frames.

Called by ``SDRM3.pick`` (``sdrm3.py``) through ``shed_victims`` when work arrived since the last check (a running
victim is dropped there at its next block boundary);
``upcoming_releases`` also by ``sdrm3_energy.energy_is_safe`` and ``sdrm3_hold.holds_release``. Pure functions over the
view and the policy's per-model tables: no policy state.
"""
from __future__ import annotations

from ..types import INF
from .sdrm3_estimate import _first_late, blocks_left


def shed_victims(view, now: float, jobs: list, accs: list[int], value: list[float], cut: list[float],
                 rel_deadline: list[float], speed: list[float], *, lookahead: bool, shed_list: bool,
                 shed_check: bool, fit_estimate: bool, lst: bool, shed_running: bool = False,
                 ref: list[float] | None = None, seed: dict | None = None) -> list:
    """Under overload, the queued jobs to drop: sure misses first (a bound every schedule obeys, over the
    queue and the known next releases), then likely ones (an estimate of the queue's schedule); kept only
    where the estimate shows shedding them pays (``shedding_pays``). The flags are ``SDRM3``'s of the same names
    (``lst``: the latest-start order is in force). ``shed_running``: a running job with blocks left after the one in
    flight may be a victim of the estimate's check too (the caller drops it at its next block boundary), in place of
    queued jobs that are shed anyway (the check over them alone found them and shedding them pays), where that sheds
    no more frames at stake, saves more energy (``energy_saved``; ``ref``: per model, its reference energy) and pays
    too. ``seed``: best-case suffixes known already (``sdrm3_energy.suffix_memo``), copied into each estimate's memo."""
    horizon = max(j.deadline for j in jobs)
    upcoming = upcoming_releases(view, now, horizon, rel_deadline, value) if lookahead else ()
    victims = []
    if len(jobs) > 1 or upcoming:
        victims = overload_victims(view, now, jobs, value, accs, upcoming, speed)
    kept = [j for j in jobs if j not in victims]
    alt = overload_victims_list(view, now, kept, value, accs, seed=seed) if len(kept) > 1 and shed_list else []

    def pays(shed: list) -> bool:
        return not shed_check or shedding_pays(view, now, jobs, shed, accs, horizon, value, cut, rel_deadline,
                                               lookahead, fit_estimate, lst, seed=seed)
    if (victims or alt) and not pays(victims + alt):
        return []  # the estimate does not show the kept jobs faring better: keep every job
    if alt and shed_running and ref is not None and any(r is not None and r.seg < r.n_segs for r in view.running):
        # in place of queued jobs that are shed anyway: a running one, if that sheds no more and saves more energy
        wide = overload_victims_list(view, now, kept, value, accs, True, seed=seed)
        if any(j.running for j in wide) and sum(value[j.m] for j in wide) <= sum(value[j.m] for j in alt) and \
                sum(energy_saved(j, accs, ref) for j in wide) > sum(energy_saved(j, accs, ref) for j in alt) and \
                pays(victims + wide):
            alt = wide
    return victims + alt


def energy_saved(job, accs: list[int], ref: list[float]) -> float:
    """The energy (mJ) shedding ``job`` now saves: its remaining blocks on the accelerator that ends them first, less
    what its miss is charged anyway (at least its model's reference energy ``ref``, however little it spent)."""
    s = job.seg
    a = min(accs, key=lambda x: job.rem_on[x][s])
    spent = job.energy
    return max(0.0, spent + sum(job.en[a][s:]) - max(spent, ref[job.m]))


def shedding_pays(view, now: float, jobs: list, victims: list, accs: list[int], horizon: float, value: list[float],
                  cut: list[float], rel_deadline: list[float], lookahead: bool, fit_estimate: bool, lst: bool,
                  seed: dict | None = None) -> bool:
    """Shed ``victims`` only if the estimate of the schedule (``_first_late``: the queue, the rest of the
    running jobs and the known next releases) makes at least as many frames on time, weighted by the
    frames at stake per job (cascaded children count), with them shed as with every job kept: the victims
    count as missed. A job is never given up on a bound alone. The releases counted run
    past the queue's last deadline (``horizon``) by the victims' work, which would push them back.
    ``fit_estimate``: keeping every job is judged by the better of two estimates (``_first_late(fit=True)``)."""
    upcoming = upcoming_releases(view, now, horizon + sum(j.rem_best[j.seg] for j in victims), rel_deadline, value) \
        if lookahead else ()
    gone = {j.id for j in victims}
    items, start = estimate_items(view, now, jobs, upcoming, value, cut)
    kept = [it for it in items if it[2] is None or it[2].id not in gone]
    memo = dict(seed or ())  # the best-case suffixes of the items' latencies, shared by the estimates below
    lost_kept = _first_late(kept, start, accs, count=True, weighted=True, lst=lst, memo=memo) + \
        sum(value[j.m] for j in victims)
    # with every job kept, the frames lost are counted only until they reach those lost by shedding
    lost_all = _first_late(items, start, accs, count=True, weighted=True, lst=lst, stop=lost_kept, memo=memo)
    if lost_kept <= lost_all + 1e-9 and fit_estimate and len(accs) > 1:
        # keeping every job is judged by the better of two estimates: no job is given up on one's pessimism
        lost_all = _first_late(items, start, accs, count=True, weighted=True, lst=lst, stop=lost_kept, fit=True,
                               memo=memo)
    return lost_kept <= lost_all + 1e-9


def estimate_items(view, now: float, jobs: list, upcoming, value: list[float],
                   cut: list[float]) -> tuple[list, list[float]]:
    """The items ``_first_late`` estimates, weighted by the frames at stake: ``jobs`` (queued), the rest
    of the running jobs and the ``upcoming`` releases; and the accelerators' free times."""
    # a job counts as on time by the end that leaves its cascaded children their time, where it still can
    items = [(j.deadline - cut[j.m] if now + j.rem_best[j.seg] <= j.deadline - cut[j.m] else j.deadline, j.id, j,
              value[j.m], False, 0.0, now, blocks_left(j)) for j in jobs]
    for b, r in enumerate(view.running):
        if r is not None and r.seg < r.n_segs:
            items.append((r.deadline, r.id, r, value[r.m], False, 0.0, view.free_at[b],
                          blocks_left(r)))
    items += [(dl, INF, None, 1.0, False, 0.0, r, lat) for r, dl, lat, _ in upcoming]
    items.sort(key=lambda it: (it[0], it[1]))
    return items, [max(view.free_at[a], now) for a in range(view.n_acc)]


def upcoming_releases(view, now: float, horizon: float, rel_deadline: list[float], value: list[float],
                      before: float = INF, roots: list | None = None) -> list:
    """The known releases of the uncascaded models after ``now`` whose deadlines fall by ``horizon``:
    ``(release, deadline, block latencies [accelerator][block], work per frame at stake)``. Models that
    cannot meet their deadline even alone are left out (their jobs are dropped as hopeless). ``rel_deadline``,
    ``value``: per model, its relative deadline and its frames at stake per job. ``before``: only the releases
    before it (the release hold looks no further than its block). ``roots``: ``root_periods(view.models)``, where
    the caller keeps it."""
    out = []
    rem_best, lat = view.costs.rem_best, view.costs.lat
    for m, period in root_periods(view.models) if roots is None else roots:
        rel = rel_deadline[m]
        r = (int(now / period + 1e-9) + 1) * period
        if r + rel > horizon or r >= before:
            continue  # none in the window (asked first: most models have none in the release hold's)
        v = view.variants_of(m)  # the variant its next jobs start with (a supernet selector's choice)
        best = rem_best[m][v][0]
        if best > rel or best <= 0:
            continue
        key = best / value[m]
        while r + rel <= horizon and r < before:
            out.append((r, r + rel, lat[m][v], key))
            r += period
    return out


def root_periods(models) -> list[tuple[int, float]]:
    """The uncascaded models (``upcoming_releases``'s): ``(index, period)`` each, in order."""
    return [(m, model.period_ms) for m, model in enumerate(models) if model.upstream is None]


def overload_victims(view, now: float, jobs: list, value: list[float], accs: list[int],
                     upcoming: list | tuple = (), speed: list[float] | None = None) -> list:
    """Jobs to shed so that the rest can meet their deadlines (Moore-Hodgson, generalised).

    The ready jobs and the rest of the running ones are taken in deadline order against an optimistic
    bound of when each could finish: the work due by its deadline (its own and that of the jobs before it)
    must fit in what the accelerators can do from the time each is free until that deadline. A job's work
    is the time the whole platform would need for it if every accelerator worked on it at its own speed
    for that job (1 / sum over accelerators of 1 / its remaining time there), the accelerators each
    counting 1. At the first job that misses its deadline even so, the queued job with the most remaining
    work per frame at stake (cascaded children count) is shed, and the check starts over. Exact on one
    accelerator. Running jobs count but are never shed.

    ``speed``: per accelerator, its best speed for the workload relative to a job's best-case time; given,
    a job's work is its best-case time and each accelerator counts its speed (a bound that heterogeneous
    accelerators obey too: none works faster than its best speed).
    ``upcoming``: known future releases, ``(release, deadline, block latencies, work per frame at stake)``
    each (``speed`` needed). They count as demand like queued jobs (releases are periodic, so the work that
    will compete for the same window is known); when one of them is the job to shed, nothing is shed for it
    now (it is decided at its release)."""
    free_at = view.free_at
    sp = speed if speed is not None else [1.0] * len(free_at)
    since = [(max(now, free_at[a]), sp[a]) for a in accs]  # each accelerator: free from, speed

    def work(j) -> float:
        if speed is not None:
            return j.rem_best[j.seg]
        rate = 0.0
        for a in accs:
            r = j.rem_on[a][j.seg]
            if 0 < r < INF:
                rate += 1.0 / r
        return len(accs) / rate if rate > 0 else INF

    # (deadline, order, job or None for an upcoming release, work, may be shed, shedding key)
    items = [(j.deadline, j.id, j, work(j), True, j.rem_best[j.seg] / value[j.m]) for j in jobs]
    items += [(j.deadline, j.id, j, work(j), False, 0.0)
              for j in view.running if j is not None and j.seg < j.n_segs]
    items += [(dl, INF, None, sum(min(la[s] for la in lat) for s in range(len(lat[0]))), True, key)
              for _r, dl, lat, key in upcoming]
    items.sort(key=lambda it: (it[0], it[1]))

    def first_late(items: list) -> int:
        due = 0.0
        for k, it in enumerate(items):
            due += it[3]
            if due > sum(v * (it[0] - t) for t, v in since if it[0] > t) + 1e-9:
                return k
        return -1

    return _shed_until_on_time(items, first_late)


def _shed_until_on_time(items: list, first_late) -> list:
    """Moore-Hodgson: while ``first_late(items)`` finds an item late (its index; -1: none), take out the
    item that may be shed (``it[4]``) with the largest shedding key (``it[5]``; ties: later deadline, then
    order) among those up to it. Returns the jobs taken out (items without a job are not returned)."""
    victims = []
    while True:
        late = first_late(items)
        if late < 0:
            return victims
        cand = [it for it in items[:late + 1] if it[4]]
        if not cand:
            return victims
        v = max(cand, key=lambda it: (it[5], it[0], it[1]))
        items.remove(v)
        if v[2] is not None:
            victims.append(v[2])


def overload_victims_list(view, now: float, jobs: list, value: list[float], accs: list[int],
                          shed_running: bool = False, seed: dict | None = None) -> list:
    """Jobs to shed so that the rest can meet their deadlines: Moore-Hodgson over an estimate of the
    schedule rather than a bound (``_first_late``: the queued jobs and the rest of the running ones run
    block by block as a dispatcher would run them). At the first job that ends late, the queued job with
    the most remaining work per frame at stake among those due no later is shed, and the estimate starts over.

    ``shed_running``: a running job with blocks left after the one in flight is a candidate too, its work the
    blocks after that one (the block in flight runs to its end whatever is decided: it holds its accelerator
    until then, and its energy is spent). Without it, a long job that started before the overload showed (a
    cascaded frame arriving) could only push out the short queued ones: on a 0.2-s window of social_a on
    dual_4k_ws_os the depth model (22.7 ms of blocks left on the fast accelerator) ran on while the hand
    tracker (16.4 ms) was shed every period; shedding the depth model instead misses as many frames and
    saves the 69 mJ its remaining blocks cost above its reference energy (a missed frame's charge)."""
    free_at = view.free_at
    # (deadline, order, job, share (unused), may be shed, shedding key, ready time, block latencies)
    items = [(j.deadline, j.id, j, 0.0, True, j.rem_best[j.seg] / value[j.m], now, blocks_left(j))
             for j in jobs]
    for a, j in enumerate(view.running):
        if j is not None and j.seg < j.n_segs:
            items.append((j.deadline, j.id, j, 0.0, shed_running, j.rem_best[j.seg] / value[j.m], free_at[a],
                          blocks_left(j)))
    items.sort(key=lambda it: (it[0], it[1]))
    start = [max(free_at[a], now) for a in range(view.n_acc)]
    memo = dict(seed or ())  # the best-case suffixes of the items' latencies, reckoned once for every estimate below
    return _shed_until_on_time(items, lambda items: _first_late(items, start, accs, memo=memo))
