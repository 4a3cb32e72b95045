"""SDRM3's schedule estimate (``_first_late``) and the look-ups it is built from, against plain re-statements.

The policy's estimate keeps its state incrementally (ready items sorted by key, the others in a heap by
ready time, the latest-start correction applied lazily and passed at once where the next item has slack for
the block, every accelerator idled to the next ready time at once where nothing is ready) and may stop counting
early (``stop``). Here the same rule is written the plain way — every step, re-sort every ready item and correct
the whole order, idle one accelerator at a time — and both run on random queues: the answers (first late index,
late count, weighted late count, and the comparison a caller makes with ``stop``) must be the same, so the
policy's decisions cannot move. Both estimates are held to it: the pure-Python ``_first_late_py`` and the compiled
one (``_sdrm3_estimate_c``, where the install built it), and the two give the very same values (type included) on
every flag, ``fit`` too. The same holds for the latest-start correction alone and for the look-ahead of
known releases (``upcoming_releases``, bounded by ``before`` for the release hold).
"""
from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from edge_sdrm3.catalog import build_costs, build_models, load_platform, load_scenario
from edge_sdrm3.core.dispatcher import Dispatcher
from edge_sdrm3.core.policies import sdrm3_estimate
from edge_sdrm3.core.policies.sdrm3_estimate import _best_suffixes, _first_late_py, blocks_first_where_they_fit
from edge_sdrm3.core.policies.sdrm3_shedding import upcoming_releases
from edge_sdrm3.core.types import INF

try:  # the compiled estimate, imported even where EDGE_SDRM3_PURE=1 keeps the policy off it
    from edge_sdrm3.core.policies import _sdrm3_estimate_c as compiled
    compiled.set_fallback(_first_late_py)
except ImportError:
    compiled = None
NOT_BUILT = "the C estimate is not built here (no C compiler or Python headers at install, or EDGE_SDRM3_PURE=1 then)"


@pytest.fixture(params=["pure", "compiled"])
def first_late(request):
    """Each estimate in turn: the pure-Python one, and the compiled one where it was built."""
    if request.param == "pure":
        return _first_late_py
    if compiled is None:
        pytest.skip(NOT_BUILT)
    return compiled.first_late


def plain_blocks_first(order: list, now: float) -> list:
    """The latest-start correction as its docstring states it: for each position in turn, the first job after
    it with less slack than its block whose whole remaining work fits in its slack moves before it."""
    out = list(order)
    p = 0
    while p < len(out):
        slack_j, block = out[p][0] - now, out[p][1]
        for q in range(p + 1, len(out)):
            slack_k = out[q][0] - now
            if slack_k >= block:
                break
            if 0 <= slack_k and out[q][2] <= slack_j:
                out.insert(p, out.pop(q))
                break
        p += 1
    return out


def plain_first_late(items: list, start: list[float], accs: list[int], count: bool = False,
                     weighted: bool = False, lst: bool = True) -> float:
    """The estimate as its docstring states it, recomputing everything at every step."""
    t = list(start)
    ready = [it[6] for it in items]
    nxt = [0] * len(items)
    rest = [_best_suffixes(it[7]) for it in items]
    left = [k for k in range(len(items)) if len(items[k][7][0]) > 0]
    late = 0
    while left:
        a = min(accs, key=lambda c: t[c])
        now = t[a]
        if lst:
            order = plain_blocks_first(sorted(
                (items[k][0] - rest[k][nxt[k]], rest[k][nxt[k]] - rest[k][nxt[k] + 1], rest[k][nxt[k]], k)
                for k in left if ready[k] <= now), now)
        else:
            order = sorted((items[k][0], k) for k in left if ready[k] <= now)
        placed = False
        for *_, k in order:
            lat, b = items[k][7], nxt[k]
            best, fin = -1, INF
            for c in accs:
                f = max(t[c], now) + lat[c][b]
                if f < fin or (f == fin and c == a):
                    best, fin = c, f
            if best < 0:
                left.remove(k)
                if not count:
                    return k
                late += items[k][3] if weighted else 1
                continue
            if t[best] > now:
                continue
            t[best] = ready[k] = fin
            nxt[k] = b + 1
            if b + 1 >= len(lat[0]):
                left.remove(k)
                if fin > items[k][0]:
                    if not count:
                        return k
                    late += items[k][3] if weighted else 1
            placed = True
            break
        if not placed:
            later = [ready[k] for k in left if ready[k] > now] + [t[c] for c in accs if t[c] > now]
            if not later:
                break
            t[a] = min(later)
    return late if count else -1


