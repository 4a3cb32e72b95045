"""One ``run(inputs) -> RunResult`` for every kind of device: the same fields, filled the same way, energy always.

Real parts only: the shipped digits model (models/digits), real interpreters on the host CPU, a real external
delegate library built from tests/data/hal/fake_delegate.c, and the emulated accelerator on an injected clock.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hal import devices
from hal.devices import DelegateDevice, Device, open_device, register_kind
from hal.emulated import CostTable, EmulatedDevice, FaultSpec
from hal.energy import CpuTimeMeter, MeteredEnergy, ProfiledPower
from hal.errors import BadDeviceSpec, BadInput, DeviceUnavailable, InvokeError
from hal.host import HostInterpreters, HostSlots, SharedLoaded
from hal.loaded import RunResult

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "edge_sdrm3" / "data" / "models" / "digits" / "digits_w100.tflite"
DIGITS_W25 = ROOT / "edge_sdrm3" / "data" / "models" / "digits" / "digits_w25.tflite"
X = np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32)
POWER_MW = 750.0  # what the profile says the digits model draws on the real devices here
COST = CostTable({"digits_w100": (0.5, 0.2), "digits_w25": (0.1, 0.05), "digits/w100/0": (0.5, 0.2)})


class FakeClock:
    """Moves only when slept on: emulated pacing is exact and instant."""

    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _open_kind(kind: str, fake_delegate: Path, pool: HostInterpreters, clock: FakeClock) -> Device:
    power = ProfiledPower({"digits_w100": POWER_MW, "digits_w25": POWER_MW, "digits/w100/0": POWER_MW})
    if kind == "cpu":
        return open_device("cpu:1", energy=power)
    if kind == "cpu+pool":
        return open_device("cpu:1", energy=power, shared=pool)
    if kind == "delegate":
        return DelegateDevice("gpu", "gpu", str(fake_delegate), {"mode": "take-nothing"}, 1, power)
    shared = pool if kind == "emulated+pool" else None
    return open_device("emulated:npu0", cost=COST, compute="always", clock=clock, sleep=clock.sleep, shared=shared)


KINDS = ["cpu", "cpu+pool", "delegate", "emulated", "emulated+pool"]


@pytest.fixture()
def opened(request: pytest.FixtureRequest, fake_delegate: Path) -> Iterator[tuple[str, Device, FakeClock]]:
    clock = FakeClock()
    device = _open_kind(request.param, fake_delegate, HostInterpreters(1), clock)
    try:
        yield request.param, device, clock
    finally:
        device.close()


def _reference() -> list[np.ndarray]:
    with open_device("cpu:1") as cpu:
        return cpu.load(DIGITS).invoke([X])


def _assert_shape(result: RunResult, device: Device, key: str) -> None:
    """Every field filled, with the type every caller relies on, whatever the kind."""
    assert isinstance(result.latency_ms, float) and result.latency_ms > 0
    assert isinstance(result.wall_ms, float) and result.wall_ms > 0
    assert isinstance(result.energy_mj, float) and result.energy_mj > 0
    assert result.energy_source and result.energy_source == device.energy_source
    assert result.timing in ("measured", "emulated")
    assert result.extra["device"] == device.spec and result.extra["key"] == key


@pytest.mark.parametrize("opened", KINDS, indirect=True)
def test_every_kind_runs_the_digits_model_to_the_same_answer_and_record(opened) -> None:
    kind, device, _ = opened
    model = device.load(DIGITS)
    result = model.run([X])
    _assert_shape(result, device, "digits_w100")
    if kind == "cpu+pool":  # the cpu device computes on the pool's interpreter
        assert isinstance(model, SharedLoaded)
    assert result.computed and result.host_ms is not None and result.host_ms > 0
    assert [o.shape for o in result.outputs] == [s.shape for s in model.outputs] == [(1, 10)]
    np.testing.assert_allclose(result.outputs[0], _reference()[0], rtol=1e-5)
    if kind.startswith("emulated"):
        assert result.timing == "emulated" and result.latency_ms == 0.5 and result.energy_mj == 0.2
        assert result.energy_source == "model:emulated"
    else:  # measured, and charged measured latency x profiled power
        assert result.timing == "measured" and result.host_ms == result.latency_ms == result.wall_ms
        assert result.energy_mj == pytest.approx(result.latency_ms * POWER_MW / 1000.0, rel=1e-12)
        assert result.energy_source == "estimate:profiled-power*measured-time"


@pytest.mark.parametrize("opened", KINDS, indirect=True)
def test_run_without_inputs_is_timed_and_charged_on_every_kind_with_no_outputs(opened) -> None:
    kind, device, clock = opened
    model = device.load(DIGITS, key="digits/w100/0")
    before = clock.now
    result = model.run(None)
    assert not result.computed and result.outputs is None
    _assert_shape(result, device, "digits/w100/0")
    if kind.startswith("emulated"):  # timed from the cost model, nothing computed on the host
        assert result.host_ms is None and result.timing == "emulated"
        assert clock.now - before == pytest.approx(0.0005, abs=1e-12)
    else:  # the device really ran, on zeros: its time and energy are real
        assert result.host_ms == result.latency_ms
        assert result.energy_mj == pytest.approx(result.latency_ms * POWER_MW / 1000.0, rel=1e-12)
    assert model.run([X]).computed  # the model is still usable with inputs


def test_emulated_and_real_cpu_give_the_same_result_shape(fake_delegate: Path) -> None:
    clock = FakeClock()
    with open_device("cpu:1", energy=ProfiledPower({"digits_w100": POWER_MW})) as cpu, \
            _open_kind("emulated", fake_delegate, HostInterpreters(1), clock) as npu:
        real, emulated = cpu.load(DIGITS).run([X]), npu.load(DIGITS).run([X])
    assert type(real) is type(emulated) is RunResult
    for name in RunResult.__dataclass_fields__:
        if name == "extra":
            assert {"device", "key"} <= set(real.extra) & set(emulated.extra)
            continue
        got_real, got_emulated = getattr(real, name), getattr(emulated, name)
        assert type(got_real) is type(got_emulated), name  # never None on one side and a number on the other
    assert real.outputs is not None and emulated.outputs is not None
    np.testing.assert_allclose(real.outputs[0], emulated.outputs[0], rtol=1e-6)


def test_a_real_device_opened_plainly_is_charged_by_a_meter() -> None:
    with open_device("cpu:1") as cpu:
        model = cpu.load(DIGITS)
        results = [model.run([X]) for _ in range(50)]
    source = results[0].energy_source
    assert source == cpu.energy_source and source.startswith(("rapl:", "jetson-ina3221:", "rpi5-pmic", "estimate:"))
    assert all(isinstance(r.energy_mj, float) and r.energy_mj >= 0 for r in results)
    assert sum(r.energy_mj for r in results) > 0  # fifty invokes use some CPU time or package energy


def test_a_given_meter_charges_its_delta_across_the_invoke() -> None:
    meter = CpuTimeMeter(2.0, time.process_time)
    with open_device("cpu:1", energy=MeteredEnergy(meter)) as cpu:
        model = cpu.load(DIGITS)
        before = meter.read_joules()
        charged = sum(model.run([X]).energy_mj for _ in range(50))
        spent = (meter.read_joules() - before) * 1000.0
    assert cpu.energy_source == "estimate:cpu-time*2W/core"
    assert 0 < charged <= spent  # each run's delta, inside what the meter saw over all of them


def test_profiled_power_charges_nothing_for_a_model_it_was_not_told_of() -> None:
    with open_device("cpu:1", energy=ProfiledPower({"other": 1000.0})) as cpu:
        result = cpu.load(DIGITS).run([X])
    assert result.energy_mj == 0.0 and result.latency_ms > 0


def test_run_checks_inputs_the_same_way_on_every_kind(fake_delegate: Path) -> None:
    pool = HostInterpreters(1)
    for kind in KINDS:
        with _open_kind(kind, fake_delegate, pool, FakeClock()) as device:
            model = device.load(DIGITS)
            with pytest.raises(BadInput, match=r"expected shape \[1, 8, 8, 1\], got \[1, 8, 8\]"):
                model.run([X[..., 0]])
            model.close()
            with pytest.raises(InvokeError, match="closed"):
                model.run([X])
            with pytest.raises(InvokeError, match="closed"):
                model.run(None)


# ----------------------------------------------------------------------------------------------- probe


class KeysCharged:
    """An energy model that charges nothing and remembers which models it was asked to charge."""

    source = "test:keys"

    def __init__(self) -> None:
        self.keys: list[str] = []

    def begin(self) -> float:
        return 0.0

    def charge(self, begun: float, key: str, latency_ms: float) -> float:
        self.keys.append(key)
        return 0.0


def test_probe_runs_the_first_open_model_of_a_real_device_and_nothing_when_none_is_loaded() -> None:
    charged = KeysCharged()
    with open_device("cpu:1", energy=charged) as cpu:
        cpu.probe()  # nothing loaded: nothing to prove
        assert charged.keys == []
        first = cpu.load(DIGITS)
        cpu.load(DIGITS_W25)
        cpu.probe()
        assert charged.keys == ["digits_w100"]
        first.close()
        cpu.probe()  # a closed model is not probed
        assert charged.keys == ["digits_w100", "digits_w25"]


def test_probe_of_an_emulated_device_runs_its_cheapest_model_timing_only() -> None:
    clock = FakeClock()
    with open_device("emulated:npu0", cost=COST, clock=clock, sleep=clock.sleep) as npu:
        npu.load(DIGITS)
        npu.load(DIGITS_W25)
        npu.probe()
        assert clock.now - 10.0 == pytest.approx(0.0001, abs=1e-12)  # digits_w25's 0.1 ms, not digits_w100's 0.5


@pytest.mark.parametrize(
    "fault, error",
    [({"fail_rate": 1.0}, InvokeError), ({"vanish_after_s": 0.0}, DeviceUnavailable)],
)
def test_probe_of_a_faulty_emulated_device_raises_its_fault(fault: dict, error: type) -> None:
    clock = FakeClock()
    with open_device("emulated:npu0", cost=COST, clock=clock, sleep=clock.sleep,
                     fault=FaultSpec.from_dict(fault)) as npu:
        npu.load(DIGITS)
        with pytest.raises(error, match="injected fault"):
            npu.probe()


# --------------------------------------------------------------------------------------------- the table


def test_an_option_a_kind_does_not_take_is_a_bad_device_spec_naming_it() -> None:
    with pytest.raises(BadDeviceSpec, match="'cpu'.*cost"):
        open_device("cpu", cost=COST)
    with pytest.raises(BadDeviceSpec, match="'emulated:npu0'.*energy"):
        open_device("emulated:npu0", cost=COST, energy=ProfiledPower({}))


def test_a_kind_registered_in_the_table_is_what_its_device_string_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    # an emulated NPU standing in for 'npu': callers of open_device('npu') and of run() cannot tell
    monkeypatch.setitem(devices._OPENERS, "npu", devices._OPENERS["npu"])  # the real opener is back after the test
    register_kind("npu", lambda spec, arg, **opts: EmulatedDevice("npu", COST, compute="always", host=HostSlots(1)))
    with open_device("npu") as npu:
        result = npu.load(DIGITS).run([X])
    assert npu.spec == "emulated:npu" and result.computed and result.latency_ms == 0.5


def test_devices_does_not_import_the_emulated_kind_back() -> None:
    tree = ast.parse((ROOT / "hal" / "devices.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "hal.emulated" not in imported and "emulated" not in imported
    assert "emulated" in devices._OPENERS  # it registered itself when hal was imported
