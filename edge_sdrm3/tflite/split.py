"""Cut a single-subgraph TFLite model into consecutive segments.

A segment is a run of consecutive operators in the model's execution order (the operator order of the
subgraph, which is the order the interpreter runs them). Cuts are chosen so that the segments carry about
equal shares of the estimated op cost (MACs for convolutions and fully-connected layers, output elements for
everything else), or given explicitly as operator indices. Each segment is a standalone .tflite file:

- its inputs are the activations it reads that were produced before it (or are model inputs), its outputs the
  activations it produces that a later segment reads or that are model outputs; tensors keep their names,
  shapes and quantization, so segment i's outputs feed later segments by name. A tensor crossing several cuts
  (a skip connection) is an output of the segment that makes it and an input of each later segment that reads it;
- constant buffers are copied only into the segments whose operators use them.

Running the segments in order, passing tensors by name, gives the whole model's outputs. Models with several
subgraphs, control flow (WHILE, IF, CALL_ONCE...) or resource variables are refused with ``SplitError``.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ModelToolError, schema
from .writer import SCHEMA_VERSION, op_name, read_model, write_model

fb = schema()
_B = fb.BuiltinOperator
REFUSED_OPS = {
    _B.WHILE: "control flow", _B.IF: "control flow", _B.CALL_ONCE: "control flow", _B.CALL: "control flow",
    _B.VAR_HANDLE: "resource variables", _B.READ_VARIABLE: "resource variables",
    _B.ASSIGN_VARIABLE: "resource variables",
}
for _op in ("STABLEHLO_WHILE", "STABLEHLO_CASE", "STABLEHLO_REDUCE", "STABLEHLO_SORT", "STABLEHLO_SCATTER",
            "STABLEHLO_REDUCE_WINDOW", "STABLEHLO_COMPOSITE"):  # ops whose bodies are other subgraphs
    if hasattr(_B, _op):
        REFUSED_OPS[getattr(_B, _op)] = "ops with subgraph bodies"


class SplitError(ModelToolError):
    """A model that cannot be cut as asked; the message names the file and the reason."""


@dataclass(frozen=True)
class SegmentInfo:
    """One segment: its file, the operator range [start, stop) of the original model, cost and tensor names."""

    path: Path
    start: int
    stop: int
    cost: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _builtin(model: fb.ModelT, op: fb.OperatorT) -> int:
    oc = model.operatorCodes[op.opcodeIndex]
    return max(int(oc.builtinCode or 0), int(oc.deprecatedBuiltinCode or 0))


def _is_const(model: fb.ModelT, t: fb.TensorT) -> bool:
    b = model.buffers[t.buffer] if 0 < t.buffer < len(model.buffers) else None
    return b is not None and b.data is not None and len(b.data) > 0


def _elems(t: fb.TensorT | None) -> int:
    if t is None or t.shape is None:
        return 1
    return int(np.prod([max(1, int(d)) for d in t.shape])) if len(t.shape) else 1


def op_cost(model: fb.ModelT, op: fb.OperatorT) -> int:
    """Estimated cost of one op: multiply-accumulates for conv/depthwise/FC/matmul, else output elements."""
    sg = model.subgraphs[0]
    code = _builtin(model, op)
    ins = [sg.tensors[i] if i >= 0 else None for i in (op.inputs or [])]
    outs = [sg.tensors[i] for i in (op.outputs or []) if i >= 0]
    out_elems = sum(_elems(t) for t in outs) or 1
    w = ins[1] if len(ins) > 1 else None
    wshape = [int(d) for d in w.shape] if w is not None and w.shape is not None else []
    if code == _B.CONV_2D and len(wshape) == 4:  # [O, kh, kw, I]
        return out_elems * wshape[1] * wshape[2] * wshape[3]
    if code == _B.DEPTHWISE_CONV_2D and len(wshape) == 4:  # [1, kh, kw, C*M]
        return out_elems * wshape[1] * wshape[2]
    if code == _B.FULLY_CONNECTED and len(wshape) == 2:  # [O, I]
        return out_elems * wshape[1]
    if code == _B.TRANSPOSE_CONV and len(ins) > 2 and ins[1] is not None and ins[2] is not None:
        ws = [int(d) for d in ins[1].shape]  # inputs: output_shape, weights [O, kh, kw, I], input
        return _elems(ins[2]) * (ws[0] * ws[1] * ws[2] if len(ws) == 4 else 1)
    if code == _B.CONV_3D and len(wshape) == 5:  # [kd, kh, kw, I, O]
        return out_elems * wshape[0] * wshape[1] * wshape[2] * wshape[3]
    if code == _B.BATCH_MATMUL and ins and ins[0] is not None and ins[0].shape is not None and len(ins[0].shape):
        return out_elems * max(1, int(ins[0].shape[-1]))
    return out_elems


def check_splittable(model: fb.ModelT, where: str) -> None:
    n = len(model.subgraphs or [])
    if n != 1:
        raise SplitError(f"{where}: has {n} subgraphs; only single-subgraph models can be split")
    sg = model.subgraphs[0]
    for k, op in enumerate(sg.operators or []):
        code = _builtin(model, op)
        if code in REFUSED_OPS:
            raise SplitError(f"{where}: operator {k} is {op_name(code)} ({REFUSED_OPS[code]}); "
                             "such models cannot be cut into segments")
    for t in sg.tensors or []:
        if t.isVariable:
            raise SplitError(f"{where}: tensor {_name(t)!r} is a variable (stateful model); cannot be split")
    if not sg.operators:
        raise SplitError(f"{where}: has no operators")


def _name(t: fb.TensorT) -> str:
    n = t.name
    return n.decode() if isinstance(n, bytes) else str(n)


def balanced_cuts(costs: Sequence[int], n_segments: int) -> list[int]:
    """Operator indices where segments 2..N start, splitting ``costs`` into N non-empty runs that minimise the
    largest run's cost (ties: the earliest cuts). Exact, by binary search on the bottleneck."""
    n = len(costs)
    if not 1 <= n_segments <= n:
        raise SplitError(f"cannot make {n_segments} segments out of {n} operators")
    c = [max(0, int(x)) for x in costs]

    def greedy(limit: int) -> list[int] | None:
        cuts: list[int] = []
        run = 0
        for i, x in enumerate(c):
            # must leave at least one op for each remaining segment
            remaining_ops = n - i
            need = n_segments - 1 - len(cuts)
            if i > 0 and (run + x > limit or remaining_ops == need) and need > 0:
                cuts.append(i)
                run = 0
            run += x
            if run > limit:
                return None
        return cuts if len(cuts) == n_segments - 1 else None

    lo, hi = max(c), sum(c)
    while lo < hi:
        mid = (lo + hi) // 2
        if greedy(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    cuts = greedy(lo)
    if cuts is None:  # pragma: no cover - greedy(sum) always succeeds when n_segments <= n
        raise SplitError("no balanced cut found")
    return cuts


def constant_ops(model: fb.ModelT) -> list[bool]:
    """Per operator: does it only transform constants (e.g. DEQUANTIZE of float16 weights)? Such ops are not
    cut points: each segment gets its own copy of the ones whose results it reads, so that weights stay
    static inside every segment (XNNPACK and the delegates need static weights)."""
    sg = model.subgraphs[0]
    derived = [_is_const(model, t) for t in sg.tensors]
    flags = []
    for op in sg.operators:
        ins = [t for t in (op.inputs or []) if t >= 0]
        is_const = bool(ins) and all(derived[t] for t in ins) and _builtin(model, op) not in REFUSED_OPS
        if is_const:
            for t in op.outputs or []:
                if t >= 0:
                    derived[t] = True
        flags.append(is_const)
    return flags


def plan(path: str | Path, n_segments: int) -> tuple[list[int], list[int]]:
    """(cost of each compute operator, cut indices) for ``n_segments`` balanced segments, writing nothing.
    Compute operators are the model's operators less those that only transform constants."""
    model = read_model(path)
    check_splittable(model, str(path))
    flags = constant_ops(model)
    costs = [op_cost(model, op) for op, c in zip(model.subgraphs[0].operators, flags) if not c]
    return costs, balanced_cuts(costs, n_segments)


def split_model(path: str | Path, n_segments: int, out_dir: str | Path,
                cuts: Sequence[int] | None = None) -> list[Path]:
    """Cut ``path`` into ``n_segments`` segment files in ``out_dir`` (named ``STEM.seg{i}of{N}.tflite``).

    ``cuts``, when given, are the indices (among the compute operators, see ``plan``) where segments 2..N start,
    strictly increasing; otherwise they balance the estimated op cost. Returns the files in execution order."""
    return [s.path for s in split_model_info(path, n_segments, out_dir, cuts)]


def split_model_info(path: str | Path, n_segments: int, out_dir: str | Path,
                     cuts: Sequence[int] | None = None) -> list[SegmentInfo]:
    """As ``split_model``, with each segment's compute-operator range, cost and input/output tensor names."""
    src = Path(path)
    model = read_model(src)
    check_splittable(model, str(src))
    sg = model.subgraphs[0]
    flags = constant_ops(model)
    compute, costs, bounds = _compute_bounds(src, model, flags, n_segments, cuts)
    flow = _Dataflow(model, flags, compute, bounds)
    flow.check_outputs(src)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = src.name.removesuffix(".tflite")
    infos: list[SegmentInfo] = []
    for s in range(n_segments):
        seg_ops, inputs, outputs = flow.segment(s)
        if not outputs:
            raise SplitError(f"{src}: segment {s + 1} (compute operators {bounds[s]}..{bounds[s + 1] - 1}) "
                             "produces nothing used later; choose other cuts")
        seg_model = _segment_model(model, seg_ops, inputs, outputs, f"{stem} segment {s + 1}/{n_segments}")
        p = write_model(seg_model, out / f"{stem}.seg{s + 1}of{n_segments}.tflite")
        infos.append(SegmentInfo(p, bounds[s], bounds[s + 1], sum(costs[bounds[s]:bounds[s + 1]]),
                                 tuple(_name(sg.tensors[t]) for t in inputs),
                                 tuple(_name(sg.tensors[t]) for t in outputs)))
    return infos


def _compute_bounds(src: Path, model: fb.ModelT, flags: list[bool], n_segments: int,
                    cuts: Sequence[int] | None) -> tuple[list[int], list[int], list[int]]:
    """(the compute operators' indices, their costs, segment bounds among them: ``[0, *cuts, len(compute)]``);
    ``cuts`` checked when given, else balanced."""
    ops = model.subgraphs[0].operators
    compute = [k for k, c in enumerate(flags) if not c]
    if not compute:
        raise SplitError(f"{src}: has no operator that reads an activation")
    costs = [op_cost(model, ops[k]) for k in compute]
    if cuts is None:
        cuts = balanced_cuts(costs, n_segments)
    else:
        cuts = [int(c) for c in cuts]
        if len(cuts) != n_segments - 1 or any(not 0 < c < len(compute) for c in cuts) or cuts != sorted(set(cuts)):
            raise SplitError(f"{src}: cuts {cuts} do not make {n_segments} non-empty segments of "
                             f"{len(compute)} compute operators")
    return compute, costs, [0, *cuts, len(compute)]


class _Dataflow:
    """Which operator makes each tensor, which tensors are constants or made from constants only, and the last
    segment that reads each tensor: what a segment's operators, inputs and outputs are made of."""

    def __init__(self, model: fb.ModelT, flags: list[bool], compute: list[int], bounds: list[int]) -> None:
        sg = model.subgraphs[0]
        self.sg = sg
        self.ops = ops = sg.operators
        self.compute, self.bounds = compute, bounds
        self.const = [_is_const(model, t) for t in sg.tensors]
        self.producer: dict[int, int] = {}
        for k, op in enumerate(ops):
            for t in op.outputs or []:
                if t >= 0:
                    self.producer[t] = k
        self.derived = list(self.const)  # constants and tensors computed from constants only
        for k, op in enumerate(ops):
            if flags[k]:
                for t in op.outputs or []:
                    if t >= 0:
                        self.derived[t] = True
        seg_of = {k: s for s in range(len(bounds) - 1) for k in compute[bounds[s]:bounds[s + 1]]}
        self.last_seg: dict[int, int] = {}
        for k in compute:
            for t in ops[k].inputs or []:
                if t >= 0:
                    self.last_seg[t] = seg_of[k]
        self.model_outputs = list(sg.outputs or [])
        self.model_inputs = list(sg.inputs or [])

    def check_outputs(self, src: Path) -> None:
        """Every model output is computed from the input by some operator (or is an input)."""
        for t in self.model_outputs:
            if self.derived[t]:
                raise SplitError(f"{src}: output tensor {_name(self.sg.tensors[t])!r} is a constant; cannot be split")
            if t not in self.producer and t not in self.model_inputs:
                raise SplitError(f"{src}: output tensor {_name(self.sg.tensors[t])!r} is produced by no operator")

    def const_closure(self, ks: list[int]) -> set[int]:
        """The constant-only operators whose results the operators ``ks`` read, directly or not."""
        ops, derived, const = self.ops, self.derived, self.const
        need: set[int] = set()
        stack = [t for k in ks for t in (ops[k].inputs or []) if t >= 0 and derived[t] and not const[t]]
        while stack:
            t = stack.pop()
            k = self.producer[t]
            if k in need:
                continue
            need.add(k)
            stack += [u for u in (ops[k].inputs or []) if u >= 0 and derived[u] and not const[u]]
        return need

    def segment(self, s: int) -> tuple[list[fb.OperatorT], list[int], list[int]]:
        """Segment ``s``'s operators (its compute operators and the constant ones they need), its input tensors
        (model inputs first, in their order, then crossing activations in order of first use) and its outputs
        (what it makes that a later segment reads or that the model outputs)."""
        ops, derived, model_inputs = self.ops, self.derived, self.model_inputs
        main = self.compute[self.bounds[s]:self.bounds[s + 1]]
        seg_ops = [ops[k] for k in sorted(set(main) | self.const_closure(main))]
        produced = {t for op in seg_ops for t in (op.outputs or []) if t >= 0}
        inputs: list[int] = []
        for op in seg_ops:
            for t in list(op.inputs or []) + list(op.intermediates or []):
                if t >= 0 and not derived[t] and t not in produced and t not in inputs:
                    inputs.append(t)
        inputs = [t for t in model_inputs if t in inputs] + [t for t in inputs if t not in model_inputs]
        outputs = [t for k in main for t in (ops[k].outputs or []) if t >= 0 and
                   (t in self.model_outputs or self.last_seg.get(t, -1) > s)]
        return seg_ops, inputs, list(dict.fromkeys(outputs))


def _segment_model(model: fb.ModelT, seg_ops: list[fb.OperatorT], inputs: list[int], outputs: list[int],
                   description: str) -> fb.ModelT:
    sg = model.subgraphs[0]
    tmap: dict[int, int] = {}
    tensors: list[fb.TensorT] = []
    buffers: list[fb.BufferT] = [fb.BufferT()]
    bmap: dict[int, int] = {}

    def tensor(t: int) -> int:
        if t < 0:
            return t
        if t not in tmap:
            nt = copy.copy(sg.tensors[t])
            old = nt.buffer
            if _is_const(model, sg.tensors[t]):
                if old not in bmap:
                    nb = fb.BufferT()
                    nb.data = model.buffers[old].data
                    buffers.append(nb)
                    bmap[old] = len(buffers) - 1
                nt.buffer = bmap[old]
            else:
                nt.buffer = 0
            tensors.append(nt)
            tmap[t] = len(tensors) - 1
        return tmap[t]

    for t in inputs:
        tensor(t)
    codes: list[fb.OperatorCodeT] = []
    cmap: dict[int, int] = {}
    new_ops = []
    for op in seg_ops:
        no = copy.copy(op)
        if op.opcodeIndex not in cmap:
            codes.append(copy.copy(model.operatorCodes[op.opcodeIndex]))
            cmap[op.opcodeIndex] = len(codes) - 1
        no.opcodeIndex = cmap[op.opcodeIndex]
        no.inputs = [tensor(t) for t in (op.inputs or [])]
        no.outputs = [tensor(t) for t in (op.outputs or [])]
        if op.intermediates is not None and len(op.intermediates):
            no.intermediates = [tensor(t) for t in op.intermediates]
        new_ops.append(no)
    nsg = fb.SubGraphT()
    nsg.tensors, nsg.operators = tensors, new_ops
    nsg.inputs = [tmap[t] for t in inputs]
    nsg.outputs = [tensor(t) for t in outputs]
    nsg.name = sg.name
    m = fb.ModelT()
    m.version = SCHEMA_VERSION
    m.description = description
    m.operatorCodes = codes
    m.subgraphs = [nsg]
    m.buffers = buffers
    return m
