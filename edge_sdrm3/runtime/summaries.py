"""Summaries: every ``[service] summary_every_s`` (and at shutdown) a ``summary`` record of the window and of the
run so far goes to the log, a line to the journal, and a status line to systemd."""
from __future__ import annotations

import logging
from collections import Counter

from ..core.engine import Engine
from ..core.records import summary_record
from .notify import Notifier
from .recorder import Recorder
from .workload import Workload

log = logging.getLogger("edge_sdrm3.service")


class Summaries:
    def __init__(self, engine: Engine, wl: Workload, recorder: Recorder, notifier: Notifier, counters: Counter,
                 errors: Counter) -> None:
        self.engine = engine
        self.wl = wl
        self.recorder = recorder
        self.notifier = notifier
        self.counters = counters
        self.errors = errors
        self.last_ms = 0.0
        self._busy_at_last = list(engine.disp.busy_ms)
        self.last_window: dict = {"uxcost": 0.0, "miss_rate": 0.0, "utilization": {a: 0.0 for a in engine.acc_ids}}

    def run_so_far(self) -> dict:
        """The run's figures so far, without the per-model ones."""
        return {k: v for k, v in self.engine.total.result(drops=True).items() if k != "models"}

    def write(self, now: float, final: bool = False) -> None:
        eng = self.engine
        window_s = (now - self.last_ms) / 1000.0
        snap = eng.take_window()
        busy = eng.disp.busy_ms
        util = {a: (busy[i] - self._busy_at_last[i]) / (window_s * 1000.0) if window_s > 0 else 0.0
                for i, a in enumerate(eng.acc_ids)}
        self._busy_at_last = list(busy)
        self.last_ms = now
        self.last_window = {"uxcost": snap["uxcost"], "miss_rate": snap["miss_rate"], "utilization": util}
        rec = summary_record(now, window_s, final, eng.policy.name, self.wl.scenario.name, self.wl.spec.platform.name,
                             snap, theta=eng.policy.params() or None, variants=eng.variants_in_use(),
                             utilization=util, run=self.run_so_far(), errors=dict(self.errors), drops=dict(eng.drops))
        self.recorder.put(rec)
        if snap["frames_due"] or final:
            log.info("%s%.1f s: %d due, miss %.1f%%, UXCost %.4f, XRBench %.1f, energy %.1f mJ, θ %s, variants %s",
                     "final: " if final else "", window_s, snap["frames_due"], 100 * snap["miss_rate"],
                     snap["uxcost"], snap["xrbench_score"], snap["energy_mj"], rec["theta"], rec["variants"])
        self.notifier.status(f"{self.counters['frames_in']} frames, run UXCost {rec['run']['uxcost']:.4f}, "
                             f"miss {100 * rec['run']['miss_rate']:.1f}%")
