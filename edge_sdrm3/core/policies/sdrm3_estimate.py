"""SDRM3's block-level schedule estimate: the queue (``it[0]`` the deadline, ``it[6]`` the ready time,
``it[7]`` the block latencies [accelerator][block]) run block by block, non-preemptibly, as a dispatcher would
run it (``_first_late``), and the bounds and orders it is built from (``blocks_first_where_they_fit``,
``_blockwise_end``, ``_best_suffixes``).

Used by the policy in ``sdrm3.py``: the shedding check (``sdrm3_shedding.shedding_pays``, and the Moore-Hodgson pass
``overload_victims_list``), the energy guard (``sdrm3_energy.energy_is_safe``: a slower, cheaper placement only if no
more jobs end late) and the release hold (``sdrm3_hold.holds_release``, through ``_blockwise_end``); the ranking
itself uses ``blocks_first_where_they_fit``, and the placement one job's end estimate (``end_estimate``,
``_first_ends``: ``SDRM3._best_pair``). Pure functions over plain lists: no policy state.

``_first_late`` is the compiled estimate (``_sdrm3_estimate_c``, built from ``_sdrm3_estimate_c.c`` at install
where a C compiler is present) when it is there, the same rule on C arrays with the same answers; else, or with
``EDGE_SDRM3_PURE=1`` in the environment, the pure-Python ``_first_late_py``. ``COMPILED`` says which.
"""
from __future__ import annotations

import os
from bisect import insort
from heapq import heapify, heappop, heappush

from ..types import INF


def blocks_left(job) -> list:
    """A job's latencies [accelerator][block] from its next block on, as the estimate's items carry them: the model's
    own rows while it has not started (shared by its jobs, so the estimate reckons their best-case suffixes once)."""
    s = job.seg
    return job.lat if s == 0 else [la[s:] for la in job.lat]


def _blockwise_end(r: float, lat: list, accs: list[int], free: list[float]) -> float:
    """When a frame released at ``r`` with block latencies ``lat[accelerator][block]`` ends at best if each block
    takes the accelerator that finishes it first, the accelerators free from ``free`` (the frame's own blocks
    do not book them: a bound that lets it move between accelerators block by block)."""
    t = r
    for s in range(len(lat[0])):
        t = min((free[x] if free[x] > t else t) + lat[x][s] for x in accs)
    return t


def blocks_first_where_they_fit(order: list, now: float) -> list:
    """Latest-start order corrected for blocks that cannot be interrupted. ``order`` holds
    ``(latest start, next block's best-case time, remaining best-case time, ...)`` sorted by latest start.
    Starting job j's next block holds an accelerator for that block's whole length: a job k ranked after j
    whose slack is shorter than that block, and whose whole remaining work fits in j's slack, goes before j
    (k would miss if it waited; j makes it either way). One pass, earliest-ranked first."""
    out = list(order)
    n = len(out)
    p = 0
    while p < n:
        block = out[p][1]
        if p + 1 == n or out[p + 1][0] - now >= block:
            p += 1  # (the common case, tested first: the next job has slack for this block)
            continue
        slack_j = out[p][0] - now
        for q in range(p + 1, n):
            slack_k = out[q][0] - now
            if slack_k >= block:
                break  # sorted by latest start: the rest have more slack still
            if 0 <= slack_k and out[q][2] <= slack_j:
                out.insert(p, out.pop(q))
                break
        p += 1
    return out

