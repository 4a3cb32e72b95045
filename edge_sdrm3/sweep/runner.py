"""Running a sweep's cells: the cell runner, two executors (local processes, Ray) and the resumable output.

``run_cell`` is the unit every executor runs: one native replay (``sim.replay.replay``) of the trace the
cell's scenario and seed generate, returning the keys of ``replay --json`` plus ``params`` and ``cell``
(the cell's key). It is a plain function of the cell, so any tool that runs grids (a benchmark, the
parameter search) can hand cells to ``execute`` and get the same records back whichever executor runs them.

Replays are deterministic, so the same grid gives the same records on either executor and in any order;
records carry no wall-clock figure for that reason.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from ..catalog import FileFormatError, Scenario
from ..core.types import ConfigError
from .grid import RANDOM_PREFIX, Cell

TRACE_CACHE = 8  # generated traces kept per process (cells of one trace run one after another)
_traces: OrderedDict = OrderedDict()
_platforms: dict = {}


def random_scenario(seed: int) -> Scenario:
    """The random mix of seed ``seed`` over the XRBench cost table (``edge-sdrm3 scenarios random --seed N``)."""
    from ..catalog import load_cost_table
    from ..random_scenarios import random_scenario as make

    return make(seed, load_cost_table("xrbench"), "xrbench")


def scenario_of(source: str) -> Scenario:
    from ..catalog import load_scenario

    if source.startswith(RANDOM_PREFIX):
        return random_scenario(int(source[len(RANDOM_PREFIX):]))
    return load_scenario(source)


def trace_of(source: str, duration_s: float, seed: int):
    from ..sim.trace import generate

    key = (source, duration_s, seed)
    tr = _traces.get(key)
    if tr is None:
        tr = _traces[key] = generate(scenario_of(source), duration_s, seed)
        if len(_traces) > TRACE_CACHE:
            _traces.popitem(last=False)
    else:
        _traces.move_to_end(key)
    return tr


def run_cell(cell: Cell) -> dict:
    """One cell's record; a cell that fails gives ``{"cell": ..., "error": "..."}`` and the sweep goes on."""
    from ..catalog import load_platform
    from ..sim.replay import replay

    try:
        tr = trace_of(cell.scenario, cell.duration_s, cell.seed)
        spec = _platforms.get(cell.platform)
        if spec is None:
            spec = _platforms[cell.platform] = load_platform(cell.platform)
        res, _ = replay(tr, spec, cell.policy, policy_config=dict(cell.params) or None)
    except Exception as e:  # recorded in the output; the other cells still run
        return {"cell": cell.to_dict(), "error": f"{type(e).__name__}: {e}"}
    res["params"] = dict(cell.params)
    res["cell"] = cell.to_dict()
    return res


def run_batch(cells: list[Cell]) -> list[dict]:
    return [run_cell(c) for c in cells]


def batches(cells: list[Cell], workers: int) -> list[list[Cell]]:
    """Cells cut into tasks: consecutive cells of one trace share a task (its trace is made once), and there
    are enough tasks (about 8 per worker) to keep every worker busy to the end."""
    size = max(1, min(16, math.ceil(len(cells) / (8 * max(1, workers)))))
    out: list[list[Cell]] = []
    for c in cells:
        last = out[-1] if out else None
        if last and len(last) < size and (last[0].scenario, last[0].seed, last[0].duration_s) == \
                (c.scenario, c.seed, c.duration_s):
            last.append(c)
        else:
            out.append([c])
    return out


# --- executors ------------------------------------------------------------------------------------------------

class LocalExecutor:
    """Worker processes on this machine (no set-up); ``workers=1`` runs in this process."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    def map(self, tasks: list[list[Cell]], fn: Callable[[list[Cell]], list[dict]] = run_batch
            ) -> Iterator[list[dict]]:
        """``fn`` of every task, in completion order (``fn``: ``run_batch``, or a tool's own around ``run_cell``)."""
        if self.workers == 1 or len(tasks) <= 1:
            for t in tasks:
                yield fn(t)
            return
        import multiprocessing

        with multiprocessing.Pool(min(self.workers, len(tasks))) as pool:
            yield from pool.imap_unordered(fn, tasks)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.workers} local worker(s)"