def random_case(rng: random.Random):
    """Items shaped as the policy builds them: queued jobs (ready now), running ones (ready when their
    accelerator frees), upcoming releases; some blocks not on every accelerator (or on no healthy one);
    integer-ish times so that ties between accelerators and between keys happen."""
    n_acc = rng.randint(1, 4)
    accs = sorted(rng.sample(range(n_acc), rng.randint(1, n_acc)))
    now = 100.0
    start = [now + rng.choice([0.0, 0.0, rng.randint(1, 20), rng.uniform(0, 20)]) for _ in range(n_acc)]
    items = []
    for k in range(rng.randint(0, 30)):
        n_blocks = rng.choice([0, 1, 1, 2, 3, 5])
        lat = [[rng.choice([float(rng.randint(1, 9)), rng.uniform(0.5, 12.0), INF if rng.random() < 0.2 else 3.0])
                for _ in range(n_blocks)] for _ in range(n_acc)]
        for b in range(n_blocks):  # a block runs somewhere (a job with one that runs nowhere is hopeless,
            if min(la[b] for la in lat) == INF:  # dropped before any estimate), not always where healthy
                lat[rng.randrange(n_acc)][b] = float(rng.randint(1, 9))
        if items and rng.random() < 0.3:  # another job of the same model: the very same latency rows, as the
            lat = rng.choice(items)[7]  # policy passes them (the estimate reckons their suffixes once)
        ready = rng.choice([now, now, now + rng.randint(0, 40), now + rng.uniform(0, 40)])
        deadline = ready + rng.choice([rng.uniform(2, 60), float(rng.randint(2, 60))])
        items.append((deadline, k, None, rng.choice([1.0, 0.5, 2.25]), False, 0.0, ready, lat))
    items.sort(key=lambda it: (it[0], it[1]))
    return items, start, accs


@pytest.mark.parametrize("seed", range(4))
def test_estimate_equals_the_plain_rule(seed: int, first_late) -> None:
    rng = random.Random(seed)
    checked = 0
    for _ in range(200):
        items, start, accs = random_case(rng)
        for lst in (True, False):
            assert first_late(items, start, accs, lst=lst) == plain_first_late(items, start, accs, lst=lst)
            n = plain_first_late(items, start, accs, count=True, lst=lst)
            w = plain_first_late(items, start, accs, count=True, weighted=True, lst=lst)
            assert first_late(items, start, accs, count=True, lst=lst) == n
            assert first_late(items, start, accs, count=True, weighted=True, lst=lst) == w
            # a caller stopping the count early reaches the same comparison as with the full count (these calls
            # share one memo of the items' suffixes, as a caller estimating the same items several times does)
            memo: dict = {}
            for stop in (0, 1, 2, n, n + 1, w, w + 1.0, w - 0.5):
                got = first_late(items, start, accs, count=True, weighted=True, lst=lst, stop=stop, memo=memo)
                assert (stop <= got + 1e-9) == (stop <= w + 1e-9)
                got = first_late(items, start, accs, count=True, lst=lst, stop=stop, memo=memo)
                assert (stop <= got + 1e-9) == (stop <= n + 1e-9)
            checked += n > 0
    assert checked > 25  # the cases do make jobs late, so the counts are exercised


def same(got, want) -> bool:
    """The same value of the same type (a count stays an int until a float weight is added, as in Python)."""
    return type(got) is type(want) and got == want


@pytest.mark.skipif(compiled is None, reason=NOT_BUILT)
@pytest.mark.parametrize("seed", range(4))
def test_the_compiled_estimate_gives_the_pure_values(seed: int) -> None:
    """Every flag (``fit`` too, which the plain rule above leaves out) and stops between and on the counts, with
    weights whose sums round (the compiled count adds them in Python's order and rounding): the very same values,
    none of them handed to the pure-Python estimate."""
    rng = random.Random(100 + seed)
    before = compiled.fallbacks()
    late = 0
    for _ in range(150):
        items, start, accs = random_case(rng)
        if rng.random() < 0.5:
            items = [(*it[:3], rng.choice([0.1, 0.7, rng.uniform(0, 3)]), *it[4:]) for it in items]
        for lst in (True, False):
            for fit in (False, True):
                args = dict(lst=lst, fit=fit)
                want = _first_late_py(items, start, accs, **args)
                assert same(compiled.first_late(items, start, accs, **args), want)
                n = _first_late_py(items, start, accs, count=True, **args)
                w = _first_late_py(items, start, accs, count=True, weighted=True, **args)
                assert same(compiled.first_late(items, start, accs, count=True, **args), n)
                assert same(compiled.first_late(items, start, accs, count=True, weighted=True, **args), w)
                for stop in (0, 1, 2, n, n + 1, w, w + 1.0, w - 0.5, w / 2):
                    for weighted in (False, True):
                        got = compiled.first_late(items, start, accs, True, weighted, lst, stop, fit, {})
                        assert same(got, _first_late_py(items, start, accs, True, weighted, lst, stop, fit, {}))
                late += n > 0
    assert late > 100
    assert compiled.fallbacks() == before


