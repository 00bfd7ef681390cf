"""The one expansion: an :class:`ArchSpec` to the ordered list of concrete layers.

Counting, the DeepMAD objective, latency models and the PyTorch builder all read this
expansion, so they cannot disagree. A network is a sequence of blocks (stem, the blocks of
each stage, head); each block expands through its kind's entry in
:data:`archdesign.block_kinds.BLOCK_KINDS` into :class:`~archdesign.ops.Layer` s. Block
expansions are pure and memoized, which is what makes scoring millions of candidates
cheap: a search space has few distinct blocks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from archdesign.block_kinds import (
    FLOAT_FIELDS,
    NUMERIC_FIELDS,
    OPTIONAL_FIELDS,
    BlockArgs,
    Program,
    Structure,
    block_structure,
    expand_block,
)
from archdesign.ops import INPLACE_OPS, Layer
from archdesign.spec import ArchSpec

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["INPLACE_OPS", "Block", "BlockRun", "Layer", "block_key", "block_layers",
           "block_output_hw", "block_runs", "blocks", "expand_many", "graph", "head_layers",
           "is_stage_key", "layers", "number_runs", "numbered_block", "stage_name",
           "stem_layers"]


class StemArgs(NamedTuple):
    in_channels: int
    resolution: int
    width: int
    kernel: int
    stride: int
    pool: bool
    patchify: bool  # ConvNeXt: a non-overlapping kxk/k conv with bias, then LayerNorm
    activation: str


class HeadArgs(NamedTuple):
    c_in: int
    h: int
    w: int
    width: int  # 1x1 conv + BN + activation before the pool (0: none)
    features: int  # linear + activation between the pool and the classifier (0: none)
    features_bias: bool
    num_classes: int
    pool_norm: bool  # ConvNeXt: LayerNorm after the pool
    activation: str


@lru_cache(maxsize=1 << 16)
def block_layers(*fields: Any) -> tuple[Layer, ...]:
    """Layers of one block (``fields``: a :class:`BlockArgs`); memoized (pure function)."""
    a = BlockArgs(*fields)
    return expand_block(block_structure(a), a)


@lru_cache(maxsize=1 << 14)
def block_output_hw(kind: str, stride: int, kernel: int, h: int, w: int) -> tuple[int, int]:
    """Spatial size a block produces: independent of its widths, so cheap to memoize and
    enough to walk a network without expanding every block."""
    # a width change takes every kind's shape-changing path (a skip block's conv, a
    # projection, ConvNeXt's downsampling), the one a stage's first block runs
    out = block_layers(*BlockArgs(kind, 8, 16, stride, kernel, h, w))
    return (out[-1].h_out, out[-1].w_out) if out else (h, w)


@lru_cache(maxsize=1 << 12)
def stem_layers(*fields: Any) -> tuple[Layer, ...]:
    a = StemArgs(*fields)
    p = Program(a.in_channels, a.resolution, a.resolution)
    if a.patchify:
        p.conv("conv", a.width, a.kernel, a.stride, bias=True, padding=0)
        p.unary("norm", "ln")
    else:
        p.conv_norm_act("stem", a.width, a.kernel, a.activation, a.stride)
    if a.pool:
        p.maxpool("pool", 3, 2)
    return tuple(p.layers)


@lru_cache(maxsize=1 << 12)
def head_layers(*fields: Any) -> tuple[Layer, ...]:
    a = HeadArgs(*fields)
    p = Program(a.c_in, a.h, a.w)
    if a.width:
        p.conv_norm_act("head", a.width, 1, a.activation, role="head")
    p.gap("pool", role="head")
    if a.pool_norm:
        p.unary("norm", "ln", role="head")
    p.unary("flatten", "flatten", role="head")
    if a.features:
        p.linear("features", a.features, a.features_bias)
        if a.activation != "none":
            p.unary("features_act", "act", a.activation, role="head")
    p.linear("fc", a.num_classes, True)
    return tuple(p.layers)


class Block(NamedTuple):
    """A placed block: where it sits in the network and how to expand it.

    ``layers`` is ``fn(*args)``, a memoized pure function, so a block is cheap to hold and
    its derived figures (costs, latency) can be memoized on ``(fn, args)``.
    """

    name: str
    stage: int  # -1: stem; len(spec.stages): head
    index: int  # type: ignore[assignment]  # block index within the stage
    fn: Callable[..., tuple[Layer, ...]]
    args: tuple[Any, ...]

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self.fn(*self.args)


class BlockRun(NamedTuple):
    """``repeat`` consecutive identical blocks (all blocks of a stage after its first)."""

    stage: int  # -1: stem; len(spec.stages): head
    first: int  # index within the stage of the first block of the run
    repeat: int  # how many identical blocks
    fn: Callable[..., tuple[Layer, ...]]
    args: tuple[Any, ...]


# Named tuples built with tuple.__new__: the same objects as calling the class, without the
# Python-level __new__ the class generates (block_runs builds ~30 per network; this is the
# hot path of cost, cost_many and the objectives).
_new = tuple.__new__


def block_runs(spec: ArchSpec) -> list[BlockRun]:
    """The network run-length encoded: the stem, each stage's first block, runs of
    identical consecutive blocks after it (one run of ``depth - 1`` in a uniform stage),
    the head. Whole-network figures that are sums (or maxima) over blocks only need to
    look at each run once."""
    stages = spec.stages
    patchify = stages[0].block == "convnext"
    st = spec.stem
    stem: StemArgs = _new(StemArgs, (spec.in_channels, spec.resolution, st.width, st.kernel,
                                     st.stride, st.pool, patchify,
                                     st.activation or stages[0].activation))
    out: list[BlockRun] = [_new(BlockRun, (-1, 0, 1, stem_layers, stem))]
    last = stem_layers(*stem)[-1]
    c, h, w = last.c_out, last.h_out, last.w_out
    for s, stage in enumerate(stages):
        width = stage.width
        if not stage.blocks:  # a uniform stage: its first block and one run of the rest
            kind, kernel, stride = stage.block, stage.kernel, stage.stride
            fields = (stage.expansion, stage.hidden_width, stage.group_width,
                      stage.se_ratio, stage.se_style, stage.activation,
                      stage.pointwise_groups)
            first: BlockArgs = _new(BlockArgs, (kind, c, width, stride, kernel, h, w, *fields))
            out.append(_new(BlockRun, (s, 0, 1, block_layers, first)))
            c = width
            h, w = block_output_hw(kind, stride, kernel, h, w)
            if stage.depth > 1:
                rest: BlockArgs = _new(BlockArgs, (kind, c, c, 1, kernel, h, w, *fields))
                out.append(_new(BlockRun, (s, 1, stage.depth - 1, block_layers, rest)))
            continue
        for j, config in enumerate(stage.block_configs()):
            stride = stage.stride if j == 0 else 1
            args = BlockArgs(config.kind, c, width, stride, config.kernel, h, w,
                             config.expansion, config.hidden_width, config.group_width,
                             config.se_ratio, config.se_style, config.activation,
                             config.pointwise_groups)
            previous = out[-1]
            if j > 1 and previous.args == args:
                out[-1] = BlockRun(s, previous.first, previous.repeat + 1, block_layers, args)
            else:
                out.append(BlockRun(s, j, 1, block_layers, args))
            c = width
            h, w = block_output_hw(config.kind, stride, config.kernel, h, w)
    head = spec.head
    args_head: HeadArgs = _new(HeadArgs, (c, h, w, head.width, head.features,
                                          head.features_bias, head.num_classes, patchify,
                                          head.activation or stages[-1].activation))
    out.append(_new(BlockRun, (len(stages), 0, 1, head_layers, args_head)))
    return out


class NumberedRuns(NamedTuple):
    """The runs of many networks with their distinct blocks numbered once (what the
    batched paths walk: :func:`archdesign.cost.cost_many`, latency ``predict_many``).

    A block's key is a stage block's :class:`BlockArgs` fields as a plain tuple, or a
    stem's or head's ``(function, arguments)``: plain tuples of numbers and strings are
    untracked by the garbage collector, named tuples never are, and tens of thousands of
    those kept alive trigger full collections that cost more than the walk itself.
    """

    keys: list[tuple[Any, ...]]  # by number
    numbers: list[int]  # per run, network by network in order: its block's number
    repeats: list[int]  # per run: how many identical blocks
    counts: list[int]  # per network: how many runs


def number_runs(specs: Sequence[ArchSpec]) -> NumberedRuns:
    """:func:`block_runs` of every spec, each distinct block numbered in order of first
    appearance (the hot loop of the batched paths: it keeps no run)."""
    unique: dict[tuple[Any, ...], int] = {}
    number = unique.setdefault
    numbers: list[int] = []
    repeats: list[int] = []
    counts: list[int] = []
    for spec in specs:
        runs = block_runs(spec)
        counts.append(len(runs))
        for run in runs:
            numbers.append(number(block_key(run.fn, run.args), len(unique)))
            repeats.append(run.repeat)
    return NumberedRuns(list(unique), numbers, repeats, counts)


def block_key(fn: Callable[..., tuple[Layer, ...]], args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The key of :class:`NumberedRuns` for the block ``fn(*args)``."""
    return args[:] if fn is block_layers else (fn, args)


