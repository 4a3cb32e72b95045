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
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import zmq
import zmq.asyncio

from . import protocol as wire

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


# ---- errors ----------------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of the client's errors."""


class ClientTimeout(ClientError, TimeoutError):
    """No reply or message within the timeout (the service may not be running)."""


class ServiceError(ClientError):
    """The service answered a control request with ``ok: false``; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BadMessage(ClientError):
    """A message from the service that does not follow the protocol (logged by callers; never silent)."""


# ---- received values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One job's outcome: the result header's fields, and the output tensors (zero-copy views)."""

    stream: str
    frame: int
    model: str
    status: str  # done, late, timed (ran timing-only: no outputs), dropped, failed
    variant: int | str = 0  # index of the supernet variant that ran, 0 = the largest
    variant_name: str = ""
    accelerator: str = ""
    reason: str = ""
    release_ms: float = 0.0  # service clock, ms
    start_ms: float = -1.0
    end_ms: float = 0.0
    deadline_ms: float = 0.0
    energy_mj: float = 0.0
    energy_source: str = ""
    t_capture_ms: float | None = None  # the frame's capture time (sender's clock), where the service echoes it
    computed: bool = False  # the outputs are the model's, computed on this frame (only with done and late)
    outputs: list[np.ndarray] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # header keys this client does not know

    @property
    def ok(self) -> bool:
        """True when the model ran to completion (on time or late) and outputs are attached."""
        return self.status in ("done", "late")

    @property
    def latency_ms(self) -> float:
        """From release to completion, on the service's clock."""
        return self.end_ms - self.release_ms


@dataclass(frozen=True)
class ErrorReport:
    """A message of the ``errors`` topic: the service refused something (and went on)."""

    code: str  # the header's ``error``: bad-msgpack, bad-version, bad-header, unknown-model, bad-shape, ...
    message: str
    stream: str | None = None
    frame: int | None = None
    count: int | None = None  # errors of this code so far
    extra: dict[str, Any] = field(default_factory=dict)


_RESULT_KEYS = {f for f in Result.__dataclass_fields__ if f not in ("outputs", "extra")}
_ERROR_KEYS = {"error", "message", "stream", "frame", "count"}


def _result(h: dict, outputs: list[np.ndarray]) -> Result:
    missing = [k for k in ("stream", "frame", "model", "status") if k not in h]
    if missing:
        raise BadMessage(f"result header lacks {', '.join(missing)}: {h!r}")
    known = {k: h[k] for k in _RESULT_KEYS if k in h}
    extra = {k: v for k, v in h.items() if k not in _RESULT_KEYS and k not in ("v", "tensors", "topic")}
    return Result(**known, outputs=outputs, extra=extra)


def _error_report(h: dict) -> ErrorReport:
    code, message = h.get("error", ""), h.get("message", "")
    extra = {k: v for k, v in h.items() if k not in _ERROR_KEYS and k not in ("v", "error", "topic", "tensors")}
    return ErrorReport(str(code), str(message), h.get("stream"), h.get("frame"), h.get("count"), extra)


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


CurveKeys = tuple  # (server public key, client public key, client secret key): Z85 text (40) or raw bytes (32)


def load_curve_keys(server_key_file: str | os.PathLike[str], client_secret_file: str | os.PathLike[str]) -> CurveKeys:
    """The ``curve=`` tuple from key files as ``zmq.auth.create_certificates`` writes them: the service's public
    key file (``server.key``; its ``.key_secret`` works too) and this client's secret key file
    (``client.key_secret``)."""
    import zmq.auth

    try:
        server_pub, _ = zmq.auth.load_certificate(server_key_file)
        pub, sec = zmq.auth.load_certificate(client_secret_file)
    except (OSError, ValueError) as e:
        raise ClientError(f"CURVE keys: {e}") from None
    if sec is None:
        raise ClientError(f"CURVE keys: {client_secret_file}: no secret-key in it (give the .key_secret file)")
    return server_pub, pub, sec


def _curve_keys(curve: CurveKeys | None, server_public_key: bytes | str | None, public_key: bytes | str | None,
                secret_key: bytes | str | None) -> tuple[bytes, bytes, bytes] | None:
    """The three CURVE keys as bytes from either form of the constructors' arguments; None: no CURVE."""
    if curve is not None:
        if server_public_key or public_key or secret_key:
            raise ValueError("give curve=(server_pub, client_pub, client_sec) or the three curve_* keys, not both")
        server_public_key, public_key, secret_key = curve
    keys = (server_public_key, public_key, secret_key)
    if not any(keys):
        return None
    if not all(keys):
        raise ValueError("CURVE needs curve_server_public_key, curve_public_key and curve_secret_key")
    b = [k.encode("ascii") if isinstance(k, str) else bytes(k) for k in keys]  # type: ignore[union-attr]
    for k in b:
        if len(k) not in (32, 40):
            raise ValueError(f"not a CURVE key: {len(k)} bytes (40 characters of Z85 text, or 32 raw bytes)")
    return b[0], b[1], b[2]


def _curve_client(sock: zmq.Socket, keys: tuple[bytes, bytes, bytes] | None) -> None:
    """Make ``sock`` a CURVE client of a service run with ``[sockets] curve_secret_key_file`` (before connect)."""
    if keys is not None:
        sock.setsockopt(zmq.CURVE_SERVERKEY, keys[0])
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys[1])
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys[2])


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
