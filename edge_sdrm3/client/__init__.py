"""Client library for ``edge-sdrm3 serve``: send frames, receive results, control the service.

Three small classes, one per socket of the wire protocol (``docs/protocol.md``; encoding and validation are
shared with the service: ``edge_sdrm3.client.protocol``)::

    from edge_sdrm3.client import Publisher, Subscriber, Control

    with Publisher() as pub, Subscriber(models=["digits"]) as sub:
        pub.send("cam0", 0, [image])                   # image: HxWx3 uint8, sent without copying
        res = sub.recv(timeout_ms=1000)                # Result (or ErrorReport from the ``errors`` topic)
        print(res.model, res.status, res.end_ms - res.release_ms, res.outputs[0].argmax())

    Control().status()["policy"]

``AsyncPublisher`` is the asyncio twin of ``Publisher`` (``await pub.send(...)``).

Endpoints default to ``ipc://{runtime_dir}/{frames,results,control}.sock``, ``runtime_dir`` found as the
service finds its own (``default_runtime_dir``; ``$EDGE_SDRM3_RUNTIME_DIR`` overrides).

**Threads.** ZeroMQ sockets are not thread-safe: use a ``Publisher`` or ``Subscriber`` from one thread at a
time (one per thread is the usual pattern; they are cheap). ``Control`` holds a lock around each
request/reply, so one instance may be shared between threads.

**Zero copy.** ``Publisher.send`` hands ZeroMQ a view of each array's memory (arrays of 64 KiB and more;
smaller ones are copied, which is cheaper). Do not write into an array until ZeroMQ has sent it: allocate a
new array per frame, or pass ``track=True`` and wait on the returned tracker before reusing the buffer.
Received arrays (``Result.outputs``) are views of the received message's memory, not copies; they keep
the message alive while referenced. Small outputs may be unaligned views (ZeroMQ stores messages under 33
bytes inline); ``.copy()`` one to get an aligned array of your own.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np
import zmq
import zmq.asyncio

from . import protocol as wire
from .keys import CurveKeys, _curve_client, _curve_keys, load_curve_keys
from .messages import BadMessage, ClientError, ClientTimeout, ErrorReport, Result, ServiceError, _error_report, _result

__all__ = [
    "AsyncPublisher",
    "ClientError",
    "ClientTimeout",
    "Control",
    "ErrorReport",
    "Publisher",
    "Result",
    "ServiceError",
    "Subscriber",
    "default_endpoint",
    "default_runtime_dir",
    "load_curve_keys",
    "PROTOCOL_VERSION",
]

PROTOCOL_VERSION = wire.PROTOCOL_VERSION
DEFAULT_RUNTIME_DIR = "/run/edge-sdrm3"
_SOCKET_FILES = {"frames": "frames.sock", "results": "results.sock", "control": "control.sock"}


def default_runtime_dir() -> str:
    """Where the service's sockets are, as the service chooses it: ``$EDGE_SDRM3_RUNTIME_DIR``, else
    ``/run/edge-sdrm3`` when it exists (the systemd service), else ``/run/user/UID/edge-sdrm3`` (a service run
    by this user), else ``/tmp/edge-sdrm3-UID``."""
    env = os.environ.get("EDGE_SDRM3_RUNTIME_DIR")
    if env:
        return env
    if os.path.isdir(DEFAULT_RUNTIME_DIR):
        return DEFAULT_RUNTIME_DIR
    user_run = f"/run/user/{os.getuid()}"
    if os.path.isdir(user_run) and os.access(user_run, os.W_OK):
        return f"{user_run}/edge-sdrm3"
    return f"/tmp/edge-sdrm3-{os.getuid()}"


def default_endpoint(role: str) -> str:
    """``ipc://{default_runtime_dir()}/{role}.sock`` for role ``frames``, ``results`` or ``control``."""
    if role not in _SOCKET_FILES:
        raise ValueError(f"unknown socket role {role!r} (one of {', '.join(_SOCKET_FILES)})")
    return f"ipc://{default_runtime_dir()}/{_SOCKET_FILES[role]}"


# ---- frames out ------------------------------------------------------------------------------------------


def _frame_parts(stream: str, frame: int, arrays: Sequence[np.ndarray], models: Sequence[str] | None,
                 t_capture_ms: float | None) -> list:
    header: dict[str, Any] = {"stream": stream, "frame": int(frame)}
    if models is not None:
        header["models"] = list(models)
    if t_capture_ms is not None:
        header["t_capture_ms"] = float(t_capture_ms)
    try:
        return wire.encode_frame(header, arrays)
    except wire.ProtocolError as e:
        raise ValueError(f"cannot send frame {frame} of {stream!r}: {e}") from None


