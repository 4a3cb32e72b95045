"""SDRM3's release hold: a block that would hold an accelerator past a known release of a tight frame waits.

The rule (``holds_release``): blocks cannot be interrupted, so a block that would hold an accelerator past a known
release of a tight frame that needs it (the frame would be on time with that accelerator free, late with it busy or
on any other) waits, where its job can still end in time after that frame, and the policy asks to be consulted again
once the frame is released; where the job cannot wait, its block still waits if the frames it would make late (over
the blocks it keeps on that accelerator, counting only frames that could not go between its blocks nor move to
another accelerator block by block) have more frames at stake than the job itself (``hold_value``: two tight frames
are not given up to save one). The rest of each running job counts like such a release, from the end of its block in
flight (``hold_running``): a block must not take the accelerator a running job's next block needs to stay on time
while the block's own job could wait for it. The cascaded children of the known releases count too, released when
their upstream would end at best, at stake by their trigger probability (``hold_cascades``): a block can leave the
parent on time and still make its child late.

Why: measured with tools/bench_uxcost.py (seed 0; the figures in ``sdrm3.py``'s docstring), on the 41 feasible
XRBench cells (10 s) the geomean UXCost reduction is +17.2% (+34.9% over the loaded cells) with the release hold,
+13.6% and +28.3% without it; on 60 random mixes x 6 platforms (5 s) +14.1% (+35.7% over the loaded cells) against
+12.3% and +31.4% without the value hold (15 of 360 cells more than 1% worse, 17 without it; it changes no XRBench
cell). The running-job hold: +14.7% (+36.8% over the loaded cells) against +14.1% (+35.7%) without it, 14 cells more
than 1% worse against 15 (random_0035 on quad_8k_ws_os_ws_os from -83.5% to +90.7%: a 72-fps frame with 9 ms to
spare took the OS accelerator the last block of a 28.5-ms-deadline depth frame needed the moment its block in flight
ended); no XRBench cell moves by more than 1%. The cascade hold: +15.1% (+37.7% over the loaded cells) against
+14.7% (+36.8%) without it, no cell more than 1% worse that was not before; no XRBench cell moves.

The running-job booking (``booked_for_running``, ``book_running``) is the same knowledge on the waiting side: a busy
accelerator whose running job comes first and cannot give way counts as busy until that job's next blocks there end,
so that a waiting job does not wait for it in vain.

Called by ``SDRM3._place`` (``sdrm3.py``) for a block about to start on a free accelerator, where ``hold_place`` and
``lookahead`` are on; ``booked_for_running`` by ``SDRM3.pick`` before the placements. Pure functions over the view and
the policy's per-model tables: no policy state.
"""
from __future__ import annotations

from ..types import INF
from .sdrm3_estimate import _blockwise_end
from .sdrm3_shedding import upcoming_releases


def _lets_go(job, a: int, f: float, slack: float, accs: list[int]) -> float:
    """When ``job``, its block on ``a`` ending at ``f``, lets go of ``a``: after its next blocks that no other
    accelerator can take in time (within ``slack``)."""
    end = f
    lat_j = job.lat
    for s in range(job.seg + 1, job.n_segs):
        la = lat_j[a][s]
        if any(lat_j[x][s] <= la + slack for x in accs if x != a):
            break
        end += la
    return end


