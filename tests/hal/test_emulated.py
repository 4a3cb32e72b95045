"""hal.emulated: real outputs from the host CPU, modelled latency and energy, paced on an injected clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hal.devices import open_device
from hal.emulated import Cost, CostTable, EmulatedDevice, HostSlots, RelativeCost
from hal.errors import BadDeviceSpec, BadInput, HalError


class FakeClock:
    """A clock that only moves when slept on: pacing is then exact and instant."""

    def __init__(self, start: float = 100.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


X = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)


def _open(clock: FakeClock, cost, **kw) -> EmulatedDevice:
    device = open_device("emulated:npu0", cost=cost, clock=clock, sleep=clock.sleep, **kw)
    assert isinstance(device, EmulatedDevice)
    return device


def test_completes_at_exactly_the_modelled_time_with_real_outputs(fc_model: Path, fc_reference) -> None:
    clock = FakeClock()
    with _open(clock, CostTable({"fc": (12.5, 3.0)}), compute="always") as npu:
        model = npu.load(fc_model)
        result = model.run([X])
    assert result.timing == "emulated" and result.computed
    np.testing.assert_allclose(result.outputs[0], fc_reference(X), rtol=1e-6)
    assert result.latency_ms == 12.5 and result.energy_mj == 3.0
    assert result.extra["start_s"] == 100.0
    assert result.extra["end_s"] == pytest.approx(100.0 + 0.0125, abs=1e-12)
    assert clock.now == result.extra["end_s"]
    assert result.wall_ms == pytest.approx(12.5, abs=1e-9) and result.extra["overrun_ms"] == pytest.approx(0, abs=1e-9)
    assert result.host_ms is not None and result.host_ms > 0  # the real host time, reported beside


def test_back_to_back_runs_follow_the_model(add_model: Path) -> None:
    clock = FakeClock(0.0)
    x = np.ones((1, 4), np.float32)
    with _open(clock, CostTable({"add": Cost(2.0, 0.5)}), compute="never") as npu:
        model = npu.load(add_model)
        ends = [model.run([x, x]).extra["end_s"] for _ in range(5)]
    assert ends == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.010], abs=1e-12)


def test_never_computes_only_the_timing(fc_model: Path) -> None:
    clock = FakeClock()
    with _open(clock, CostTable({"fc": (4.0, 1.0)}), compute="never") as npu:
        result = npu.load(fc_model).run([X])
    assert not result.computed and result.outputs is None and result.host_ms is None
    assert result.latency_ms == 4.0 and result.energy_mj == 1.0 and result.timing == "emulated"


def test_invoke_always_returns_real_outputs(fc_model: Path, fc_reference) -> None:
    clock = FakeClock()
    with _open(clock, CostTable({"fc": (4.0, 1.0)}), compute="never") as npu:
        (y,) = npu.load(fc_model).invoke([X])
    np.testing.assert_allclose(y, fc_reference(X), rtol=1e-6)
    assert clock.sleeps and sum(clock.sleeps) == pytest.approx(0.004)


def test_when_idle_times_only_when_no_host_slot_is_free(fc_model: Path) -> None:
    clock = FakeClock()
    slots = HostSlots(1)
    with _open(clock, CostTable({"fc": (4.0, 1.0)}), host=slots) as npu:
        model = npu.load(fc_model)
        assert model.run([X]).computed  # slot free
        assert slots.try_acquire()  # another emulated device is computing
        busy = model.run([X])
        slots.release()
    assert not busy.computed and busy.outputs is None and busy.latency_ms == 4.0


def test_when_idle_stops_computing_a_model_the_host_cannot_keep_up_with(fc_model: Path) -> None:
    clock = FakeClock()
    with _open(clock, CostTable({"fc": (1e-9, 0.1)})) as npu:  # an accelerator far faster than the host
        model = npu.load(fc_model)
        first = model.run([X])  # host time unknown: compute once to learn it
        second = model.run([X])
    assert first.computed and first.extra["overrun_ms"] >= 0
    assert not second.computed
    assert second.latency_ms == 1e-9  # the record stays the modelled latency


def test_relative_cost_scales_the_profiled_host_time(fc_model: Path) -> None:
    clock = FakeClock()
    cost = RelativeCost(speed=4.0, power_w=2.0, host_ms={"fc": 10.0})
    with _open(clock, cost, compute="always") as npu:
        result = npu.load(fc_model).run([X])
    assert result.latency_ms == 2.5 and result.energy_mj == 5.0  # 2 W × 2.5 ms
    assert clock.now == pytest.approx(100.0025, abs=1e-12)


def test_relative_cost_without_a_profile_uses_the_measured_host_time(fc_model: Path) -> None:
    clock = FakeClock()
    with _open(clock, RelativeCost(speed=2.0, power_w=1.0), compute="always") as npu:
        result = npu.load(fc_model).run([X])
    assert result.latency_ms == pytest.approx(result.host_ms / 2.0)
    assert result.energy_mj == pytest.approx(result.latency_ms * 1.0)


def test_relative_cost_never_computed_and_unprofiled_is_a_clear_error(fc_model: Path) -> None:
    clock = FakeClock()
    npu = _open(clock, RelativeCost(speed=2.0, power_w=1.0), compute="never")
    with npu, pytest.raises(HalError, match="no host CPU time for model 'fc'"):
        npu.load(fc_model).run([X])


def test_cost_key_defaults_to_file_stem_and_can_be_set(fc_model: Path) -> None:
    clock = FakeClock()
    with _open(clock, CostTable({"palm_lite": (3.0, 1.0)}), compute="never") as npu:
        with pytest.raises(HalError, match="no entry for model 'fc'.*palm_lite"):
            npu.load(fc_model).run([X])
        assert npu.load(fc_model, key="palm_lite").run([X]).latency_ms == 3.0


def test_emulated_checks_inputs_like_a_real_device(fc_model: Path) -> None:
    clock = FakeClock()
    npu = _open(clock, CostTable({"fc": (1.0, 1.0)}), compute="never")
    with npu, pytest.raises(BadInput, match=r"expected shape \[1, 4\]"):
        npu.load(fc_model).run([np.zeros((2, 4), np.float32)])


def test_emulated_needs_a_cost_model_and_a_known_policy() -> None:
    with pytest.raises(BadDeviceSpec, match="needs a cost model"):
        open_device("emulated:npu0")
    with pytest.raises(BadDeviceSpec, match="compute must be one of"):
        open_device("emulated:npu0", cost=CostTable({}), compute="sometimes")


def test_emulated_device_info_says_what_it_is() -> None:
    with open_device("emulated:ws_4k", cost=CostTable({})) as dev:
        assert dev.info.spec == "emulated:ws_4k" and dev.info.kind == "emulated"
        assert "compute=when-idle" in dev.info.detail
