"""Fixtures for hal tests: tiny real .tflite models written here with flatbuffers + the LiteRT schema.

Why our own builder: the project's writer (edge_sdrm3/tflite/writer.py) belongs to another package, and
hal tests must not depend on edge_sdrm3 (layering). These models are real: the interpreter loads and runs them.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

_NUMPY_TO_TFL = {np.dtype(np.float32): schema.TensorType.FLOAT32, np.dtype(np.int32): schema.TensorType.INT32}


def _tensor(name: str, shape: tuple[int, ...], buffer: int, dtype: np.dtype | None = None) -> schema.TensorT:
    t = schema.TensorT()
    t.name = name
    t.shape = list(shape)
    t.type = _NUMPY_TO_TFL[np.dtype(dtype or np.float32)]
    t.buffer = buffer
    return t


def _buffer(data: np.ndarray | None = None) -> schema.BufferT:
    b = schema.BufferT()
    if data is not None:
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
    return b


def _opcode(builtin: int) -> schema.OperatorCodeT:
    c = schema.OperatorCodeT()
    c.builtinCode = builtin
    c.deprecatedBuiltinCode = min(builtin, 127)
    c.version = 1
    return c


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _model(tensors, buffers, opcodes, operators, inputs, outputs, description: str) -> bytes:
    sg = schema.SubGraphT()
    sg.tensors = tensors
    sg.inputs = inputs
    sg.outputs = outputs
    sg.operators = operators
    sg.name = "main"
    m = schema.ModelT()
    m.version = 3
    m.description = description
    m.operatorCodes = opcodes
    m.subgraphs = [sg]
    m.buffers = buffers
    return _pack(m)


def build_fc_model(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """input float32 [1, in] -> FULLY_CONNECTED(weights [out, in], bias [out]) -> output [1, out]."""
    out_n, in_n = weights.shape
    tensors = [
        _tensor("input", (1, in_n), 1),
        _tensor("weights", (out_n, in_n), 2),
        _tensor("bias", (out_n,), 3),
        _tensor("output", (1, out_n), 4),
    ]
    buffers = [_buffer(), _buffer(), _buffer(weights.astype(np.float32)), _buffer(bias.astype(np.float32)), _buffer()]
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1, 2]
    op.outputs = [3]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    opts = schema.FullyConnectedOptionsT()
    opts.fusedActivationFunction = schema.ActivationFunctionType.NONE
    op.builtinOptions = opts
    return _model(tensors, buffers, [_opcode(schema.BuiltinOperator.FULLY_CONNECTED)], [op], [0], [3], "hal-test-fc")


def build_add_model(shape: tuple[int, ...] = (1, 4)) -> bytes:
    """Two float32 inputs of `shape` -> ADD -> output."""
    tensors = [_tensor("a", shape, 1), _tensor("b", shape, 2), _tensor("sum", shape, 3)]
    buffers = [_buffer(), _buffer(), _buffer(), _buffer()]
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1]
    op.outputs = [2]
    op.builtinOptionsType = schema.BuiltinOptions.AddOptions
    op.builtinOptions = schema.AddOptionsT()
    return _model(tensors, buffers, [_opcode(schema.BuiltinOperator.ADD)], [op], [0, 1], [2], "hal-test-add")


FC_WEIGHTS = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0], [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
FC_BIAS = np.array([0.5, -1.0, 2.0], dtype=np.float32)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hal_models")


@pytest.fixture(scope="session")
def fc_model(model_dir: Path) -> Path:
    path = model_dir / "fc.tflite"
    path.write_bytes(build_fc_model(FC_WEIGHTS, FC_BIAS))
    return path


@pytest.fixture(scope="session")
def add_model(model_dir: Path) -> Path:
    path = model_dir / "add.tflite"
    path.write_bytes(build_add_model())
    return path


@pytest.fixture(scope="session")
def garbage_model(model_dir: Path) -> Path:
    path = model_dir / "garbage.tflite"
    path.write_bytes(b"this is not a flatbuffer" * 10)
    return path


@pytest.fixture()
def data_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "hal"


def build_edgetpu_like_model() -> bytes:
    """A model whose one op is the custom op edgetpu_compiler emits (it cannot run without libedgetpu).

    Used only to check that hal recognises a compiled Edge TPU model by its content, not its name.
    """
    tensors = [_tensor("input", (1, 4), 1), _tensor("output", (1, 4), 2)]
    buffers = [_buffer(), _buffer(), _buffer()]
    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.CUSTOM
    code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "edgetpu-custom-op"
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]
    return _model(tensors, buffers, [code], [op], [0], [1], "hal-test-edgetpu")


@pytest.fixture(scope="session")
def edgetpu_model(model_dir: Path) -> Path:
    path = model_dir / "fc_edgetpu.tflite"
    path.write_bytes(build_edgetpu_like_model())
    return path


@pytest.fixture(scope="session")
def fake_delegate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile tests/data/hal/fake_delegate.c into a real delegate library (skips without a C compiler)."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to build the fake delegate library")
    source = Path(__file__).resolve().parent.parent / "data" / "hal" / "fake_delegate.c"
    out = tmp_path_factory.mktemp("delegate") / "libfake_delegate.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(source)], check=True)
    return out


@pytest.fixture(scope="session")
def fc_reference():
    """numpy's answer for the fc model: x @ W.T + b."""
    return lambda x: x @ FC_WEIGHTS.T + FC_BIAS


@pytest.fixture(scope="session")
def probe_model_bytes() -> bytes:
    """What hal.devices embeds as its accelerator probe model."""
    return build_add_model((1, 1))
