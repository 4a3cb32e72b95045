"""What a loaded model keeps resident: not the model file's pages once XNNPACK has packed its weights (released in a
batch, ``release_loaded_files``), and not the LiteRT CompiledModel runtime (GPU/NPU) in a process that runs
Interpreters only."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edge_sdrm3.data import data_path
from hal import open_device, runtime
from hal.loaded import release_file_pages, release_loaded_files

DIGITS = data_path("models", "digits", "digits_w100.tflite")
REPO = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps")


def resident_kb(path: Path, pid: str = "self") -> int | None:
    """Resident kB of ``path``'s mappings in process ``pid`` (None: not mapped at all)."""
    target, total, mapped, inside = str(path.resolve()), 0, False, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                inside = line.rstrip("\n").endswith(" " + target)
                mapped |= inside
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total if mapped else None


def _reference(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's output from an interpreter over the file's bytes (no mapping of the file, nothing released)."""
    it = runtime.make_interpreter(None, model_content=path.read_bytes(), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@linux_only
def test_a_model_loaded_on_the_cpu_keeps_none_of_its_file_resident_and_still_answers_right(tmp_path: Path) -> None:
    path = tmp_path / DIGITS.name
    path.write_bytes(DIGITS.read_bytes())
    x = np.random.default_rng(1).random((1, 8, 8, 1), dtype=np.float32)
    dev = open_device("cpu:1")
    try:
        loaded = dev.load(path)
        assert resident_kb(path) > 0  # mapped, and read to pack the weights
        assert release_loaded_files() >= 1
        assert resident_kb(path) == 0  # still mapped (the interpreter reads it from the file), none of it resident
        assert release_loaded_files() == 0  # each file once
        for _ in range(3):  # pages read again come back from the file, unchanged
            np.testing.assert_array_equal(loaded.invoke([x])[0], _reference(path, x))
    finally:
        dev.close()


@linux_only
def test_releasing_the_pages_of_a_file_not_mapped_does_nothing(tmp_path: Path) -> None:
    other = tmp_path / "x.tflite"
    other.write_bytes(DIGITS.read_bytes())
    assert release_file_pages([DIGITS.with_name("not_a_model.tflite"), other]) == 0
    assert release_file_pages([]) == 0


def test_selecting_the_runtime_does_not_load_the_compiled_model_runtime_until_asked() -> None:
    code = textwrap.dedent("""
        import sys
        from hal import open_device, runtime
        from edge_sdrm3.data import data_path
        runtime.select_runtime()
        dev = open_device("cpu:1")
        dev.load(data_path("models", "digits", "digits_w100.tflite"))
        print(sorted(m for m in sys.modules if m.startswith(("ai_edge_litert.compiled_model", "ml_dtypes"))))
        print(runtime.runtime_info()["compiled_model"], "ai_edge_litert.compiled_model" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "[]"  # an Interpreter on the CPU: neither CompiledModel nor ml_dtypes imported (7 MB)
    assert lines[1] == "True True"  # `platforms --detect` still says CompiledModel is there, by importing it then
