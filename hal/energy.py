"""Energy meters: one interface, ``read_joules()`` (monotonic, cumulative since the meter was made) and
``source`` (what it measures), over whatever the board offers.

Sources, in the order :func:`best_meter` tries them:

* **RAPL** (x86): ``/sys/class/powercap/intel-rapl:N/energy_uj`` of each package zone (sub-zones such
  as ``intel-rapl:0:0`` are inside their package and not added again), with wrap-around at
  ``max_energy_range_uj``. Reading needs root on kernels patched for CVE-2020-8694.
* **Jetson INA3221** power rails: the older JetPack layout
  ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/in_power{N}_input`` (mW, names in ``rail_name_N``) and
  the newer hwmon one ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in{N}_input`` (mV),
  ``curr{N}_input`` (mA), ``in{N}_label``. When a total-input rail exists (VDD_IN, POM_5V_IN) it alone
  is used, since the others are parts of it; otherwise the rails are summed.
* **Raspberry Pi 5 PMIC**: ``vcgencmd pmic_read_adc``; power = Σ V·I over rails with both a current
  (``NAME_A current(n)=xA``) and a voltage (``NAME_V volt(n)=yV``) line.
* **CPU-time estimate**: process CPU seconds (psutil, children included) × watts per busy core from
  the platform file. A model, not a measurement; its ``source`` says so.

Power sources (Jetson, Pi) are integrated over time with the trapezoid rule between reads, on an
injectable clock: read them often (the service's housekeeping tick samples every meter), since power
between two reads is assumed to change linearly.

**Per-job energy when several accelerators run at once.** A meter measures a *domain* (a package, a
board rail), not a job. For each meter, the executor takes the meter's delta over an interval and
splits it among the jobs that were busy on that meter's domain during the interval, in proportion to
each job's busy time inside the interval (a job running for the whole interval on one of two busy
cores gets half). Idle power of the domain (the delta when nothing ran) is reported as idle energy
of the platform, not charged to jobs. Emulated accelerators are never metered: they report the
modelled energy of their cost model (hal.emulated), and their host-CPU work is excluded from
attribution so that it is not counted twice. Which domains a device belongs to is platform data.

**Energy of one invocation** (``RunResult.energy_mj``, filled by hal for every device): a real device charges
each run through an :class:`InvokeEnergy` given at open — :class:`ProfiledPower` (measured latency × the power
its profile implies for that model, what the live service uses: a meter's delta is not attributable to one job
when several accelerators share a package) or :class:`MeteredEnergy` (a meter's delta across the invoke, exact
only when the device runs alone; the default). Emulated devices charge their cost model's energy (hal.emulated).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from hal.errors import MeterUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Runner = Callable[[Sequence[str]], str]


class EnergyMeter(Protocol):
    """Cumulative energy in joules since the meter was created; never decreases."""

    source: str

    def read_joules(self) -> float: ...


def _under(root: str | os.PathLike[str], path: str) -> Path:
    return Path(root) / path.lstrip("/")


def _read_number(path: Path) -> float:
    try:
        return float(path.read_text().strip())
    except PermissionError as exc:
        raise MeterUnavailable(f"{path}: permission denied (needs root?)") from exc
    except (OSError, ValueError) as exc:
        raise MeterUnavailable(f"{path}: unreadable: {exc}") from exc


# ---------------------------------------------------------------------------------------------- RAPL


class RaplMeter:
    """Sum of the RAPL package counters, unwrapped; energy since creation."""

    def __init__(self, root: str | os.PathLike[str] = "/"):
        base = _under(root, "/sys/class/powercap")
        zones = sorted(p for p in base.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
        zones = [z for z in zones if (z / "energy_uj").exists()]
        if not zones:
            raise MeterUnavailable(f"no RAPL package zones under {base}")
        self._zones = zones
        self._ranges = [
            _read_number(z / "max_energy_range_uj") if (z / "max_energy_range_uj").exists() else 2.0**32 for z in zones
        ]
        self._last = [_read_number(z / "energy_uj") for z in zones]
        self._total_uj = 0.0
        names = [(z / "name").read_text().strip() if (z / "name").exists() else z.name for z in zones]
        self.source = "rapl:" + "+".join(names)

    def read_joules(self) -> float:
        for i, zone in enumerate(self._zones):
            now = _read_number(zone / "energy_uj")
            delta = now - self._last[i]
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                delta += self._ranges[i]
            self._total_uj += delta
            self._last[i] = now
        return self._total_uj / 1e6


# ------------------------------------------------------------------------------- integrated power


class PowerIntegrator:
    """Turns a power reading (watts) into cumulative joules by the trapezoid rule on ``clock``."""

    source = "power"

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self._joules = 0.0
        self._t = clock()
        self._p = self.read_watts()

    def read_watts(self) -> float:
        raise NotImplementedError

    def read_joules(self) -> float:
        t, p = self._clock(), self.read_watts()
        if t > self._t:
            self._joules += (p + self._p) / 2.0 * (t - self._t)
        self._t, self._p = max(t, self._t), p
        return self._joules


class JetsonInaMeter(PowerIntegrator):
    """Jetson INA3221 rails, old (ina3221x iio, mW) or new (ina3221 hwmon, mV × mA) layout."""

    TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")

    def __init__(
        self, root: str | os.PathLike[str] = "/", clock: Clock = time.monotonic, rails: Sequence[str] | None = None
    ):
        self._channels = self._find_channels(Path(root))
        if not self._channels:
            raise MeterUnavailable(f"no INA3221 rails under {_under(root, '/sys/bus/i2c/drivers')}/ina3221*")
        names = [name for name, *_ in self._channels]
        if rails is None:
            totals = [n for n in names if n in self.TOTAL_RAILS]
            rails = totals[:1] or names
        missing = [r for r in rails if r not in names]
        if missing:
            raise MeterUnavailable(f"INA3221 rails {missing} not found; have {names}")
        self._channels = [c for c in self._channels if c[0] in rails]
        self.rails = [c[0] for c in self._channels]
        self.source = f"jetson-ina3221:{'+'.join(self.rails)}"
        super().__init__(clock)

    @staticmethod
    def _find_channels(root: Path) -> list[tuple[str, str, Path, Path | None]]:
        """(rail name, layout, power-or-voltage file, current file or None)."""
        channels: list[tuple[str, str, Path, Path | None]] = []
        old = sorted(glob.glob(str(_under(root, "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"))))
        for dev in map(Path, old):
            for power in sorted(dev.glob("in_power*_input")):
                n = power.name.removeprefix("in_power").removesuffix("_input")
                label = dev / f"rail_name_{n}"
                name = label.read_text().strip() if label.exists() else f"{dev.parent.name}/power{n}"
                channels.append((name, "iio", power, None))
        new = sorted(glob.glob(str(_under(root, "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"))))
        for dev in map(Path, new):
            for volt in sorted(dev.glob("in*_input")):
                n = volt.name.removeprefix("in").removesuffix("_input")
                curr = dev / f"curr{n}_input"
                if not curr.exists():  # e.g. 'sum of shunt voltages' channels, or bus inputs without a shunt
                    continue
                label = dev / f"in{n}_label"
                name = label.read_text().strip() if label.exists() else f"{dev.name}/in{n}"
                channels.append((name, "hwmon", volt, curr))
        return channels

    def read_watts(self) -> float:
        watts = 0.0
        for _, layout, first, curr in self._channels:
            if layout == "iio":
                watts += _read_number(first) / 1e3  # mW
            else:
                assert curr is not None
                watts += _read_number(first) / 1e3 * _read_number(curr) / 1e3  # mV × mA
        return watts


_PMIC_LINE = re.compile(r"^\s*(?P<rail>\S+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-\d.eE+]+)[AV]\s*$")


def parse_pmic_read_adc(text: str) -> float:
    """Board power in watts from `vcgencmd pmic_read_adc` output: Σ V·I over rails with both readings."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if m:
            (amps if m["kind"] == "A" else volts)[m["rail"]] = float(m["value"])
    rails = amps.keys() & volts.keys()
    if not rails:
        raise MeterUnavailable("pmic_read_adc output has no rail with both current and voltage")
    return sum(amps[r] * volts[r] for r in rails)