# How ``_first_late_py`` (and its compiled twin) go about it: the time estimated (the earliest free accelerator's)
# never goes back, so the items are kept in two sets: those ready by then, sorted by their key in the order (it
# changes only when one of their blocks is placed), and the others in a heap by ready time. The latest-start
# correction is applied lazily, only as far down the order as the search for a placeable item goes (the order it
# gives is the same as ``blocks_first_where_they_fit`` over all of them). The compiled one (_sdrm3_estimate_c.c) is
# the fast path; this one is the reference it is tested against, and the path where no compiler built it.
def _first_late_py(items: list, start: list[float], accs: list[int], count: bool = False,
                   weighted: bool = False, lst: bool = True, stop: float = INF, fit: bool = False,
                   memo: dict | None = None) -> float:
    """Estimate the schedule of ``items`` (``it[0]`` the deadline, ``it[6]`` the ready time, ``it[7]`` the
    block latencies [accelerator][block]) from accelerator free times ``start``, as a dispatcher would run
    them: whenever an accelerator is free, the ready items in order of latest start (deadline less the
    remaining best-case work; ``blocks_first_where_they_fit``) each take the accelerator where their next
    block ends first if it is free, else wait for it (a later item may take the free one meanwhile). Returns
    the index in ``items`` of the first to end past its deadline (in time), or -1; ``count``: how many end
    past their deadlines (``weighted``: the sum of their ``it[3]``). ``stop`` (with ``count``): the count
    is returned as soon as ``stop <= count + 1e-9`` is settled: once it holds (the rest of the estimate
    could only add to it), or once it cannot hold any more (the items not finished could not add enough).
    ``fit``: an item whose best accelerator is busy takes instead a free one where all its remaining blocks would
    still end by its deadline (on big.LITTLE the waiting for the big one alone sees misses that sharing the work
    out avoids). ``memo``: a dict the caller keeps while the items' latency lists live (several estimates of the
    same items: their best-case suffixes are reckoned once). How: the module's comment above it."""
    t = list(start)
    dls, lats, n_blocks, rest = _columns(items, {} if memo is None else memo)
    pending = _pending(items, rest, n_blocks, lst)
    nxt = [0] * len(items)
    n_left = len(pending)
    # the most the items not finished could still add to the count (a margin for the sums' rounding)
    could = (sum(items[k][3] for _, k, _ in pending) if weighted else n_left) + 1e-6 if stop < INF else INF
    avail: list = []  # the keys of the items ready by ``now``, sorted
    getter = t.__getitem__
    every = accs == list(range(len(t)))  # the accelerators counted are all of them, in order
    late = 0
    while n_left:
        if every:
            now = min(t)
            a = t.index(now)
        else:
            a = min(accs, key=getter)
            now = t[a]
        while pending and pending[0][0] <= now:
            insort(avail, heappop(pending)[2])
        if not avail:  # nothing ready: every accelerator idles until the next item is (one at a time, each would
            if not pending:  # idle to the next change, and the next, until that one: the same in one step)
                break
            _idle_until(t, accs, pending[0][0])
            continue
        kk, best, fin, gone = _next_placeable(avail, now, a, t, accs, lats, nxt, dls, lst, fit)
        if gone is not None:  # they run nowhere: they cannot end
            for g in gone:
                k = g[-1]
                n_left -= 1
                if not count:
                    return k
                w = items[k][3] if weighted else 1
                late += w
                could -= w
                if stop <= late + 1e-9 or late + could < stop:
                    return late
        if kk is None:  # the accelerator idles until the next change (an accelerator freed or an item ready)
            if not _idle(t, a, now, accs, pending):
                break
            continue
        k = kk[-1]
        t[best] = fin
        avail.remove(kk)
        b = nxt[k] + 1
        nxt[k] = b
        if b < n_blocks[k]:
            r = rest[k]
            heappush(pending, (fin, k, (dls[k] - r[b], r[b] - r[b + 1], r[b], k) if lst else kk))
            continue
        n_left -= 1
        w = items[k][3] if weighted else 1
        if fin > dls[k]:
            if not count:
                return k
            late += w
            could -= w
            if stop <= late + 1e-9:
                return late
        else:
            could -= w
            if late + could < stop:
                return late
    return late if count else -1





def _idle_until(t: list[float], accs: list[int], ready: float) -> None:
    """Every accelerator of ``accs`` free before ``ready`` idles until then."""
    for c in accs:
        if t[c] < ready:
            t[c] = ready

def _idle(t: list[float], a: int, now: float, accs: list[int], pending: list) -> bool:
    """Accelerator ``a`` idles from ``now`` until the next change: another accelerator freed or an item ready.
    False: there is none."""
    nt = pending[0][0] if pending else None
    for c in accs:
        tc = t[c]
        if tc > now and (nt is None or tc < nt):
            nt = tc
    if nt is None:
        return False
    t[a] = nt
    return True

def _next_placeable(avail: list, now: float, a: int, t: list[float], accs: list[int], lats: list, nxt: list[int],
                    dls: list[float], lst: bool, fit: bool) -> tuple:
    """One placement of ``_first_late_py``: the first ready item in the order ``avail`` (corrected lazily for
    blocks that cannot be interrupted) whose next block can start at ``now``, and where: each goes to the
    accelerator where it ends first (ties: ``a``, the one free first); with ``fit``, rather than wait for a busy
    one, to a free one where its remaining blocks still end by its deadline. The items met on the way that run
    nowhere leave ``avail`` and are returned as ``gone``. Returns ``(item or None, accelerator, end, gone or
    None)``. (The compiled estimate does the same inline.)"""
    cand = avail  # copied before the order is corrected or an item leaves it
    n_c = len(cand)
    gone = None
    best, fin = -1, INF
    p = 0
    while p < n_c:
        kk = cand[p]
        # blocks_first_where_they_fit, one position at a time (passed at once where the next has slack for it)
        if lst and p + 1 < n_c and cand[p + 1][0] - now < kk[1]:
            slack_j, block = kk[0] - now, kk[1]
            for q in range(p + 1, n_c):
                slack_k = cand[q][0] - now
                if slack_k >= block:
                    break
                if 0 <= slack_k and cand[q][2] <= slack_j:
                    if cand is avail:
                        cand = avail[:]
                    kk = cand.pop(q)
                    cand.insert(p, kk)
                    break
        p += 1
        k = kk[-1]
        lat, b = lats[k], nxt[k]
        best, fin = -1, INF
        for c in accs:  # every t[c] >= now: a is the accelerator free first
            f = t[c] + lat[c][b]
            if f < fin or (f == fin and c == a):
                best, fin = c, f
        if fit and best >= 0 and t[best] > now:  # rather than wait: a free one where the item ends in time
            for c in accs:
                if t[c] <= now and now + sum(lat[c][b:]) <= dls[k]:
                    best, fin = c, now + lat[c][b]
                    break
        if best < 0:  # runs nowhere
            if cand is avail:
                cand = avail[:]
            avail.remove(kk)
            if gone is None:
                gone = []
            gone.append(kk)
            continue
        if t[best] > now:
            continue  # it waits for the accelerator that suits it
        return kk, best, fin, gone
    return None, best, fin, gone


