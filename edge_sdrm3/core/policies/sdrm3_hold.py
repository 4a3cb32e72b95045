"""SDRM3's release hold: a block that would hold an accelerator past a known release of a tight frame waits.

The rule (``holds_release``): blocks cannot be interrupted, so a block that would hold an accelerator past a known
release of a tight frame that needs it (the frame would be on time with that accelerator free, late with it busy or
on any other) waits, where its job can still end in time after that frame, and the policy asks to be consulted again
once the frame is released; where the job cannot wait, its block still waits if the frames it would make late (over
the blocks it keeps on that accelerator, counting only frames that could not go between its blocks nor move to
another accelerator block by block) have more frames at stake than the job itself (``hold_value``: two tight frames
are not given up to save one).

Why: measured with tools/bench_uxcost.py (seed 0; the figures in ``sdrm3.py``'s docstring), on the 41 feasible
XRBench cells (10 s) the geomean UXCost reduction is +17.2% (+34.9% over the loaded cells) with the release hold,
+13.6% and +28.3% without it; on 60 random mixes x 6 platforms (5 s) +14.1% (+35.7% over the loaded cells) against
+12.3% and +31.4% without the value hold (15 of 360 cells more than 1% worse, 17 without it; it changes no XRBench
cell).

Called by ``SDRM3._place`` (``sdrm3.py``) for a block about to start on a free accelerator, where ``hold_place`` and
``lookahead`` are on. Pure function over the view and the policy's per-model tables: no policy state.
"""
from __future__ import annotations

from .sdrm3_estimate import _blockwise_end
from .sdrm3_shedding import upcoming_releases


def holds_release(view, now: float, job, a: int, f: float, t_at: list[float], accs: list[int], cut: list[float],
                  value: list[float], rel_deadline: list[float], hold_value: bool) -> float:
    """Whether starting ``job``'s next block on ``a`` now (ending at ``f``) would make a known release before
    ``f`` late that would be on time with ``a`` free at its release, while ``job`` could still end in time
    after it (its deadline less its children's time): blocks cannot be interrupted, so a long block of a job
    with slack must not hold the accelerator a tight frame about to arrive needs. The release time of the
    first such frame, or 0.0 (none).

    ``hold_value``: where the job cannot wait for such frames (it would be late after them), it still waits
    if they have more frames at stake than it has (cascaded children count): a long block of a job that
    would hold the accelerator past two releases of a tight model (each late with it busy, on time with it
    free) costs two frames to save one, so the job gives way (and is dropped if it cannot make it after).

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
    end = f  # when the job lets go of ``a``: after its next blocks that no other accelerator can take in time
    if hold_value:
        lat_j = job.lat
        for s in range(job.seg + 1, job.n_segs):
            la = lat_j[a][s]
            if any(lat_j[x][s] <= la + slack for x in accs if x != a):
                break
            end += la
    for r, dl, lat, key in upcoming_releases(view, now, end + max(rel_deadline), rel_deadline, value, before=end):
        if r >= end:
            continue
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
