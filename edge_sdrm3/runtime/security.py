"""Who may talk to the service: socket file modes, loopback-only tcp, CURVE, message size, control restrictions.

``Security(cfg.sockets, runtime_dir)`` is built first thing at startup (a bad setting stops the service before any
model is loaded) and then applied to every socket the service binds:

- **Endpoints** (``check_endpoints``): ``ipc://`` files are fine; ``tcp://`` must name a loopback address
  (127.0.0.0/8, ::1, ``localhost``, or a host name that resolves only to loopback) unless ``[sockets]
  allow_remote = true`` -- ``tcp://*:5555``, ``tcp://0.0.0.0:...``, an interface name or a LAN address are
  refused naming the endpoint. Abstract ``ipc://@name`` sockets (no file, no permission check) and any other
  transport count as remote.
- **ipc:// files** (``after_bind``): chmod ``[sockets] ipc_mode`` (0660) and, with ``[sockets] group``, chgrp to
  that group. The runtime directory, when the service creates it, is 0750 (and group-owned likewise), which
  also closes the moment between bind and chmod.
- **CURVE** (``curve_secret_key_file`` + ``curve_allowed_keys_dir``, files as ``zmq.auth.create_certificates``
  writes them): every socket is a CURVE server; a ZAP handler (one ``zmq.auth.ThreadAuthenticator`` per ZeroMQ
  context) admits only the public keys of ``*.key`` files in the allowed directory (and in
  ``curve_admin_keys_dir``). A refused client completes no handshake, so it sends and receives nothing; each
  refusal is logged (the first ten, then every hundredth) and counted (``stats`` → ``security.refused``).
- **Message size** (``apply``): ``zmq.MAXMSGSIZE`` on the PULL socket = ``socket_max_bytes`` (0: twice
  ``max_message_bytes``): libzmq discards a larger message part before it is allocated and resets that sender's
  connection (the sender reconnects by itself; frames it had already written behind the big one are lost).
  Frames between ``max_message_bytes`` and that bound still reach the service and are answered ``too-large``.
  The REP and PUB sockets (control requests, subscriptions) take ``CONTROL_MAX_BYTES``.
- **Control** (``check_command``): ``control_commands = "all"`` (default) | ``"read-only"`` (set-policy,
  set-params and reload-catalog refused with error ``forbidden``) | ``"authenticated"`` (those allowed only from a
  CURVE client whose public key is in ``curve_admin_keys_dir``; the key is the ZAP User-Id of the request).
"""
from __future__ import annotations

import grp
import ipaddress
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
import zmq.utils.z85

from .config import ConfigError, SocketsConfig
from ..client.protocol import ProtocolError

log = logging.getLogger("edge_sdrm3.security")

STATE_CHANGING = frozenset({"set-policy", "set-params", "reload-catalog"})
CONTROL_MAX_BYTES = 1 << 20  # MAXMSGSIZE of the REP (requests) and PUB (subscriptions) sockets
ZAP_DOMAIN = "edge-sdrm3"
_WILDCARDS = {"*", "0.0.0.0", "::", "[::]"}


def _z85(key: bytes) -> bytes:
    """A CURVE key as its 40-character Z85 text (from Z85 text or 32 raw bytes)."""
    if len(key) == 40:
        return key
    if len(key) == 32:
        return zmq.utils.z85.encode(key)
    raise ValueError(f"not a CURVE key ({len(key)} bytes; 32 raw or 40 Z85)")


