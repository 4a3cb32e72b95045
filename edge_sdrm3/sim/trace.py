"""Traces: versioned JSON-lines files of frame releases and trigger outcomes, optionally with job records.

Line 1 is the header ``{"format": "edge-sdrm3-trace", "version": 1, "scenario": {...}, "duration_s",
"seed"}``; then one record per line, ``{"type": "frame", ...}``, ``{"type": "job", ...}``,
``{"type": "segment", ...}`` or ``{"type": "summary", ...}``, their fields written by ``core/records.py``. A
replay's ``--record`` output (and the live service's log) is itself a trace. The format is documented in
``docs/traces.md``; this module generates traces, writes them and reads (validates) them.
"""
from __future__ import annotations

import heapq
import json
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..catalog import FileFormatError, Scenario, parse_scenario
from ..core import records
from ..core.records import FORMAT, VERSION, header

__all__ = ["FORMAT", "VERSION", "Frame", "Trace", "generate", "header", "is_trace", "read", "stream", "write"]
INF = float("inf")
# A generated trace covers at most a day of frames, and 50 million frames in all (a day of the busiest
# shipped scenario, 185 fps, is 16 million): anything larger is a typo (``--duration 1e9``, ``"fps": 1e308``)
# that would otherwise run for days or exhaust memory. Longer field logs are replayed a day at a time.
MAX_DURATION_S = 86_400.0
MAX_FRAMES = 50_000_000


@dataclass(frozen=True, slots=True)
class Frame:
    model: str
    frame: int
    release_ms: float
    fired: bool = True  # trigger outcome (always true for a model without a trigger)
    ready_ms: float | None = None  # a live log's frame: when the service took it in (None: at its release)


class Trace:
    """A trace: its scenario, duration and seed, its frames in time order, and the records of a recorded run.

    The frames of a generated trace, or of a trace file opened with :func:`stream`, are made as they are read
    (:meth:`iter_frames`): a replay of hours holds only the frames of the current instant. Reading
    :attr:`frames` makes (and keeps) the whole list, for the callers that need it."""

    def __init__(self, scenario: Scenario, duration_s: float, seed: int, frames: list[Frame] | None = None,
                 jobs: list[dict] | None = None, segments: list[dict] | None = None,
                 summaries: list[dict] | None = None, costs: list[dict] | None = None, engine: dict | None = None,
                 *, source: Callable[[], Iterator[Frame]] | None = None, counts: dict | None = None) -> None:
        if frames is None and source is None:
            raise ValueError("a trace needs its frames or a source of them")
        self.scenario = scenario
        self.duration_s = duration_s
        self.seed = seed
        self._frames = frames
        self._source = source
        self.jobs: list[dict] = [] if jobs is None else jobs  # job records of a recorded run, if any
        self.segments: list[dict] = [] if segments is None else segments  # segment records, if any
        self.summaries: list[dict] = [] if summaries is None else summaries  # summary records, if any
        self.costs: list[dict] = [] if costs is None else costs  # cost records (costs learned while running)
        self.engine: dict = {} if engine is None else engine  # a live log's engine rules (admission, chain_ms)
        self.counts = counts  # a streamed file's record counts and first/last release (``stream``)

    @property
    def frames(self) -> list[Frame]:
        if self._frames is None:
            assert self._source is not None
            self._frames = list(self._source())
        return self._frames

    @frames.setter
    def frames(self, frames: list[Frame]) -> None:
        self._frames = frames

    def iter_frames(self) -> Iterator[Frame]:
        """The frames in time order (release, model, frame), made as they are read when the trace streams."""
        if self._frames is not None:
            return iter(self._frames)
        assert self._source is not None
        return self._source()

    def until(self, duration_s: float) -> None:
        """Keep only the frames released before ``duration_s``."""
        end_ms = duration_s * 1000.0
        if self._frames is not None:
            self._frames = [f for f in self._frames if f.release_ms < end_ms]
        else:
            source = self._source
            assert source is not None
            self._source = lambda: (f for f in source() if f.release_ms < end_ms)
            if self.counts is not None:
                self.counts = {**self.counts, "frame": None, "first_ms": None, "last_ms": None}
        self.duration_s = duration_s


class TraceSizeError(FileFormatError):
    """A duration or a scenario whose trace would be nonsense-sized (not positive, or beyond the limits)."""


def check_duration(duration_s: float, what: str = "--duration") -> None:
    """A replay's duration: a number of seconds in (0, MAX_DURATION_S]."""
    if not 0 < duration_s <= MAX_DURATION_S:
        raise TraceSizeError(f"{what} must be > 0 and at most {MAX_DURATION_S:g} s (a day), got {duration_s!r}")


