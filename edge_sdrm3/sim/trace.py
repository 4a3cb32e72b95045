"""Traces: versioned JSON-lines files of frame releases and trigger outcomes, optionally with job records.

Line 1 is the header ``{"format": "edge-sdrm3-trace", "version": 1, "scenario": {...}, "duration_s",
"seed"}``; then one record per line, ``{"type": "frame", ...}``, ``{"type": "job", ...}``,
``{"type": "segment", ...}`` or ``{"type": "summary", ...}``, their fields written by ``core/records.py``. A
replay's ``--record`` output (and the live service's log) is itself a trace. The format is documented in
``docs/traces.md``; this module generates traces, writes them and reads (validates) them.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import FileFormatError, Scenario, parse_scenario
from ..core import records
from ..core.records import FORMAT, VERSION, header

__all__ = ["FORMAT", "VERSION", "Frame", "Trace", "generate", "header", "is_trace", "read", "write"]
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


@dataclass
class Trace:
    scenario: Scenario
    duration_s: float
    seed: int
    frames: list[Frame]
    jobs: list[dict] = field(default_factory=list)  # job records of a recorded run, if any
    segments: list[dict] = field(default_factory=list)  # segment records (what ran where, when), if any
    summaries: list[dict] = field(default_factory=list)  # summary records (per window and final), if any


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
    frames: list[Frame] = []
    fired_of: dict[str, list[bool]] = {}
    fps_of = {m.name: m.fps for m in scenario.models}
    for m in scenario.models:  # an upstream is listed before its children
        rng = random.Random(f"{seed}:{m.name}")
        triggered = m.upstream is not None or m.trigger_probability < 1.0
        up = fired_of.get(m.upstream) if m.upstream is not None else None
        outcomes = fired_of[m.name] = []
        f = 0
        while f / m.fps < duration_s:
            fired = rng.random() < m.trigger_probability if triggered else True
            if up is not None:
                k = int(f * fps_of[m.upstream] / m.fps + 1e-9)
                fired = fired and k < len(up) and up[k]
            outcomes.append(fired)
            frames.append(Frame(m.name, f, f * 1000.0 / m.fps, fired))
            f += 1
    frames.sort(key=lambda x: (x.release_ms, x.model, x.frame))
    return Trace(scenario, float(duration_s), int(seed), frames)


def _frame_record(fr: Frame, triggered: bool) -> dict:
    return records.frame_record(fr.model, fr.frame, fr.release_ms, fr.fired if triggered else None)


def write(trace: Trace, path: str | Path, jobs: list[dict] | None = None, summary: dict | None = None,
          segments: list[dict] | None = None, windows: list[dict] | None = None) -> None:
    """The trace, then its job records, segment records, per-window summary records and the summary."""
    triggered = {m.name for m in trace.scenario.models if m.upstream is not None or m.trigger_probability < 1.0}
    with open(path, "w") as f:
        f.write(json.dumps(header(trace.scenario, trace.duration_s, trace.seed)) + "\n")
        for fr in trace.frames:
            f.write(json.dumps(_frame_record(fr, fr.model in triggered)) + "\n")
        for j in jobs if jobs is not None else trace.jobs:
            f.write(json.dumps({"type": "job", **j}) + "\n")
        for sg in segments or ():
            f.write(json.dumps({"type": "segment", **sg}) + "\n")
        for w in windows or ():
            f.write(json.dumps({"type": "summary", **w}) + "\n")
        if summary is not None:
            f.write(json.dumps({"type": "summary", **summary}) + "\n")


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
    where = f"{p}: line {i}"
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
    known = {m.name for m in scenario.models}
    frames, jobs, segments, summaries = [], [], [], []
    seen = set()
    for i, rec in recs[1:]:
        where = f"{p}: line {i}"
        t = rec.get("type")
        if t == "frame":
            model = rec.get("model")
            if not isinstance(model, str) or model not in known:
                raise FileFormatError(f"{where}: field 'model': unknown model {model!r}")
            fid = rec.get("frame")
            if not isinstance(fid, int) or isinstance(fid, bool) or fid < 0:
                raise FileFormatError(f"{where}: field 'frame' must be an integer >= 0, got {fid!r}")
            if (model, fid) in seen:
                raise FileFormatError(f"{where}: frame {fid} of {model} appears twice")
            seen.add((model, fid))
            fired = rec.get("fired", True)
            if not isinstance(fired, bool):
                raise FileFormatError(f"{where}: field 'fired' must be true or false, got {fired!r}")
            rel = _num(rec, "release_ms", where)
            if not rel >= 0:
                raise FileFormatError(f"{where}: field 'release_ms' must be >= 0, got {rel!r}")
            frames.append(Frame(model, fid, rel, fired))
        elif t == "job":
            jobs.append(rec)
        elif t == "segment":
            if not isinstance(rec.get("model"), str) or not isinstance(rec.get("accelerator"), str):
                raise FileFormatError(f"{where}: a segment record needs 'model' and 'accelerator' strings")
            for key in ("start_ms", "end_ms"):
                _num(rec, key, where)
            segments.append(rec)
        elif t == "summary":
            summaries.append(rec)
        else:
            raise FileFormatError(f"{where}: field 'type': unknown record type {t!r} "
                                  f"(known: frame, job, segment, summary)")
    frames.sort(key=lambda x: (x.release_ms, x.model, x.frame))
    return Trace(scenario, duration, seed, frames, jobs, segments, summaries)
