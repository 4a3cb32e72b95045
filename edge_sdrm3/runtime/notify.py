"""systemd notification (``Type=notify``) over ``$NOTIFY_SOCKET`` with a plain datagram socket, no dependency.

``READY=1`` once models are loaded and sockets bound, ``WATCHDOG=1`` from the housekeeping tick (only when
``$WATCHDOG_USEC`` asks for it; at most every quarter of it), ``STATUS=...`` for `systemctl status`,
``STOPPING=1`` at shutdown. Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""
from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None, watchdog_usec: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address or None
        wd = os.environ.get("WATCHDOG_USEC") if watchdog_usec is None else watchdog_usec
        pid = os.environ.get("WATCHDOG_PID")
        try:
            usec = int(wd) if wd else 0
        except ValueError:
            usec = 0
        if pid and pid.isdigit() and int(pid) != os.getpid():
            usec = 0  # the watchdog is meant for another process
        self.watchdog_s = usec / 1e6 if usec > 0 else 0.0  # 0: no watchdog
        self._sock: socket.socket | None = None
        self._last_ping = -1e18
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False (and one log line per failure) if it cannot."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never stall the event loop on a reader that is not reading
            self._sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as e:
            self.failures += 1
            log.warning("sd_notify to %r failed (%s); %d failures so far", self.address, e, self.failures)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *((f"STATUS={status}",) if status else ()))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``, at most every quarter of the watchdog period however often the tick calls it."""
        if self.watchdog_s <= 0:
            return False
        now = time.monotonic()
        if now - self._last_ping < self.watchdog_s / 4:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """``RELOADING=1`` (SIGHUP); systemd >= 253 wants the monotonic time beside it. READY=1 ends it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *((f"STATUS={status}",) if status else ()))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
