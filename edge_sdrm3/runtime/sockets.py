"""The service's three sockets: frames in (PULL, plain: read by a reader callback of the event loop, ingest.py),
results out (PUB, plain: sent from callbacks, never awaited), control (REP, asyncio); each set up by ``security``
(size limit, CURVE) before its bind."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from .config import SocketsConfig
from .security import Security


class Sockets:
    def __init__(self) -> None:
        self.zctx: zmq.asyncio.Context | None = None
        self.sync_ctx: zmq.Context | None = None
        self.pull: Any = None
        self.pub: Any = None
        self.rep: Any = None

    def bind(self, s: SocketsConfig, sec: Security, results_hwm: int | None = None) -> None:
        """``results_hwm``: the PUB high-water mark (results.py sets it from the byte budget); default the config's."""
        self.zctx = zmq.asyncio.Context()
        self.sync_ctx = zmq.Context()
        sec.start(self.zctx, self.sync_ctx)  # CURVE: a ZAP handler per context, before any bind
        for addr in (s.ingest, s.results, s.control):
            if addr.startswith("ipc://") and not addr.startswith("ipc://@"):
                sec.make_dir(Path(addr[6:]).parent)

        def bind(ctx: Any, kind: int, addr: str, role: str, linger_ms: int, **opts: int) -> Any:
            sock = ctx.socket(kind)
            for opt, value in ((zmq.LINGER, linger_ms), *((getattr(zmq, k), v) for k, v in opts.items())):
                sock.setsockopt(opt, value)
            sec.apply(sock, role)  # size limit and CURVE, before the bind
            sock.bind(addr)
            sec.after_bind(addr)  # an ipc socket file's mode and group
            return sock

        self.pull = bind(self.sync_ctx, zmq.PULL, s.ingest, "ingest", 0, RCVHWM=s.ingest_hwm)
        self.pub = bind(self.sync_ctx, zmq.PUB, s.results, "results", 1000, SNDHWM=results_hwm or s.results_hwm)
        self.rep = bind(self.zctx, zmq.REP, s.control, "control", 0)

    def close_sockets(self) -> None:
        for sock in (self.pull, self.rep, self.pub):
            if sock is not None and not sock.closed:
                sock.close()

    def term(self) -> None:
        """End the contexts (after the sockets are closed and the ZAP handlers stopped)."""
        for ctx in (self.zctx, self.sync_ctx):
            if ctx is not None:
                ctx.term()