def check_size(scenario: Scenario, duration_s: float, what: str = "--duration") -> None:
    """Refuses a trace of more than MAX_FRAMES frames before any is made (a scenario's fps times the duration)."""
    check_duration(duration_s, what)
    n = sum(m.fps * duration_s for m in scenario.models)
    if not n <= MAX_FRAMES:
        raise TraceSizeError(f"scenario {scenario.name!r}: {duration_s:g} s at {sum(m.fps for m in scenario.models):g} "
                             f"frames per second is {n:.3g} frames, more than a replay takes ({MAX_FRAMES:,})")


def generate(scenario: Scenario, duration_s: float = 10.0, seed: int = 0) -> Trace:
    """Frame releases at f / fps for f / fps < duration; each triggered frame's outcome drawn once.

    Every model draws from its own generator seeded by (seed, model name), so outcomes do not depend
    on the other models or on the duration. A cascaded frame fires only if its upstream frame (the one
    whose period holds its release) fired too: the draws nest along a cascade. Nonsense sizes raise
    ``TraceSizeError`` (``check_size``)."""
    check_size(scenario, duration_s)
    draw_seed, duration_s = seed, float(duration_s)
    by_name = {m.name: m for m in scenario.models}

    def outcomes(name: str) -> Iterator[bool]:
        """Model ``name``'s trigger outcomes, frame after frame (its upstream's drawn again, alongside)."""
        m = by_name[name]
        rng = random.Random(f"{draw_seed}:{m.name}")
        triggered = m.upstream is not None or m.trigger_probability < 1.0
        up = outcomes(m.upstream) if m.upstream is not None else None
        up_fps = by_name[m.upstream].fps if m.upstream is not None else 0.0
        up_n, up_fired = 0, False  # upstream outcomes read so far, and the last one
        f = 0
        while f / m.fps < duration_s:
            fired = rng.random() < m.trigger_probability if triggered else True
            if up is not None:
                k = int(f * up_fps / m.fps + 1e-9)
                while up_n <= k:
                    nxt = next(up, None)
                    if nxt is None:
                        up_fired = False
                        break
                    up_fired, up_n = nxt, up_n + 1
                fired = fired and up_n > k and up_fired
            yield fired
            f += 1

    def frames_of(m) -> Iterator[Frame]:
        for f, fired in enumerate(outcomes(m.name)):
            yield Frame(m.name, f, f * 1000.0 / m.fps, fired)

    def source() -> Iterator[Frame]:
        return heapq.merge(*(frames_of(m) for m in scenario.models), key=_order)

    return Trace(scenario, duration_s, int(seed), source=source)


def _order(fr: Frame) -> tuple[float, str, int]:
    return fr.release_ms, fr.model, fr.frame


def _frame_record(fr: Frame, triggered: bool) -> dict:
    return records.frame_record(fr.model, fr.frame, fr.release_ms, fr.fired if triggered else None,
                                ready_ms=fr.ready_ms)


def write(trace: Trace, path: str | Path, jobs: list[dict] | None = None, summary: dict | None = None,
          segments: list[dict] | None = None, windows: list[dict] | None = None) -> None:
    """The trace, then its job records, segment records, per-window summary records and the summary."""
    triggered = {m.name for m in trace.scenario.models if m.upstream is not None or m.trigger_probability < 1.0}
    with open(path, "w") as f:
        extra = {"engine": trace.engine} if trace.engine else {}
        f.write(json.dumps(header(trace.scenario, trace.duration_s, trace.seed, **extra)) + "\n")
        for fr in trace.iter_frames():
            f.write(json.dumps(_frame_record(fr, fr.model in triggered)) + "\n")
        for j in jobs if jobs is not None else trace.jobs:
            f.write(json.dumps({"type": "job", **j}) + "\n")
        for sg in segments or ():
            f.write(json.dumps({"type": "segment", **sg}) + "\n")
        for w in windows or ():
            f.write(json.dumps({"type": "summary", **w}) + "\n")
        if summary is not None:
            f.write(json.dumps({"type": "summary", **summary}) + "\n")