def holds_release(view, now: float, job, a: int, f: float, t_at: list[float], accs: list[int], cut: list[float],
                  value: list[float], rel_deadline: list[float], hold_value: bool, hold_running: bool = True,
                  hold_cascades: bool = True, booked: dict | None = None, roots: list | None = None,
                  chains: list | None = None) -> float:
    """Whether starting ``job``'s next block on ``a`` now (ending at ``f``) would make a known release before
    ``f`` late that would be on time with ``a`` free at its release, while ``job`` could still end in time
    after it (its deadline less its children's time): blocks cannot be interrupted, so a long block of a job
    with slack must not hold the accelerator a tight frame about to arrive needs. The release time of the
    first such frame, or 0.0 (none).

    ``hold_value``: where the job cannot wait for such frames (it would be late after them), it still waits
    if they have more frames at stake than it has (cascaded children count): a long block of a job that
    would hold the accelerator past two releases of a tight model (each late with it busy, on time with it
    free) costs two frames to save one, so the job gives way (and is dropped if it cannot make it after).

    ``hold_cascades``: the cascaded children of the known next releases count too, released when their upstream
    would end at best and weighted by their trigger probability (``upcoming_cascades``).

    ``booked`` (``booked_for_running``): for a frame released after a booked job's latest start, that accelerator is
    busy until its booking ends.

    ``hold_running``: the next blocks of the jobs running on the other accelerators count like releases, from the
    end of their block in flight (``running_next_blocks``): they are known as surely as a periodic release.

    ``accs``: the healthy accelerators; ``cut``, ``value``, ``rel_deadline``: per model, the time its cascaded
    children need before its deadline, its frames at stake per job, its relative deadline."""
    wait_until = job.deadline - cut[job.m] - job.rem_best[job.seg]  # its latest start
    first, lost = 0.0, 0.0  # the first frame the job cannot wait for, the frames at stake of all such
    # the job cannot wait: the accelerator is held for its next blocks too, as long as ``a`` is where they run
    # fastest (``end``: when it lets go of ``a``)
    # the end that counts: its deadline less its children's time, or its own where they cannot make theirs
    due = job.deadline - cut[job.m]
    if now + job.rem_best[job.seg] > due:
        due = job.deadline
    # its slack after this block: a frame released after this block that fits in it goes first at a block
    # boundary, and a later block that another accelerator runs within it may move there
    slack = due - f - job.rem_best[job.seg + 1]
    end = _lets_go(job, a, f, slack, accs) if hold_value else f  # when the job lets go of ``a``
    # (only the arrivals before ``end`` count: the others are not asked for; ``roots``, ``chains``: the workload's
    # ``root_periods`` and ``cascade_chains``, where the caller keeps them)
    horizon = end + max(rel_deadline)
    arrivals = upcoming_releases(view, now, horizon, rel_deadline, value, before=end, roots=roots)
    if hold_running:
        arrivals += running_next_blocks(view, value, before=end)
    if hold_cascades:
        arrivals += upcoming_cascades(view, now, horizon, rel_deadline, value, before=end, chains=chains)
    est = t_at
    for r, dl, lat, key in arrivals:
        if r >= end:
            continue
        if booked:  # an accelerator booked for a running job that comes before this frame (``booked_for_running``)
            start = dl - sum(map(min, zip(*lat)))
            t_at = list(est)
            for b, (t, _, k) in booked.items():
                if k <= start:
                    t_at[b] = t
        on_a = r + sum(lat[a])
        if on_a > dl:
            continue  # it misses on ``a`` anyway
        if r < f and on_a <= wait_until:  # the job can wait for it: it waits if the block would make it late
            if min(max(r, f if x == a else t_at[x]) + sum(lat[x]) for x in accs) > dl:
                return r
            continue
        if r < f and on_a <= due - (job.rem_best[job.seg]):
            continue  # the job can wait for it (by its own deadline: its children cannot make theirs)
        if r >= f and on_a - r <= slack:
            continue  # released after this block, it can go before the job's next one
        if _blockwise_end(r, lat, accs, [end if x == a else t_at[x] for x in range(len(t_at))]) <= dl:
            continue  # it is on time anyway (its blocks may move between accelerators)
        if hold_value and key > 0:
            first = first or r
            lost += sum(map(min, zip(*lat))) / key  # its frames at stake (key: best-case time per frame)
    # the job cannot wait for them: it goes first only if it has at least as many frames at stake
    return first if lost > value[job.m] + 1e-9 else 0.0


def running_next_blocks(view, value: list[float], before: float = INF) -> list:
    """The rest of each job running now, as an arrival like ``upcoming_releases``'s: ``(when its block in flight
    ends, its deadline, its block latencies [accelerator][block] from its next block on, best-case time per frame
    at stake)``; jobs with no block left are left out, and those whose block in flight ends at ``before`` or later."""
    out = []
    free_at = view.free_at
    for b, r in enumerate(view.running):
        if r is not None and r.seg < r.n_segs and free_at[b] < before:
            out.append((free_at[b], r.deadline, [la[r.seg:] for la in r.lat], r.rem_best[r.seg] / value[r.m]))
    return out


def upcoming_cascades(view, now: float, horizon: float, rel_deadline: list[float], value: list[float],
                      before: float = INF, chains: list | None = None) -> list:
    """The cascaded children of the known next releases (``upcoming_releases``), as arrivals like its own: a child's
    frame is released when its chain of upstreams would end at best after the root's release, is due by its own
    deadline from the same frame time, and is at stake by its trigger probability (times those of the chain): the
    last field, the best-case time per frame at stake, is divided by it. Children that could not make their
    deadline even at best after their upstreams are left out, and so are the arrivals at ``before`` or later.
    ``chains``: ``cascade_chains(view.models)``, where the caller keeps it."""
    if chains is None:
        chains = cascade_chains(view.models)
    if not chains:
        return []
    rem_best, lat, variants_of = view.costs.rem_best, view.costs.lat, view.variants_of
    offs: dict[int, float] = {}  # child: its upstreams' best-case time from the frame
    out = []
    for i, u, cascaded, p, period in chains:  # an upstream before its children
        off = (offs[u] if cascaded else 0.0) + rem_best[u][variants_of(u)][0]
        offs[i] = off
        v = variants_of(i)
        best, rel = rem_best[i][v][0], rel_deadline[i]
        if off + best > rel or best <= 0:
            continue
        r = (int(now / period + 1e-9) + 1) * period
        key = best / (p * value[i])
        while r + rel <= horizon and r + off < before:
            out.append((r + off, r + rel, lat[i][v], key))
            r += period
    return out


