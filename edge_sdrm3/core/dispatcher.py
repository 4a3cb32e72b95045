"""The dispatcher: owns the ready queue and the accelerators' state, asks the policy, validates.

A driver (the replay engine or the live service) calls ``release`` for new jobs, ``segments_done``
when an accelerator finishes what it was given, and ``schedule(now)`` after each batch of events;
``schedule`` returns the work to start and the jobs that ended without completing (drops). A policy
only ever sees a read-only ``View``; a decision that is not valid is logged, counted, and that step
falls back to FIFO (DESIGN.md §3).

Firm deadlines (DESIGN.md §6), for every policy and both drivers: at its deadline a job is dropped
(reason ``deadline``) — at once if it waits in the queue, started or not (``schedule`` drops it and
asks to be woken at the next queued deadline), and at its next block boundary if it runs
(``segments_done`` returns the drop: the block in flight counts, the rest is not run). Under
``drop_strict`` (``--compat xrbench``) XRBench's own rule applies instead: only a queued job that has
not started is dropped, once ``now`` is past its deadline.

Fewer hand-offs (``chain_ms`` > 0, the live service): a one-block Run is extended to the job's next blocks
on the same accelerator — run by the worker in one go — when it is the only job in the system (none other
waits or runs: the policy has nothing to choose between), the accelerator is (within the hand-off) the
fastest healthy one for the rest of the job, and the blocks together are predicted to take at most
``chain_ms``. Fastest on the same footing: a cost learned while running (``core.estimator``) holds the service's
own dispatch overhead as well as the device's time, a cost not yet measured holds only the device's (the table), so
where the other accelerator's block still has its table cost it counts with the overhead this accelerator's block
has shown over its own table cost (:meth:`Dispatcher._chain`). Compared as they stand, the accelerator a lone job
runs on always looked slower than the ones it never ran on once its costs were learned, and no block ran in one go
(digits on headset_emulated, ``emulated_compute = "always"``: 7 of 220 jobs chained, 0.8 ms more per model).
Once a job waits meanwhile (the policy left it in the queue), the run ends at its next block boundary
(``Engine._cut_chains``) and the policy decides the rest. Under contention every block is decided on its own, and
so is every block on an accelerator that ever failed.
"""
from __future__ import annotations

import logging
from bisect import insort

from .policy import Policy, as_policy
from .types import (
    DONE, DROPPED, FAILED, INF, LATE, Completion, Costs, Counters, Drop, Job, Model, Platform, Run, Start, Wake,
)

log = logging.getLogger(__name__)


class View:
    """What a policy may look at: ready jobs (release order), the job running on each accelerator,
    every accelerator and when it is free,
    and cost look-ups. Rebuilt by the dispatcher at every step; policies must not mutate it."""

    __slots__ = ("ready", "running", "free_at", "healthy", "costs", "platform", "models", "n_acc", "handoff_ms", "variants_of")

    def __init__(self, platform: Platform, models: tuple[Model, ...], costs: Costs) -> None:
        self.platform = platform
        self.models = models
        self.costs = costs
        self.n_acc = len(platform.accelerators)
        self.handoff_ms = platform.handoff_ms
        self.variants_of = _largest  # the variant the next job of model m will start with (the policy's)
        self.ready: tuple[Job, ...] = ()
        self.running: tuple[Job | None, ...] = ()  # per accelerator, the job running there
        self.free_at: tuple[float, ...] = ()
        self.healthy: tuple[bool, ...] = ()

    def free(self, a: int, now: float) -> bool:
        return self.healthy[a] and self.free_at[a] <= now

    def free_accs(self, now: float) -> list[int]:
        return [a for a in range(self.n_acc) if self.healthy[a] and self.free_at[a] <= now]

    def latency(self, job: Job, a: int) -> float:
        """Latency of the job's next segment on ``a``, with the hand-off if the job moves there."""
        t = job.lat[a][job.seg]
        if job.acc >= 0 and job.acc != a:
            t += self.handoff_ms
        return t

    def energy(self, job: Job, a: int) -> float:
        return job.en[a][job.seg]

    def remaining(self, job: Job, a: int) -> float:
        """Latency of all the job's remaining segments on ``a``."""
        return sum(job.lat[a][job.seg:])

    def remaining_best(self, job: Job) -> float:
        return job.rem_best[job.seg]


