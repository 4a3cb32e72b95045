"""SDRM3's energy side of placement, for ``SDRM3._best_pair`` and ``SDRM3._place`` (``sdrm3.py``).

A slower placement chosen for its energy must leave every job on time by the estimate (:func:`energy_is_safe`: the
queue, the running jobs and the known next releases): energy is never bought with a deadline. A slower placement may
spend at most ``slack_use`` (30%) of the job's slack, unless (``stay_slack``, off by default) no other job waits, its
accelerator is free now and the job's blocks from this one on all fit on it by the job's due time: then it may spend
all of it, if the estimate of every other job with that accelerator held until then has none late
(:func:`stay_is_safe`). The share protects an end that relies on another accelerator being free for the later blocks;
a job that stays where it is relies on nothing else, and with no other job waiting none is pushed onto a costlier
accelerator meanwhile (with one waiting, ar_gaming/dual_8k_ws_os with the supernet selector spent 1.1% more energy).
Where the optimum (``edge-sdrm3 oracle``) runs a long job whole on the slower, cheaper accelerator (vr_gaming on
dual_8k_ws_os: the hand tracker's 19.3 ms of its 22.2), the share had moved its last blocks to the fast one. A block
that would hold an accelerator a tight frame about to be released needs waits (the release hold: ``sdrm3_hold.py``).
No block goes where the rest of its job (on that accelerator) would cost more energy than its frames on time are worth
in UXCost (``energy_worth``, :func:`worth`): UXCost is energy x (missed + 1), so under overload a frame made at a high
energy cost can raise it; the bound is E / (M + 1) per frame at stake, E and M the energy and misses observed over the
last ``window_ms``, above what a miss would cost anyway. On the live workload (mediapipe_xr_slow on headset_placement,
replayed at 4x capacity) the CPU ran frames at 8x the energy of the frugal NPU to save a few misses: UXCost 0.955
without the rule, 0.830 with it (edf_firm 0.805).
``stay_slack`` (off by default) gives +18.4% on the XRBench cells (tools/bench_uxcost.py), none worse, and brings
outdoor_a/dual_4k_ws_os from +5.3% to +0.8% of the optimum, but on random_0050 on dual_4k_ws_os its energy trade had
a cascaded frame shed at light load (-99.0%): it puts an on-time job at risk, so it is not the default.

Under overload (``spill``, :func:`allowances`; more than ``SPILL_MISSES`` misses lately) energy and speed are traded
by the same measure the other way too: where the job's cheapest accelerator is busy, a free one on which the job costs
more energy, by no more than :func:`spill_allowance` (E / (M + 1) discounted by the share of frames on time, squared),
scores as if it were the cheapest, so idle accelerators carry what the frugal one cannot; where the job ends first
costs more above the cheapest than that, the energy guard does not force it there (:func:`energy_is_safe`) and a
cheaper end may use the job's slack up to its deadline rather than a share of it. Why: the marginal bound alone is a
local optimum. UXCost is E x (M + 1): with c mJ more for each of k frames made, (E + k c) (M + 1 - k) is concave in
k, so using a costly accelerator for one frame does not pay where using it for every frame it can make does. On the
live workload (mediapipe_xr_slow on headset_placement, 30-s traces, tools/bench_live_replay.py) at 1.5x capacity the
frugal NPU cannot carry the load and edf, which runs the CPU 92% of the time, beat SDRM3 (UXCost 0.214 against
0.297): with the rule SDRM3 uses the CPU too and comes to 0.172; at 2x 0.454 to 0.441 (edf_firm 0.465); at 4x, where
the CPU's frames cost more than they are worth, the CPU ran face detections for the energy guard and the slack share:
0.734 to 0.658 (edf_firm 0.674). At 1x nothing changes (a lone miss there had the CPU run frames for 20-25% more
energy, hence ``SPILL_MISSES``).

Functions over the policy (``pol``: its parameters and per-model tables) and the view; pure: no clock, no asyncio.
"""
from __future__ import annotations

import math
from bisect import bisect_right

from ..types import DONE, INF, Completion
from .sdrm3_estimate import COMPILED, _first_late, blocks_left
from .sdrm3_shedding import upcoming_releases

# ``spill`` applies under overload: more misses than this lately (decayed over ``window_ms``); after a lone miss at
# light load (mediapipe_xr_slow on headset_placement at 1x, kept live logs replayed) it spent 20-25% more energy
SPILL_MISSES = 1.5


