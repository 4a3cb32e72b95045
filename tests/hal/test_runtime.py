"""hal.runtime: which TFLite runtime is used, and what happens when there is none."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hal import runtime

REPO = Path(__file__).resolve().parents[2]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runtime_info_names_litert_and_its_version() -> None:
    info = runtime.runtime_info()
    assert info["runtime"] == "ai_edge_litert"
    assert info["module"] == "ai_edge_litert.interpreter"
    assert info["version"][0].isdigit()
    assert info["compiled_model"] is True
    json.dumps(info)


def test_module_exposes_the_selected_interpreter_and_load_delegate() -> None:
    from ai_edge_litert import interpreter as litert

    assert runtime.Interpreter is litert.Interpreter
    assert runtime.load_delegate is litert.load_delegate


def test_missing_runtime_raises_typed_error_in_a_clean_process() -> None:
    result = _run_python(
        """
        import sys
        sys.modules['ai_edge_litert'] = None        # simulate: neither runtime installed
        sys.modules['ai_edge_litert.interpreter'] = None
        sys.modules['tflite_runtime'] = None
        sys.modules['tflite_runtime.interpreter'] = None
        import hal.runtime as r                     # importing hal never needs a runtime
        from hal.errors import RuntimeMissing, HalError
        try:
            r.runtime_info()
        except RuntimeMissing as e:
            assert isinstance(e, HalError) and isinstance(e, ImportError)
            print('MISSING:', e)
        try:
            r.Interpreter
        except RuntimeMissing:
            print('ATTR-MISSING')
        """
    )
    assert result.returncode == 0, result.stderr
    assert "MISSING: no TFLite runtime" in result.stdout
    assert "ai-edge-litert" in result.stdout and "tflite-runtime" in result.stdout
    assert "ATTR-MISSING" in result.stdout


def test_falls_back_to_tflite_runtime_when_litert_is_absent(fc_model: Path) -> None:
    # tflite_runtime is not installed here: stand it in with LiteRT's interpreter module under that
    # name (same API, which is the point of the fallback), then hide ai_edge_litert.
    result = _run_python(
        f"""
        import sys, types
        import numpy as np
        import ai_edge_litert.interpreter as real
        pkg = types.ModuleType('tflite_runtime'); pkg.__version__ = '2.14.0'
        mod = types.ModuleType('tflite_runtime.interpreter')
        mod.Interpreter, mod.load_delegate = real.Interpreter, real.load_delegate
        pkg.interpreter = mod
        sys.modules.update({{'tflite_runtime': pkg, 'tflite_runtime.interpreter': mod,
                            'ai_edge_litert': None, 'ai_edge_litert.interpreter': None}})
        import hal.runtime as r
        info = r.runtime_info()
        print(info['runtime'], info['version'], info['compiled_model'])
        from hal.devices import open_device
        with open_device('cpu:1') as dev:
            out = dev.load({str(fc_model)!r}).invoke([np.ones((1, 4), np.float32)])
        print('OUT', out[0].tolist())
        """
    )
    assert result.returncode == 0, result.stderr
    assert "tflite_runtime 2.14.0 False" in result.stdout
    assert "OUT [[10.5, 0.5, 3.0]]" in result.stdout


def test_make_interpreter_refuses_zero_threads(fc_model: Path) -> None:
    with pytest.raises(ValueError, match="num_threads"):
        runtime.make_interpreter(str(fc_model), num_threads=0)


def test_make_interpreter_runs_a_real_model(fc_model: Path, fc_reference) -> None:
    it = runtime.make_interpreter(str(fc_model), num_threads=1)
    it.allocate_tensors()
    x = np.array([[1, 2, 3, 4]], np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), fc_reference(x))