def tcp_host(endpoint: str) -> str:
    """The host part of ``tcp://HOST:PORT`` (brackets of an IPv6 address removed)."""
    rest = endpoint[len("tcp://"):]
    if ";" in rest:  # "source;endpoint" is a connect form; bind takes the part after it
        rest = rest.split(";", 1)[1]
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback_host(host: str) -> bool:
    """True when binding ``host`` is reachable from this machine only."""
    if host in _WILDCARDS or not host:
        return False
    if host == "localhost" or host == "lo":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    try:  # a host name: loopback only if every address it resolves to is (an interface name fails here)
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addrs = {i[4][0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addrs)


def check_endpoints(s: SocketsConfig) -> None:
    """Refuse an endpoint reachable from other machines unless ``allow_remote``; raises ConfigError naming it."""
    if s.allow_remote:
        return
    for key in ("ingest", "results", "control"):
        ep = getattr(s, key)
        where = f"config: [sockets] {key}: {ep}"
        if ep.startswith("ipc://"):
            if ep.startswith("ipc://@"):
                raise ConfigError(f"{where}: an abstract ipc socket has no file permissions (anyone on this host "
                                  f"may connect); use a path, or set [sockets] allow_remote = true")
            continue
        if ep.startswith("tcp://"):
            host = tcp_host(ep)
            if host in _WILDCARDS:
                raise ConfigError(f"{where}: binds every network interface; name a loopback address "
                                  f"(tcp://127.0.0.1:PORT), or set [sockets] allow_remote = true")
            if not is_loopback_host(host):
                raise ConfigError(f"{where}: {host!r} is not a loopback address, so other machines could connect; "
                                  f"use tcp://127.0.0.1:PORT, or set [sockets] allow_remote = true")
            continue
        if ep.startswith("inproc://"):
            continue
        raise ConfigError(f"{where}: transport {ep.split('://', 1)[0]!r} is not local (ipc:// or loopback tcp://); "
                          f"set [sockets] allow_remote = true to use it")


def _load_keys(directory: str, key: str) -> set[bytes]:
    p = Path(directory)
    if not p.is_dir():
        raise ConfigError(f"config: [sockets] {key}: {directory}: not a directory")
    keys = set()
    for f in sorted(p.glob("*.key")):
        try:
            pub, _ = zmq.auth.load_certificate(f)
            keys.add(_z85(pub))
        except (OSError, ValueError) as e:
            raise ConfigError(f"config: [sockets] {key}: {f}: not a public key file ({e})") from None
    if not keys:
        raise ConfigError(f"config: [sockets] {key}: {directory}: no public key files (*.key) in it")
    return keys


class _KeyList:
    """ZAP credentials provider: admits the listed Z85 public keys, logs and counts the others."""

    def __init__(self, keys: set[bytes], on_refused: Any) -> None:
        self.keys = keys
        self.on_refused = on_refused

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        self.on_refused(key)
        return False


class Security:
    def __init__(self, s: SocketsConfig, runtime_dir: Path) -> None:
        self.cfg = s
        self.runtime_dir = Path(runtime_dir)
        self.mode = int(s.ipc_mode, 8)
        self.gid: int | None = None
        self.refused = 0
        self.forbidden = 0
        self._lock = threading.Lock()
        self._auths: list[Any] = []
        check_endpoints(s)
        if s.group:
            try:
                self.gid = int(s.group) if s.group.isdigit() else grp.getgrnam(s.group).gr_gid
            except KeyError:
                raise ConfigError(f"config: [sockets] group: no group {s.group!r} on this system") from None
        self.public: bytes | None = None
        self.secret: bytes | None = None
        self.allowed: set[bytes] = set()
        self.admins: set[bytes] = set()
        if bool(s.curve_secret_key_file) != bool(s.curve_allowed_keys_dir):
            raise ConfigError("config: [sockets] curve_secret_key_file and curve_allowed_keys_dir: CURVE needs both "
                              "(the server's secret key file and the directory of allowed client public keys)")
        if s.curve_secret_key_file:
            if not zmq.has("curve"):
                raise ConfigError("config: [sockets] curve_secret_key_file: this libzmq has no CURVE support")
            try:
                pub, sec = zmq.auth.load_certificate(s.curve_secret_key_file)
            except (OSError, ValueError) as e:
                raise ConfigError(f"config: [sockets] curve_secret_key_file: {s.curve_secret_key_file}: "
                                  f"cannot read a key ({e})") from None
            if sec is None:
                raise ConfigError(f"config: [sockets] curve_secret_key_file: {s.curve_secret_key_file}: no "
                                  f"secret-key in it (give the .key_secret file)")
            self.public, self.secret = _z85(pub), _z85(sec)
            self.allowed = _load_keys(s.curve_allowed_keys_dir, "curve_allowed_keys_dir")
        if s.curve_admin_keys_dir:
            if self.secret is None:
                raise ConfigError("config: [sockets] curve_admin_keys_dir: needs CURVE (curve_secret_key_file and "
                                  "curve_allowed_keys_dir)")
            self.admins = _load_keys(s.curve_admin_keys_dir, "curve_admin_keys_dir")
        if s.control_commands == "authenticated" and not self.admins:
            raise ConfigError('config: [sockets] control_commands = "authenticated": needs curve_admin_keys_dir '
                              "(and CURVE) to know who is authenticated")

    @property
    def curve(self) -> bool:
        return self.secret is not None

    # --- directories and files -----------------------------------------------------------------------------
    def make_dir(self, d: Path) -> None:
        """Create ``d`` (and parents) if missing; a directory created here is 0750, group ``[sockets] group``."""
        d = Path(d)
        if d.is_dir():
            return
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o750)
        if self.gid is not None:
            self._chgrp(d)

    def _chgrp(self, path: Path) -> None:
        try:
            os.chown(path, -1, self.gid)
        except OSError as e:
            raise ConfigError(f"config: [sockets] group: cannot give {path} to group {self.cfg.group!r} "
                              f"({e.strerror}; the service's user must be a member of it)") from None

    def after_bind(self, endpoint: str) -> None:
        """An ipc:// socket file: mode ``ipc_mode``, group ``group``."""
        if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
            return
        path = Path(endpoint[len("ipc://"):])
        if self.gid is not None:
            self._chgrp(path)
        os.chmod(path, self.mode)

    # --- sockets -------------------------------------------------------------------------------------------
    def start(self, *contexts: zmq.Context) -> None:
        """One ZAP handler per ZeroMQ context (the handler's inproc endpoint is per context), before any bind."""
        if not self.curve:
            return
        from zmq.auth.thread import ThreadAuthenticator

        keys = self.allowed | self.admins
        for ctx in contexts:
            auth = ThreadAuthenticator(ctx, log=logging.getLogger("edge_sdrm3.zap"))
            auth.start()
            self._auths.append(auth)
            auth.configure_curve_callback(ZAP_DOMAIN, _KeyList(keys, self._refused))

    def _refused(self, key: bytes) -> None:
        with self._lock:
            self.refused += 1
            n = self.refused
        if n <= 10 or n % 100 == 0:
            log.warning("refused a CURVE client with public key %s (not in %s; #%d)", key.decode("ascii", "replace"),
                        self.cfg.curve_allowed_keys_dir, n)

    def apply(self, sock: zmq.Socket, role: str) -> None:
        """Before bind: CURVE server (when configured) and the maximum message size for ``role``
        (ingest | results | control)."""
        if role == "ingest":
            limit = self.cfg.socket_max_bytes or 2 * self.cfg.max_message_bytes
        else:
            limit = CONTROL_MAX_BYTES
        sock.setsockopt(zmq.MAXMSGSIZE, limit)
        if self.curve:
            sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
            sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
            sock.setsockopt(zmq.CURVE_SERVER, 1)

    def stop(self) -> None:
        """Stop the ZAP handlers (before the contexts are terminated)."""
        for auth in self._auths:
            try:
                auth.stop()
            except Exception:  # shutting down: nothing else to do
                log.debug("ZAP handler stop failed", exc_info=True)
        self._auths.clear()

    # --- control ---------------------------------------------------------------------------------------------
    @staticmethod
    def peer(part: Any) -> str | None:
        """The ZAP User-Id of a received message (a CURVE client's Z85 public key), or None."""
        get = getattr(part, "get", None)
        if get is None:
            return None
        try:
            uid = get("User-Id")
        except (zmq.ZMQError, KeyError, TypeError, ValueError):
            return None
        return uid or None

    def check_command(self, cmd: str, part: Any) -> None:
        """Raise ProtocolError("forbidden") when ``cmd`` may not be run by the sender of ``part``."""
        mode = self.cfg.control_commands
        if mode == "all" or cmd not in STATE_CHANGING:
            return
        if mode == "read-only":
            self.forbidden += 1
            raise ProtocolError("forbidden", f"{cmd}: the control socket is read-only "
                                             f"([sockets] control_commands = \"read-only\")")
        user = self.peer(part)
        if user is not None and user.encode("ascii", "replace") in self.admins:
            log.info("control %s by admin key %s", cmd, user)
            return
        self.forbidden += 1
        raise ProtocolError("forbidden", f"{cmd}: allowed only to a CURVE client whose public key is in "
                                         f"[sockets] curve_admin_keys_dir")

    def stats(self) -> dict:
        return {"curve": self.curve, "allowed_keys": len(self.allowed), "admin_keys": len(self.admins),
                "refused": self.refused, "forbidden": self.forbidden, "control_commands": self.cfg.control_commands}
