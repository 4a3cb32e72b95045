"""Access control of the live service (security.py): socket file modes and group, loopback-only tcp, CURVE with an
allowed and a refused client, the socket's maximum message size, restricted control commands."""
from __future__ import annotations

import asyncio
import grp
import logging
import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth
from runtime_harness import Running, digits_images, wait_ready, write_config

from edge_sdrm3.client import ClientTimeout, Control, Publisher, ServiceError, Subscriber, load_curve_keys
from edge_sdrm3.client import protocol
from edge_sdrm3.runtime.config import ConfigError, load_config, parse_config
from edge_sdrm3.runtime.notify import Notifier
from edge_sdrm3.runtime.security import Security, check_endpoints
from edge_sdrm3.runtime.service import Service

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")


class Bare:
    """The service in a thread, with no clients of its own (they could not connect under CURVE)."""

    def __init__(self, config_path: Path) -> None:
        self.cfg = load_config(config_path)
        self.svc = Service(self.cfg, notifier=Notifier(address=""))
        self.rc: int | None = None
        self.thread = threading.Thread(target=lambda: setattr(self, "rc", asyncio.run(self.svc.main())), daemon=True)
        self.thread.start()
        wait_ready(self.svc, lambda: self.rc)

    def endpoint(self, name: str) -> str:
        return getattr(self.svc.sockets, name).getsockopt(zmq.LAST_ENDPOINT).decode()

    def stop(self) -> int | None:
        self.svc.loop.call_soon_threadsafe(self.svc.request_stop)
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.rc


def _frame(i: int) -> list:
    return protocol.encode_frame({"stream": "s", "frame": i, "models": ["digits"]}, [digits_images(1, i)[0]])


# ---- configuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint, ok", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:5555", True), ("tcp://[::1]:5555", True),
    ("tcp://127.0.0.1:*", True), ("ipc:///run/x.sock", True),
    ("tcp://*:5555", False), ("tcp://0.0.0.0:5555", False), ("tcp://[::]:5555", False),
    ("tcp://192.168.1.10:5555", False), ("tcp://eth0:5555", False), ("ipc://@abstract", False),
    ("ws://127.0.0.1:5555", False),
])
def test_remote_endpoints_are_refused_unless_allowed(endpoint: str, ok: bool) -> None:
    cfg = parse_config({"sockets": {"control": endpoint}}).sockets
    if ok:
        check_endpoints(cfg)
    else:
        with pytest.raises(ConfigError, match=r"\[sockets\] control: " + endpoint.replace("*", r"\*")
                           .replace("[", r"\[").replace("]", r"\]") + ".*allow_remote = true"):
            check_endpoints(cfg)
        check_endpoints(parse_config({"sockets": {"control": endpoint, "allow_remote": True}}).sockets)


def test_bad_security_settings_are_refused_naming_them(tmp_path: Path) -> None:
    def sec(**kw):
        return Security(parse_config({"sockets": kw}).sockets, tmp_path / "run")

    with pytest.raises(ConfigError, match=r"\[sockets\] ipc_mode"):
        parse_config({"sockets": {"ipc_mode": "rw-rw----"}})
    with pytest.raises(ConfigError, match=r"\[sockets\] control_commands"):
        parse_config({"sockets": {"control_commands": "some"}})
    with pytest.raises(ConfigError, match=r"\[sockets\] group: no group 'no-such-group-xyz'"):
        sec(group="no-such-group-xyz")
    with pytest.raises(ConfigError, match="curve_allowed_keys_dir"):
        sec(curve_secret_key_file=str(tmp_path / "server.key_secret"))
    with pytest.raises(ConfigError, match=r"control_commands = \"authenticated\": needs curve_admin_keys_dir"):
        sec(control_commands="authenticated")
    keys = tmp_path / "keys"
    keys.mkdir()
    pub, secret = zmq.auth.create_certificates(keys, "server")
    with pytest.raises(ConfigError, match="no secret-key"):
        sec(curve_secret_key_file=pub, curve_allowed_keys_dir=str(keys))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"curve_allowed_keys_dir: .*no public key files"):
        sec(curve_secret_key_file=secret, curve_allowed_keys_dir=str(empty))


