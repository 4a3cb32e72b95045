"""Costs learned while running (Band's latency estimator: the profile is the prior, every measurement updates it).

One estimate per ``(model, variant, segment, accelerator)`` of what a block really costs the service: its latency
from the moment the engine hands it to a worker to the moment the engine sees it end — the invoke *and* the
service's own dispatch overhead (thread hand-off, event loop) — and its energy where it is metered.

- A block of ``n`` segments is one measurement: its time is shared among its segments in proportion to their
  current estimates (the ratio measured / predicted applies to each).
- Smoothing is an exponentially weighted mean with a time constant ``tau_ms`` (not a fixed weight per sample):
  the weight of a measurement is ``1 - exp(-dt / tau_ms)``, ``dt`` the time since the entry's last one, so that
  a drift is followed within a few ``tau_ms`` however often the entry runs (``tau_ms`` = 200: 99% of a step
  after 1 s of samples).
- Fast path: ``fast_after`` consecutive measurements off by more than ``fast_error`` (a share of the estimate)
  set the estimate to their mean at once (a device throttled, a host computing for an emulated device); fewer
  are outliers and move nothing (a block the host stalled for 100+ ms once on a busy 2-core machine would
  otherwise stand, with the weight of a long gap, as the cost of that segment until it runs there again — and a
  policy that sees a segment 50x slower on an accelerator does not run it there again).
- Updates reach the :class:`Costs` tables in batches (:meth:`flush`, at most every ``flush_ms``): one
  ``Costs.refresh`` per batch, which updates the derived tables in place, so queued jobs see the new values.
  A refresh takes ~0.4 ms for the MediaPipe XR pipeline's tables on headset_emulated (0.16 ms for digits, 2-core
  x86 dev VM): every 50 ms at most, under 1% of a core.

- The service's own dispatch overhead is in every learned cost but in no table cost, so an accelerator (or a
  segment) not measured yet would look cheaper than it is beside one measured. A block whose driver says how long
  the device itself took (``device_ms``) also gives the overhead: the rest of its time. The entries not measured
  yet get the table cost plus the median of the last ``overhead_window`` overheads of their accelerator (with
  fewer than 5 there: of every accelerator's). When that overhead moved by more than ``overhead_step``, those it
  moves by more than ``min_change`` are rewritten (and reported by :meth:`flush`, so a log records them).
- An accelerator whose own time is known (``known``: an emulated device timed to its modelled latency, whether it
  computes when idle or never) is learned the same way, but what was learned of a segment there is forgotten once
  no block measured it for ``stale_ms`` (5 ``tau_ms``): it is the table plus the accelerator's overhead then, as
  for an entry never measured there — per segment, the median of its last ``known_window`` blocks' time past the
  device's own within ``stale_ms`` (with fewer than 3 there: of every known accelerator's; with none, 0), rewritten
  when that moved by a fifth (or ``overhead_step``). The device's own time cannot have drifted, so a raised cost
  there is the host's (a stall, an overload) and holds only while blocks there go on showing it: kept for good, a
  cost one stall raised stood as long as the policy, seeing it dear, ran that segment elsewhere.

Pure: no clock; times come in as arguments.
"""
from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from .types import Costs

Key = tuple[int, int, int, int]  # (model, variant, accelerator, segment): the order of ``Costs.lat[m][v][a][s]``


@dataclass(slots=True)
class Entry:
    latency_ms: float
    energy_mj: float
    last_ms: float = -math.inf  # time of the last measurement
    samples: int = 0
    off: int = 0  # consecutive measurements off by more than fast_error
    off_sum: float = 0.0  # their sum (latency)