def energy_is_safe(pol, view, now: float, job, a: int, f: float, fast_a: int, fast_f: float, ranked: list,
                   t_at: list[float], accs: list[int]) -> bool:
    """Never trade a deadline for energy: placing ``job``'s next block on ``a`` (ending at ``f``) rather
    than on the accelerator where the job ends first (``fast_a``, ending at ``fast_f``) is allowed only if
    the estimate (``_first_late``: the jobs still queued, the rest of the running ones and of this one,
    and the known next releases, in deadline order) has no more late jobs than with the faster choice."""
    s, en = job.seg, job.en
    if pol.spill and _seen(pol, SPILL_MISSES, 5) and sum(en[fast_a][s:]) - sum(en[a][s:]) > spill_allowance(pol):
        return True  # (``spill``) the faster choice costs more energy than its frames on time are worth: no guard
    items = sorted(others(pol, view, now, job, ranked), key=_deadline_order)
    rest = [la[job.seg + 1:] for la in job.lat]
    slow = None  # the late jobs with the slower choice; with the faster one, counted only as far as it
    memo = suffix_memo(pol, view.costs)  # the items' best-case suffixes, for both estimates
    # the job's own rest goes where a stable sort of the items and it (last) would put it, both times
    at = bisect_right(items, (job.deadline, job.id), key=_deadline_order) if rest[0] else 0
    for acc, end in ((a, f), (fast_a, fast_f)):
        own = 1 if not rest[0] and end > job.deadline else 0
        if slow is not None and slow - own <= 0:
            return True
        start = list(t_at)
        start[acc] = end
        its = items[:at] + [(job.deadline, job.id, job, 0.0, False, 0.0, end, rest)] + items[at:] if rest[0] \
            else items
        if slow is None:
            slow = _first_late(its, start, accs, count=True, lst=pol._lst, memo=memo) + own
        else:  # no fewer late jobs with the faster choice once the count reaches the slower one's
            return slow <= _first_late(its, start, accs, count=True, lst=pol._lst, stop=slow - own,
                                       memo=memo) + own
    return True


def _deadline_order(it: tuple) -> tuple:
    """An estimate item's place in the estimate's input: deadline, then id (upcoming releases last)."""
    return (it[0], it[1])


def suffix_memo(pol, costs) -> dict | None:
    """A fresh ``memo`` for ``_first_late`` holding the best-case suffixes of the cost table's own rows (those of
    unstarted jobs and of the known releases): ``costs.rem_best[m][v]`` is exactly what ``_best_suffixes`` reckons
    for ``costs.lat[m][v]`` (the same minima, summed in the same order), and ``Costs.refresh`` keeps it so in place.
    Built once per table (again if the derived tables were replaced, or the seed outlived the ids it was made with,
    as a copied policy would), so an estimate reckons only the suffixes of started jobs' rows."""
    if COMPILED:
        return None  # the compiled estimate reckons the suffixes itself, on C arrays (it takes no memo)
    seed = pol._suffix_seed
    if seed is None or seed[0] is not costs or seed[1] is not costs.rem_best or id(seed[2]) != seed[4]:
        rows = [lv for lm in costs.lat for lv in lm]  # held: their ids stay theirs while the seed lives
        sufs = [rb for rbm in costs.rem_best for rb in rbm]
        seed = pol._suffix_seed = (costs, costs.rem_best, rows, {id(lv): rb for lv, rb in zip(rows, sufs)}, id(rows))
    return seed[3].copy()


def others(pol, view, now: float, job, ranked: list) -> list:
    """The estimate's items besides ``job``: the jobs still queued (``ranked``), the rest of the running ones,
    and (``lookahead``) the known next releases up to the latest of their deadlines."""
    items = [(r.job.deadline, r.job.id, r.job, 0.0, False, 0.0, now, blocks_left(r.job)) for r in ranked]
    for b, r in enumerate(view.running):
        if r is not None and r.seg < r.n_segs:
            items.append((r.deadline, r.id, r, 0.0, False, 0.0, view.free_at[b], blocks_left(r)))
    horizon = max(it[0] for it in items) if items else job.deadline
    if pol.lookahead:
        items += [(dl, INF, None, 0.0, False, 0.0, r, lat)
                  for r, dl, lat, _ in upcoming_releases(view, now, horizon, pol._rel_deadline, pol._value,
                                                        roots=pol._look[0])]
    return items


def stay_is_safe(pol, view, now: float, job, a: int, end: float, ranked: list, t_at: list[float],
                 accs: list[int]) -> bool:
    """A placement past the slack share (``stay_slack``): ``job``'s blocks from the next on all run on ``a``,
    which it then holds until ``end``; allowed only if the estimate of every other job (:func:`others`, in
    deadline order, ``a`` booked until ``end``) has none late."""
    items = sorted(others(pol, view, now, job, ranked), key=_deadline_order)
    start = list(t_at)
    start[a] = end
    return _first_late(items, start, accs, count=True, lst=pol._lst, stop=1, memo=suffix_memo(pol, view.costs)) < 1