def test_a_wildcard_tcp_bind_stops_the_service_at_startup(tmp_path: Path, files: dict,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    cfg = load_config(write_config(tmp_path, files, sockets={"ingest": "tcp://*:5555"}))
    with caplog.at_level(logging.ERROR, logger="edge_sdrm3.service"):
        t0 = time.monotonic()
        rc = Service(cfg, notifier=Notifier(address="")).serve()
    assert rc == 1 and time.monotonic() - t0 < 5  # refused before any model is loaded
    assert "tcp://*:5555" in caplog.text and "allow_remote" in caplog.text


# ---- a running service -----------------------------------------------------------------------------------


def test_ipc_files_modes_group_read_only_control_and_oversize_messages(tmp_path: Path, files: dict) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    run = Running(write_config(tmp_path, files, sockets={"group": group, "control_commands": "read-only",
                                                          "max_message_bytes": 4096, "socket_max_bytes": 65536}))
    try:
        rd = run.cfg.runtime_dir
        assert stat.S_IMODE(rd.stat().st_mode) == 0o750 and rd.stat().st_gid == os.getgid()
        for name in ("frames.sock", "results.sock", "control.sock"):
            st = (rd / name).stat()
            assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, name
            assert st.st_gid == os.getgid()
        # read-only control: status and stats answer, state changes are refused with "forbidden"
        assert run.control("status")["ok"]
        for cmd, kw in (("set-params", {"params": {"alpha": 0.2}}), ("set-policy", {"policy": "edf"}),
                        ("reload-catalog", {})):
            rep = run.control(cmd, **kw)
            assert rep["ok"] is False and rep["error"] == "forbidden" and "read-only" in rep["message"], cmd
        assert run.control("status")["theta"]["alpha"] == 0.05
        stats = run.control("stats")
        assert stats["security"]["forbidden"] == 3 and stats["security"]["control_commands"] == "read-only"
        # over max_message_bytes but under the socket's limit: reaches the service, answered too-large
        n_in = run.control("stats")["sockets"]["frames_in"]
        run.push.send_multipart(protocol.encode_frame({"stream": "s", "frame": 1}, [np.zeros(8192, np.uint8)]))
        got = run.results(until=lambda o: any(h.get("error") == "too-large" for h, _ in o), timeout=5)
        assert any(h.get("error") == "too-large" for h, _ in got)
        # over the socket's limit: libzmq discards it (and resets that connection); good frames flow again
        run.push.send_multipart(protocol.encode_frame({"stream": "s", "frame": 2}, [np.zeros(1 << 20, np.uint8)]))
        seen: list = []
        t_end = time.monotonic() + 10
        i = 100
        while time.monotonic() < t_end and not any(h.get("topic") == "digits" for h, _ in seen):
            run.push.send_multipart(_frame(i))
            i += 1
            seen += run.results(timeout=0.1, n=1)
        assert any(h.get("topic") == "digits" for h, _ in seen), "good frames did not flow after the big one"
        assert not any(h.get("error") == "too-large" for h, _ in seen)
        st = run.control("stats")
        assert st["errors"].get("too-large") == 1  # the 8 KiB one only: the 1 MiB one never reached the service
        assert st["sockets"]["frames_in"] <= n_in + 1 + (i - 100)
    finally:
        assert run.stop() == 0


@pytest.fixture
def keys(tmp_path: Path) -> dict:
    d = {k: tmp_path / k for k in ("server", "allowed", "admin", "other")}
    for p in d.values():
        p.mkdir()
    out = {}
    for name, where in (("server", "server"), ("client", "allowed"), ("admin", "admin"), ("intruder", "other")):
        out[name] = zmq.auth.create_certificates(d[where], name)  # (public file, secret file)
    out["dirs"] = d
    return out


def test_curve_allows_listed_clients_refuses_others_and_restricts_control_to_admin_keys(
        tmp_path: Path, files: dict, keys: dict) -> None:
    cfg = write_config(tmp_path, files, sockets={
        "ingest": "tcp://127.0.0.1:*", "results": "tcp://127.0.0.1:*", "control": "tcp://127.0.0.1:*",
        "curve_secret_key_file": keys["server"][1], "curve_allowed_keys_dir": str(keys["dirs"]["allowed"]),
        "curve_admin_keys_dir": str(keys["dirs"]["admin"]), "control_commands": "authenticated"})
    run = Bare(cfg)
    ctx = zmq.Context()
    server_pub = keys["server"][0]
    ok = load_curve_keys(server_pub, keys["client"][1])
    bad = load_curve_keys(server_pub, keys["intruder"][1])
    admin = load_curve_keys(server_pub, keys["admin"][1])
    ing, res, ctl = run.endpoint("pull"), run.endpoint("pub"), run.endpoint("rep")
    socks = []
    try:
        good_sub = Subscriber(res, models=["digits"], context=ctx, curve=ok)
        bad_sub = Subscriber(res, context=ctx, curve=bad)
        good_pub = Publisher(ing, context=ctx, linger_ms=0, curve=ok)
        bad_pub = Publisher(ing, context=ctx, linger_ms=0, hwm=4, curve=bad)
        socks += [good_sub, bad_sub, good_pub, bad_pub]
        for i in range(3):  # the refused publisher's frames are never delivered
            assert bad_pub.send("intruder", i, [digits_images(1, i)[0]], models=["digits"], block=False) in (
                True, False)
        got = None
        for i in range(100):  # the allowed client: results once its subscription has joined
            good_pub.send("s", i, [digits_images(1, i)[0]], models=["digits"])
            try:
                got = good_sub.recv(timeout_ms=100)
                break
            except ClientTimeout:
                pass
        assert got is not None and got.model == "digits" and got.stream == "s"
        with pytest.raises(ClientTimeout):  # the refused subscriber: nothing, though results are flowing
            for i in range(100, 105):
                good_pub.send("s", i, [digits_images(1, i)[0]], models=["digits"])
            bad_sub.recv(timeout_ms=700)
        # control: a refused key and a client without CURVE get no answer; an allowed key reads; an admin key writes
        for kw in ({"curve": bad}, {}):
            c = Control(ctl, timeout_ms=300, context=ctx, **kw)
            socks.append(c)
            with pytest.raises(ClientTimeout):
                c.status()
        user = Control(ctl, timeout_ms=3000, context=ctx, curve=ok)
        boss = Control(ctl, timeout_ms=3000, context=ctx, curve_server_public_key=admin[0],
                       curve_public_key=admin[1], curve_secret_key=admin[2])
        socks += [user, boss]
        st = user.status()
        assert st["policy"]
        assert all(s != "intruder" for s in (st.get("streams") or {}))
        with pytest.raises(ServiceError) as e:
            user.set_params(alpha=0.3)
        assert e.value.code == "forbidden" and "curve_admin_keys_dir" in str(e.value)
        assert boss.set_params(alpha=0.3)["theta"]["alpha"] == 0.3
        stats = user.stats()
        assert stats["security"]["curve"] is True and stats["security"]["refused"] >= 1
        assert stats["security"]["forbidden"] == 1
    finally:
        for s in socks:
            s.close()
        ctx.term()
        assert run.stop() == 0
