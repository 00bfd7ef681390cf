"""The one expansion: an :class:`ArchSpec` to the ordered list of concrete layers.

Counting, the DeepMAD objective, latency models and the PyTorch builder all read this
expansion, so they cannot disagree. A network is a sequence of blocks (stem, the blocks of
each stage, head); a block is a small dataflow program: an ordered tuple of
:class:`Layer`, each naming the earlier layers it reads (``inputs``; -1 is the block's
input). Block expansions are pure and memoized, which is what makes scoring millions of
candidates cheap: a search space has few distinct blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from archdesign.spec import ArchSpec

if TYPE_CHECKING:
    import networkx as nx

Op = Literal["conv", "linear", "bn", "ln", "act", "maxpool", "gap", "flatten", "add", "mul",
             "scale"]

# Ops that write their output over their first input (as inference runtimes do when they
# fuse them into the producing kernel): they allocate no activation memory.
INPLACE_OPS = frozenset({"bn", "ln", "act", "add", "mul", "scale", "flatten"})


class Layer(NamedTuple):
    """One concrete layer with its shapes (per sample; batch is applied by the caller).

    A named tuple rather than a dataclass: block expansion creates millions of these
    in a search, and tuples are several times cheaper to create.
    """

    name: str
    op: Op
    c_in: int
    c_out: int
    h_in: int
    w_in: int
    h_out: int
    w_out: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = False
    act: str = ""
    inputs: tuple[int, ...] = (-1,)

    @property
    def out_elements(self) -> int:
        return self.c_out * self.h_out * self.w_out

    @property
    def in_elements(self) -> int:
        return self.c_in * self.h_in * self.w_in


class _Program:
    """Appends layers to a block, tracking the output shape of each one."""

    def __init__(self, c: int, h: int, w: int) -> None:
        self.layers: list[Layer] = []
        self._input = (c, h, w)

    def shape(self, src: int) -> tuple[int, int, int]:
        if src < 0:
            return self._input
        layer = self.layers[src]
        return layer.c_out, layer.h_out, layer.w_out

    @property
    def last(self) -> int:
        return len(self.layers) - 1

    def conv(self, name: str, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
             bias: bool = False, padding: int | None = None, src: int | None = None) -> int:
        src = self.last if src is None else src
        c, h, w = self.shape(src)
        pad = kernel // 2 if padding is None else padding
        h_out = (h + 2 * pad - kernel) // stride + 1
        w_out = (w + 2 * pad - kernel) // stride + 1
        self.layers.append(Layer(name, "conv", c, c_out, h, w, h_out, w_out, kernel, stride,
                                 pad, groups, bias, "", (src,)))
        return self.last

    def unary(self, name: str, op: Op, act: str = "", src: int | None = None) -> int:
        """A shape-preserving op (norm, activation, layer scale)."""
        src = self.last if src is None else src
        c, h, w = self.shape(src)
        self.layers.append(Layer(name, op, c, c, h, w, h, w, act=act, inputs=(src,)))
        return self.last

    def binary(self, name: str, op: Op, a: int, b: int) -> int:
        c, h, w = self.shape(a)
        self.layers.append(Layer(name, op, c, c, h, w, h, w, inputs=(a, b)))
        return self.last

    def maxpool(self, name: str, kernel: int, stride: int) -> int:
        c, h, w = self.shape(self.last)
        pad = kernel // 2
        h_out = (h + 2 * pad - kernel) // stride + 1
        w_out = (w + 2 * pad - kernel) // stride + 1
        self.layers.append(Layer(name, "maxpool", c, c, h, w, h_out, w_out, kernel, stride,
                                 pad, inputs=(self.last,)))
        return self.last

    def gap(self, name: str, src: int | None = None) -> int:
        src = self.last if src is None else src
        c, h, w = self.shape(src)
        self.layers.append(Layer(name, "gap", c, c, h, w, 1, 1, inputs=(src,)))
        return self.last

    def conv_norm_act(self, suffix: str, c_out: int, kernel: int, activation: str | None,
                      stride: int = 1, groups: int = 1, src: int | None = None) -> int:
        self.conv(f"conv_{suffix}", c_out, kernel, stride, groups, src=src)
        self.unary(f"bn_{suffix}", "bn")
        if activation:
            self.unary(f"act_{suffix}", "act", activation)
        return self.last

    def squeeze_excite(self, c_squeeze: int, activation: str) -> int:
        x = self.last
        c, _, _ = self.shape(x)
        self.gap("se_pool")
        self.conv("se_reduce", c_squeeze, 1, bias=True)
        self.unary("se_act", "act", activation)
        self.conv("se_expand", c, 1, bias=True)
        gate = self.unary("se_gate", "act", "sigmoid")
        return self.binary("se_scale", "mul", x, gate)


# -- blocks ----------------------------------------------------------------------------
#
# Block expansions are written once and run two ways: on Python ints (one block, memoized,
# what everything reads) and on numpy integer arrays (many blocks of one structure at once,
# what `cost.cost_many` uses to score large batches). The branches that change a block's
# structure are therefore decided up front, as scalars, by `block_structure`; everything
# below them is arithmetic that works on both.


class Structure(NamedTuple):
    """The structural choices of a block, decided from its arguments."""

    project: bool  # projection shortcut (basic, bottleneck) / downsampling layer (convnext)
    expand: bool  # inverted residual: a 1x1 expansion conv (hidden width != input width)
    residual: bool  # inverted residual: identity shortcut (stride 1, same width)
    grouped: bool  # bottleneck: grouped kxk conv
    se: bool  # squeeze-excitation


def _width(x: Any) -> Any:
    """A derived channel count: rounded half to even (as Python's round), at least 1."""
    if isinstance(x, np.ndarray):
        return np.maximum(1, np.rint(x)).astype(np.int64)
    return max(1, round(x))


def block_structure(block: str, c_in: int, c_out: int, stride: int, expansion: float,
                    group_width: int | None, se_ratio: float) -> Structure:
    if block not in ("basic", "bottleneck", "inverted_residual", "convnext"):
        raise ValueError(f"unknown block kind {block!r}")
    changes_shape = stride != 1 or c_in != c_out
    inverted = block == "inverted_residual"
    return Structure(project=changes_shape and not inverted,
                     expand=inverted and _width(c_in * expansion) != c_in,
                     residual=inverted and not changes_shape,
                     grouped=block == "bottleneck" and group_width is not None,
                     se=se_ratio > 0)


def _basic(p: _Program, s: Structure, c_out: Any, stride: Any, kernel: Any, act: str) -> None:
    p.conv_norm_act("a", c_out, kernel, act, stride)
    main = p.conv_norm_act("b", c_out, kernel, None)
    _residual(p, s, c_out, stride, main, act)


def _bottleneck(p: _Program, s: Structure, c_in: Any, c_out: Any, stride: Any, kernel: Any,
                expansion: Any, group_width: Any, se_ratio: Any, act: str) -> None:
    inner = _width(c_out * expansion)
    p.conv_norm_act("a", inner, 1, act)
    groups = inner // group_width if s.grouped else 1
    p.conv_norm_act("b", inner, kernel, act, stride, groups)
    if s.se:
        p.squeeze_excite(_width(c_in * se_ratio), act)
    main = p.conv_norm_act("c", c_out, 1, None)
    _residual(p, s, c_out, stride, main, act)


def _residual(p: _Program, s: Structure, c_out: Any, stride: Any, main: int, act: str) -> None:
    shortcut = -1
    if s.project:
        p.conv("proj", c_out, 1, stride, src=-1)
        shortcut = p.unary("proj_bn", "bn")
    p.binary("add", "add", main, shortcut)
    p.unary("act_out", "act", act)


def _inverted_residual(p: _Program, s: Structure, c_in: Any, c_out: Any, stride: Any,
                       kernel: Any, expansion: Any, se_ratio: Any, act: str) -> None:
    hidden = _width(c_in * expansion)
    if s.expand:
        p.conv_norm_act("expand", hidden, 1, act)
    p.conv_norm_act("dw", hidden, kernel, act, stride, groups=hidden)
    if s.se:
        p.squeeze_excite(_width(c_in * se_ratio), act)
    main = p.conv_norm_act("project", c_out, 1, None)
    if s.residual:
        p.binary("add", "add", main, -1)


def _convnext(p: _Program, s: Structure, c_out: Any, stride: Any, kernel: Any, expansion: Any,
              act: str) -> None:
    block_input = -1
    if s.project:
        p.unary("down_norm", "ln", src=-1)
        block_input = p.conv("down_conv", c_out, stride, stride, bias=True, padding=0)
    p.conv("dw", c_out, kernel, groups=c_out, bias=True, src=block_input)
    p.unary("norm", "ln")
    p.conv("pw_expand", _width(c_out * expansion), 1, bias=True)
    p.unary("act", "act", act)
    p.conv("pw_project", c_out, 1, bias=True)
    main = p.unary("layer_scale", "scale")
    p.binary("add", "add", main, block_input)


def expand_block(block: str, s: Structure, c_in: Any, c_out: Any, stride: Any, kernel: Any,
                 expansion: Any, group_width: Any, se_ratio: Any, activation: str, h: Any,
                 w: Any) -> tuple[Layer, ...]:
    """The layers of blocks of structure ``s``; numeric arguments may be numpy arrays (then
    every numeric field of the layers is an array: one entry per block)."""
    p = _Program(c_in, h, w)
    if block == "basic":
        _basic(p, s, c_out, stride, kernel, activation)
    elif block == "bottleneck":
        _bottleneck(p, s, c_in, c_out, stride, kernel, expansion, group_width, se_ratio,
                    activation)
    elif block == "inverted_residual":
        _inverted_residual(p, s, c_in, c_out, stride, kernel, expansion, se_ratio, activation)
    else:
        _convnext(p, s, c_out, stride, kernel, expansion, activation)
    return tuple(p.layers)


@lru_cache(maxsize=1 << 16)
def block_layers(block: str, c_in: int, c_out: int, stride: int, kernel: int, expansion: float,
                 group_width: int | None, se_ratio: float, activation: str, h: int,
                 w: int) -> tuple[Layer, ...]:
    """Layers of one block reading a (c_in, h, w) input; memoized (pure function)."""
    s = block_structure(block, c_in, c_out, stride, expansion, group_width, se_ratio)
    return expand_block(block, s, c_in, c_out, stride, kernel, expansion, group_width,
                        se_ratio, activation, h, w)


@lru_cache(maxsize=1 << 14)
def block_output_hw(block: str, stride: int, kernel: int, h: int, w: int) -> tuple[int, int]:
    """Spatial size a block produces: independent of its widths, so cheap to memoize and
    enough to walk a network without expanding every block."""
    last = block_layers(block, 8, 8, stride, kernel, 1.0, None, 0.0, "relu", h, w)[-1]
    return last.h_out, last.w_out


@lru_cache(maxsize=1 << 12)
def stem_layers(in_channels: int, resolution: int, width: int, kernel: int, stride: int,
                 pool: bool, convnext: bool, activation: str) -> tuple[Layer, ...]:
    p = _Program(in_channels, resolution, resolution)
    if convnext:  # patchify: non-overlapping kxk/k conv with bias, then LayerNorm
        p.conv("conv", width, kernel, stride, bias=True, padding=0)
        p.unary("norm", "ln")
    else:
        p.conv_norm_act("stem", width, kernel, activation, stride)
    if pool:
        p.maxpool("pool", 3, 2)
    return tuple(p.layers)


@lru_cache(maxsize=1 << 12)
def head_layers(c_in: int, h: int, w: int, width: int, num_classes: int, convnext: bool,
                 activation: str) -> tuple[Layer, ...]:
    p = _Program(c_in, h, w)
    if width:
        p.conv_norm_act("head", width, 1, activation)
    p.gap("pool")
    if convnext:
        p.unary("norm", "ln")
    c, _, _ = p.shape(p.last)
    p.layers.append(Layer("flatten", "flatten", c, c, 1, 1, 1, 1, inputs=(p.last,)))
    p.layers.append(Layer("fc", "linear", c, num_classes, 1, 1, 1, 1, bias=True,
                          inputs=(p.last,)))
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


def block_runs(spec: ArchSpec) -> list[BlockRun]:
    """The network run-length encoded: a stage is its first block and, when deeper, one
    run of ``depth - 1`` repeated blocks. Whole-network figures that are sums (or maxima)
    over blocks only need to look at each run once."""
    convnext = spec.stages[0].block == "convnext"
    args: tuple[Any, ...] = (spec.in_channels, spec.resolution, spec.stem.width,
                             spec.stem.kernel, spec.stem.stride, spec.stem.pool, convnext,
                             spec.stages[0].activation)
    out = [BlockRun(-1, 0, 1, stem_layers, args)]
    last = stem_layers(*args)[-1]
    c, h, w = last.c_out, last.h_out, last.w_out
    for s, stage in enumerate(spec.stages):
        first = (stage.block, c, stage.width, stage.stride, stage.kernel, stage.expansion,
                 stage.group_width, stage.se_ratio, stage.activation, h, w)
        out.append(BlockRun(s, 0, 1, block_layers, first))
        c = stage.width
        h, w = block_output_hw(stage.block, stage.stride, stage.kernel, h, w)
        if stage.depth > 1:
            repeat = (stage.block, c, c, 1, stage.kernel, stage.expansion, stage.group_width,
                      stage.se_ratio, stage.activation, h, w)
            out.append(BlockRun(s, 1, stage.depth - 1, block_layers, repeat))
    args = (c, h, w, spec.head.width, spec.head.num_classes, convnext,
            spec.stages[-1].activation)
    out.append(BlockRun(len(spec.stages), 0, 1, head_layers, args))
    return out


def blocks(spec: ArchSpec) -> list[Block]:
    """The network as placed blocks: stem, every block of every stage, head."""
    n_stages = len(spec.stages)
    out = []
    for run in block_runs(spec):
        for position in range(run.first, run.first + run.repeat):
            name = ("stem" if run.stage < 0 else "head" if run.stage == n_stages
                    else f"stages.{run.stage}.{position}")
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
    import networkx as nx  # only graph() needs it, and it costs a third of a second

    g = nx.DiGraph()
    g.add_node("input", op="input")
    layer_list = layers(spec)
    for layer in layer_list:
        g.add_node(layer.name, layer=layer, op=layer.op)
        for i in layer.inputs:
            g.add_edge("input" if i < 0 else layer_list[i].name, layer.name)
    return g