def run_command(argv: Sequence[str]) -> str:
    """Default command runner: stdout of argv, MeterUnavailable if it cannot run or fails."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise MeterUnavailable(f"{' '.join(argv)}: {exc}") from exc


class Pi5PmicMeter(PowerIntegrator):
    """Raspberry Pi 5 PMIC rails read with `vcgencmd pmic_read_adc` (runner injectable)."""

    COMMAND = ("vcgencmd", "pmic_read_adc")

    def __init__(self, run: Runner = run_command, clock: Clock = time.monotonic):
        self._run = run
        self.source = "rpi5-pmic"
        super().__init__(clock)

    def read_watts(self) -> float:
        return parse_pmic_read_adc(self._run(self.COMMAND))


# ----------------------------------------------------------------------------------------- fallback


class CpuTimeMeter:
    """Estimate: CPU seconds of this process (and its children) × watts per busy core."""

    def __init__(self, watts_per_core: float, cpu_seconds: Callable[[], float] | None = None):
        if watts_per_core < 0:
            raise ValueError(f"watts_per_core must be >= 0, got {watts_per_core}")
        self.watts_per_core = watts_per_core
        self._cpu_seconds = cpu_seconds or _process_cpu_seconds()
        self._start = self._cpu_seconds()
        self._last = 0.0
        self.source = f"estimate:cpu-time*{watts_per_core:g}W/core"

    def read_joules(self) -> float:
        self._last = max(self._last, (self._cpu_seconds() - self._start) * self.watts_per_core)
        return self._last


def _process_cpu_seconds() -> Callable[[], float]:
    import psutil

    proc = psutil.Process()

    def seconds() -> float:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    return seconds


# --------------------------------------------------------------------------------------------- choose


def _is_pi5(root: str | os.PathLike[str]) -> bool:
    model = _under(root, "/proc/device-tree/model")
    try:
        return "Raspberry Pi 5" in model.read_bytes().decode("utf-8", "replace")
    except OSError:
        return False


def best_meter(
    root: str | os.PathLike[str] = "/",
    *,
    watts_per_core: float = 1.0,
    clock: Clock = time.monotonic,
    run: Runner = run_command,
    skipped: list[tuple[str, str]] | None = None,
    cpu_seconds: Callable[[], float] | None = None,
) -> EnergyMeter:
    """The first meter that works here: RAPL, Jetson INA3221, Pi 5 PMIC, else the CPU-time estimate.

    Each unavailable source gets one log line; pass ``skipped`` to collect (source, reason) pairs.
    ``cpu_seconds``: the CPU clock of the estimate (default: this process and its children, through psutil).
    """
    attempts: list[tuple[str, Callable[[], EnergyMeter]]] = [
        ("rapl", lambda: RaplMeter(root)),
        ("jetson-ina3221", lambda: JetsonInaMeter(root, clock)),
    ]
    if _is_pi5(root):
        attempts.append(("rpi5-pmic", lambda: Pi5PmicMeter(run, clock)))
    else:
        attempts.append(("rpi5-pmic", lambda: _not_pi5(root)))
    for name, make in attempts:
        try:
            return make()
        except MeterUnavailable as exc:
            log.info("energy meter %s skipped: %s", name, exc)
            if skipped is not None:
                skipped.append((name, str(exc)))
    return CpuTimeMeter(watts_per_core, cpu_seconds)


def _not_pi5(root: str | os.PathLike[str]) -> EnergyMeter:
    raise MeterUnavailable(f"not a Raspberry Pi 5 ({_under(root, '/proc/device-tree/model')})")


# ------------------------------------------------------------------------------------ one invocation


class InvokeEnergy(Protocol):
    """How a real device charges energy to one invocation: ``begin()`` just before it, ``charge()`` just after."""

    @property
    def source(self) -> str: ...

    def begin(self) -> float: ...

    def charge(self, begun: float, key: str, latency_ms: float) -> float: ...


class ProfiledPower:
    """Estimate: measured latency × the profiled power of that model here (profiled energy / profiled latency).

    ``power_mw`` maps a model key (what ``Device.load(path, key=...)`` named it) to milliwatts; a key it does not
    know is charged nothing (a model never profiled on this device).
    """

    source = "estimate:profiled-power*measured-time"

    def __init__(self, power_mw: Mapping[str, float]):
        self.power_mw = dict(power_mw)

    def begin(self) -> float:
        return 0.0

    def charge(self, begun: float, key: str, latency_ms: float) -> float:
        return latency_ms * self.power_mw.get(key, 0.0) / 1000.0


class MeteredEnergy:
    """The meter's delta across the invoke, in mJ (the whole domain's energy: exact when the device runs alone).

    Without a meter, :func:`best_meter` chooses one on first use, with the CPU-time estimate on this process's CPU
    clock (nanoseconds, where psutil's is in clock ticks) as its fallback. Reads are serialised: one meter may
    serve the models of a device used from several threads.
    """

    def __init__(self, meter: EnergyMeter | None = None, *, watts_per_core: float = 1.0):
        self._meter = meter
        self._watts_per_core = watts_per_core
        self._lock = threading.Lock()

    @property
    def meter(self) -> EnergyMeter:
        with self._lock:
            if self._meter is None:
                self._meter = best_meter(
                    watts_per_core=self._watts_per_core, cpu_seconds=time.process_time
                )
            return self._meter

    @property
    def source(self) -> str:
        return self.meter.source

    def begin(self) -> float:
        meter = self.meter
        with self._lock:
            return meter.read_joules()

    def charge(self, begun: float, key: str, latency_ms: float) -> float:
        meter = self.meter
        with self._lock:
            return max(0.0, meter.read_joules() - begun) * 1000.0
