"""Exact costs of a network: FLOPs, parameters, activations, memory, bytes moved.

Conventions (stated in every exported spec, see ``spec.COUNTING_CONVENTIONS``):

- **flops**: multiply-accumulates of conv and linear layers, k²·c_in·c_out·h_out·w_out/g
  and c_in·c_out, exactly as fvcore counts them. Bias additions are not counted (fvcore
  does not count them; DESIGN.md's pycls-style "+bias" term is dropped so the two agree).
  fvcore also estimates FLOPs for normalization and global pooling; published complexity
  tables do not count those, and neither do we.
- **params**: weights + biases + 2 per normalized channel + 1 per layer-scale channel.
- **activations**: output elements of every conv and linear layer and of (non-global)
  pooling layers (pycls). fvcore does not count pooling outputs: the one difference.
- **peak_activation_bytes**: inference with elementwise ops in place; the max over layers
  of the bytes of all tensors alive while the layer runs (its inputs, its output, and any
  tensor held for a later residual add).
- **bytes_moved**: per layer, activation bytes read and written plus weight bytes.

Everything is derived from the block expansion in :mod:`archdesign.layers`; per-block
summaries are memoized so that scoring a spec costs a few dictionary look-ups per block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from archdesign.layers import (
    NumberedRuns,
    block_runs,
    blocks,
    expand_many,
    is_stage_key,
    number_runs,
    numbered_block,
    stage_name,
)
from archdesign.ops import (
    INPLACE_OPS,
    Layer,
    layer_activations,
    layer_flops,
    layer_params,
    moves_data,
)
from archdesign.spec import ArchSpec

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"dtype: {dtype!r} is not one of {sorted(DTYPE_BYTES)}") from None


# -- per layer: the op table's costs (archdesign.ops) -------------------------------------

__all__ = ["BlockCost", "Cost", "LayerCost", "block_cost", "cost", "cost_by_layer",
           "cost_by_stage", "cost_many", "dtype_bytes", "layer_activations", "layer_flops",
           "layer_moved_elements", "layer_params", "live_sets", "peak_elements",
           "pool_activations", "summarize"]


def layer_moved_elements(layer: Layer, inputs: tuple[Layer | int, ...]) -> int:
    """Activation elements read and written by ``layer`` (per sample)."""
    if not moves_data(layer):
        return 0
    read = sum(x if isinstance(x, int) else x.out_elements for x in inputs)
    return read + layer.out_elements


# -- per block: memoized summaries -------------------------------------------------------


class BlockCost(NamedTuple):
    """Figures of one block, per sample (peak and moved elements scale with batch)."""

    flops: int
    params: int
    activations: int
    pool_activations: int
    peak_elements: int
    moved_elements: int


def _producers(layers: tuple[Layer, ...], layer: Layer) -> tuple[Layer | int, ...]:
    return tuple(layers[0].in_elements if i < 0 else layers[i] for i in layer.inputs)


def live_sets(layers: tuple[Layer, ...]) -> list[tuple[int, ...]]:
    """The buffers live while running a block: for the block input and after each layer
    that allocates one, the allocating layers (-1: the block input) whose buffers are live.

    An in-place op's output shares its first input's buffer. A buffer is live from the
    layer that allocates it to the last layer that reads it (the block output to the end).
    """
    return list(_live_sets(tuple((layer.op in INPLACE_OPS, layer.inputs) for layer in layers)))


@lru_cache(maxsize=1 << 12)
def _live_sets(graph: tuple[tuple[bool, tuple[int, ...]], ...]) -> tuple[tuple[int, ...], ...]:
    """:func:`live_sets` of a block's dataflow graph, (in place, inputs) per layer: a
    block's liveness depends on nothing else, so its few graphs are memoized."""
    n = len(graph)
    buffer_of = [0] * n  # index of the allocating layer; -1 = block input
    allocated = [-1]
    last_use = {-1: -1}
    for j, (inplace, inputs) in enumerate(graph):
        for i in inputs:
            b = -1 if i < 0 else buffer_of[i]
            if last_use[b] < j:
                last_use[b] = j
        if inplace:
            first = inputs[0]
            buffer_of[j] = -1 if first < 0 else buffer_of[first]
        else:
            buffer_of[j] = j
            allocated.append(j)
            last_use[j] = j
    last_use[buffer_of[-1]] = n  # the block output outlives the block
    return ((-1,), *(tuple(b for b in allocated if b <= j <= last_use[b])
                     for j in allocated if j >= 0))


