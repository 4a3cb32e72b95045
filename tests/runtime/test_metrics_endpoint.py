"""The Prometheus endpoint of a running service, scraped over loopback HTTP; its config checked like the others."""
from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from runtime_harness import Running, write_config

from edge_sdrm3.runtime.config import ConfigError, parse_config

parser = pytest.importorskip("prometheus_client.parser", reason="the `metrics` extra (prometheus-client)")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in parser.text_string_to_metric_families(text) for s in fam.samples}


def test_a_running_service_serves_its_metrics_on_loopback(tmp_path: Path, files: dict) -> None:
    run = Running(write_config(tmp_path, files, metrics={"enabled": True, "port": 0}))
    try:
        url = run.control("status")["metrics"]["url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        x = np.zeros((1, 8, 8, 1), np.float32)
        n = 30
        for f in range(n):  # as a 50 fps camera would
            run.send("s", f, [x], models=["digits"])
            time.sleep(0.02)
        run.send("s", n, models=["digits"])  # no input: an error, counted
        got = run.results(until=lambda o: sum(h["topic"] == "digits" for h, _ in o) >= n
                          and any(h.get("error") == "no-input" for h, _ in o))
        got += run.results(until=lambda o: False, timeout=0.6)  # the last cascaded results; a summary window ends
        digits = [h for h, _ in got if h["topic"] == "digits"]
        cascade = [h for h, _ in got if h["topic"] == "digits_cascade"]
        m = scrape(url)
        d = (("model", "digits"),)
        assert m[("edge_sdrm3_jobs_due_total", d)] == n
        missed = sum(h["status"] != "done" for h in digits)
        assert m.get(("edge_sdrm3_jobs_missed_total", d), 0.0) == missed
        completed = sum(h["status"] in ("done", "late", "timed") for h in digits)
        assert m[("edge_sdrm3_job_latency_seconds_count", d)] == completed > 0
        worst = max(h["end_ms"] - h["release_ms"] for h in digits if h["status"] in ("done", "late", "timed"))
        assert m[("edge_sdrm3_job_latency_seconds_bucket", (("le", "+Inf"), ("model", "digits")))] == completed
        assert m[("edge_sdrm3_job_latency_seconds_sum", d)] <= completed * worst / 1000.0 + 1e-9
        for acc in ("cpu", "npu0"):
            a = (("accelerator", acc),)
            assert m[("edge_sdrm3_accelerator_healthy", a)] == 1.0
            assert 0.0 <= m[("edge_sdrm3_accelerator_utilization", a)] <= 1.0
            assert ("edge_sdrm3_accelerator_busy_seconds_total", a) in m
        assert sum(m[("edge_sdrm3_accelerator_busy_seconds_total", (("accelerator", a),))]
                   for a in ("cpu", "npu0")) > 0
        for model in ("digits", "digits_cascade"):
            assert m[("edge_sdrm3_queue_depth", (("model", model),))] >= 0
        assert m[("edge_sdrm3_errors_total", (("code", "no-input"),))] == 1
        assert m[("edge_sdrm3_frames_in_total", ())] >= n + 1
        assert ("edge_sdrm3_uxcost_window", ()) in m and m[("edge_sdrm3_uxcost_run", ())] >= 0
        drops = sum(v for (name, _), v in m.items() if name == "edge_sdrm3_jobs_dropped_total")
        assert drops == sum(h["status"] in ("dropped", "failed") for h in digits + cascade)
    finally:
        assert run.stop() == 0


def test_the_metrics_are_off_by_default_and_their_config_is_checked(service: Running) -> None:
    assert service.control("status")["metrics"] is None
    with pytest.raises(ConfigError, match=r"\[metrics\] address: '0.0.0.0' is not a loopback address"):
        parse_config({"metrics": {"enabled": True, "address": "0.0.0.0"}})
    assert parse_config({"metrics": {"enabled": True, "address": "0.0.0.0", "allow_remote": True}}).metrics.port \
        == 9464
    for bad, msg in (({"port": 70000}, "port: must be a TCP port"), ({"port": -1}, "port: must be >= 0"),
                     ({"enabled": "yes"}, "enabled: must be true or false"), ({"prot": 1}, "prot: unknown key")):
        with pytest.raises(ConfigError, match=msg):
            parse_config({"metrics": bad})
