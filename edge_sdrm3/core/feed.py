"""Frames into the workload engine (``core.engine``). A trace's (:class:`TraceFeed`): root frames released at their
time, cascaded ones held on the upstream frame whose period holds their release, read as the clock reaches them. A
live frame message's (:class:`LiveFeed`): its frames planned, numbered, recorded, the roots released now and the
cascaded ones held on their upstream's frame.

Both are parts of :class:`~edge_sdrm3.core.engine.Engine` (its base classes): the state they read and write
(``_feed``, ``_peek``, ``_fill_top``, ``_fill_peek``, ``_feed_seq``, ``_last_up``, ``_waiting``, ``_parents``, the
event heap, ``held``, ``_ended``; live: ``_slot``, ``_last_release``) is the engine's, made in ``Engine.__init__``.
Pure: no clock, no asyncio, no zmq, no hal.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any

from .frames import RELEASE, FrameInfo, TraceFrame, ready_time
from .records import frame_record

DISTINCT_MS = 1e-6  # two live frames of a model never share a release time (a log is a trace: it is replayed)


class TraceFeed:
    def add_trace(self, frames: Iterable[TraceFrame]) -> None:
        """A trace's frames, in time order (release, model, frame): root frames released at their time, cascaded
        ones held on the upstream frame whose period holds their release; a frame that did not fire (or whose
        upstream frame did not) is not due. The frames are read from ``frames`` as the clock reaches them
        (:meth:`next_time`), so a trace made as it is read never has to be held whole."""
        self._feed = iter(frames)
        self._peek = next(self._feed, None)
        self._fill()

    def _fill(self, everything: bool = False) -> None:
        """Take the trace's frames up to the next event in the heap; on as long as a cascaded frame taken may still
        meet its upstream frame (released up to 1e-9 ms after it); and on over one period of each upstream model
        whose last frame taken may end before then, so that the cascaded frames of an upstream frame are held on
        it before it ends, whatever their rate."""
        fr = self._peek
        heap = self._heap
        # what decides whether to take more outside this loop is the heap's next time alone (the feed's own state
        # changes only here): at the same next time as when the last call stopped, this one would stop at once
        top = heap[0][0] if heap else None
        if top == self._fill_top and fr is self._fill_peek and not everything:
            return
        while fr is not None and (everything or not heap or fr.release_ms <= heap[0][0] or self._waiting
                                  or self._lagging(fr.release_ms, heap[0][0])):
            self._peek = nxt = next(self._feed, None)
            self._last_up[fr.model] = fr
            if fr.fired:
                m = self.models[self.index[fr.model]]
                info = FrameInfo(fr.model, fr.frame, fr.release_ms, fr.release_ms + m.relative_deadline_ms,
                                 ready_ms=fr.ready_ms)
                if m.upstream is None:
                    self._feed_seq += 1  # before every other release of its time, in trace order
                    heapq.heappush(heap, (ready_time(info), RELEASE, self._feed_seq, info))
                else:
                    self._waiting.append(info)
            while self._waiting and (nxt is None or nxt.release_ms > self._waiting[0].release_ms + 1e-9):
                self._hold(self._waiting.popleft())
            fr = nxt
        self._fill_top, self._fill_peek = (heap[0][0] if heap else None), fr

    def _lagging(self, release_ms: float, next_ms: float) -> bool:
        """An upstream model's last frame taken is released by ``next_ms`` and a frame at ``release_ms`` may still
        be cascaded on it."""
        for name, period in self._parents.items():
            up = self._last_up.get(name)
            if up is not None and up.release_ms <= next_ms and release_ms <= up.release_ms + period + 1e-6:
                return True
        return False

    def _hold(self, info: FrameInfo) -> None:
        """A fired cascaded frame, on its upstream frame (the last one released up to 1e-9 ms after it)."""
        upstream = self.models[self.index[info.model]].upstream
        up = self._last_up.get(upstream)
        if up is None:  # no upstream frame before it: it can never be released
            self._settle(self._missed(info, "no upstream frame", info.release_ms), info)
        elif up.fired:  # else the upstream frame itself was never due: neither is this one
            ended = self._ended.get(upstream)
            if ended is not None and ended[0] == up.frame:  # it ended already (a trace of irregular rates)
                self._follow(info, ended[1], ended[2])
            else:
                self.held.setdefault((upstream, up.frame), []).append(info)


class LiveFeed:
    def plan(self, roots: list[str], draw: Callable[[str], float]) -> list[tuple[str, bool, str | None]]:
        """The frames one live frame message makes: each root, then its cascade breadth first, as
        ``(model, fired, upstream)``; a cascaded model fires when ``draw(model) <`` its trigger probability and
        its upstream fired."""
        out: list[tuple[str, bool, str | None]] = []
        for r in roots:
            out.append((r, True, None))
            fired = {r: True}
            queue = [r]
            while queue:
                up = queue.pop(0)
                for child in self._children.get(up, []):
                    p = self.models[self.index[child]].trigger_probability
                    fired[child] = fired[up] and draw(child) < p
                    out.append((child, fired[child], up))
                    queue.append(child)
        return out

    def admit(self, now: float, plan: list[tuple[str, bool, str | None]], data: dict[str, Any], *,
              stream: str | None = None, stream_frame: int | None = None, arrived_ms: float | None = None,
              refuse: str = "") -> list[FrameInfo]:
        """A live frame message's frames (:meth:`plan`): numbered per model, recorded, roots released now,
        cascaded ones held on their upstream's frame. ``data[model]``: the driver's data of each fired frame.
        Returns the fired frames still to run (neither refused by admission nor missed at once).

        ``arrived_ms``: when the message arrived, if the driver took it in later (``now``): its frames are released
        (their deadlines counted) from the arrival, and their records say when they were taken in (``ready_ms``),
        so that a replay of the log releases them to the policy when the service did. The roots of a message get
        distinct release times in plan order (``DISTINCT_MS`` apart), each cascaded frame its upstream's: a replay
        of the log takes them in the service's order (a trace orders the frames of one instant by model name).

        ``refuse``: every root is missed at once with this reason instead (its cascades ``upstream dropped``):
        the driver sheds the message (a live service too far behind its senders: ``runtime.ingest``)."""
        self._catch_up(now)  # the engine's own events due before the frame first, as a replay takes them
        frame_of: dict[str, int] = {}
        release_of: dict[str, float] = {}
        infos: list[FrameInfo] = []
        t = now if arrived_ms is None else min(arrived_ms, now)
        planned = []
        for name, fired, up in plan:
            slot = frame_of[name] = self._slot.get(name, 0)
            self._slot[name] = slot + 1
            release = max(t if up is None else release_of[up], self._last_release.get(name, -1.0) + DISTINCT_MS)
            if up is None:
                t = release + DISTINCT_MS
            release_of[name] = self._last_release[name] = release
            planned.append((name, fired, up, slot, release))
        ready = max(now, max(release_of.values(), default=now))
        # roots are released once their cascade is held: a root refused at once by admission settles it too
        roots: list[FrameInfo] = []
        for name, fired, up, slot, release in planned:
            m = self.models[self.index[name]]
            triggered = m.upstream is not None or m.trigger_probability < 1.0
            ready_ms = ready if ready > release else None
            self._put(frame_record(name, slot, release, fired if triggered else None, stream, stream_frame,
                                   ready_ms=ready_ms))
            if not fired:
                continue
            info = FrameInfo(name, slot, release, release + m.relative_deadline_ms, data.get(name), stream,
                             stream_frame, ready_ms=ready_ms)
            infos.append(info)
            if up is None:
                roots.append(info)
            else:
                self.held.setdefault((up, frame_of[up]), []).append(info)
        for info in roots:
            if refuse:
                self._finish(self._missed(info, refuse, info.release_ms), info.release_ms, info)
            else:
                self._release(info, info.release_ms, ready)
        return [i for i in infos if not i.ended]

    def bound_queue(self, now: float, limit: int, reason: str = "overload-queue") -> None:
        """At most ``limit`` released jobs wait unstarted; the oldest beyond are dropped."""
        waiting = [j for j in self.disp.ready if not j.started]
        if len(waiting) > limit:
            waiting.sort(key=lambda j: (j.release, j.id))
            for c in self.disp.drop(waiting[: len(waiting) - limit], now, reason):
                self._finish(c, now)