def cascade_chains(models) -> list:
    """The models ``upcoming_cascades`` reckons, in order: ``(child, its upstream, whether that is cascaded too, the
    probability of the chain, the child's period)``; a child whose upstream is unknown, never triggers it, or is
    itself left out (or listed after it) is left out."""
    idx = {m.name: i for i, m in enumerate(models)}
    prob: dict[int, float] = {}
    out = []
    for i, m in enumerate(models):
        u = idx.get(m.upstream) if m.upstream is not None else None
        if u is None or m.trigger_probability <= 0:
            continue
        cascaded = models[u].upstream is not None
        if cascaded and u not in prob:
            continue
        p = prob[i] = (prob[u] if cascaded else 1.0) * m.trigger_probability
        out.append((i, u, cascaded, p, m.period_ms))
    return out


def booked_for_running(view, now: float, t_at: list[float], first, accs: list[int], cut: list[float],
                       doomed: set) -> dict:
    """Books in ``t_at`` each busy accelerator for the next blocks of the job it runs (``book_running``), where that
    job comes before every waiting one in latest-start order (``first``: the candidate that comes first, with its
    ``key`` and ``job``), cannot give way to ``first``'s next block there (its slack at the end of its block in
    flight is shorter) and the accelerator is the fastest for those blocks: it takes them as each block ends, and a
    waiting job that counted on the accelerator from the end of the block in flight would start late. Returns, per
    accelerator so booked, ``(booked until, free from before, the job's latest start)``: the schedule estimates of
    the energy guard and the release hold count the running jobs' next blocks themselves (``unbooked``), the hold
    for the frames the booked job comes before too. ``doomed``: ids of the running jobs shed (they let go at their
    block boundary). On the live workload (mediapipe_xr_slow on headset_placement at 1x)
    a palm detection waited for the small NPU counting it free at the end of the block in flight, while the pose
    landmark running there, with 57 ms of slack, still had two blocks (the last 111 ms): the palm detection ended
    8 ms past the time its hand landmark needed, and that frame was refused at admission. Applied by ``SDRM3.pick``
    while no frame was missed lately (fewer than one over ``window_ms``, decayed): under overload the shedding and
    the admission settle which frames are kept, and there the booking moved live UXCost at 2x capacity from 0.463 to
    0.469 (edf_firm 0.465); gated, 0.454, with 1.5x, 4x and the XRBench cells unchanged. The release hold sees a
    booked accelerator busy for a frame that the booked job comes before (``holds_release``'s ``booked``): else a long
    block took the other accelerator while the booked one was busy (random_0011 on dual_8k_ws_os, two tight cascaded
    frames of 609 missed). On the 60 random mixes +15.0% (+15.1% without the booking), 14 cells more than 1% worse."""
    booked = {}
    for b, r in enumerate(view.running):
        if r is None or r.seg >= r.n_segs or t_at[b] <= now or r.id in doomed:
            continue
        s, lat = r.seg, r.lat
        work = r.rem_best[s]
        due = r.deadline - cut[r.m]
        if t_at[b] + work > due:
            due = r.deadline  # (as ``SDRM3._candidates``: its children cannot make theirs any more)
        if due - work > first.key or due - work - t_at[b] >= first.job.lat[b][first.job.seg]:
            continue  # a waiting job comes first, or the first one's block fits in its slack
        t = t_at[b]
        while s < r.n_segs and lat[b][s] <= min([lat[a][s] for a in accs]):
            t += lat[b][s]
            s += 1
        if t > t_at[b]:
            booked[b] = (t, t_at[b], due - work)
            t_at[b] = t
    return booked


def unbooked(t_at: list[float], booked: dict) -> list[float]:
    """``t_at`` less the bookings of ``booked_for_running`` still in it."""
    if not booked:
        return t_at
    out = list(t_at)
    for b, (t, before, _) in booked.items():
        if out[b] == t:
            out[b] = before
    return out