def worth(pol, j) -> float:
    """The most energy the rest of job ``j`` may cost (mJ) for its frames on time to lower UXCost. UXCost is
    energy x (missed + 1) up to constants: a frame made rather than missed divides the second factor by about
    (M + 1) / M and multiplies the first by (E + its energy - what a miss costs anyway: the reference energy, or
    what the job already spent) / E. It pays while its energy above that is below E / (M + 1) per frame at stake
    (cascaded children count), E and M the run's energy and misses, here over the last ``window_ms`` (decayed);
    applied once outcomes span a whole window (a run's first window would weigh one miss against part of
    its energy: on a 0.35-s window of ar_assistant on dual_4k_ws_os that made 2 more misses)."""
    e, missed = pol._ux[0], pol._ux[1]
    return pol._value[j.m] * e / (missed + 1.0) + max(0.0, pol._ref[j.m] - j.energy)


def _seen(pol, misses: float = 0.0, k: int = 1) -> bool:
    """Outcomes with more than ``misses`` misses (``pol._ux[k]``) over a whole window seen lately (before, E is the
    energy of a part of it against at least one miss): :func:`worth` and :func:`spill_allowance` apply."""
    return pol._ux[k] > misses and pol._ux[2] - pol._ux[3] >= pol._window_ms


def allowances(pol, view, j, t_at: list[float], now: float) -> tuple[float, float, float, tuple]:
    """For ``SDRM3._best_pair``: the most energy the rest of job ``j`` may cost (``energy_worth``: :func:`worth`, else
    INF); under overload (``spill``; else -1, 0 and none), the most it may cost above its cheapest placement
    (:func:`spill_allowance`), that cheapest energy (the rest of the job on one accelerator), and the accelerators
    free now that score as the cheapest: where the cheapest one is busy, those on which the job costs no more above it
    than that. Only a free accelerator: a costlier one that would also make the job wait, or take work from a free
    cheapest one, adds energy without adding capacity (on the random mixes of tools/bench_uxcost.py 45 of 360 cells
    came out worse than the best baseline, against 14 without the rule). The misses that make overload are those of
    the models that can make their deadline at all (``pol._lost``: the others, whose best case alone exceeds it, miss
    every frame at any load; counting them had SDRM3 spend energy in vain on 4 random mixes)."""
    allow = worth(pol, j) if pol.energy_worth and _seen(pol) else INF
    if getattr(pol, "_lost_of", None) is not pol._models:
        pol._lost_of, rb = pol._models, view.costs.rem_best
        pol._lost = {m.name for i, m in enumerate(pol._models) if min(v[0] for v in rb[i]) > m.relative_deadline_ms}
    if not (pol.spill and _seen(pol, SPILL_MISSES, 5)):
        return allow, -1.0, 0.0, ()
    s, en, accs = j.seg, j.en, pol._accs
    rest = [sum(en[a][s:]) for a in accs]
    cheapest = min(rest)
    spill = spill_allowance(pol)
    if any(t_at[a] <= now for a, r in zip(accs, rest) if r == cheapest):
        return allow, spill, cheapest, ()
    return allow, spill, cheapest, tuple(a for a, r in zip(accs, rest) if t_at[a] <= now and r - cheapest <= spill)


def spill_allowance(pol) -> float:
    """The most energy (mJ) a job may cost above its cheapest placement, under overload, for a faster one to be worth
    it (``spill``): E / (M + 1) x (1 - M / N)^2, E, M and N the energy, misses and frames due over the last
    ``window_ms`` (decayed). UXCost is E x (M + 1) up to constants: a frame made rather than missed pays while the
    energy it adds is below E / (M + 1) (:func:`worth`), but only if it is then on time, as the share (1 - M / N) of
    frames lately is, and the energy it adds takes the accelerator's time from others, lost as often; so the
    allowance falls fast as the misses rise (the figures: the module's docstring). Measured on the live workload
    against exponents 1 and 3, with and without the frames at stake as a factor (:func:`worth` has them): with the
    exponent 1 or the frames at stake, the CPU kept running frames at 4x capacity not worth their energy; with 3, more
    frames were missed at 2x."""
    e, missed, due = pol._ux[0], pol._ux[5], pol._ux[4]
    return e / (missed + 1.0) * (1.0 - missed / max(due, 1.0)) ** 2


def observe(pol, c: Completion, now: float) -> None:
    """A due frame's outcome: the energy (a missed frame's at least its model's reference energy), the misses and the
    frames due of late, decayed over ``window_ms``, and the span of outcomes seen (for :func:`worth`)."""
    ux = pol._ux
    k = math.exp(-(now - ux[2]) / pol._window_ms) if now > ux[2] else 1.0
    ref = pol._ref_of.get(c.model, 0.0)
    ux[0] = ux[0] * k + (c.energy_mj if c.completed else max(c.energy_mj, ref))
    ux[1] = ux[1] * k + (c.status != DONE)
    ux[4] = ux[4] * k + 1.0
    ux[5] = ux[5] * k + (c.status != DONE and c.model not in getattr(pol, "_lost", ()))
    ux[2] = max(now, ux[2])
    ux[3] = min(now, ux[3])