@pytest.mark.skipif(compiled is None, reason=NOT_BUILT)
def test_the_compiled_estimate_hands_other_inputs_to_the_pure_one() -> None:
    """Inputs that are not plain floats in lists and tuples (integer latencies or weights, a list as an item, rows of
    unequal length) are estimated by the pure-Python function: the same answers, and the same errors for bad ones."""
    rng = random.Random(7)
    items, start, accs = random_case(rng)
    while not items or not len(items[0][7][0]):
        items, start, accs = random_case(rng)
    ragged = [(*items[0][:7], [row[:-1] if c == 0 else row for c, row in enumerate(items[0][7])])] + items[1:]
    others = [
        [list(it) for it in items],
        ragged,
        [(*it[:7], [[int(x) if x < INF else x for x in row] for row in it[7]]) for it in items],
        [(*it[:3], 1, *it[4:]) for it in items],
    ]
    before = compiled.fallbacks()
    for its in others:
        for count, weighted in ((False, False), (True, False), (True, True)):
            got = compiled.first_late(its, start, accs, count=count, weighted=weighted)
            assert same(got, _first_late_py(its, start, accs, count=count, weighted=weighted))
    assert compiled.fallbacks() > before
    bad = [(items, start, [len(start)]), ([(1.0, 0)], start, accs), ([(1.0, 0, None, 1.0, 0, 0, 0.0, [])], start, accs)]
    for its, st, ac in bad:
        with pytest.raises(Exception) as pure_error:
            _first_late_py(its, st, ac, count=True)
        with pytest.raises(type(pure_error.value)):
            compiled.first_late(its, st, ac, count=True)


def test_the_policy_takes_the_compiled_estimate_unless_told_not_to() -> None:
    """``EDGE_SDRM3_PURE=1`` keeps the policy on the pure-Python estimate; without it the compiled one runs where
    it was built."""
    code = "from edge_sdrm3.core.policies import sdrm3_estimate as e; print(e.COMPILED, e._first_late.__name__)"
    env = {k: v for k, v in os.environ.items() if k != "EDGE_SDRM3_PURE"}
    pure = subprocess.run([sys.executable, "-c", code], env={**env, "EDGE_SDRM3_PURE": "1"}, capture_output=True,
                          text=True, check=True)
    assert pure.stdout.split() == ["False", "_first_late_py"]
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert default.stdout.split() == (["True", "first_late"] if compiled is not None else ["False", "_first_late_py"])
    assert sdrm3_estimate.COMPILED == (compiled is not None and os.environ.get("EDGE_SDRM3_PURE") != "1")


@pytest.mark.parametrize("seed", range(4))
def test_latest_start_correction_equals_the_plain_rule(seed: int) -> None:
    """The correction's shortcut (a job whose follower has slack for its block is passed at once) moves the same
    jobs as the plain pass, on random orders with ties, negative slacks and blocks longer than every slack."""
    rng = random.Random(seed)
    moved = 0
    for _ in range(300):
        now = 100.0
        order = []
        for k in range(rng.randint(0, 16)):
            start = now + rng.choice([float(rng.randint(-5, 30)), rng.uniform(-5, 30)])
            block = rng.choice([float(rng.randint(0, 12)), rng.uniform(0, 12), 40.0])
            order.append((start, block, block + rng.uniform(0, 20), k))
        order.sort()
        got = blocks_first_where_they_fit(order, now)
        assert got == plain_blocks_first(order, now)
        moved += got != order
    assert moved > 50  # the cases do reorder


@pytest.mark.parametrize("scenario", ["ar_assistant", "mediapipe_xr"])
def test_upcoming_releases_equal_the_plain_rule(scenario: str) -> None:
    """Every release of an uncascaded model after ``now`` whose deadline falls by ``horizon`` (and, with ``before``,
    released before it), model by model in time order; models too slow for their deadline even alone left out."""
    sc = load_scenario(scenario)
    spec = load_platform("headset_placement" if scenario == "mediapipe_xr" else "dual_4k_biglittle_ws_os")
    models = build_models(sc, (1.0,), spec)
    costs = build_costs(models, spec, sc.cost_table)
    view = Dispatcher(spec.platform, models, costs, policy=None).view
    rel = [m.relative_deadline_ms for m in models]
    value = [1.0 + 0.5 * i for i in range(len(models))]
    rng = random.Random(1)
    found = 0
    for _ in range(300):
        now = rng.choice([rng.uniform(0, 5000), float(rng.randint(0, 50)) * 100.0 / 3.0])
        horizon = now + rng.uniform(0, 400)
        before = rng.choice([INF, now + rng.uniform(0, 100)])
        plain = []
        for m, model in enumerate(models):
            best = costs.rem_best[m][0][0]
            if model.upstream is not None or best > rel[m] or best <= 0:
                continue
            r = (int(now / model.period_ms + 1e-9) + 1) * model.period_ms  # the next release, then a period apart
            while r + rel[m] <= horizon and r < before:
                plain.append((r, r + rel[m], costs.lat[m][0], best / value[m]))
                r += model.period_ms
        got = upcoming_releases(view, now, horizon, rel, value, before=before)
        assert got == plain
        assert got == [u for u in upcoming_releases(view, now, horizon, rel, value) if u[0] < before]
        found += len(got)
    assert found > 100
