"""Fused kernels: the units a device actually runs, grouped from the layer expansion.

Every latency model reads a network through :func:`block_kernels`, or through
:func:`kernels_many` for many blocks at once (the same fusion and rows on array-valued
layers), so the roofline, the lookup table and the fitted model can never group layers
differently.
The grouping follows a profile's :class:`FusionRules`, as inference runtimes do
(TensorRT, TFLite, oneDNN): a conv (or linear) absorbs the norm that follows it (BN and
layer scale fold into the weights), its activation, and, with ``residual_add``, the
residual add that reads it plus the activation after that add.

A kernel is one row of a float array with the columns in :data:`KERNEL_COLUMNS`; shapes
are per sample (batch is applied by the models). Rows are memoized per block, keyed on the
block's ``(fn, args)`` like :func:`archdesign.cost.block_cost`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from archdesign.layers import blocks, expand_many, is_stage_key, numbered_block
from archdesign.ops import Layer, layer_flops, layer_params, op_class
from archdesign.spec import ArchSpec

#: Op classes a profile gives peak throughput and efficiency for.
OP_CLASSES: tuple[str, ...] = ("conv", "depthwise", "linear", "norm", "elementwise", "pool")
OP_CLASS_INDEX = {name: i for i, name in enumerate(OP_CLASSES)}

#: Columns of a kernel row (shapes per sample; element counts include fused residual reads).
KERNEL_COLUMNS: tuple[str, ...] = (
    "op_class", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "kernel", "stride",
    "groups", "fused_add", "fused_ops", "flops", "in_elements", "out_elements", "weights",
)
COL = {name: i for i, name in enumerate(KERNEL_COLUMNS)}

#: Kernel-shape monomials of a calibrated roofline's compute term: the time at peak is
#: multiplied by 1 + Σ_j a_j · g_j, g = (1/c_out, groups/c_in, 1/(h_out·w_out·batch)):
#: narrow outputs, narrow per-group inputs and small spatial extents waste vector lanes
#: and tiles (a smooth, posynomial stand-in for rounding up to the next multiple).
SHAPE_TERMS = ("c_out", "c_in_per_group", "spatial_batch")

_NORM_FOLDABLE = frozenset({"bn", "scale"})  # fold into the producing conv's weights
_WEIGHTED = frozenset({"conv", "linear"})  # kernels whose weights are read from memory


@dataclass(frozen=True, slots=True)
class FusionRules:
    """Which layers run as one kernel.

    ``conv_norm_act``: a conv/linear absorbs a following BN or layer scale and activation.
    ``residual_add``: a conv kernel absorbs the residual add reading its output (and the
    activation after the add), the add's other operand becoming an extra read.
    """

    conv_norm_act: bool = True
    residual_add: bool = True


class BlockKernels(NamedTuple):
    """The fused kernels of one block: names and the feature rows (n x len(columns))."""

    names: tuple[str, ...]
    rows: np.ndarray


class _Kernel:
    __slots__ = ("add_elements", "fused_add", "indices", "layers", "state", "tail")

    def __init__(self, index: int, layer: Layer) -> None:
        self.layers = [layer]
        self.indices = [index]
        self.tail = index
        # conv-type kernels progress conv -> norm -> act -> add -> act; others never fuse
        self.state = "conv" if layer.op in ("conv", "linear") else "closed"
        self.fused_add = 0
        self.add_elements = 0


_NEXT_STATE = {
    ("conv", "norm"): "norm",
    ("conv", "act"): "act", ("norm", "act"): "act",
    ("conv", "add"): "add", ("norm", "add"): "add", ("act", "add"): "add",
    ("add", "act"): "closed",
}


def fuse(layers: tuple[Layer, ...], rules: FusionRules) -> list[list[Layer]]:
    """Group a block's layers (block-local ``inputs``) into kernels, in execution order."""
    return [k.layers for k in _fuse(layers, rules)]


