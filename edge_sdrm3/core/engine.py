"""The workload engine: the rules above the dispatcher, once, for the replay and the live service.

One engine, two clocks (DESIGN.md §2). The engine owns the Dispatcher, the order of events (one heap of
``(time, kind, seq, payload)``: completions, then releases, then wake-ups at equal times, ties broken by
a counter, so a run is deterministic), the cascade rules, the policy's observation of outcomes, the
metrics accumulators and the records. A driver only says what happened and when:

- the replay (``sim.replay``) loads a trace (:meth:`Engine.add_trace`) and calls :meth:`Engine.step` until
  nothing is left: time jumps to the next event, and every block ends when its cost model says;
- the live service loads frames as they arrive (:meth:`Engine.plan`, :meth:`Engine.admit`), runs the
  :class:`Start` s that :meth:`Engine.advance` returns on its workers, reports their end
  (:meth:`Engine.complete`, :meth:`Engine.fail`, :meth:`Engine.abandon`) and calls :meth:`Engine.advance`
  again at :meth:`Engine.next_time` on the wall clock.

Workload rules (DESIGN.md §6):
- a cascaded frame that fired is held until its upstream job on the corresponding frame ends; it is released
  at the later of that end and its own release time if the upstream completed on time, else it is missed
  without running (``upstream dropped``, ``upstream late``...); frames of models with different rates
  correspond by time in a trace (the upstream frame whose period holds the cascaded frame's release), and by
  the frame message they came in live;
- every due frame ends in exactly one Completion, one job record and one outcome for the driver;
- at the end (:meth:`Engine.drain`) what runs is abandoned, what waits is dropped, and a frame whose
  upstream never ran is missed at its release.

Its parts: ``core.feed`` (a trace's frames in, and a live frame message's), ``core.admission`` (admission at release),
``core.frames`` (what it keeps of a frame; ``FrameInfo``, ``Sink`` and ``Records`` are re-exported here).

Pure: no clock, no asyncio, no zmq, no hal; ``now`` is always an argument.
"""
from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

from .admission import Admission
from .dispatcher import Dispatcher
from .estimator import Estimator
from .feed import DISTINCT_MS, LiveFeed, TraceFeed  # noqa: F401
from .frames import COMPLETE, RELEASE, WAKE, FrameInfo, Records, Sink, TraceFrame, ready_time  # noqa: F401
from .metrics import Accumulator, model_infos, run_figures
from .policy import Bound, as_policy
from .records import cost_record, job_record, missed, segment_record
from .types import DONE, INF, Completion, Costs, Job, Model, Platform, Start

OVERRUN_MS = 0.01  # live: an accelerator past its predicted end is taken to be this close to finishing


