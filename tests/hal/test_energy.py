"""hal.energy: every meter against fake sysfs trees and recorded command output (tests/data/hal)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from hal.energy import (
    CpuTimeMeter,
    JetsonInaMeter,
    Pi5PmicMeter,
    RaplMeter,
    best_meter,
    parse_pmic_read_adc,
)
from hal.errors import MeterUnavailable

MAX_UJ = 262143328850


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _copy(data_dir: Path, name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(data_dir / name, root)
    return root


def _write(path: Path, value: float | str) -> None:
    path.write_text(f"{value}\n")


# ------------------------------------------------------------------------------------------------ RAPL


def test_rapl_sums_packages_and_unwraps_the_counter(data_dir: Path, tmp_path: Path) -> None:
    root = _copy(data_dir, "rapl", tmp_path)
    zones = root / "sys/class/powercap"
    meter = RaplMeter(root)
    assert meter.source == "rapl:package-0+package-1"  # core sub-zone not counted twice
    assert meter.read_joules() == 0.0
    _write(zones / "intel-rapl:0/energy_uj", 262143000000)  # +1,000,000 µJ
    _write(zones / "intel-rapl:1/energy_uj", 7000000)  # +2,000,000 µJ
    _write(zones / "intel-rapl:0:0/energy_uj", 999999999)  # ignored
    assert meter.read_joules() == pytest.approx(3.0)
    _write(zones / "intel-rapl:0/energy_uj", 500000)  # wrapped past max_energy_range_uj
    expected_wrap_uj = 500000 + MAX_UJ - 262143000000
    assert meter.read_joules() == pytest.approx(3.0 + expected_wrap_uj / 1e6)


def test_rapl_absent_or_unreadable_is_meter_unavailable(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(MeterUnavailable, match="no RAPL"):
        RaplMeter(tmp_path)
    root = _copy(data_dir, "rapl", tmp_path)
    (root / "sys/class/powercap/intel-rapl:1/energy_uj").write_text("not a number")
    with pytest.raises(MeterUnavailable, match="intel-rapl:1/energy_uj"):
        RaplMeter(root)


# ---------------------------------------------------------------------------------------------- Jetson


def test_jetson_old_layout_uses_the_total_input_rail(data_dir: Path) -> None:
    clock = FakeClock()
    meter = JetsonInaMeter(data_dir / "jetson_old", clock)
    assert meter.source == "jetson-ina3221:VDD_IN"
    assert meter.read_watts() == pytest.approx(4.8)
    clock.now = 2.0
    assert meter.read_joules() == pytest.approx(9.6)


def test_jetson_new_layout_multiplies_millivolts_by_milliamps(data_dir: Path) -> None:
    clock = FakeClock()
    meter = JetsonInaMeter(data_dir / "jetson_new", clock)
    assert meter.rails == ["VDD_IN"]
    assert meter.read_watts() == pytest.approx(5.072 * 1.104)
    clock.now = 0.5
    assert meter.read_joules() == pytest.approx(5.072 * 1.104 * 0.5)


def test_jetson_chosen_rails_are_summed_and_shuntless_channels_skipped(data_dir: Path) -> None:
    meter = JetsonInaMeter(data_dir / "jetson_new", FakeClock(), rails=["VDD_CPU_GPU_CV", "VDD_SOC"])
    assert meter.read_watts() == pytest.approx(5.072 * (0.312 + 0.560))
    with pytest.raises(MeterUnavailable, match="sum of shunt voltages"):  # listed as not a rail: no current
        JetsonInaMeter(data_dir / "jetson_new", FakeClock(), rails=["sum of shunt voltages"])


def test_jetson_integrates_changing_power_by_trapezoid(data_dir: Path, tmp_path: Path) -> None:
    root = _copy(data_dir, "jetson_old", tmp_path)
    power = root / "sys/bus/i2c/drivers/ina3221x/7-0040/iio:device0/in_power0_input"
    clock = FakeClock()
    meter = JetsonInaMeter(root, clock)  # 4.8 W at t=0
    _write(power, 7200)
    clock.now = 1.0
    assert meter.read_joules() == pytest.approx(6.0)  # (4.8 + 7.2) / 2 × 1 s
    clock.now = 1.0  # no time passed: no energy, and never less
    assert meter.read_joules() == pytest.approx(6.0)


def test_jetson_absent_is_meter_unavailable(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="no INA3221"):
        JetsonInaMeter(tmp_path, FakeClock())


# ---------------------------------------------------------------------------------------------- Pi 5


def test_pi5_pmic_output_parses_to_sum_of_rail_power(data_dir: Path) -> None:
    text = (data_dir / "rpi5/pmic_read_adc.txt").read_text()
    watts = parse_pmic_read_adc(text)
    assert 2.0 < watts < 4.0  # an idle Pi 5 draws a few watts
    core = parse_pmic_read_adc("  VDD_CORE_A current(7)=2.10015000A\n  VDD_CORE_V volt(15)=0.80000000V\n")
    assert core == pytest.approx(2.10015 * 0.8)
    only_volts = "  EXT5V_V volt(24)=5.14740000V\n  VDD_CORE_V volt(15)=0.80000000V\n"
    with pytest.raises(MeterUnavailable, match="both current and voltage"):
        parse_pmic_read_adc(only_volts)


def test_pi5_meter_runs_the_command_and_integrates(data_dir: Path) -> None:
    text = (data_dir / "rpi5/pmic_read_adc.txt").read_text()
    calls: list[tuple[str, ...]] = []

    def run(argv):
        calls.append(tuple(argv))
        return text

    clock = FakeClock()
    meter = Pi5PmicMeter(run, clock)
    clock.now = 10.0
    assert meter.read_joules() == pytest.approx(parse_pmic_read_adc(text) * 10.0)
    assert calls[0] == ("vcgencmd", "pmic_read_adc") and meter.source == "rpi5-pmic"


# ------------------------------------------------------------------------------------------- fallback


def test_cpu_time_estimate_grows_with_work_and_is_monotonic() -> None:
    meter = CpuTimeMeter(watts_per_core=2.0)
    readings = [meter.read_joules()]
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        sum(i * i for i in range(1000))
    readings.append(meter.read_joules())
    readings.append(meter.read_joules())
    assert readings == sorted(readings)
    assert readings[-1] >= 2.0 * 0.04 - 1e-9  # ≥ 40 ms of CPU at 2 W per core (CPU time counts in 10-ms ticks)
    assert meter.source.startswith("estimate:")


def test_cpu_time_estimate_never_goes_back() -> None:
    seconds = iter([10.0, 11.0, 10.5, 12.0])  # e.g. a child's time lost when it is not reaped
    meter = CpuTimeMeter(watts_per_core=1.0, cpu_seconds=lambda: next(seconds))
    assert [meter.read_joules() for _ in range(3)] == [1.0, 1.0, 2.0]


# ----------------------------------------------------------------------------------------- best_meter


def test_best_meter_picks_what_the_tree_offers(data_dir: Path, tmp_path: Path) -> None:
    text = (data_dir / "rpi5/pmic_read_adc.txt").read_text()
    assert isinstance(best_meter(_copy(data_dir, "rapl", tmp_path)), RaplMeter)
    assert isinstance(best_meter(data_dir / "jetson_old", clock=FakeClock()), JetsonInaMeter)
    assert isinstance(best_meter(data_dir / "jetson_new", clock=FakeClock()), JetsonInaMeter)
    assert isinstance(best_meter(data_dir / "rpi5", run=lambda argv: text, clock=FakeClock()), Pi5PmicMeter)


def test_best_meter_falls_back_to_the_cpu_estimate_with_reasons(tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO", logger="hal.energy")
    skipped: list[tuple[str, str]] = []
    meter = best_meter(tmp_path, watts_per_core=3.0, skipped=skipped)
    assert isinstance(meter, CpuTimeMeter) and meter.watts_per_core == 3.0
    assert [name for name, _ in skipped] == ["rapl", "jetson-ina3221", "rpi5-pmic"]
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 3


def test_best_meter_skips_a_pi5_whose_vcgencmd_fails(data_dir: Path) -> None:
    def run(argv):
        raise MeterUnavailable("vcgencmd pmic_read_adc: not found")

    skipped: list[tuple[str, str]] = []
    assert isinstance(best_meter(data_dir / "rpi5", run=run, skipped=skipped), CpuTimeMeter)
    assert skipped[-1] == ("rpi5-pmic", "vcgencmd pmic_read_adc: not found")