class Estimator:
    """Learns ``costs`` (updated in place by :meth:`flush`) from measured blocks (:meth:`observe`)."""

    def __init__(self, costs: Costs, *, tau_ms: float = 200.0, fast_error: float = 0.5, fast_after: int = 3,
                 flush_ms: float = 50.0, min_change: float = 0.02, overhead_window: int = 15,
                 overhead_step: float = 0.05, known: tuple[int, ...] = (), known_window: int = 64,
                 stale_ms: float | None = None) -> None:
        if tau_ms <= 0 or flush_ms < 0 or fast_error <= 0 or fast_after < 1:
            raise ValueError("Estimator: tau_ms > 0, flush_ms >= 0, fast_error > 0 and fast_after >= 1 needed")
        self.costs = costs
        self.tau_ms = tau_ms
        self.fast_error = fast_error
        self.fast_after = fast_after
        self.flush_ms = flush_ms
        self.min_change = min_change  # a flush reports an entry only once it moved this share from the table
        self.entries: dict[Key, Entry] = {}
        self.dirty: set[Key] = set()
        self.last_flush = -math.inf
        self.observations = 0
        self.flushes = 0
        self.fast_jumps = 0
        self.held = 0  # measurements far off the estimate not (yet) taken: outliers unless the next ones agree
        self.base = [[[list(la) for la in lv] for lv in lm] for lm in costs.lat]  # the table: no overhead in it
        n_acc = len(costs.lat[0][0]) if costs.lat and costs.lat[0] else 0
        self.over: list[deque] = [deque(maxlen=overhead_window) for _ in range(n_acc)]  # dispatch overheads (ms)
        self.applied = [0.0] * n_acc  # the overhead in the table cost of each accelerator's entries not measured yet
        self.overhead_step = overhead_step  # ms: the least move of an overhead that rewrites those entries
        self.known = frozenset(known)  # accelerators whose own time is the table's: their entries are forgotten
        self.stale_ms = 5.0 * tau_ms if stale_ms is None else stale_ms
        self.known_over: dict[int, deque] = {a: deque(maxlen=known_window) for a in self.known}  # (t, ms/segment)
        self.known_fresh = False  # overheads of known accelerators taken since the last flush

    def _entry(self, key: Key) -> Entry:
        e = self.entries.get(key)
        if e is None:
            m, v, a, s = key
            e = self.entries[key] = Entry(self.costs.lat[m][v][a][s], self.costs.en[m][v][a][s])
        return e

    def estimate(self, m: int, v: int, a: int, s: int) -> float:
        """The learned latency of a segment (the prior until it was measured)."""
        e = self.entries.get((m, v, a, s))
        return self.costs.lat[m][v][a][s] if e is None else e.latency_ms

    def observe(self, m: int, v: int, a: int, first_seg: int, n: int, latency_ms: float, now_ms: float,
                energy_mj: float | None = None, device_ms: float | None = None) -> None:
        """A block of segments ``first_seg .. first_seg+n-1`` took ``latency_ms`` (and ``energy_mj`` where
        metered; None: energy is modelled, not learned), ending at ``now_ms``; ``device_ms``: of which the device
        itself (the worker's invoke), when the driver knows it."""
        if not (latency_ms >= 0 and math.isfinite(latency_ms)) or n < 1:
            return
        if a in self.known:  # the device took the table's time: the rest is the service's
            own = device_ms if device_ms is not None and math.isfinite(device_ms) else \
                sum(self.base[m][v][a][first_seg:first_seg + n])
            self.known_over[a].append((now_ms, max(0.0, latency_ms - own) / n))
            self.known_fresh = True
        keys = [(m, v, a, s) for s in range(first_seg, first_seg + n)]
        ents = [self._entry(k) for k in keys]
        pred = sum(e.latency_ms for e in ents)
        share = [e.latency_ms / pred if pred > 0 else 1.0 / n for e in ents]
        en_ok = energy_mj is not None and energy_mj >= 0 and math.isfinite(energy_mj)
        pred_en = sum(e.energy_mj for e in ents)
        self.observations += 1
        if device_ms is not None and math.isfinite(device_ms):
            self.over[a].append(max(0.0, latency_ms - device_ms))
        for k, e, w in zip(keys, ents, share):
            x = latency_ms * w
            dt = now_ms - e.last_ms
            # a long gap (or the first sample) weighs at most 1 - e^-3 (95%): one sample never erases the prior
            alpha = 1.0 - math.exp(-min(dt, 3.0 * self.tau_ms) / self.tau_ms) if dt > 0 else 0.0
            if abs(x - e.latency_ms) > self.fast_error * max(e.latency_ms, 1e-3):
                e.off += 1
                e.off_sum += x
                if e.off >= self.fast_after:
                    alpha, x = 1.0, e.off_sum / e.off
                    self.fast_jumps += 1
                else:  # one block far off (a host stall) moves nothing until the next ones confirm it
                    alpha = 0.0
                    self.held += 1
            else:
                e.off, e.off_sum = 0, 0.0
            if alpha >= 1.0:
                e.off, e.off_sum = 0, 0.0
            e.latency_ms += alpha * (x - e.latency_ms)
            if en_ok:
                y = energy_mj * (e.energy_mj / pred_en if pred_en > 0 else 1.0 / n)
                e.energy_mj += alpha * (y - e.energy_mj)
            e.last_ms = now_ms
            e.samples += 1
            self.dirty.add(k)

    def _waiting(self) -> bool:  # something to write (a known accelerator's overhead may also go stale)
        return bool(self.dirty) or self.known_fresh or \
            bool(self.known) and (bool(self.entries) or any(self.applied[a] for a in self.known))

    def due(self, now_ms: float) -> bool:
        return self._waiting() and now_ms - self.last_flush >= self.flush_ms

    def flush(self, now_ms: float, force: bool = False) -> list[tuple[Key, float, float]]:
        """Write the entries measured since the last flush into the cost tables (one refresh), at most every
        ``flush_ms`` unless ``force``; returns the entries that moved by more than ``min_change`` as
        ``((m, v, a, s), latency_ms, energy_mj)`` (for the job log)."""
        if not self._waiting() or (not force and now_ms - self.last_flush < self.flush_ms):
            return []
        self.last_flush = now_ms
        lat, en = self.costs.lat, self.costs.en
        changed = []
        for k in sorted(self.dirty):
            m, v, a, s = k
            e = self.entries[k]
            old = lat[m][v][a][s]
            if abs(e.latency_ms - old) > self.min_change * old or abs(e.energy_mj - en[m][v][a][s]) > \
                    self.min_change * max(en[m][v][a][s], 1e-9):
                lat[m][v][a][s] = e.latency_ms
                en[m][v][a][s] = e.energy_mj
                changed.append((k, e.latency_ms, e.energy_mj))
        self.dirty.clear()
        changed += self._forget(now_ms)
        changed += self._untried(now_ms)
        self.known_fresh = False
        if changed:
            self.costs.refresh()
            self.flushes += 1
        return changed

    def overhead(self, a: int) -> float:
        """The dispatch overhead (ms) a block on accelerator ``a`` is expected to add to its device time: the median
        of its last ones, with fewer than 5 of every accelerator's (0 before 5 in all)."""
        if len(self.over[a]) >= 5:
            return statistics.median(self.over[a])
        pooled = [x for d in self.over for x in d]
        return statistics.median(pooled) if len(pooled) >= 5 else 0.0

    def _untried(self, now_ms: float) -> list[tuple[Key, float, float]]:
        """The entries not measured (or forgotten) of each accelerator whose overhead moved: the table cost plus it."""
        out: list[tuple[Key, float, float]] = []
        for a in range(len(self.applied)):
            if a in self.known:  # (its overhead moves more: each rewrite is logged, so not too often)
                o, step = self.known_overhead(a, now_ms), 0.2
            else:
                o, step = self.overhead(a), 0.1
            if abs(o - self.applied[a]) <= max(self.overhead_step, step * self.applied[a]):
                continue
            self.applied[a] = o
            out += self._table_plus(a, o)
        return out

    def _table_plus(self, a: int, o: float) -> list[tuple[Key, float, float]]:
        out: list[tuple[Key, float, float]] = []
        lat, en = self.costs.lat, self.costs.en
        for m, bm in enumerate(self.base):
            for v, bv in enumerate(bm):
                for s, x in enumerate(bv[a]):
                    if math.isfinite(x) and (m, v, a, s) not in self.entries and \
                            abs(x + o - lat[m][v][a][s]) > self.min_change * lat[m][v][a][s]:
                        lat[m][v][a][s] = x + o
                        out.append(((m, v, a, s), x + o, en[m][v][a][s]))
        return out

    def known_overhead(self, a: int, now_ms: float) -> float:
        """The overhead (ms per segment) a block on known-time accelerator ``a`` adds to the table: the median of its
        overheads of the last ``stale_ms``, with fewer than 3 of every known accelerator's, with none 0."""
        since = now_ms - self.stale_ms
        own = [x for t, x in self.known_over[a] if t >= since]
        if len(own) >= 3:
            return statistics.median(own)
        pooled = [x for d in self.known_over.values() for t, x in d if t >= since]
        return statistics.median(pooled) if pooled else 0.0

    def _forget(self, now_ms: float) -> list[tuple[Key, float, float]]:
        """The entries of known-time accelerators not measured for ``stale_ms``: back to the table plus the
        accelerator's overhead (the estimate of a device whose own time is the table's holds only while measured)."""
        if not self.known:
            return []
        out = []
        lat, en = self.costs.lat, self.costs.en
        for k in [k for k, e in self.entries.items() if k[2] in self.known and now_ms - e.last_ms > self.stale_ms]:
            m, v, a, s = k
            del self.entries[k]
            lat[m][v][a][s] = self.base[m][v][a][s] + self.applied[a]
            out.append((k, lat[m][v][a][s], en[m][v][a][s]))
        return out