class _PushBase:
    def __init__(self, ctx: zmq.Context, endpoint: str | None, hwm: int, linger_ms: int,
                 curve: tuple = (None, None, None, None)) -> None:
        self.endpoint = endpoint or default_endpoint("frames")
        keys = _curve_keys(*curve)
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        _curve_client(self._sock, keys)
        self._sock.connect(self.endpoint)

    def close(self) -> None:
        self._sock.close()

    @property
    def closed(self) -> bool:
        return bool(self._sock.closed)


class Publisher(_PushBase):
    """Sends frames to the service's ingest socket (PUSH, connects; one thread at a time).

    ``hwm``: frames queued before ``send`` blocks (or, with ``block=False``, refuses);
    ``linger_ms``: how long ``close`` waits for queued frames to leave.
    CURVE (a service with ``[sockets] curve_secret_key_file``): ``curve=(server_pub, client_pub, client_sec)``
    (``load_curve_keys`` reads them from files) or the three ``curve_*`` keys; Z85 text or raw bytes. A key the
    service does not allow gets no connection: frames queue up here and are never delivered.
    """

    def __init__(self, endpoint: str | None = None, *, hwm: int = 64, linger_ms: int = 1000,
                 context: zmq.Context | None = None, curve: CurveKeys | None = None,
                 curve_server_public_key: bytes | str | None = None, curve_public_key: bytes | str | None = None,
                 curve_secret_key: bytes | str | None = None) -> None:
        super().__init__(context or zmq.Context.instance(), endpoint, hwm, linger_ms,
                         (curve, curve_server_public_key, curve_public_key, curve_secret_key))

    def send(self, stream: str, frame: int, arrays: Sequence[np.ndarray], models: Sequence[str] | None = None,
             t_capture_ms: float | None = None, *, block: bool = True, track: bool = False) -> Any:
        """Queue one frame: ``arrays`` (part 0 is usually the HxWx3 uint8 image) as zero-copy payloads.

        ``models``: run only these root models (default: every due one). ``t_capture_ms``: capture time on
        the sender's clock, echoed in the results. With ``block=False``, a full queue drops the frame and
        returns False (what a camera does when the consumer is slow); else returns True, or a
        ``zmq.MessageTracker`` with ``track=True``.
        """
        parts = _frame_parts(stream, frame, arrays, models, t_capture_ms)
        try:
            tracker = self._sock.send_multipart(parts, flags=0 if block else zmq.NOBLOCK, copy=False, track=track)
        except zmq.Again:
            return False
        return tracker if track else True

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPublisher(_PushBase):
    """``Publisher`` for asyncio (zmq.asyncio; one task at a time per instance)."""

    def __init__(self, endpoint: str | None = None, *, hwm: int = 64, linger_ms: int = 1000,
                 context: zmq.asyncio.Context | None = None, curve: CurveKeys | None = None,
                 curve_server_public_key: bytes | str | None = None, curve_public_key: bytes | str | None = None,
                 curve_secret_key: bytes | str | None = None) -> None:
        super().__init__(context or zmq.asyncio.Context.instance(), endpoint, hwm, linger_ms,
                         (curve, curve_server_public_key, curve_public_key, curve_secret_key))

    async def send(self, stream: str, frame: int, arrays: Sequence[np.ndarray],
                   models: Sequence[str] | None = None, t_capture_ms: float | None = None,
                   *, block: bool = True) -> bool:
        """As ``Publisher.send``; awaits room in the queue instead of blocking the loop."""
        parts = _frame_parts(stream, frame, arrays, models, t_capture_ms)
        try:
            await self._sock.send_multipart(parts, flags=0 if block else zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        return True

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# ---- results in ------------------------------------------------------------------------------------------


class Subscriber:
    """Receives results (SUB, connects; one thread at a time).

    ``models``: the models to receive (None: all). ``errors``: also receive the ``errors`` topic as
    ``ErrorReport``. ZeroMQ filters topics by prefix (``face`` would match ``face_detection``); this class
    keeps only the exact names asked for. As with any SUB socket, messages published before the
    subscription reached the service (a few ms after connecting) are not received. CURVE keys as for
    ``Publisher``.
    """

    def __init__(self, endpoint: str | None = None, models: Sequence[str] | None = None, *, errors: bool = True,
                 hwm: int = 10000, context: zmq.Context | None = None, curve: CurveKeys | None = None,
                 curve_server_public_key: bytes | str | None = None, curve_public_key: bytes | str | None = None,
                 curve_secret_key: bytes | str | None = None) -> None:
        self.endpoint = endpoint or default_endpoint("results")
        self.models: frozenset[str] | None = None if models is None else frozenset(models)
        self.errors = errors
        self.bad_messages = 0  # messages that did not follow the protocol (skipped)
        keys = _curve_keys(curve, curve_server_public_key, curve_public_key, curve_secret_key)
        self._sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        if self.models is None:
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        else:
            for m in sorted(self.models):
                self._sock.setsockopt(zmq.SUBSCRIBE, m.encode())
            if errors:
                self._sock.setsockopt(zmq.SUBSCRIBE, wire.ERRORS_TOPIC.encode())
        _curve_client(self._sock, keys)
        self._sock.connect(self.endpoint)

    def _wanted(self, topic: str) -> bool:
        if topic == wire.ERRORS_TOPIC:
            return self.errors
        return self.models is None or topic in self.models

    def recv(self, timeout_ms: int | None = None) -> Result | ErrorReport:
        """The next result (or error report); raises ``ClientTimeout`` if none within ``timeout_ms``
        (None: wait forever). Messages that break the protocol are counted in ``bad_messages`` and skipped."""
        end = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            wait = None if end is None else max(0, int((end - time.monotonic()) * 1000))
            if not self._sock.poll(wait, zmq.POLLIN):
                raise ClientTimeout(f"no result from {self.endpoint} within {timeout_ms} ms")
            parts = self._sock.recv_multipart(copy=False)
            topic = bytes(parts[0].buffer).decode("utf-8", "replace")
            if not self._wanted(topic):
                continue
            try:
                h, outputs = wire.decode_result(parts)
            except wire.ProtocolError:
                self.bad_messages += 1
                continue
            if topic == wire.ERRORS_TOPIC:
                return _error_report(h)
            try:
                return _result(h, outputs)
            except (BadMessage, TypeError):
                self.bad_messages += 1

    def __iter__(self) -> Iterator[Result | ErrorReport]:
        """Results as they come, forever (break out of the loop to stop)."""
        while True:
            yield self.recv()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- control ---------------------------------------------------------------------------------------------


class Control:
    """Requests to the service's control socket (REQ; thread-safe: one request at a time under a lock).

    A request without a reply within ``timeout_ms`` raises ``ClientTimeout``; the REQ socket, now stuck
    waiting for that reply, is closed and the next request opens a fresh one (ZeroMQ's "lazy pirate").
    CURVE keys as for ``Publisher``; a service with ``control_commands = "authenticated"`` runs set-policy,
    set-params and reload-catalog only for a key in its ``curve_admin_keys_dir`` (else ``ServiceError``
    ``forbidden``).
    """

    def __init__(self, endpoint: str | None = None, *, timeout_ms: int = 2000,
                 context: zmq.Context | None = None, curve: CurveKeys | None = None,
                 curve_server_public_key: bytes | str | None = None, curve_public_key: bytes | str | None = None,
                 curve_secret_key: bytes | str | None = None) -> None:
        self._curve = _curve_keys(curve, curve_server_public_key, curve_public_key, curve_secret_key)
        self.endpoint = endpoint or default_endpoint("control")
        self.timeout_ms = timeout_ms
        self._ctx = context or zmq.Context.instance()
        self._lock = threading.Lock()
        self._sock: zmq.Socket | None = None

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            s = self._ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
            _curve_client(s, self._curve)
            s.connect(self.endpoint)
            self._sock = s
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def request(self, cmd: str, **args: Any) -> dict:
        """Send ``{"v": 1, "cmd": cmd, **args}``; the reply's fields (without ``v``, ``ok``), or
        ``ServiceError(code, message)`` if ``ok`` is false."""
        with self._lock:
            sock = self._socket()
            try:
                sock.send(wire.encode_request(cmd, **args))
                if not sock.poll(self.timeout_ms, zmq.POLLIN):
                    raise zmq.Again()
                data = sock.recv(copy=False)
            except zmq.Again:
                self._reset()
                raise ClientTimeout(f"no reply from {self.endpoint} to {cmd!r} within {self.timeout_ms} ms "
                                    "(is edge-sdrm3 serve running?)") from None
        try:
            reply = wire.decode_reply(data)
        except wire.ProtocolError as e:
            raise BadMessage(f"malformed reply to {cmd!r} from {self.endpoint}: {e}") from None
        if not reply["ok"]:
            raise ServiceError(str(reply.get("error", "unknown")), str(reply.get("message", "")))
        return {k: v for k, v in reply.items() if k not in ("v", "ok")}

    def status(self) -> dict:
        """Policy, θ, accelerators, queue depths, per-model miss rate, UXCost so far, error counts, uptime."""
        return self.request("status")

    def stats(self) -> dict:
        """Counters of the dispatcher and the sockets."""
        return self.request("stats")

    def set_policy(self, name: str) -> dict:
        """Switch the scheduling policy (a registered name); returns the reply (the policy in force)."""
        return self.request("set-policy", policy=name)

    def set_params(self, **theta: float) -> dict:
        """Set any of SDRM3's ``alpha``, ``beta``, ``gamma``, ``delta``; returns the θ in force."""
        return self.request("set-params", params=theta)

    def reload_catalog(self) -> dict:
        """Reload the model catalog (as SIGHUP does); returns the models loaded."""
        return self.request("reload-catalog")

    def close(self) -> None:
        with self._lock:
            self._reset()

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