class Recorder:
    """A replay's ``--record``: a sink that writes the job and segment records as they come (to two temporary
    files beside ``path``), then :meth:`close` writes the file as :func:`write` does, in the same bytes: the
    trace, its job records, segment records, window summaries and summary. Memory stays flat however long
    the run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        where = self.path.resolve().parent
        self._jobs = tempfile.TemporaryFile("w+", dir=where, prefix=".jobs-")
        self._segments = tempfile.TemporaryFile("w+", dir=where, prefix=".segments-")

    def put(self, record: dict) -> None:
        t = record.get("type")
        out = self._jobs if t == "job" else self._segments if t == "segment" else None
        if out is None:
            raise ValueError(f"a replay records jobs and segments, not {t!r} records")
        out.write(json.dumps({"type": t, **record}) + "\n")

    def close(self, trace: Trace, summary: dict | None = None, windows: list[dict] | None = None) -> None:
        try:
            write(trace, self.path, jobs=[])
            with open(self.path, "a") as f:
                for part in (self._jobs, self._segments):
                    part.seek(0)
                    shutil.copyfileobj(part, f)
                for w in windows or ():
                    f.write(json.dumps({"type": "summary", **w}) + "\n")
                if summary is not None:
                    f.write(json.dumps({"type": "summary", **summary}) + "\n")
        finally:
            self._jobs.close()
            self._segments.close()


def is_trace(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix == ".jsonl":
        return True
    try:
        with open(p) as f:
            first = f.readline()
        return json.loads(first).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _num(rec: dict, key: str, where: str) -> float:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FileFormatError(f"{where}: field '{key}' must be a number, got {v!r}")
    try:
        return float(v)
    except OverflowError:
        raise FileFormatError(f"{where}: field '{key}' must be a number, got an integer out of range") from None


def _header(h: dict, where: str) -> tuple[Scenario, float, int, dict]:
    if h.get("format") != FORMAT:
        raise FileFormatError(f"{where}: field 'format' must be {FORMAT!r}, got {h.get('format')!r}")
    if h.get("version") != VERSION:
        raise FileFormatError(f"{where}: field 'version': unsupported version {h.get('version')!r} (known: {VERSION})")
    if not isinstance(h.get("scenario"), dict):
        raise FileFormatError(f"{where}: field 'scenario' must be a scenario object")
    scenario = parse_scenario(h["scenario"], f"{where}: field 'scenario'")
    duration = _num(h, "duration_s", where)
    seed = h.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FileFormatError(f"{where}: field 'seed' must be an integer, got {seed!r}")
    engine = h.get("engine", {})
    if not isinstance(engine, dict) or not isinstance(engine.get("admission", False), bool) or \
            not isinstance(engine.get("chain_ms", 0.0), (int, float)) or isinstance(engine.get("chain_ms"), bool):
        raise FileFormatError(f"{where}: field 'engine' must be {{\"admission\": bool, \"chain_ms\": number}}")
    engine = {"admission": engine.get("admission", False), "chain_ms": float(engine.get("chain_ms", 0.0))}
    return scenario, duration, seed, engine


def _frame(rec: dict, where: str, known: set[str]) -> Frame:
    model = rec.get("model")
    if not isinstance(model, str) or model not in known:
        raise FileFormatError(f"{where}: field 'model': unknown model {model!r}")
    fid = rec.get("frame")
    if not isinstance(fid, int) or isinstance(fid, bool) or fid < 0:
        raise FileFormatError(f"{where}: field 'frame' must be an integer >= 0, got {fid!r}")
    fired = rec.get("fired", True)
    if not isinstance(fired, bool):
        raise FileFormatError(f"{where}: field 'fired' must be true or false, got {fired!r}")
    rel = _num(rec, "release_ms", where)
    if not rel >= 0:
        raise FileFormatError(f"{where}: field 'release_ms' must be >= 0, got {rel!r}")
    ready = None
    if "ready_ms" in rec:
        ready = _num(rec, "ready_ms", where)
        if not ready >= rel:
            raise FileFormatError(f"{where}: field 'ready_ms' must be >= release_ms ({rel!r}), got {ready!r}")
    return Frame(model, fid, rel, fired, ready)


def _segment(rec: dict, where: str) -> None:
    if not isinstance(rec.get("model"), str) or not isinstance(rec.get("accelerator"), str):
        raise FileFormatError(f"{where}: a segment record needs 'model' and 'accelerator' strings")
    for key in ("start_ms", "end_ms"):
        _num(rec, key, where)


# what ``str.splitlines`` (``read``) takes for a line break besides "\n": a line holding one is read by ``read``
_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class _Unstreamable(Exception):
    """The file is read whole instead (``read``): it has an error to report, or frames out of time order."""


def _records(p: Path) -> Iterator[dict]:
    """A file's JSON objects, line after line, up to a torn last line (as ``read``); _Unstreamable otherwise."""
    with open(p, "rb") as f:
        for raw in f:
            try:
                line = raw.decode()
            except UnicodeDecodeError:
                raise _Unstreamable from None
            complete = line.endswith("\n")
            line = line[:-1] if complete else line
            if _BREAKS.search(line):
                raise _Unstreamable
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if not complete:
                    return
                raise _Unstreamable from None
            except (ValueError, RecursionError):
                raise _Unstreamable from None
            if not isinstance(rec, dict):
                raise _Unstreamable
            yield rec


