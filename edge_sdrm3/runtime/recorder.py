"""The job log: a trace (edge_sdrm3/sim/trace.py, traces/README.md) written by a thread, never by the event loop.

Line 1 is the trace header (the scenario embedded); then ``frame`` records (``release_ms``, ``fired``), one
``job`` record per due frame (the fields of a replay's ``--record`` plus ``stream``, ``stream_frame``,
``variant_name``, ``energy_source``), and ``summary`` records every few seconds. So `edge-sdrm3 replay LOG`
accepts it. The event loop only puts dicts on a queue; the writer thread serialises whole lines, writes them
in batches and flushes after each batch, so a crash loses at most the batch in flight and never leaves half a
line. Size-based rotation: past ``rotate_bytes`` the file is renamed ``.1`` (older ones shifted, ``keep``
kept) and the new file starts with the header again, so every file is a trace on its own.
"""
from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_STOP = object()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} to the log")


def _clean(rec: dict) -> dict:
    """JSON has no infinity: a non-finite number is written as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()}


class Recorder:
    def __init__(self, path: str | os.PathLike[str], header: dict, *, rotate_bytes: int = 64 << 20,
                 keep: int = 5, batch: int = 512) -> None:
        self.path = Path(path)
        self.header_line = json.dumps(header, default=_json_default) + "\n"
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self.batch = batch
        self.lines = 0  # lines written (headers included)
        self.records = 0  # records written (headers excluded)
        self.rotations = 0
        self.errors = 0
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._f = None
        self._size = 0

    # --- event-loop side (never blocks) -----------------------------------------------------------
    def put(self, record: dict) -> None:
        self._q.put(record)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            # a previous run's log (a restart, perhaps after a crash): it is kept, shifted to .1 like a
            # rotated file, and this run starts a new trace
            self._shift()
        self._open()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> bool:
        """Write everything queued, flush, close. True when the writer finished within ``timeout``."""
        if self._thread is None:
            return True
        self._q.put(_STOP)
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            log.error("recorder: still writing after %.1f s; %s may be incomplete", timeout, self.path)
        self._thread = None
        return done

    # --- writer thread -----------------------------------------------------------------------------
    def _open(self) -> None:
        self._f = open(self.path, "w", encoding="utf-8")
        self._f.write(self.header_line)
        self._f.flush()
        self._size = len(self.header_line.encode())
        self.lines += 1

    def _rotate(self) -> None:
        assert self._f is not None
        self._f.close()
        self._shift()
        self.rotations += 1
        self._open()

    def _shift(self) -> None:
        """jobs.jsonl -> .1, .1 -> .2, ... (``keep`` files kept)."""
        if self.keep > 0:
            for i in range(self.keep - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._q.get()]
            while len(items) < self.batch:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            chunks: list[str] = []
            size = 0
            for rec in items:
                if rec is _STOP:
                    stop = True
                    continue
                try:
                    line = json.dumps(_clean(rec), default=_json_default) + "\n"
                except (TypeError, ValueError) as e:
                    self.errors += 1
                    log.error("recorder: record not written (%s): %r", e, rec)
                    continue
                n = len(line.encode())
                if self._size + size + n > self.rotate_bytes and self._size + size > len(self.header_line):
                    self._write(chunks, size)
                    chunks, size = [], 0
                    self._rotate()
                chunks.append(line)
                size += n
            self._write(chunks, size)
        if self._f is not None:
            self._f.close()
            self._f = None

    def _write(self, chunks: list[str], size: int) -> None:
        if not chunks or self._f is None:
            return
        try:
            self._f.write("".join(chunks))  # whole lines only
            self._f.flush()
        except OSError as e:
            self.errors += 1
            log.error("recorder: cannot write %s: %s", self.path, e)
            return
        self._size += size
        self.lines += len(chunks)
        self.records += len(chunks)