def _peak(layers: tuple[Layer, ...], block_input: Any, outs: list[Any]) -> Any:
    """Peak live elements of a non-empty block, given its input and layer output sizes."""
    peak: Any = 0
    for live in live_sets(layers):
        total = sum([block_input if b < 0 else outs[b] for b in live])
        peak = np.maximum(peak, total) if isinstance(total, np.ndarray) else max(peak, total)
    return peak


def peak_elements(layers: tuple[Layer, ...]) -> int:
    """Peak live activation elements while running a block (per sample; an identity block
    runs nothing)."""
    if not layers:
        return 0
    peak: int = _peak(layers, layers[0].in_elements, [x.out_elements for x in layers])
    return peak


def summarize(layers: tuple[Layer, ...]) -> BlockCost:
    """A block's figures from its layers, in one pass (this is the hot path of a search)."""
    flops = params = acts = pool_acts = moved = 0
    outs = [x.out_elements for x in layers]
    block_input = layers[0].in_elements if layers else 0
    for layer, out in zip(layers, outs, strict=True):
        flops += layer_flops(layer)
        params += layer_params(layer)
        layer_acts = layer_activations(layer)
        acts += layer_acts
        if layer.op == "maxpool":
            pool_acts += layer_acts
        if moves_data(layer):
            moved += out + sum([block_input if i < 0 else outs[i] for i in layer.inputs])
    peak = _peak(layers, block_input, outs) if layers else 0
    return BlockCost(flops, params, acts, pool_acts, peak, moved)


@lru_cache(maxsize=1 << 16)
def block_cost(fn: Callable[..., tuple[Layer, ...]], args: tuple[Any, ...]) -> BlockCost:
    return summarize(fn(*args))


# -- per network -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cost:
    """Costs of a network (or a part of it). FLOPs and activations are per sample."""

    flops: int
    params: int
    activations: int
    peak_activation_bytes: int
    bytes_moved: int
    batch: int
    dtype: str

    def to_dict(self) -> dict[str, int | str]:
        return {"flops": self.flops, "params": self.params, "activations": self.activations,
                "peak_activation_bytes": self.peak_activation_bytes,
                "bytes_moved": self.bytes_moved, "batch": self.batch, "dtype": self.dtype}


def _total(parts: list[tuple[BlockCost, int]], batch: int, dtype: str) -> Cost:
    """Totals of (block figures, number of such blocks) pairs."""
    nbytes = dtype_bytes(dtype)
    flops = params = acts = moved = peak = 0
    for (block_flops, block_params, block_acts, _, block_peak, block_moved), count in parts:
        flops += block_flops * count
        params += block_params * count
        acts += block_acts * count
        moved += block_moved * count
        if block_peak > peak:
            peak = block_peak
    return Cost(flops=flops, params=params, activations=acts,
                peak_activation_bytes=peak * batch * nbytes,
                bytes_moved=(moved * batch + params) * nbytes, batch=batch, dtype=dtype)


