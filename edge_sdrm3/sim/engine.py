"""The discrete-event engine: owns ``now`` and one heap of (time, priority, seq, kind, payload).

The sequence counter breaks ties, so a run is deterministic. Lower priority values go first at equal
times: completions, then releases, then wake-ups.
"""
from __future__ import annotations

import heapq
from typing import Any

COMPLETE, RELEASE, WAKE = 0, 1, 2


class Engine:
    __slots__ = ("now", "_heap", "_seq")

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = 0

    def at(self, time: float, kind: int, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time, kind, self._seq, payload))

    def pop(self) -> tuple[float, int, Any]:
        """Advance ``now`` to the next event and return (time, kind, payload)."""
        t, kind, _, payload = heapq.heappop(self._heap)
        self.now = t
        return t, kind, payload

    def peek_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __bool__(self) -> bool:
        return bool(self._heap)
