"""A trace's frames into the workload engine (``core.engine``): root frames released at their time, cascaded ones
held on the upstream frame whose period holds their release, read as the clock reaches them.

:class:`TraceFeed` is a part of :class:`~edge_sdrm3.core.engine.Engine` (its base class): the state it reads and
writes (``_feed``, ``_peek``, ``_fill_top``, ``_fill_peek``, ``_feed_seq``, ``_last_up``, ``_waiting``, ``_parents``,
the event heap, ``held``, ``_ended``) is the engine's, made in ``Engine.__init__``. Pure: no clock, no asyncio, no zmq,
no hal.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable

from .frames import RELEASE, FrameInfo, TraceFrame, ready_time


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