def stream(path: str | Path) -> Trace:
    """A trace file for a replay: checked once from end to end, then its frames read from the file again as the
    replay reaches them (memory does not grow with the file). Its job, segment and summary records are counted
    (``Trace.counts``), not kept. A file with an error, or whose frames are not in time order, is read whole
    (``read``: the same errors, the same trace)."""
    p = Path(path)
    try:
        recs = _records(p)
        h = next(recs, None)
        if h is None:
            raise _Unstreamable
        scenario, duration, seed, engine = _header(h, str(p))
        known = {m.name for m in scenario.models}
        counts = {"frame": 0, "job": 0, "segment": 0, "summary": 0, "first_ms": None, "last_ms": None}
        last_key: tuple = (-INF, "", -1)
        last_of: dict[str, int] = {}
        for rec in recs:
            t = rec.get("type")
            if t == "frame":
                fr = _frame(rec, str(p), known)
                key = _order(fr)
                if key <= last_key or fr.frame <= last_of.get(fr.model, -1):  # out of order, or perhaps twice
                    raise _Unstreamable
                last_key, last_of[fr.model] = key, fr.frame
                if counts["first_ms"] is None:
                    counts["first_ms"] = fr.release_ms
                counts["last_ms"] = fr.release_ms
            elif t == "segment":
                _segment(rec, str(p))
            elif t not in ("job", "summary"):  # a log with cost records (or an error): read whole
                raise _Unstreamable
            counts[t] += 1
    except (_Unstreamable, FileFormatError, OSError):
        return read(p)

    def source() -> Iterator[Frame]:
        for rec in _records(p):
            if rec.get("type") == "frame":
                ready = rec.get("ready_ms")
                yield Frame(rec["model"], rec["frame"], float(rec["release_ms"]), rec.get("fired", True),
                            None if ready is None else float(ready))

    return Trace(scenario, duration, seed, engine=engine, source=source, counts=counts)


def read(path: str | Path) -> Trace:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise FileFormatError(f"{p}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        lineno = p.read_bytes()[: e.start].count(b"\n") + 1
        raise FileFormatError(f"{p}: line {lineno}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.splitlines()
    if not lines:
        raise FileFormatError(f"{p}: line 1: empty file, expected a trace header")
    # a log cut off by a crash (kill -9, power loss) may end in a line without its newline: that record was
    # never completely written, and the file is read up to its last complete record
    torn = len(lines) if not text.endswith("\n") and len(lines) > 1 else 0
    recs = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == torn:
                break
            raise FileFormatError(f"{p}: line {i}: not valid JSON ({e.msg})") from None
        except (ValueError, RecursionError) as e:  # an integer of more than 4300 digits; arrays nested too deeply
            raise FileFormatError(f"{p}: line {i}: not valid JSON ({type(e).__name__}: {e})") from None
        if not isinstance(rec, dict):
            raise FileFormatError(f"{p}: line {i}: expected a JSON object")
        recs.append((i, rec))
    if not recs:
        raise FileFormatError(f"{p}: line 1: only blank lines, expected a trace header")
    i, h = recs[0]
    scenario, duration, seed, engine = _header(h, f"{p}: line {i}")
    known = {m.name for m in scenario.models}
    frames, jobs, segments, summaries, costs = [], [], [], [], []
    seen = set()
    for i, rec in recs[1:]:
        where = f"{p}: line {i}"
        t = rec.get("type")
        if t == "frame":
            fr = _frame(rec, where, known)
            if (fr.model, fr.frame) in seen:
                raise FileFormatError(f"{where}: frame {fr.frame} of {fr.model} appears twice")
            seen.add((fr.model, fr.frame))
            frames.append(fr)
        elif t == "job":
            jobs.append(rec)
        elif t == "segment":
            _segment(rec, where)
            segments.append(rec)
        elif t == "summary":
            summaries.append(rec)
        elif t == "cost":
            for key in ("model", "variant_name", "accelerator"):
                if not isinstance(rec.get(key), str):
                    raise FileFormatError(f"{where}: field {key!r} of a cost record must be a string")
            seg = rec.get("segment")
            if not isinstance(seg, int) or isinstance(seg, bool) or seg < 0:
                raise FileFormatError(f"{where}: field 'segment' must be an integer >= 0, got {seg!r}")
            for key in ("t_ms", "latency_ms", "energy_mj"):
                if not _num(rec, key, where) >= 0:
                    raise FileFormatError(f"{where}: field {key!r} must be >= 0, got {rec[key]!r}")
            costs.append(rec)
        else:
            raise FileFormatError(f"{where}: field 'type': unknown record type {t!r} "
                                  f"(known: frame, job, segment, summary, cost)")
    frames.sort(key=_order)
    costs.sort(key=lambda c: c["t_ms"])
    return Trace(scenario, duration, seed, frames, jobs, segments, summaries, costs, engine)
