"""The job log: a trace (edge_sdrm3/sim/trace.py, docs/traces.md) written by a thread, never by the event loop.

Line 1 is the trace header (the scenario embedded); then ``frame`` records (``release_ms``, ``fired``), one
``job`` record per due frame (the fields of a replay's ``--record`` plus ``stream``, ``stream_frame``,
``variant_name``, ``energy_source``), and ``summary`` records every few seconds. So `edge-sdrm3 replay LOG`
accepts it. The event loop only appends dicts to a queue, without waking anyone: the writer thread takes
what is queued every ``flush_s`` (0.1 s; at once when ``batch`` records wait), serialises whole lines, writes
them and flushes after each batch, so a crash loses at most the last ``flush_s`` of records and never leaves
half a line. Why not a wake-up per record: a woken writer takes the GIL at the event loop's next release of it
(a ZeroMQ send, a block's hand-off), so the job whose result is being sent waits for JSON to be written —
measured on the 2-core dev VM, about 0.3 ms of the round trip of a one-frame job went to it. While writing, the
writer gives the GIL back after each record, so a batch never holds the event loop for longer than one line,
except while ``backlog`` records (8 batches) wait: then it writes at full speed, since a writer yielding after
every line to a busy loop fell behind a flood of frames and held 130 MB of records (tools/flood.py).
Size-based rotation: past ``rotate_bytes`` the file is renamed ``.1`` (older ones shifted, ``keep`` kept) and the
new file starts with the header again, so every file is a trace on its own.

A log that cannot be written never stops the service: when the file cannot be opened (its directory missing and
not creatable, not writable) or a write fails (a full disk: ENOSPC, EIO), the batch is dropped and *counted*
(``lost``, with the error in ``error``), the file is closed, and it is opened again (appending, with a header
when it is new) at most once per ``retry_s`` until that works. A log file removed while open (its directory
deleted) is noticed within ``retry_s`` (its link count is 0): what was written to it since the last look is
counted as lost and the file is made again. ``state()`` is what the service's ``status`` shows.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import deque
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
                 keep: int = 5, batch: int = 512, retry_s: float = 1.0, flush_s: float = 0.1) -> None:
        self.path = Path(path)
        self.header_line = json.dumps(header, default=_json_default) + "\n"
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self.batch = batch
        self.backlog = 8 * batch  # records queued past which the writer stops yielding after each line
        self.lines = 0  # lines written (headers included)
        self.records = 0  # records written (headers excluded)
        self.rotations = 0
        self.errors = 0
        self.lost = 0  # records not written: the file could not be opened or written (see the module docstring)
        self.error = ""  # the last write/open error ("" once writing works again)
        self.retry_s = retry_s
        self._next_try = 0.0  # monotonic time of the next attempt to open the file
        self._next_check = 0.0  # monotonic time of the next link-count check
        self._unchecked = 0  # records written since the last link-count check
        self.flush_s = flush_s
        self._q: deque = deque()  # appended by the event loop, taken by the writer (both atomic)
        self._wake = threading.Event()  # set when a batch is waiting, or to stop
        self._thread: threading.Thread | None = None
        self._f = None
        self._size = 0

    # --- event-loop side (never blocks) -----------------------------------------------------------
    def put(self, record: dict) -> None:
        q = self._q
        q.append(record)
        if len(q) >= self.batch and not self._wake.is_set():
            self._wake.set()

    def state(self) -> dict:
        return {"path": str(self.path), "written": self.records, "lost": self.lost, "error": self.error}

    def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file() and self.path.stat().st_size > 0:
                # a previous run's log (a restart, perhaps after a crash): it is kept, shifted to .1 like a
                # rotated file, and this run starts a new trace
                self._shift()
            self._open()
        except OSError as e:
            self._failed(e, 0)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> bool:
        """Write everything queued, flush, close. True when the writer finished within ``timeout``."""
        if self._thread is None:
            return True
        self._q.append(_STOP)
        self._wake.set()
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            log.error("recorder: still writing after %.1f s; %s may be incomplete", timeout, self.path)
        self._thread = None
        return done

    # --- writer thread -----------------------------------------------------------------------------
    def _open(self, append: bool = False) -> None:
        self._f = open(self.path, "a" if append else "w", encoding="utf-8")
        size = self._f.tell() if append else 0
        if size == 0:
            self._f.write(self.header_line)
            self._f.flush()
            size = len(self.header_line.encode())
            self.lines += 1
        self._size = size
        self._next_check = time.monotonic() + self.retry_s
        self._unchecked = 0

    def _failed(self, e: OSError | str, n: int) -> None:
        """``n`` records lost to error ``e``: counted, the file closed, opened again later."""
        self.lost += n
        msg = str(e)
        if msg != self.error:
            log.error("recorder: cannot write %s: %s (records are counted as lost until it works again)",
                      self.path, msg)
        self.error = msg
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass  # the buffered lines it could not write are already counted
            self._f = None
        self._next_try = time.monotonic() + self.retry_s

    def _reopen(self) -> bool:
        if time.monotonic() < self._next_try:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open(append=True)
        except OSError as e:
            self._failed(e, 0)
            return False
        log.warning("recorder: writing %s again (%d records lost meanwhile)", self.path, self.lost)
        self.error = ""
        return True

    def _rotate(self) -> None:
        if self._f is None:
            return
        try:
            self._f.close()
            self._f = None
            self._shift()
            self.rotations += 1
            self._open()
        except OSError as e:
            self._failed(e, 0)

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
        q = self._q
        while not stop:
            if len(q) < self.batch:
                self._wake.wait(self.flush_s)
            self._wake.clear()
            chunks: list[str] = []
            size = 0
            while q and not stop and len(chunks) < self.batch:
                rec = q.popleft()
                if rec is _STOP:
                    stop = True
                    continue
                if len(q) < self.backlog:  # the GIL back to the event loop between lines, if it waits for it;
                    time.sleep(0)  # not while a large backlog waits: its records are memory the service holds
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
            try:
                self._f.close()
            except OSError as e:
                self._failed(e, 0)
            self._f = None

    def _write(self, chunks: list[str], size: int) -> None:
        if not chunks:
            return
        if self._f is None and not self._reopen():
            self.lost += len(chunks)
            return
        assert self._f is not None
        try:
            self._f.write("".join(chunks))  # whole lines only
            self._f.flush()
        except OSError as e:
            self.errors += 1
            self._failed(e, len(chunks))
            return
        self._size += size
        self.lines += len(chunks)
        self.records += len(chunks)
        self._unchecked += len(chunks)
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.retry_s
            try:
                removed = os.fstat(self._f.fileno()).st_nlink == 0
            except OSError:
                removed = False
            if removed:  # written into a file no directory holds any more: lost
                self.records -= self._unchecked
                self._failed(f"{self.path} was removed while open", self._unchecked)
                self._next_try = 0.0  # make it again at once
            self._unchecked = 0
