"""Config validation, systemd notification over a real datagram socket, and the log's rotation."""
from __future__ import annotations

import dataclasses
import json
import socket
import time
from pathlib import Path

import pytest

from edge_sdrm3.catalog import load_scenario
from edge_sdrm3.catalog import load_platform
from edge_sdrm3.runtime.config import (Config, ConfigError, known_time_accelerators, learns_costs, load_config,
                                       parse_config)
from edge_sdrm3.runtime.notify import Notifier
from edge_sdrm3.runtime.recorder import Recorder
from edge_sdrm3.sim import trace as traces

from edge_sdrm3.tomlfile import tomllib
from edge_sdrm3.data import data_path



def test_the_shipped_config_documents_every_key_with_its_default() -> None:
    doc = tomllib.loads(data_path("systemd", "edge-sdrm3.toml").read_text())
    defaults = Config()
    for section in ("service", "sockets", "scheduler", "workload", "log"):
        obj = getattr(defaults, section)
        assert set(doc[section]) == {f.name for f in dataclasses.fields(obj)}, section
        for key, value in doc[section].items():
            assert getattr(obj, key) == value, (section, key)
    cfg = load_config(data_path("systemd", "edge-sdrm3.toml"))
    assert cfg.sockets.ingest == f"ipc://{cfg.service.runtime_dir}/frames.sock"


@pytest.mark.parametrize("doc, message", [
    ({"sockets": {"ingets": "x"}}, "config: [sockets] ingets: unknown key"),
    ({"servise": {}}, "config: [servise]: unknown section"),
    ({"service": {"tick_s": "fast"}}, "config: [service] tick_s: must be a number"),
    ({"service": {"tick_s": 0}}, "config: [service] tick_s: must be > 0"),
    ({"scheduler": {"tuner": 1}}, "config: [scheduler] tuner: must be true or false"),
    ({"scheduler": {"max_queue": 2.5}}, "config: [scheduler] max_queue: must be an integer"),
    ({"workload": {"emulated_compute": "sometimes"}}, "config: [workload] emulated_compute: must be one of"),
    ({"scheduler": {"learn_costs": "yes"}}, 'config: [scheduler] learn_costs: must be true, false or "auto"'),
    ({"scheduler": {"learn_costs": 1}}, 'config: [scheduler] learn_costs: must be true, false or "auto"'),
    ({"log": {"path": "{nowhere}/x"}}, "config: [log] path: bad placeholder"),
])
def test_bad_keys_and_values_are_named(doc, message) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize("learn, compute, platform, learns, known", [
    # the emulated devices are timed to their model: of them only the service's overhead is learned
    ("auto", "when-idle", "headset_emulated", True, ("npu0", "gpu0")),
    ("auto", "never", "headset_placement", True, ("cpu", "npu_small", "npu_big")),  # timing only: the same
    ("auto", "always", "headset_emulated", True, ()),  # they take the host's time: whole blocks learned
    ("auto", "when-idle", "profile_host_x86", True, ()),  # no emulated accelerator: every block learned whole
    (True, "when-idle", "headset_emulated", True, ()),  # an explicit choice stands: every block learned whole
    (False, "always", "headset_emulated", False, ()),
])
def test_learned_costs_by_default_only_the_overhead_of_emulated_devices_timed_to_their_model(learn, compute, platform,
                                                                                            learns, known) -> None:
    assert Config().scheduler.learn_costs == "auto"
    cfg = parse_config({"scheduler": {"learn_costs": learn}, "workload": {"emulated_compute": compute}})
    plat = load_platform(platform).platform
    assert learns_costs(cfg, plat) is learns
    assert tuple(plat.accelerators[i].id for i in known_time_accelerators(cfg, plat)) == known


def test_placeholders_expand(tmp_path: Path) -> None:
    cfg = parse_config({"service": {"runtime_dir": str(tmp_path / "r"), "state_dir": str(tmp_path / "s")},
                        "sockets": {"control": "ipc://{runtime_dir}/c.sock"}, "log": {"path": "{state_dir}/j.jsonl"}})
    assert cfg.sockets.control == f"ipc://{tmp_path}/r/c.sock"
    assert cfg.log.path == f"{tmp_path}/s/j.jsonl"


def test_notifier_sends_ready_watchdog_status_stopping(tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(addr)
    srv.settimeout(2)
    n = Notifier(address=addr, watchdog_usec="2000000")
    assert n.enabled and n.watchdog_s == 2.0
    assert n.ready("loaded") and n.watchdog() and n.status("busy") and n.stopping()
    got = [srv.recv(4096).decode() for _ in range(4)]
    assert got == ["READY=1\nSTATUS=loaded", "WATCHDOG=1", "STATUS=busy", "STOPPING=1"]
    n.close()
    srv.close()
    quiet = Notifier(address="", watchdog_usec="")
    assert not quiet.enabled and not quiet.ready() and not quiet.watchdog()


def test_rotation_keeps_whole_lines_and_every_file_is_a_trace(tmp_path: Path) -> None:
    sc = load_scenario("digits")
    path = tmp_path / "jobs.jsonl"
    rec = Recorder(path, traces.header(sc, 0.0, 0), rotate_bytes=4000, keep=2)
    rec.start()
    for f in range(200):
        rec.put({"type": "frame", "model": "digits", "frame": f, "release_ms": f * 16.7})
        rec.put({"type": "job", "model": "digits", "frame": f, "status": "done", "energy_mj": float("inf")})
    assert rec.close()
    files = [path, path.with_name("jobs.jsonl.1"), path.with_name("jobs.jsonl.2")]
    assert all(p.exists() for p in files) and not path.with_name("jobs.jsonl.3").exists()
    assert rec.rotations >= 2
    frames = []
    for p in files:
        text = p.read_text()
        assert text.endswith("\n") and len(text) <= 4000 + 200
        for line in text.splitlines():
            json.loads(line)  # whole lines only
        tr = traces.read(p)  # each file starts with the header
        frames += [fr.frame for fr in tr.frames]
    assert frames and sorted(frames) == list(range(200 - len(frames), 200))  # the newest kept, none lost
    assert '"energy_mj": null' in path.read_text()  # no Infinity in JSON


def test_the_log_is_written_while_the_service_runs_not_only_at_close(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    rec = Recorder(path, traces.header(load_scenario("digits"), 0.0, 0), batch=64, flush_s=0.05)
    rec.start()
    try:
        rec.put({"type": "frame", "model": "digits", "frame": 0, "release_ms": 0.0})
        t_end = time.monotonic() + 10
        while rec.records < 1 and time.monotonic() < t_end:  # within flush_s on an idle machine
            time.sleep(0.01)
        assert rec.records == 1 and '"frame": 0' in path.read_text()
        for f in range(1, 200):  # a burst of more than a batch is written in whole batches
            rec.put({"type": "frame", "model": "digits", "frame": f, "release_ms": f * 16.7})
        while rec.records < 200 and time.monotonic() < t_end:
            time.sleep(0.01)
        assert rec.records == 200
    finally:
        assert rec.close()
    assert [f.frame for f in traces.read(path).frames] == list(range(200))