def _fuse(layers: tuple[Layer, ...], rules: FusionRules) -> list[_Kernel]:
    consumers = [0] * len(layers)
    for layer in layers:
        for i in layer.inputs:
            if i >= 0:
                consumers[i] += 1
    kernels: list[_Kernel] = []
    kernel_of: dict[int, _Kernel] = {}
    input_elements = layers[0].in_elements if layers else 0
    for j, layer in enumerate(layers):
        if op_class(layer) is None:  # a view: no kernel
            source = kernel_of.get(layer.inputs[0])
            if source is not None:
                kernel_of[j] = source
            continue
        step = ("norm" if layer.op in _NORM_FOLDABLE else
                "act" if layer.op == "act" else
                "add" if layer.op == "add" else None)
        allowed = (rules.conv_norm_act if step in ("norm", "act") else
                   rules.residual_add if step == "add" else False)
        # an add fuses into the producer that runs last (the other operand is a read)
        producer = max(layer.inputs)
        target = kernel_of.get(producer) if producer >= 0 else None
        if (allowed and step is not None and target is not None and target.tail == producer
                and consumers[producer] == 1 and (target.state, step) in _NEXT_STATE
                and not (step == "act" and target.state == "add" and not rules.residual_add)):
            target.layers.append(layer)
            target.indices.append(j)
            target.tail = j
            target.state = _NEXT_STATE[(target.state, step)]
            if step == "add":
                target.fused_add = 1
                other = min(layer.inputs)
                target.add_elements = (input_elements if other < 0
                                       else layers[other].out_elements)
            kernel_of[j] = target
            continue
        kernel = _Kernel(j, layer)
        kernels.append(kernel)
        kernel_of[j] = kernel
    return kernels


def fused_indices(layers: tuple[Layer, ...], rules: FusionRules) -> list[list[int]]:
    """Like :func:`fuse`, as indices into ``layers`` (to run a kernel on its own)."""
    return [k.indices for k in _fuse(layers, rules)]


def _row(kernel: _Kernel, layers: tuple[Layer, ...], input_elements: Any) -> list[Any]:
    """The columns of a kernel row but the op class (ints, or arrays for many blocks)."""
    head = kernel.layers[0]
    read = sum(input_elements if i < 0 else layers[i].out_elements for i in head.inputs)
    flops = layer_flops(head)
    weights = sum(layer_params(x) for x in kernel.layers if x.op in _WEIGHTED)
    return [
        head.c_in, head.h_in, head.w_in, head.c_out, head.h_out, head.w_out, head.kernel,
        head.stride, head.groups, kernel.fused_add, len(kernel.layers) - 1, flops,
        read + kernel.add_elements, head.out_elements, weights,
    ]


def _class_index(layer: Layer) -> int:
    return OP_CLASS_INDEX[str(op_class(layer))]


def kernel_name(kernel_layers: list[Layer]) -> str:
    return "+".join(x.name for x in kernel_layers)


@lru_cache(maxsize=1 << 16)
def block_kernels(fn: Callable[..., tuple[Layer, ...]], args: tuple[Any, ...],
                  rules: FusionRules) -> BlockKernels:
    """The fused kernels of the block ``fn(*args)`` under ``rules``; memoized (pure)."""
    layers = fn(*args)
    fused = _fuse(layers, rules)
    input_elements = layers[0].in_elements if layers else 0
    rows = np.array([[_class_index(k.layers[0]), *_row(k, layers, input_elements)]
                     for k in fused], dtype=np.float64)
    rows = rows.reshape(len(fused), len(KERNEL_COLUMNS))
    rows.setflags(write=False)
    return BlockKernels(tuple(kernel_name(k.layers) for k in fused), rows)