class RayExecutor:
    """Tasks on a Ray cluster: ``address`` "auto" joins the cluster of this machine (``ray start --head``)
    or, when there is none, starts a local Ray instance with ``num_cpus`` CPUs (default: all); any other
    address (``HOST:PORT``, ``ray://HOST:10001``) joins that cluster. Every node needs edge-sdrm3 installed."""

    def __init__(self, address: str = "auto", num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray needs Ray: pip install 'edge-sdrm3[cluster]'") from None
        import logging

        self.ray = ray
        self.started = False
        opts = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if not ray.is_initialized():
            if address == "auto":
                try:
                    ray.init(address="auto", **opts)
                except ConnectionError:  # no cluster here: a local instance, ended with the sweep
                    ray.init(num_cpus=num_cpus, **opts)
            else:
                try:
                    ray.init(address=address, **opts)
                except (ConnectionError, ValueError) as e:
                    raise ConfigError(f"--ray {address}: cannot join the cluster ({e})") from None
            self.started = True
        self.cpus = int(ray.cluster_resources().get("CPU", 1))
        self._remote = {run_batch: ray.remote(run_batch)}

    def map(self, tasks: list[list[Cell]], fn: Callable[[list[Cell]], list[dict]] = run_batch
            ) -> Iterator[list[dict]]:
        ray = self.ray
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(fn)
        pending = [remote.remote(t) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()

    def describe(self) -> str:
        return f"Ray, {self.cpus} CPU(s)"


def make_executor(workers: int | None = None, ray: str | None = None):
    return RayExecutor(ray, workers) if ray else LocalExecutor(workers)


def execute(cells: list[Cell], executor, on_record: Callable[[dict], None] | None = None,
            fn: Callable[[list[Cell]], list[dict]] = run_batch) -> list[dict]:
    """Runs ``cells`` on ``executor``; returns their records (in completion order) and calls ``on_record``
    with each as it arrives. ``fn`` runs a batch of cells (default ``run_batch``: ``run_cell`` of each)."""
    n = getattr(executor, "cpus", None) or getattr(executor, "workers", 1)
    out = []
    for recs in executor.map(batches(cells, n), fn):
        for r in recs:
            out.append(r)
            if on_record is not None:
                on_record(r)
    return out


# --- the output file ------------------------------------------------------------------------------------------

def read_records(path: str | Path) -> list[dict]:
    """The records of a sweep's output, one JSON object per line. A last line without its newline (the
    sweep was killed while writing it) is not a record and is left out."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise FileFormatError(f"{p}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines[:-1], 1):  # lines[-1]: after the last newline, empty or torn
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise FileFormatError(f"{p}: line {i}: not valid JSON ({e})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("cell"), dict):
            raise FileFormatError(f"{p}: line {i}: expected a sweep record (a JSON object with 'cell')")
        out.append(rec)
    return out


def cell_key(rec: dict, where: str = "") -> str:
    try:
        return Cell.from_dict(rec["cell"]).key()
    except (KeyError, TypeError, ValueError, AttributeError):
        raise FileFormatError(f"{where}: a record whose 'cell' lacks scenario, platform, policy, seed, "
                              f"duration_s or params: {rec.get('cell')!r}") from None


def cut_torn_tail(path: str | Path) -> None:
    """Removes a last line without its newline, so that appended records start on a line of their own."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)


class Progress:
    """``sweep: 120/462 cells (40 already done), 3.1 cells/s, 1m50s left`` on a terminal's stderr."""

    def __init__(self, total: int, skipped: int, show: bool, label: str = "sweep") -> None:
        self.total, self.skipped, self.show, self.label = total, skipped, show, label
        self.done = 0
        self.errors = 0
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, rec: dict) -> None:
        self.done += 1
        self.errors += "error" in rec
        now = time.monotonic()
        if self.show and (now - self.last >= 0.25 or self.done == self.total - self.skipped):
            self.last = now
            rate = self.done / max(1e-9, now - self.t0)
            left = (self.total - self.skipped - self.done) / rate if rate > 0 else 0.0
            err = f", {self.errors} failed" if self.errors else ""
            sys.stderr.write(f"\r\033[K{self.label}: {self.skipped + self.done}/{self.total} cells"
                             f"{f' ({self.skipped} already done)' if self.skipped else ''}{err}, "
                             f"{rate:.1f} cells/s, {_hms(left)} left")
            sys.stderr.flush()

    def end(self) -> None:
        if self.show:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _hms(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def run_sweep(cells: list[Cell], output: str | None, executor, show_progress: bool = False,
              out_stream=None) -> tuple[list[dict], int]:
    """Runs the cells of ``cells`` that ``output`` has no result for, appending a record per cell as it
    completes (``output`` None: to ``out_stream``). Returns (every record of the grid, cells skipped)."""
    have: dict[str, dict] = {}
    if output:
        for r in read_records(output):
            if "error" not in r:
                have[cell_key(r, output)] = r
        cut_torn_tail(output)
    wanted = {c.key() for c in cells}
    todo = [c for c in cells if c.key() not in have]
    skipped = len(cells) - len(todo)
    prog = Progress(len(cells), skipped, show_progress)
    f = open(output, "a") if output else out_stream or sys.stdout
    try:
        def write(rec: dict) -> None:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            prog(rec)

        new = execute(todo, executor, write) if todo else []
    finally:
        prog.end()
        if output:
            f.close()
    return [r for k, r in have.items() if k in wanted] + new, skipped
