"""What the client receives from the service: results, error reports, and the client's own errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
