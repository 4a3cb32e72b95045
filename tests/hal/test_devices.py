"""hal.devices, hal.loaded, hal.discovery: discover/open/load/invoke/close on real interpreters and real files;
failure paths for real."""

from __future__ import annotations

import ctypes
import json
import os
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from hal import devices, discovery, loaded, native, runtime
from hal.devices import DelegateDevice, open_device, parse_spec
from hal.discovery import Discovery
from hal.errors import BadDeviceSpec, BadInput, DelegateError, DeviceUnavailable, HalError, InvokeError, ModelLoadError


def _loadable(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


EDGETPU_LIB = native.EDGETPU_LIBRARY[native.platform_key()]
no_edgetpu_library = pytest.mark.skipif(_loadable(EDGETPU_LIB), reason="libedgetpu is installed here")


# ------------------------------------------------------------------------------------------ cpu, real


def test_cpu_runs_fully_connected_like_numpy(fc_model: Path, fc_reference) -> None:
    x = np.array([[0.5, -1.0, 2.0, 3.0]], np.float32)
    with open_device("cpu") as cpu:
        model = cpu.load(fc_model)
        assert [s.name for s in model.inputs] == ["input"] and model.inputs[0].shape == (1, 4)
        assert model.outputs[0].shape == (1, 3) and model.outputs[0].dtype == np.float32
        (y,) = model.invoke([x])
    np.testing.assert_allclose(y, fc_reference(x), rtol=1e-6)


def test_cpu_runs_two_input_add(add_model: Path) -> None:
    a = np.array([[1, 2, 3, 4]], np.float32)
    b = np.array([[10, 20, 30, 40]], np.float32)
    with open_device("cpu:1") as cpu:
        (y,) = cpu.load(add_model).invoke([a, b])
    np.testing.assert_array_equal(y, a + b)


def test_run_reports_measured_timing(add_model: Path) -> None:
    x = np.ones((1, 4), np.float32)
    with open_device("cpu:1") as cpu:
        result = cpu.load(add_model).run([x, x])
    assert result.timing == "measured" and result.computed
    assert result.latency_ms > 0 and result.host_ms == result.latency_ms
    np.testing.assert_array_equal(result.outputs[0], 2 * x)


class _SpyInterpreter:
    """Wraps the real Interpreter class and records the num_threads each construction got."""

    calls: ClassVar[list[int | None]] = []
    real = runtime.select_runtime().module.Interpreter

    def __new__(cls, *args, **kwargs):
        cls.calls.append(kwargs.get("num_threads"))
        return cls.real(*args, **kwargs)


def test_cpu_thread_count_reaches_the_interpreter(fc_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.select_runtime().module, "Interpreter", _SpyInterpreter)
    _SpyInterpreter.calls = []
    with open_device("cpu:2") as two:
        assert two.load(fc_model).threads == 2
    with open_device("cpu") as default:
        assert default.info.threads == os.cpu_count()
        default.load(fc_model)
    assert _SpyInterpreter.calls == [2, os.cpu_count()]


def test_two_models_on_two_threads_give_right_answers(fc_model: Path, add_model: Path, fc_reference) -> None:
    # One Loaded per thread (the documented rule); invoke releases the GIL so these overlap.
    x = np.arange(4, dtype=np.float32)[None]
    results: dict[str, list[np.ndarray]] = {}
    with open_device("cpu:1") as cpu:
        fc, add = cpu.load(fc_model), cpu.load(add_model)

        def work(name: str, model, inputs) -> None:
            for _ in range(200):
                results[name] = model.invoke(inputs)

        threads = [
            threading.Thread(target=work, args=("fc", fc, [x])),
            threading.Thread(target=work, args=("add", add, [x, x])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    np.testing.assert_allclose(results["fc"][0], fc_reference(x), rtol=1e-6)
    np.testing.assert_array_equal(results["add"][0], 2 * x)


# ------------------------------------------------------------------------------------- bad models/inputs


def test_garbage_file_is_model_load_error_naming_it(garbage_model: Path) -> None:
    with open_device("cpu:1") as cpu, pytest.raises(ModelLoadError, match="garbage.tflite"):
        cpu.load(garbage_model)


def test_missing_file_is_model_load_error(tmp_path: Path) -> None:
    with open_device("cpu:1") as cpu, pytest.raises(ModelLoadError, match="nope.tflite"):
        cpu.load(tmp_path / "nope.tflite")


def test_corrupt_flatbuffer_with_valid_identifier_is_model_load_error(tmp_path: Path, fc_model: Path) -> None:
    broken = tmp_path / "truncated.tflite"
    broken.write_bytes(fc_model.read_bytes()[:40])  # header and identifier intact, the rest cut off
    with open_device("cpu:1") as cpu, pytest.raises(ModelLoadError, match="truncated.tflite"):
        cpu.load(broken)


def test_wrong_shape_dtype_and_count_are_bad_input(fc_model: Path) -> None:
    with open_device("cpu:1") as cpu:
        model = cpu.load(fc_model)
        with pytest.raises(BadInput, match=r"expected shape \[1, 4\], got \[1, 5\]"):
            model.invoke([np.zeros((1, 5), np.float32)])
        with pytest.raises(BadInput, match="expected dtype float32, got float64"):
            model.invoke([np.zeros((1, 4), np.float64)])
        with pytest.raises(BadInput, match="expected 1 input"):
            model.invoke([np.zeros((1, 4), np.float32)] * 2)
        with pytest.raises(BadInput, match="numpy array"):
            model.invoke([[0.0, 0.0, 0.0, 0.0]])
        assert model.invoke([np.zeros((1, 4), np.float32)])[0].shape == (1, 3)  # still usable


def test_closed_model_and_device_refuse_work(fc_model: Path) -> None:
    cpu = open_device("cpu:1")
    model = cpu.load(fc_model)
    cpu.close()
    with pytest.raises(InvokeError, match="closed"):
        model.invoke([np.zeros((1, 4), np.float32)])
    with pytest.raises(HalError, match="closed"):
        cpu.load(fc_model)


# ------------------------------------------------------------------------------------------ device strings


@pytest.mark.parametrize(
    "spec, kind, arg",
    [
        ("cpu", "cpu", ""),
        ("cpu:4", "cpu", "4"),
        ("gpu", "gpu", ""),
        ("npu", "npu", ""),
        ("edgetpu", "edgetpu", ""),
        ("edgetpu:usb:0", "edgetpu", "usb:0"),
        ("edgetpu:pci:1", "edgetpu", "pci:1"),
        ("edgetpu:usb", "edgetpu", "usb"),
        ("emulated:npu0", "emulated", "npu0"),
    ],
)
def test_parse_valid_specs(spec: str, kind: str, arg: str) -> None:
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.arg) == (kind, arg)


@pytest.mark.parametrize("spec", ["bogus", "cpu:0", "cpu:two", "edgetpu:eth:0", "emulated:", "GPU", ""])
def test_bad_specs_list_the_valid_forms(spec: str) -> None:
    with pytest.raises(BadDeviceSpec) as err:
        open_device(spec)
    assert repr(spec) in str(err.value)
    assert "cpu:N" in str(err.value) and "edgetpu:usb[:N]" in str(err.value) and "emulated:NAME" in str(err.value)


# ---------------------------------------------------------------------------- accelerators: real failures


@no_edgetpu_library
@pytest.mark.parametrize("spec", ["edgetpu", "edgetpu:usb:0", "edgetpu:pci:0"])
def test_edgetpu_without_library_is_device_unavailable_naming_it(spec: str) -> None:
    with pytest.raises(DeviceUnavailable, match=r"libedgetpu\.so\.1"):
        open_device(spec)


def test_edgetpu_library_name_per_platform() -> None:
    assert native.EDGETPU_LIBRARY == {
        "linux": "libedgetpu.so.1",
        "darwin": "libedgetpu.1.dylib",
        "win32": "edgetpu.dll",
    }


def test_gpu_is_a_typed_error_naming_both_backends() -> None:
    try:
        device = open_device("gpu")
    except DeviceUnavailable as exc:
        message = str(exc)
    else:
        device.close()
        pytest.skip("a GPU works on this machine")
    assert "LiteRT GPU accelerator" in message  # CompiledModel with the GPU accelerator was tried...
    assert native.GPU_DELEGATE_LIBRARY["linux"] in message  # ...then the classic delegate library


def test_npu_without_a_working_vendor_dispatch_is_device_unavailable() -> None:
    try:
        device = open_device("npu")
    except DeviceUnavailable as exc:
        assert "dispatch" in str(exc)
    except DelegateError as exc:  # a dispatch library loads but the NPU is not there
        assert "NPU" in str(exc)
    else:
        device.close()
        pytest.skip("an NPU works on this machine")


def test_failing_delegate_is_delegate_error_with_its_message(fake_delegate: Path) -> None:
    with pytest.raises(DelegateError, match="fake delegate: no device attached"):
        DelegateDevice("gpu", "gpu", str(fake_delegate), {"mode": "fail-create"}, 1)


def test_delegate_refusing_the_graph_is_delegate_error_at_load(fake_delegate: Path, fc_model: Path) -> None:
    device = DelegateDevice("gpu", "gpu", str(fake_delegate), {"mode": "reject-graph"}, 1)
    with pytest.raises(DelegateError, match="could not take .*fc.tflite"):
        device.load(fc_model)
    device.close()


def test_library_that_is_not_a_delegate_is_delegate_error() -> None:
    libc = "libc.so.6" if native.platform_key() == "linux" else None
    if libc is None or not _loadable(libc):
        pytest.skip("needs glibc")
    with pytest.raises(DelegateError, match="not a TFLite external delegate"):
        DelegateDevice("gpu", "gpu", libc, {}, 1)


def test_plain_model_is_refused_for_the_edge_tpu(fc_model: Path, edgetpu_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="not compiled for the Edge TPU.*_edgetpu.tflite"):
        devices.require_edgetpu_model(fc_model)
    assert devices.require_edgetpu_model(edgetpu_model) == edgetpu_model


# -------------------------------------------------------------------------------------------- discover


def test_discover_lists_cpu_and_skips_the_rest_with_reasons(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="hal.discovery")
    found = discovery.discover()
    assert isinstance(found, Discovery)
    cpu = [d for d in found if d.kind == "cpu"]
    assert cpu and cpu[0].spec == "cpu" and cpu[0].backend == "xnnpack" and cpu[0].threads == os.cpu_count()
    kinds_found = {d.kind for d in found}
    for s in found.skipped:
        assert s.reason and s.error in {"DeviceUnavailable", "DelegateError"}
        assert s.spec.split(":")[0] not in kinds_found or s.spec.startswith("edgetpu:")
    accounted = kinds_found | {s.spec.split(":")[0] for s in found.skipped}
    assert {"cpu", "gpu", "npu", "edgetpu"} <= accounted
    skip_lines = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skip_lines) == len(found.skipped)  # one log line per skipped device
    json.dumps(found.as_dict())


@no_edgetpu_library
def test_discover_reports_the_missing_edgetpu_library() -> None:
    found = discovery.discover(["edgetpu"])
    assert list(found) == []
    assert found.skipped[0].spec == "edgetpu" and "libedgetpu.so.1" in found.skipped[0].reason


def test_probe_model_is_the_documented_add_model(probe_model_bytes: bytes) -> None:
    assert devices.PROBE_MODEL == probe_model_bytes


def test_compiled_model_wrapper_runs_like_numpy(fc_model: Path, fc_reference) -> None:
    # The gpu/npu path wraps a LiteRT CompiledModel; with no GPU/NPU here, drive the same wrapper with a
    # CPU-compiled model so that its buffers, signature handling and reshapes are checked for real.
    from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator

    model = loaded.CompiledLoaded(fc_model, "test", CompiledModel.from_file(str(fc_model), HardwareAccelerator.CPU))
    x = np.array([[3.0, 1.0, -2.0, 0.5]], np.float32)
    assert model.inputs[0].shape == (1, 4) and model.outputs[0].dtype == np.float32
    (y,) = model.invoke([x])
    np.testing.assert_allclose(y, fc_reference(x), rtol=1e-6)
    with pytest.raises(BadInput):
        model.invoke([x.astype(np.float64)])
    model.close()


def test_discover_refuses_a_malformed_candidate() -> None:
    with pytest.raises(BadDeviceSpec, match="bogus"):
        discovery.discover(["cpu", "bogus"])


def test_detect_reports_runtime_devices_and_meter(tmp_path: Path) -> None:
    import hal

    report = hal.detect(tmp_path, watts_per_core=2.5)
    json.dumps(report)
    assert report["runtime"]["runtime"] == "ai_edge_litert"
    assert "cpu" in [d["spec"] for d in report["devices"]]
    accounted = {d["kind"] for d in report["devices"]} | {s["spec"].split(":")[0] for s in report["skipped"]}
    assert {"cpu", "gpu", "npu", "edgetpu"} <= accounted
    assert report["energy_meter"]["source"] == "estimate:cpu-time*2.5W/core"
    assert len(report["energy_meter"]["skipped"]) == 3