def _check_batch(batch: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: expected a positive integer, got {batch!r}")


def cost(spec: ArchSpec, batch: int = 1, dtype: str = "float32") -> Cost:
    """Totals for the whole network."""
    _check_batch(batch)
    return _total([(block_cost(fn, args), repeat) for _, _, repeat, fn, args in block_runs(spec)],
                  batch, dtype)


def pool_activations(spec: ArchSpec) -> int:
    """Pooling outputs counted in ``activations`` (what fvcore leaves out)."""
    return sum(block_cost(r.fn, r.args).pool_activations * r.repeat for r in block_runs(spec))


def cost_by_stage(spec: ArchSpec, batch: int = 1,
                  dtype: str = "float32") -> list[tuple[str, Cost]]:
    """Totals per part: ``stem``, ``s1`` ... ``sN``, ``head``."""
    _check_batch(batch)
    groups: dict[int, list[tuple[BlockCost, int]]] = {}
    for r in block_runs(spec):
        groups.setdefault(r.stage, []).append((block_cost(r.fn, r.args), r.repeat))
    out = []
    for stage, parts in groups.items():
        name = ("stem" if stage < 0 else "head" if stage == len(spec.stages)
                else stage_name(stage))
        out.append((name, _total(parts, batch, dtype)))
    return out


def _columns(part: BlockCost) -> tuple[Any, ...]:
    """The figures ``cost_many`` collects per block, in the rows of its table."""
    return (part.flops, part.params, part.activations, part.moved_elements,
            part.peak_elements)


def cost_many(specs: list[ArchSpec], batch: int = 1, dtype: str = "float32",
              runs: NumberedRuns | None = None) -> dict[str, np.ndarray]:
    """:func:`cost` of many specs at once, as int64 arrays keyed like :class:`Cost`'s fields.

    The distinct blocks of the whole batch are expanded by structure on numpy arrays
    (:func:`archdesign.layers.expand_many`), so a large batch costs a few microseconds per
    spec instead of an expansion per new block. Equal, spec by spec, to :func:`cost`
    (tests check it). ``runs``: ``number_runs(specs)`` when the caller has it already.
    """
    _check_batch(batch)
    nbytes = dtype_bytes(dtype)
    # every distinct block once: the column of its figures
    batch_runs = number_runs(specs) if runs is None else runs
    keys = batch_runs.keys
    figures = np.zeros((5, len(keys)), dtype=np.int64)
    for j, key in enumerate(keys):  # stems and heads: few, memoized
        if not is_stage_key(key):
            figures[:, j] = _columns(block_cost(*numbered_block(key)))
    for where, block_layers in expand_many(keys):
        for row, value in enumerate(_columns(summarize(block_layers))):
            figures[row, where] = value
    # a spec's runs are consecutive: its totals reduce the slice that starts at its first
    count = np.array(batch_runs.counts, dtype=np.int64)
    starts = np.cumsum(count) - count
    column = np.array(batch_runs.numbers, dtype=np.int64)
    sums = np.add.reduceat(figures[:4, column] * np.array(batch_runs.repeats, dtype=np.int64),
                           starts, axis=1)
    peak = np.maximum.reduceat(figures[4, column], starts)
    flops, params, activations, moved = sums
    return {"flops": flops, "params": params, "activations": activations,
            "peak_activation_bytes": peak * batch * nbytes,
            "bytes_moved": (moved * batch + params) * nbytes}


@dataclass(frozen=True, slots=True)
class LayerCost:
    name: str
    op: str
    shape: str
    flops: int
    params: int
    activations: int
    bytes_moved: int


def cost_by_layer(spec: ArchSpec, batch: int = 1, dtype: str = "float32") -> list[LayerCost]:
    """Every layer with its figures (bytes for ``batch`` and ``dtype``)."""
    _check_batch(batch)
    nbytes = dtype_bytes(dtype)
    out = []
    for block in blocks(spec):
        block_layers = block.layers
        for layer in block_layers:
            moved = (layer_moved_elements(layer, _producers(block_layers, layer)) * batch
                     + layer_params(layer)) * nbytes
            shape = (f"{layer.c_in}x{layer.h_in}x{layer.w_in}->"
                     f"{layer.c_out}x{layer.h_out}x{layer.w_out}")
            out.append(LayerCost(f"{block.name}.{layer.name}", layer.op, shape,
                                 layer_flops(layer), layer_params(layer),
                                 layer_activations(layer), moved))
    return out
