"""CURVE keys for a client of a service run with ``[sockets] curve_secret_key_file``."""
from __future__ import annotations

import os

import zmq

from .messages import ClientError

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
