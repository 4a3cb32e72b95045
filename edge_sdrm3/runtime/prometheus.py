"""The service's Prometheus endpoint (``[metrics]``, off unless enabled; README "Metrics").

prometheus-client serves ``GET /metrics`` from its own thread. The per-job series (due, missed, latency, drops)
are updated on the event loop as each result goes out (``observe``); the rest is read at scrape time from a
snapshot taken *on the loop* (``asyncio.run_coroutine_threadsafe``), so a scrape never reads the engine's state
while the loop changes it. A loop too busy to answer within ``SNAPSHOT_TIMEOUT_S`` fails the scrape (HTTP 500),
never the service.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("edge_sdrm3.service")

SNAPSHOT_TIMEOUT_S = 2.0
PREFIX = "edge_sdrm3"
# end - release of a completed job, seconds: XR deadlines are 10-100 ms
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class MetricsUnavailable(Exception):
    """``[metrics] enabled`` without prometheus-client installed, or the port cannot be bound."""


class Metrics:
    """The registry, its per-job series, and the HTTP server. ``snapshot()`` runs on the loop and returns the
    state-derived figures (see ``_families``)."""

    def __init__(self, snapshot: Callable[[], dict], loop: asyncio.AbstractEventLoop) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError:
            raise MetricsUnavailable("[metrics] enabled = true needs prometheus-client: "
                                     "pip install 'edge-sdrm3[metrics]'") from None
        self.loop = loop
        self._snapshot = snapshot
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.due = Counter(f"{PREFIX}_jobs_due", "Due jobs that ended (one per result), by model", ["model"],
                           registry=r)
        self.missed = Counter(f"{PREFIX}_jobs_missed", "Due jobs not done by their deadline, by model",
                              ["model"], registry=r)
        self.latency = Histogram(f"{PREFIX}_job_latency_seconds", "Release to end of completed jobs, by model",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.drops = Counter(f"{PREFIX}_jobs_dropped", "Jobs dropped or failed, by reason", ["reason"], registry=r)
        self.results = Counter(f"{PREFIX}_results", "Results published, by status", ["status"], registry=r)
        r.register(_StateCollector(self))
        self.server: Any = None
        self.url = ""

    def observe(self, model: str, status: str, reason: str, release_ms: float, end_ms: float, done: bool) -> None:
        """One job's outcome (on the loop): ``done`` = completed by its deadline."""
        self.due.labels(model).inc()
        if not done:
            self.missed.labels(model).inc()
        if status in ("done", "late", "timed"):
            self.latency.labels(model).observe(max(0.0, end_ms - release_ms) / 1000.0)
        else:
            self.drops.labels(reason or status).inc()
        self.results.labels(status).inc()

    def start(self, address: str, port: int) -> str:
        from prometheus_client import start_http_server

        try:
            self.server, _thread = start_http_server(port, addr=address, registry=self.registry)
        except OSError as e:
            raise MetricsUnavailable(f"[metrics] cannot listen on {address}:{port}: {e.strerror or e}") from None
        host = f"[{address}]" if ":" in address else address
        self.url = f"http://{host}:{self.server.server_port}/metrics"
        log.info("metrics on %s", self.url)
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def snapshot(self) -> dict:
        """The state-derived figures, taken on the loop (called from the HTTP thread)."""
        async def take() -> dict:
            return self._snapshot()

        return asyncio.run_coroutine_threadsafe(take(), self.loop).result(SNAPSHOT_TIMEOUT_S)


class _StateCollector:
    """Gauges and counters read from a snapshot of the service's state at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # not known before a scrape: the registry must not call collect() at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.metrics.snapshot()

        def gauge(name: str, doc: str, labels: list[str], rows: list[tuple[list[str], float]]) -> GaugeMetricFamily:
            g = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            for values, v in rows:
                g.add_metric(values, v)
            return g

        def counter(name: str, doc: str, labels: list[str], rows: list[tuple[list[str], float]]) -> CounterMetricFamily:
            c = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            for values, v in rows:
                c.add_metric(values, v)
            return c

        accs = s["accelerators"]
        yield gauge("accelerator_healthy", "1 when the accelerator is in service, 0 while it is failed or hung",
                    ["accelerator"], [([a["id"]], float(a["healthy"])) for a in accs])
        yield gauge("accelerator_busy", "1 while the accelerator runs a block", ["accelerator"],
                    [([a["id"]], float(a["busy"])) for a in accs])
        yield counter("accelerator_busy_seconds", "Time the accelerator spent running blocks (rate() = utilisation)",
                      ["accelerator"], [([a["id"]], a["busy_s"]) for a in accs])
        yield gauge("accelerator_utilization", "Busy share of the last summary window ([service] summary_every_s)",
                    ["accelerator"], [([a["id"]], a["utilization"]) for a in accs])
        yield counter("accelerator_failures", "Invokes that raised, by accelerator", ["accelerator"],
                      [([a["id"]], float(a["failures"])) for a in accs])
        yield gauge("queue_depth", "Released jobs waiting to start, by model", ["model"],
                    [([m], float(n)) for m, n in s["queues"].items()])
        yield gauge("jobs_in_flight", "Blocks running now", [], [([], float(s["in_flight"]))])
        yield gauge("jobs_waiting_upstream", "Cascaded jobs waiting for their upstream", [],
                    [([], float(s["waiting_upstream"]))])
        yield gauge("uxcost_window", "UXCost of the last summary window", [], [([], s["uxcost_window"])])
        yield gauge("miss_rate_window", "Miss rate of the last summary window", [], [([], s["miss_rate_window"])])
        yield gauge("uxcost_run", "UXCost of the run so far", [], [([], s["uxcost_run"])])
        yield counter("errors", "Bad input and refused requests, by error code", ["code"],
                      [([k], float(v)) for k, v in s["errors"].items()])
        yield counter("frames_in", "Frame messages received", [], [([], float(s["frames_in"]))])
        yield counter("frames_skipped", "Frames a root model was not due on (its rate), by model", ["model"],
                      [([k], float(v)) for k, v in s["skipped"].items()])
        yield gauge("streams_tracked", "Streams whose rate state is kept", [], [([], float(s["streams"]["tracked"]))])
        yield counter("streams_forgotten", "Streams forgotten beyond [sockets] max_streams", [],
                      [([], float(s["streams"]["forgotten"]))])
        yield gauge("results_held_bytes", "Bytes of zero-copy results ZeroMQ still holds for subscribers", [],
                    [([], float(s["results_held_bytes"]))])
        yield counter("results_not_sent", "Results not published, by cause (bytes: over results_max_bytes)",
                      ["cause"], [(["bytes"], float(s["results_dropped_bytes"])),
                                  (["socket"], float(s["results_dropped"] - s["results_dropped_bytes"]))])