def is_stage_key(key: tuple[Any, ...]) -> bool:
    """Whether a key of :class:`NumberedRuns` is a stage block's fields (else a
    ``(function, arguments)`` pair)."""
    return len(key) == len(BlockArgs._fields)


def numbered_block(key: tuple[Any, ...]) -> tuple[Callable[..., tuple[Layer, ...]],
                                                  tuple[Any, ...]]:
    """The ``(function, arguments)`` of a key of :class:`NumberedRuns` (a stage block's
    arguments as the plain tuple: equal, and equally hashed, to its BlockArgs)."""
    return (block_layers, key) if is_stage_key(key) else (key[0], key[1])


def _numeric_column(name: str, column: tuple[Any, ...]) -> np.ndarray:
    """A numeric field of many blocks as an array (an unset optional width as 0: blocks
    that leave it unset are grouped apart and expanded without it)."""
    if name in FLOAT_FIELDS:
        return np.array(column, dtype=np.float64)
    if name in OPTIONAL_FIELDS:
        return np.array([0 if x is None else x for x in column], dtype=np.int64)
    return np.array(column, dtype=np.int64)


def expand_many(keys: Sequence[tuple[Any, ...]]) -> Iterator[tuple[np.ndarray,
                                                                   tuple[Layer, ...]]]:
    """The stage blocks among ``keys`` (of :class:`NumberedRuns`) expanded by structure:
    per structure, the positions in ``keys`` of its blocks and their layers, every numeric
    field an array with one entry per block (in the order of the positions).

    Blocks are grouped by the fields that are not numbers and by which optional widths
    are unset; a group's structures are decided on its arrays (``block_structure``) and
    the blocks of each structure are expanded at once (``expand_block``): the same code
    that expands one block, so the figures derived from it are those of one block.
    """
    stage = [is_stage_key(key) for key in keys]
    block_col = np.flatnonzero(stage)
    if not len(block_col):
        return
    columns: list[Any] = list(zip(*compress(keys, stage), strict=True))
    fields = BlockArgs(*columns)
    labels = [name for name in BlockArgs._fields if name not in NUMERIC_FIELDS]
    unset_flags = [map(operator.is_, getattr(fields, name), repeat(None))
                   for name in OPTIONAL_FIELDS]
    shapes: dict[tuple[Any, ...], int] = {}
    shape = np.array([shapes.setdefault(x, len(shapes)) for x in zip(
        *(getattr(fields, name) for name in labels), *unset_flags, strict=True)],
        dtype=np.int64)
    numbers = {name: _numeric_column(name, getattr(fields, name)) for name in NUMERIC_FIELDS}
    for group, k in shapes.items():
        members = np.flatnonzero(shape == k)
        unset = {name for name, flag in zip(OPTIONAL_FIELDS, group[len(labels):], strict=True)
                 if flag}
        values: dict[str, Any] = {name: None if name in unset else numbers[name][members]
                                  for name in NUMERIC_FIELDS}
        batched = BlockArgs(**dict(zip(labels, group[:len(labels)], strict=True)), **values)
        # one row per structural choice, one column per block; a code per distinct column
        choices = np.array([np.broadcast_to(x, len(members))
                            for x in block_structure(batched)])
        codes = (choices.T.astype(np.int64) << np.arange(len(choices))).sum(axis=1)
        for code in np.unique(codes):
            picked = np.flatnonzero(codes == code)
            structure = Structure(*(bool(x) for x in choices[:, picked[0]]))
            subset: list[Any] = [v[picked] if isinstance(v, np.ndarray) else v
                                 for v in batched]
            sub = BlockArgs(*subset)
            yield block_col[members[picked]], expand_block(structure, sub)