def kernels_many(keys: Sequence[tuple[Any, ...]], rules: FusionRules,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The kernel rows of many blocks (keys of :class:`~archdesign.layers.NumberedRuns`),
    block after block in the order of ``keys``, and how many rows each block has: each
    block's rows are those :func:`block_kernels` gives, in its order.

    Stage blocks are fused once per structure on array-valued layers
    (:func:`~archdesign.layers.expand_many`: the fusion of a structure does not depend on
    its widths) and their columns filled for all its blocks at once; stems and heads come
    from :func:`block_kernels`. The op class of a kernel depends on its head layer's op,
    input channels and groups (depthwise or dense): it is asked of the op table once per
    distinct triple.
    """
    parts: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    heads: list[Layer] = []  # per batched kernel: its head layer (arrays) for the class
    head_ops: dict[str, int] = {}  # per op: the first of its head layers
    head_of: list[np.ndarray] = []
    for j, key in enumerate(keys):
        if not is_stage_key(key):
            rows = block_kernels(*numbered_block(key), rules).rows
            parts.append(rows)
            owners.append(np.full(len(rows), j, dtype=np.int64))
            head_of.append(np.full(len(rows), -1, dtype=np.int64))
    for where, layers in expand_many(keys):
        fused = _fuse(layers, rules)
        if not fused:
            continue
        n = len(where)
        rows = np.empty((n, len(fused), len(KERNEL_COLUMNS)))  # block x kernel x column
        for i, kernel in enumerate(fused):
            values = dict(enumerate(_row(kernel, layers, layers[0].in_elements), 1))
            # the columns every block shares at once, then those that vary, stacked
            shared = [c for c, v in values.items() if not isinstance(v, np.ndarray)]
            varying = [c for c, v in values.items() if isinstance(v, np.ndarray)]
            rows[:, i, shared] = [values[c] for c in shared]
            if varying:
                rows[:, i, varying] = np.stack([values[c] for c in varying], axis=1)
        parts.append(rows.reshape(-1, len(KERNEL_COLUMNS)))
        owners.append(np.repeat(where, len(fused)))
        head_of.append(np.tile(np.arange(len(heads), len(heads) + len(fused)), n))
        for kernel in fused:  # one head layer per op stands for its op's kernels
            heads.append(kernel.layers[0])
            head_ops.setdefault(kernel.layers[0].op, len(heads) - 1)
    if not parts:
        return np.zeros((0, len(KERNEL_COLUMNS))), np.zeros(len(keys), dtype=np.int64)
    rows = np.concatenate(parts)
    head = np.concatenate(head_of)
    batched = np.flatnonzero(head >= 0)
    if len(batched):
        c_in = rows[batched, COL["c_in"]].astype(np.int64)
        groups = rows[batched, COL["groups"]].astype(np.int64)
        bits = int(max(c_in.max(), groups.max())).bit_length()
        op = np.array([head_ops[x.op] for x in heads], dtype=np.int64)[head[batched]]
        codes, inverse = np.unique((op << 2 * bits) | (c_in << bits) | groups,
                                   return_inverse=True)
        mask = (1 << bits) - 1
        classes = [_class_index(heads[code >> 2 * bits]._replace(
            c_in=(code >> bits) & mask, groups=code & mask)) for code in codes.tolist()]
        rows[batched, COL["op_class"]] = np.array(classes, dtype=np.float64)[
            inverse.reshape(-1)]
    owner = np.concatenate(owners)
    return rows[np.argsort(owner, kind="stable")], np.bincount(owner, minlength=len(keys))


def network_kernels(spec: ArchSpec, rules: FusionRules) -> tuple[list[str], np.ndarray]:
    """All fused kernels of a network: full names (``block.layer+...``) and rows."""
    names: list[str] = []
    parts = []
    for block in blocks(spec):
        bk = block_kernels(block.fn, block.args, rules)
        names.extend(f"{block.name}.{n}" for n in bk.names)
        parts.append(bk.rows)
    return names, np.concatenate(parts, axis=0)