class Dispatcher:
    def __init__(self, platform: Platform, models: tuple[Model, ...], costs: Costs, policy: Policy,
                 *, fallback: Policy | None = None, drop_strict: bool = False, chain_ms: float = 0.0) -> None:
        self.platform = platform
        self.models = models
        self.costs = costs
        self.policy = policy
        self.fallback = fallback
        self.n_acc = len(platform.accelerators)
        self.acc_ids = [a.id for a in platform.accelerators]
        self.ready: list[Job] = []
        self.free_at = [0.0] * self.n_acc
        self.healthy = [True] * self.n_acc
        self.running: list[Job | None] = [None] * self.n_acc
        self.busy_ms = [0.0] * self.n_acc
        self.view = View(platform, models, costs)
        self.counters = Counters()
        self.wake_at = INF
        # strict: drop a queued job only once now > deadline (XRBench's rule); else at now >= deadline
        self.drop_strict = drop_strict
        self.chain_ms = chain_ms
        self.chained = 0  # blocks run in one go with the one before (not decided on their own)
        # the table's latencies as they were given (before any is learned): what "not measured" means in ``_chain``
        self._table = [[[list(la) for la in lv] for lv in lm] for lm in costs.lat] if chain_ms > 0 else []
        self._failed = [False] * self.n_acc  # an accelerator that ever failed runs one block at a time (a failed
        # block is retried from its first segment: a long one on a flaky device loses more)
        self._pending_energy = [0.0] * self.n_acc
        self._energy_before = [0.0] * self.n_acc  # the job's energy before the block each accelerator runs
        self._first_seg = [0] * self.n_acc  # first segment of what each accelerator runs (a retry restarts there)
        # the variant a new job starts with (a Dispatcher made without a policy only builds views)
        self._variant_of = None
        if policy is not None:
            self.set_policy(policy)

    # --- driver interface ---------------------------------------------------------------------
    def release(self, job: Job) -> None:
        if job.seg == 0 and not job.running and self._variant_of is not None:
            v = self._variant_of(job.m)  # the policy's supernet choice for a new job
            if v != job.variant and 0 <= v < len(job.model.variants):
                job.set_variant(v, self.costs)
        insort(self.ready, job, key=_fifo_key)

    def segments_done(self, a: int, now: float, energy_mj: float | None = None,
                      end_ms: float | None = None, ran: int | None = None) -> Completion | None:
        """Accelerator ``a`` finished the segments it was given; it is free from ``now``. Returns the
        job's completion if it has no segment left. ``energy_mj`` overrides the predicted energy (a
        measured value); ``end_ms`` is the exact end when the driver notices it later than it was;
        ``ran``: only that many of the segments given ran (the job continues from the next)."""
        job = self.running[a]
        if job is None:
            raise RuntimeError(f"segments_done on idle accelerator {self.acc_ids[a]}")
        if ran is not None:
            job.seg = self._first_seg[a] + ran
        self.running[a] = None
        self.free_at[a] = now
        job.running = False
        end = now if end_ms is None else end_ms
        job.last_progress = end
        if energy_mj is not None:
            job.energy = self._energy_before[a] + energy_mj
        if job.seg >= job.n_segs:
            return self._complete(job, end, DONE if end <= job.deadline else LATE)
        if end >= job.deadline and not self.drop_strict:  # firm deadline: the rest is not run
            self.counters.drops_deadline += 1
            return self._complete(job, end, DROPPED, "deadline")
        self.release(job)
        return None

    def drop(self, jobs: list[Job], now: float, reason: str) -> list[Completion]:
        """Drop queued jobs (a driver's bound on its queues, a shutdown); their completions."""
        gone = {j.id for j in jobs}
        self.ready = [j for j in self.ready if j.id not in gone]
        return [self._complete(j, now, DROPPED, reason) for j in jobs]

    def abandon(self, a: int, now: float, reason: str) -> Completion | None:
        """Give up the job running on accelerator ``a`` (its result would come too late); ``a`` is free."""
        job = self.running[a]
        self.running[a] = None
        self.free_at[a] = now
        if job is None:
            return None
        job.running = False
        return self._complete(job, now, DROPPED, reason)

    def hold_busy(self, a: int, now: float, margin_ms: float) -> None:
        """Real work may overrun its prediction: if accelerator ``a`` still runs past its predicted end,
        it counts as busy for ``margin_ms`` more."""
        if self.running[a] is not None and self.free_at[a] <= now:
            self.free_at[a] = now + margin_ms

    def set_policy(self, policy: Policy) -> None:
        self.policy = policy
        bound = as_policy(policy)
        self._variant_of = bound.variant_of
        self.view.variants_of = bound.variant_of  # the variant the next job of a model will start with
        self.view.healthy = tuple(self.healthy)
        bound.bind(self.view)  # the workload, before the first release

    def fail(self, a: int, now: float, reason: str, *, retry: bool = False) -> Completion | None:
        """The accelerator failed the segments it was running: mark it unhealthy (no policy may use it until
        :meth:`recover`) and end the job (status ``failed``, ``reason``) — or, with ``retry`` while the job's
        deadline has not passed and another accelerator is healthy, put it back in the ready queue from the
        segment that failed (its predicted energy of the failed block taken back), to run elsewhere."""
        job = self.running[a]
        self.running[a] = None
        self.healthy[a] = False
        self._failed[a] = True
        self.free_at[a] = now
        self.counters.errors[reason] = self.counters.errors.get(reason, 0) + 1
        if job is None:
            return None
        job.running = False
        if retry and now < job.deadline and any(self.healthy):
            job.seg = self._first_seg[a]
            job.energy -= self._pending_energy[a]
            self.counters.retries += 1
            self.release(job)
            return None
        return self._complete(job, now, FAILED, reason)

    def recover(self, a: int) -> None:
        """Accelerator ``a`` works again (a probe succeeded): policies may use it from the next step."""
        self.healthy[a] = True

    def schedule(self, now: float) -> tuple[list[Start], list[Completion]]:
        ended: list[Completion] = []
        ready = self.ready
        # queued jobs are dropped at their deadline, for every policy (strict: unstarted ones, once past it)
        if ready:
            if self.drop_strict:
                expired = [j for j in ready if j.seg == 0 and j.deadline < now]
            else:
                expired = [j for j in ready if j.deadline <= now]
            if expired:
                for j in expired:
                    self.counters.drops_deadline += 1
                    ended.append(self._complete(j, now, DROPPED, "deadline"))
                gone = {j.id for j in expired}
                self.ready = ready = [j for j in ready if j.id not in gone]
        self.wake_at = INF
        if not ready:
            return [], ended
        view = self.view
        view.ready = tuple(ready)
        view.running = tuple(self.running)
        view.free_at = tuple(self.free_at)
        view.healthy = tuple(self.healthy)
        decisions = self.policy.pick(view, now)
        starts: list[Start] = []
        ok = self._apply(decisions, now, starts, ended)
        if not ok or (not starts and not any(self.running) and self.ready and self.wake_at == INF):
            # a policy that misbehaves, or leaves work waiting with nothing that would wake it again
            self.counters.fallbacks += 1
            if self.fallback is not None and self.ready:
                view.ready = tuple(self.ready)
                view.free_at = tuple(self.free_at)
                self._apply(self.fallback.pick(view, now), now, starts, ended)
        # wake at the next deadline of a queued job (strict: an unstarted one), so that it is dropped on time
        w = self.wake_at
        if self.drop_strict:
            for j in self.ready:
                if j.seg == 0 and j.deadline < w:
                    w = j.deadline
        else:
            for j in self.ready:
                if j.deadline < w:
                    w = j.deadline
        self.wake_at = w
        return starts, ended

    # --- internals ----------------------------------------------------------------------------
    def _apply(self, decisions: list, now: float, starts: list[Start], ended: list[Completion]) -> bool:
        if not decisions:
            return True
        ready_ids = {j.id for j in self.ready}
        taken: set[int] = set()
        gone: set[int] = set()
        free_at, running, healthy, n_acc = self.free_at, self.running, self.healthy, self.n_acc
        self.counters.decisions += len(decisions)
        # the only job in the system (none other waits or runs): the policy has no choice to make between jobs
        alone = self.chain_ms > 0 and len(ready_ids) == 1 and not any(running)
        for d in decisions:
            # fast check of the common decision (one block, same variant); anything else, or
            # anything doubtful, goes through the full check, which names what is wrong
            if d.__class__ is Run and d.variant is None and not d.whole:
                job, a = d.job, d.acc
                ok = (job.id in ready_ids and job.id not in gone and a.__class__ is int and 0 <= a < n_acc
                      and healthy[a] and free_at[a] <= now and running[a] is None and a not in taken
                      and job.lat[a][job.seg] != INF)
                err = "" if ok else self._invalid(d, now, ready_ids, taken, gone)
            else:
                err = self._invalid(d, now, ready_ids, taken, gone)
            if err:
                self.counters.invalid_decisions += 1
                log.warning("policy %s: invalid decision %r: %s", self.policy.name, d, err)
                self._remove_gone(gone)
                return False
            if isinstance(d, Run):
                job = d.job
                if d.variant is not None and d.variant != job.variant:
                    job.set_variant(d.variant, self.costs)
                n = self._chain(job, d.acc) if alone and not d.whole else 0
                starts.append(self._start(job, d.acc, now, d.whole, n))
                taken.add(d.acc)
                gone.add(job.id)
            elif isinstance(d, Drop):
                self.counters.drops_policy += 1
                gone.add(d.job.id)
                ended.append(self._complete(d.job, now, DROPPED, d.reason))
            else:
                if d.at > now and d.at < self.wake_at:
                    self.wake_at = d.at
        self._remove_gone(gone)
        return True

    def _remove_gone(self, gone: set[int]) -> None:
        if gone:
            self.ready = [j for j in self.ready if j.id not in gone]

    def _invalid(self, d, now: float, ready_ids: set[int], taken: set[int], gone: set[int]) -> str:
        if isinstance(d, Wake):
            return "" if isinstance(d.at, (int, float)) else "wake time is not a number"
        if not isinstance(d, (Run, Drop)):
            return f"not a decision: {type(d).__name__}"
        job = d.job
        if job.id not in ready_ids or job.id in gone:
            return "job is not ready"
        if isinstance(d, Drop):
            return ""
        a = d.acc
        if not isinstance(a, int) or not 0 <= a < self.n_acc:
            return f"no accelerator {a!r}"
        if not self.healthy[a]:
            return f"accelerator {self.acc_ids[a]} is unhealthy"
        if self.free_at[a] > now or a in taken or self.running[a] is not None:
            return f"accelerator {self.acc_ids[a]} is busy"
        v = job.variant
        if d.variant is not None:
            if not 0 <= d.variant < len(job.model.variants):
                return f"no variant {d.variant} of {job.model.name}"
            if d.variant != job.variant and job.seg > 0:
                return "variant changed after the job started"
            v = d.variant
        lat = self.costs.lat[job.m][v][a]
        segs = lat[job.seg:] if d.whole else lat[job.seg:job.seg + 1]
        if any(x == INF for x in segs):
            return f"segment not supported on {self.acc_ids[a]}"
        return ""

    def _chain(self, job: Job, a: int) -> int:
        """How many of the job's next blocks to run on ``a`` in one go (0: one, as decided)."""
        s, lat = job.seg, job.lat[a]
        if s + 1 >= job.n_segs or self._failed[a]:
            return 0
        rest = job.rem_on[a][s + 1]  # the blocks after the one decided: do they belong on a too?
        handoff = self.platform.handoff_ms
        for b in range(self.n_acc):
            if b != a and self.healthy[b] and job.rem_on[b][s + 1] + handoff < rest \
                    and self._rest_as_learned(job, a, b, s + 1) + handoff < rest:
                return 0
        n, t = 1, lat[s]
        while s + n < job.n_segs and t + lat[s + n] <= self.chain_ms:
            t += lat[s + n]
            n += 1
        if n > 1:
            self.chained += n - 1
        return n if n > 1 else 0

    def _rest_as_learned(self, job: Job, a: int, b: int, s: int) -> float:
        """The latency of ``job``'s blocks from ``s`` on ``b``, each block whose cost is still the table's counted
        with the overhead (learned cost less table cost, if more) that the same block has shown on ``a``."""
        table = self._table[job.m][job.variant]
        on_a, on_b, ta, tb = job.lat[a], job.lat[b], table[a], table[b]
        t = 0.0
        for k in range(s, job.n_segs):
            x = on_b[k]
            if x == tb[k] and on_a[k] > ta[k]:
                x += on_a[k] - ta[k]
            t += x
        return t

    def _start(self, job: Job, a: int, now: float, whole: bool, n: int = 0) -> Start:
        first = job.seg
        if whole or n:
            n = n or job.n_segs - first
            t = sum(job.lat[a][first:first + n])
            e = sum(job.en[a][first:first + n])
        else:
            n = 1
            t = job.lat[a][first]
            e = job.en[a][first]
        if job.acc >= 0 and job.acc != a:
            t += self.platform.handoff_ms
            e += self.platform.handoff_mj
        if job.start < 0:
            job.start = now
        job.seg = first + n
        job.acc = a
        job.running = True
        self._energy_before[a] = job.energy
        job.energy += e
        end = now + t
        self.running[a] = job
        self.free_at[a] = end
        self.busy_ms[a] += t
        self._pending_energy[a] = e
        self._first_seg[a] = first
        return Start(job, a, first, n, now, end, e)

    def _complete(self, job: Job, now: float, status: str, reason: str = "") -> Completion:
        return Completion(
            job.model.name, job.frame, job.variant, self.acc_ids[job.acc] if job.acc >= 0 else "",
            job.release, job.start, now, job.deadline, job.energy, status, reason, job,
        )



def _largest(m: int) -> int:
    return 0


def _fifo_key(j: Job) -> tuple[float, int]:
    return (j.release, j.id)