def stage_name(stage: int) -> str:
    """The name of stage ``stage`` (0-based) everywhere: ``s1``, ``s2``, ... as the spaces'
    parameters (``s2.width``) name it."""
    return f"s{stage + 1}"


def blocks(spec: ArchSpec) -> list[Block]:
    """The network as placed blocks: stem, every block of every stage, head."""
    n_stages = len(spec.stages)
    out = []
    for run in block_runs(spec):
        for position in range(run.first, run.first + run.repeat):
            name = ("stem" if run.stage < 0 else "head" if run.stage == n_stages
                    else f"{stage_name(run.stage)}.b{position}")
            out.append(Block(name, run.stage, position, run.fn, run.args))
    return out


def layers(spec: ArchSpec) -> list[Layer]:
    """The ordered concrete layers of ``spec`` with full names and absolute inputs.

    ``inputs`` index into the returned list; -1 is the network input.
    """
    out: list[Layer] = []
    for block in blocks(spec):
        start = len(out)
        block_input = start - 1  # the previous block's last layer (-1 for the stem)
        for layer in block.layers:
            absolute = tuple(block_input if i < 0 else start + i for i in layer.inputs)
            out.append(layer._replace(name=f"{block.name}.{layer.name}", inputs=absolute))
    return out


def graph(spec: ArchSpec) -> nx.DiGraph:
    """The architecture as a DAG: one node per layer (attributes: the layer), plus 'input'."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_node("input", op="input")
    layer_list = layers(spec)
    for layer in layer_list:
        g.add_node(layer.name, layer=layer, op=layer.op)
        for i in layer.inputs:
            g.add_edge("input" if i < 0 else layer_list[i].name, layer.name)
    return g
