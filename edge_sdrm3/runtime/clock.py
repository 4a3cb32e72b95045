"""The workload engine on the wall clock (SimPy's real-time lesson: the same engine, only the wait differs).

``now`` is ``loop.time()`` in ms since the service became ready. A step lets the engine catch up with the clock
(``Engine.advance``), hands the blocks it starts to ``launch``, and sets one timer for when the engine next has
something to do on its own (``Engine.next_time``: a release, a wake-up a policy asked for, a deadline).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..core.engine import Engine
from ..core.types import Start


class WallClock:
    def __init__(self, loop: asyncio.AbstractEventLoop, engine: Engine) -> None:
        self.loop = loop
        self.engine = engine
        self.t0 = loop.time()
        self.launch: Callable[[Start], None] = lambda s: None  # set by the service: the accelerators run it
        self._kicked = False
        self._wake: asyncio.TimerHandle | None = None

    def now(self) -> float:
        return (self.loop.time() - self.t0) * 1000.0

    def kick(self) -> None:
        """A step once the current callbacks are done (the events of one instant batched)."""
        if not self._kicked:
            self._kicked = True
            self.loop.call_soon(self.step)

    def step_as_of(self, t: float | None) -> None:
        """A step as of an event's time ``t`` (a frame taken in; None: now), taken now: it decides as a replay of the
        log does at ``t``, and the blocks it starts are measured from now (the loop's delay is not theirs)."""
        now = self.now()
        self.engine.measure_from = now
        try:
            self.step(now if t is None else min(t, now))
        finally:
            self.engine.measure_from = None

    def step(self, at: float | None = None) -> None:
        """At once: the engine catches up with the clock, its blocks start, and it is woken when it asks.

        ``at``: the time of the report that asks for the step (a block's end), when the step follows it at once:
        the blocks it starts start then, so that the service's own work between the two (learning the costs,
        recording, publishing the result) is charged to them — a block's measured latency (the learned cost) is
        then all the time from one block's end to the next one's on that accelerator, as a replay of the log
        counts it.

        The blocks are handed to their workers last: a worker thread needs the GIL to start, so whatever the loop
        does after the hand-off (until it waits for its sockets) delays the block."""
        self._kicked = False
        now = self.now() if at is None else at
        starts = self.engine.advance(now)
        self.stop()
        t = self.engine.next_time()
        if t is not None:
            self._wake = self.loop.call_at(self.t0 + max(t, now) / 1000.0 + 1e-6, self._woken, max(t, now))
        for s in starts:
            self.launch(s)

    def _woken(self, t: float) -> None:
        """The timer of the engine's next event (``t``): a step as of that time, as a replay of the log takes it,
        however late the loop ran the timer (the blocks it starts are charged the delay, as after a block's end)."""
        self._wake = None
        self.step_as_of(max(t, self.engine.now))

    def stop(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