def _compiled():
    """The compiled estimate module, or None: not built here, or ``EDGE_SDRM3_PURE=1``. Inputs it does not take as
    plain numbers and lists it hands to ``_first_late_py`` (which raises Python's errors for malformed ones)."""
    if os.environ.get("EDGE_SDRM3_PURE") == "1":
        return None
    try:
        from . import _sdrm3_estimate_c as c
    except ImportError:
        return None
    c.set_fallback(_first_late_py)
    return c


_C = _compiled()
COMPILED = _C is not None
_first_late = _C.first_late if COMPILED else _first_late_py


def _columns(items: list, memo: dict) -> tuple[list, list, list, list]:
    """Per item: deadline, block latencies, number of blocks, and best-case time of its blocks from each on
    (``memo``: by the latency list's id; items of the same model's releases share their latencies, so their suffixes
    too)."""
    dls = [it[0] for it in items]
    lats = [it[7] for it in items]
    n_blocks = [len(la[0]) for la in lats]
    rest = []
    for la in lats:
        r = memo.get(id(la))
        if r is None:
            r = memo[id(la)] = _best_suffixes(la)
        rest.append(r)
    return dls, lats, n_blocks, rest


def _pending(items: list, rest: list, n_blocks: list, lst: bool) -> list:
    """The heap of the items with blocks to run: ``(ready time, index, key in the order)``."""
    pending = []
    for k, it in enumerate(items):
        if n_blocks[k] > 0:
            r = rest[k]
            # (latest start, next block's best-case time, remaining best-case time, index), or
            # deadline order, as the policy itself ranks with ``order="edf"``
            pending.append((it[6], k, (it[0] - r[0], r[0] - r[1], r[0], k) if lst else (it[0], k)))
    heapify(pending)
    return pending


def _best_suffixes(lat: list) -> list[float]:
    """Best-case time of the blocks from each on (``lat[accelerator][block]``), with 0 after the last."""
    best = list(map(min, zip(*lat)))  # per block, over the accelerators
    suf = [0.0] * (len(best) + 1)
    for b in range(len(best) - 1, -1, -1):
        suf[b] = suf[b + 1] + best[b]
    return suf


def _first_ends(j, fins: list[float], lower: list[float], rest: float, t_at: list[float], accs: list[int],
                handoff: float, latest: float) -> tuple[list, float, int]:
    """Job ``j``'s end if its next block runs on each accelerator (finishing at ``fins``) and the rest follow
    greedily on the accelerators as booked (``end_estimate``; ``rest``: the rest's best-case time), computed
    lazily in order of the lower bounds ``lower`` until none can beat the earliest: the ends (None where not
    computed), the earliest and its index (INF and -1 where the job runs nowhere)."""
    last = j.seg + 1 >= j.n_segs
    ends: list = [None] * len(accs)
    first, fast_i = INF, -1
    for i in sorted(range(len(accs)), key=lower.__getitem__):
        if lower[i] >= first:
            break
        f = fins[i]
        e = f if last else (f + rest if f >= latest and handoff == 0.0
                            else end_estimate(j, i, fins, t_at, accs, handoff, latest))
        ends[i] = e
        if e < first:
            first, fast_i = e, i
    return ends, first, fast_i


def end_estimate(j, i: int, fins: list[float], t_at: list[float], accs: list[int], handoff: float,
                 latest: float) -> float:
    """When job ``j`` would end if its next block runs on ``accs[i]`` (ending at ``fins[i]``) and each
    later block then goes, in turn, to the accelerator that finishes it first given ``t_at`` (the
    accelerators the job itself used are free again when its previous block ends). ``latest`` is the
    largest ``t_at``: from then on every accelerator is free and the rest takes its best-case time."""
    lat = j.lat
    t = fins[i]
    prev = accs[i]
    for s in range(j.seg + 1, j.n_segs):
        if t >= latest and handoff == 0.0:
            return t + j.rem_best[s]
        bt, ba = INF, prev
        for a in accs:
            ta = t_at[a]
            f = (ta if ta > t else t) + lat[a][s]
            if a != prev:
                f += handoff
            if f < bt:
                bt, ba = f, a
        t = bt
        prev = ba
    return t