class Engine(TraceFeed, LiveFeed):
    def __init__(self, platform: Platform, models: tuple[Model, ...], costs: Costs, policy: Any, *,
                 fallback: Any = None, simulated: bool = True, records: Sink | None = None,
                 record_segments: bool = True, keep_completions: bool = True, keep_latencies: bool = True,
                 window: bool = False, overrun_ms: float = 0.0,
                 on_outcome: Callable[[Completion, FrameInfo], None] | None = None,
                 estimator: Estimator | None = None, admission: bool = False, chain_ms: float = 0.0) -> None:
        """``simulated``: every block ends when its cost model says (the replay); otherwise the driver reports
        the end. ``records`` receives the job (and with ``record_segments`` the segment) records; ``window``
        keeps a second accumulator that :meth:`take_window` empties; ``overrun_ms``: real work may overrun its
        prediction, so an accelerator still running at its predicted end counts busy that much longer;
        ``on_outcome(completion, frame)``: each due frame's outcome, for the driver (results to publish);
        ``estimator``: learns the costs from every block the driver reports (its time from the start the engine
        gave it to the report, so the driver's own overhead counts), and the cost tables follow in batches,
        each change recorded (``cost`` records); ``admission``: a job that cannot make its deadline given the
        queue is refused at its release (:meth:`admits`), or queued jobs with more work, none of which ran, give
        way to it (reason ``displaced``, ``core.admission``); ``chain_ms``: the dispatcher runs a job's next blocks in
        one go where nothing else waits (``core.dispatcher``), and such a run ends at its next block boundary once
        a job waits (:meth:`_cut_chains`; the live driver hears of it through ``on_cut(acc)``)."""
        self.models = models
        self.costs = costs
        self.index = {m.name: i for i, m in enumerate(models)}
        self.policy: Bound = as_policy(policy)
        self.disp = Dispatcher(platform, models, costs, self.policy, fallback=fallback, chain_ms=chain_ms)
        self.admission = admission
        self.acc_ids = [a.id for a in platform.accelerators]
        self.idle_power_mw = [a.idle_power_mw for a in platform.accelerators]
        self.infos = model_infos(models, [costs.reference_energy(i) for i in range(len(models))])
        self.total = Accumulator(self.infos, keep_latencies=keep_latencies)
        self.window = Accumulator(self.infos) if window else None
        self.completions: list[Completion] | None = [] if keep_completions else None
        self.drops: Counter = Counter()  # misses by reason
        self.released = 0  # jobs released (their ids)
        self.held: dict[tuple[str, int], list[FrameInfo]] = {}  # (upstream, its frame) -> cascaded frames
        self.inflight: dict[int, Start] = {}  # accelerator -> the block it runs
        self.now = 0.0
        self.simulated = simulated
        self.records = records
        self.record_segments = record_segments
        self.overrun_ms = overrun_ms
        self.on_outcome = on_outcome
        self.estimator = estimator
        self.on_cut: Callable[[int], None] | None = None  # live: stop the blocks run in one go on acc at a boundary
        # simulated: when a block of n segments ends as a live run ran it (a live log's ``--costs measured``), None
        # where it did not run it so: its predicted end then; the dispatcher still plans with the prediction, as live
        self.measured: Callable[[Start, int], float | None] | None = None
        self._cut: dict[int, tuple[Start, int, float]] = {}  # acc -> (its run of several blocks, blocks kept, energy)
        self._vnames = [[v.name for v in m.variants] for m in models]
        self._children = {m.name: [c.name for c in models if c.upstream == m.name] for m in models}
        self._heap: list[tuple[float, int, int, Any]] = []
        self._early: list[Start] = []  # live: blocks started by a catch-up step (_catch_up), not yet handed over
        # live: the blocks the next advance starts are measured (learned) from this time, not their start (a step as
        # of an event's time, taken later: the delay is the event loop's, not the blocks')
        self.measure_from: float | None = None
        self._origin: dict[int, float] = {}  # accelerator -> the time its block is measured from
        self._seq = 0
        self._pending_wake = INF
        self._last_end = -INF
        self._slot: dict[str, int] = {}  # live frames: the next frame number of each model
        self._last_release: dict[str, float] = {}
        self._feed: Iterator[TraceFrame] = iter(())  # a trace's frames not yet taken (add_trace)
        self._peek: TraceFrame | None = None
        # the heap's next time and the next frame where the feed last stopped taking frames (``TraceFeed._fill``)
        self._fill_top: float | None = float("nan")
        self._fill_peek: TraceFrame | None = None
        self._feed_seq = -(1 << 62)  # trace releases go before the releases of cascaded frames of their time
        self._last_up: dict[str, TraceFrame] = {}  # each model's last frame taken
        self._waiting: deque[FrameInfo] = deque()  # cascaded frames taken, their upstream frame not yet known
        self._parents = {m.upstream: models[self.index[m.upstream]].period_ms for m in models if m.upstream}
        self._ended: dict[str, tuple[int, Completion, float]] = {}  # an upstream's last frame taken, once it ended
        self._adm = Admission(self.disp, costs, models, self.index, self.held, lambda m: self.policy.variant_of(m),
                              lambda k, now: self._finish(self._missed(k, "admission", now), now, k))
        self.admission_counts: Counter = self._adm.counts  # admitted jobs by fate: on time, missed

    # --- frames in (a trace's: core.feed) ------------------------------------------------------------
    # --- time ------------------------------------------------------------------------------------------
    def next_time(self) -> float | None:
        """When the engine next has something to do on its own (a release, a block's end, a wake-up)."""
        if self._peek is not None:
            self._fill()
        return self._heap[0][0] if self._heap else None

    def step(self) -> float:
        """The virtual clock: jump to the next event, handle every event of that instant, then schedule."""
        if self._peek is not None:
            self._fill()
        heap = self._heap
        now = heap[0][0]
        self.now = now
        while heap and heap[0][0] == now:
            _, kind, _, payload = heapq.heappop(heap)
            self._handle(kind, payload, now, now)
        self._schedule(now)
        return now

    def advance(self, now: float) -> list[Start]:
        """The wall clock: handle every event due by ``now``, schedule, and return the blocks to start (with those
        that steps of :meth:`_catch_up` started since the last call)."""
        self.now = now
        while self._heap and self._heap[0][0] <= now:
            t, kind, _, payload = heapq.heappop(self._heap)
            self._handle(kind, payload, t, now)
        starts = self._schedule(now)
        if self._early:
            starts, self._early = self._early + starts, []
        return starts

    def _catch_up(self, now: float) -> None:
        """Live, before a report of ``now`` (a block's end, a frame taken in): the engine's own events due before it
        (a wake-up whose timer the loop ran late, behind the report) are handled first, each with its step at its
        time, as a replay takes them; the blocks those steps start come with the next :meth:`advance`."""
        held, self.measure_from = self.measure_from, now  # their blocks start now: measured from then
        for _ in range(64):  # a policy asking to be woken at once again and again cannot hold the report up
            if self.simulated or not self._heap or self._heap[0][0] >= now:
                break
            self._early = self.advance(max(self._heap[0][0], self.now))
        self.measure_from = held

    def __bool__(self) -> bool:
        """Work is left: a block running, a job waiting, a frame held or still to be released."""
        return bool(self.inflight or self.disp.ready or self.held or self._peek is not None
                    or any(e[1] != WAKE for e in self._heap))

    # --- what the driver's workers report ------------------------------------------------------------------
    def complete(self, a: int, now: float, *, energy_mj: float | None = None, end_ms: float | None = None,
                 energy_source: str = "", computed: bool = True, ran: int | None = None,
                 device_ms: float | None = None) -> None:
        """Accelerator ``a`` finished its block at ``now`` (``energy_mj``: measured; default the model's);
        ``ran``: only that many of the block's segments ran (it stopped at a boundary past the deadline);
        ``device_ms``: how long the device itself took (the rest is the driver's dispatch overhead)."""
        self._catch_up(now)
        s = self.inflight.pop(a)
        origin = self._origin.pop(a, s.start_ms)
        info: FrameInfo = s.job.data
        info.energy_source, info.computed = energy_source, computed
        n = s.n if ran is None else ran
        if self._cut.pop(a, None) is not None and n < s.n:  # cut at a boundary: the blocks after it did not run
            self.disp.busy_ms[a] -= sum(s.job.lat[a][s.first_seg + n:s.first_seg + s.n])
        c = self.disp.segments_done(a, now, energy_mj=energy_mj, end_ms=end_ms, ran=ran)
        if told := c is not None and self.on_outcome is not None:  # the result first (live: sent at once)
            self.on_outcome(c, info)  # the bookkeeping below changes nothing in it
        est = self.estimator
        if est is not None:
            j = s.job
            metered = energy_mj if energy_source and not energy_source.startswith("model:") else None
            est.observe(j.m, j.variant, a, s.first_seg, n, now - max(origin, s.start_ms), now, metered, device_ms)
            if est.due(now):
                self.learn(now)
        if self.records is not None and self.record_segments:
            j = s.job
            self._put(segment_record(j.model.name, j.frame, j.variant, s.first_seg, n, self.acc_ids[a],
                                     s.start_ms, now if end_ms is None else end_ms,
                                     s.energy_mj if energy_mj is None else energy_mj))
        if c is not None:
            self._finish(c, now, told=told)

    def fail(self, a: int, now: float, reason: str, *, retry: bool = False) -> bool:
        """Accelerator ``a`` failed its block (it is unhealthy until :meth:`recover`); True when the job was put
        back to run elsewhere, else it is recorded as failed."""
        self.inflight.pop(a, None)
        self._cut.pop(a, None)
        self._origin.pop(a, None)
        retries = self.disp.counters.retries
        c = self.disp.fail(a, now, reason, retry=retry)
        if c is not None:
            self._finish(c, now)
        return self.disp.counters.retries > retries

    def abandon(self, a: int, now: float, reason: str) -> None:
        """Give up the block running on ``a`` (its result would come too late); its job is dropped."""
        self.inflight.pop(a, None)
        self._cut.pop(a, None)
        self._origin.pop(a, None)
        c = self.disp.abandon(a, now, reason)
        if c is not None:
            self._finish(c, now)

    def learn(self, now: float, force: bool = False) -> int:
        """The estimator's measurements since the last call into the cost tables (and ``cost`` records); how many
        entries changed."""
        if self.estimator is None:
            return 0
        changed = self.estimator.flush(now, force=force)
        for (m, v, a, s), lat, en in changed:
            self._put(cost_record(now, self.models[m].name, self._vnames[m][v], s, self.acc_ids[a], lat, en))
        return len(changed)

    def recover(self, a: int) -> None:
        self.disp.recover(a)

    def drain(self, now: float, reason: str) -> int:
        """The end of a run: what runs is abandoned, what waits (released or not) is dropped with ``reason``, and a
        frame whose upstream never ran is missed at its release; returns how many jobs ended so."""
        self._fill(everything=True)  # the rest of a trace: due frames never released
        n = 0
        for a in list(self.inflight):
            self.abandon(a, now, reason)
            n += 1
        n += len(self.disp.ready)
        for c in self.disp.drop(list(self.disp.ready), now, reason):
            self._finish(c, now)
        for _, kind, _, payload in sorted(self._heap):
            if kind == RELEASE:
                self._finish(self._missed(payload, reason, now), now, payload)
                n += 1
        self._heap.clear()
        for key, frames in sorted(self.held.items()):  # frames whose upstream never ran at all
            for info in frames:
                self._settle(self._missed(info, "upstream never ran", info.release_ms), info)
                n += 1
        self.held.clear()
        return n

    # --- policy ----------------------------------------------------------------------------------------------
    def set_policy(self, policy: Any) -> Bound:
        self.policy = as_policy(policy)
        self.disp.set_policy(self.policy)
        return self.policy

    def variants_in_use(self) -> dict[str, str]:
        """The variant each model's next job starts with."""
        out = {}
        for i, m in enumerate(self.models):
            v = self.policy.variant_of(i)
            out[m.name] = m.variants[v if 0 <= v < len(m.variants) else 0].name
        return out

    # --- figures ---------------------------------------------------------------------------------------------
    def figures(self, duration_ms: float, busy_ms: list[float] | None = None) -> dict:
        """The run's metrics (DESIGN.md §5), as ``core.metrics.summarize`` gives them for its completions."""
        return run_figures(self.total, accelerators=self.acc_ids,
                           busy_ms=self.disp.busy_ms if busy_ms is None else busy_ms,
                           idle_power_mw=self.idle_power_mw, end_ms=max(duration_ms, self._last_end))

    def take_window(self) -> dict:
        """The figures of the frames that ended since the last call (``window=True``), with misses by reason."""
        assert self.window is not None, "an engine made without window=True"
        snap = self.window.result(drops=True)
        self.window = Accumulator(self.infos)
        return snap

    # --- internals -----------------------------------------------------------------------------------------
    def _at(self, time: float, kind: int, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time, kind, self._seq, payload))

    def _handle(self, kind: int, payload: Any, t: float, now: float) -> None:
        """The event of time ``t``, handled at ``now`` (later than ``t`` only on the wall clock)."""
        if kind == COMPLETE:
            cut = self._cut.get(payload.acc)
            if cut is None or cut[0] is not payload:
                self.complete(payload.acc, now)
            else:  # a run of several blocks cut at a boundary (simulated): the blocks before it ran
                self.complete(payload.acc, now, energy_mj=cut[2], ran=cut[1])
        elif kind == RELEASE:
            self._release(payload, payload.release_ms, t)
        elif t == self._pending_wake:
            self._pending_wake = INF

    def _schedule(self, now: float) -> list[Start]:
        disp = self.disp
        if self.overrun_ms:
            for a in range(len(disp.running)):
                disp.hold_busy(a, now, self.overrun_ms)
        starts, ended = disp.schedule(now)
        for c in ended:
            self._finish(c, now)
        for s in starts:
            self.inflight[s.acc] = s
            if self.measure_from is not None:
                self._origin[s.acc] = self.measure_from
            if self.simulated:
                self._at(self._sim_end(s, s.n, s.end_ms), COMPLETE, s)
        if disp.chained and disp.ready:
            self._cut_chains(now)
        w = disp.wake_at
        if w < self._pending_wake:
            self._pending_wake = w
            self._at(w, WAKE)
        return starts

    def _cut_chains(self, now: float) -> None:
        """A job waits (the policy left it in the queue) while another runs several blocks in one go, decided when
        it was alone: that run ends at its next block boundary, so that the policy decides the rest block by block
        (``core.dispatcher``: fewer hand-offs only while nothing else waits). The boundary is the first predicted
        block end at or after ``now`` (the block running then is finished); the accelerator counts free from it.
        Simulated, the run's end event moves there; live, ``on_cut(acc)`` tells the driver, whose worker stops
        between blocks and reports how many ran."""
        disp = self.disp
        for a, s in self.inflight.items():
            if s.n < 2 or a in self._cut:
                continue
            job = s.job
            lat, en = job.lat[a], job.en[a]
            moved = s.end_ms - s.start_ms - sum(lat[s.first_seg:s.first_seg + s.n])  # the hand-off, if any
            t, e, k = s.start_ms + moved, s.energy_mj - sum(en[s.first_seg:s.first_seg + s.n]), 0
            while k < s.n:
                t += lat[s.first_seg + k]
                e += en[s.first_seg + k]
                k += 1
                if t >= now:
                    break
            if k >= s.n:  # predicted in its last block: it ends as planned; live, the worker may be behind the
                if not self.simulated and self.on_cut is not None:  # prediction: it stops at its real next boundary
                    self._cut[a] = (s, s.n, s.energy_mj)
                    self.on_cut(a)
                continue
            self._cut[a] = (s, k, e)
            disp.free_at[a] = min(disp.free_at[a], t)
            if self.simulated:
                self._heap.remove(next(x for x in self._heap if x[1] == COMPLETE and x[3] is s))
                heapq.heapify(self._heap)
                self._at(self._sim_end(s, k, t), COMPLETE, s)
            elif self.on_cut is not None:
                self.on_cut(a)

    def _sim_end(self, s: Start, n: int, predicted: float) -> float:
        end = None if self.measured is None else self.measured(s, n)
        return predicted if end is None else end

    def _release(self, info: FrameInfo, release: float, now: float) -> None:
        """A job released (``release``: its release time) to the dispatcher at ``now`` (later than ``release`` for a
        live frame the service took in after its arrival)."""
        self.released += 1
        i = self.index[info.model]
        job = Job(self.released, self.models[i], i, info.frame, release, info.deadline_ms, self.costs, data=info)
        if self.admission:
            finish = self._adm.finish(job, now)
            if finish > job.deadline:
                self._finish(self._missed(info, "admission", now), now, info)
                return
            self.disp.release(job)
            displaced = self._adm.displaced
            if displaced:  # queued jobs that give way to it, none of which ran (``core.admission``)
                for c in self.disp.drop(displaced, now, "displaced"):
                    self._finish(c, now)
            self._adm.cascade(info, finish, now)
            return
        self.disp.release(job)

    def admits(self, job: Job, now: float) -> bool:
        """Admission at release: can ``job`` still make its deadline (``core.admission``)?"""
        return self._adm.admits(job, now)

    def _missed(self, info: FrameInfo, reason: str, now: float) -> Completion:
        return missed(info.model, info.frame, info.release_ms, info.deadline_ms, now, reason)

    def _settle(self, c: Completion, info: FrameInfo | None, told: bool = False) -> None:
        """Hand over (unless ``told``: already), count and record one due frame's outcome (handed over first: a
        live result is sent before the bookkeeping, which nothing in it depends on)."""
        if info is not None:
            info.ended = True
        if self.on_outcome is not None and info is not None and not told:
            self.on_outcome(c, info)
        if self.completions is not None:
            self.completions.append(c)
        self.total.add(c)
        if self.window is not None:
            self.window.add(c)
        self._last_end = max(self._last_end, c.end_ms)
        if c.status != DONE:
            self.drops[c.reason or c.status] += 1
        if self.admission and c.job is not None:
            self._adm.outcome(c)
        if self.records is not None:
            m = self.models[self.index[c.model]]
            vname = m.variants[c.variant].name if 0 <= c.variant < len(m.variants) else str(c.variant)
            if info is None:
                self._put(job_record(c, vname))
            else:
                self._put(job_record(c, vname, energy_source=info.energy_source, stream=info.stream,
                                     stream_frame=info.stream_frame, computed=info.computed))

    def _finish(self, c: Completion, now: float, info: FrameInfo | None = None, told: bool = False) -> None:
        """One due frame's outcome: settled (``told``: handed over already), observed, its cascades followed."""
        if info is None and c.job is not None:
            info = c.job.data
        self._settle(c, info, told)
        self.policy.observe(c, now)
        last = self._last_up.get(c.model)
        if last is not None and last.frame == c.frame and c.model in self._parents:
            self._ended[c.model] = (c.frame, c, now)  # a trace's cascaded frames may still come for it
        kids = self.held.pop((c.model, c.frame), None)
        if not kids:
            return
        for kid in kids:
            self._follow(kid, c, now)

    def _follow(self, kid: FrameInfo, c: Completion, now: float) -> None:
        """A cascaded frame once its upstream job ended (``c``, at ``now``): released then or at its own release
        if the upstream completed on time, else missed."""
        if c.status != DONE:
            self._finish(self._missed(kid, f"upstream {c.status}", now), now, kid)
        elif ready_time(kid) > now:
            self._at(ready_time(kid), RELEASE, kid)
        else:
            self._release(kid, now, now)

    def _put(self, record: dict) -> None:
        if self.records is not None:
            self.records.put(record)
