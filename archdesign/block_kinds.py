"""Block kinds: one registry (:data:`BLOCK_KINDS`) of how each kind of block expands.

A block is a small dataflow program: an ordered tuple of :class:`~archdesign.ops.Layer`,
each naming the earlier layers it reads (``inputs``; -1 is the block's input). Each kind
is registered once, as a :class:`BlockKind`: the structural choices it makes from its
arguments (:class:`Structure`), its expansion into layers, and the rules its fields must
satisfy. Specs, costs, the builder, latency models and the MP all reach a kind through
this table.

Expansions are written once and run two ways: on Python ints (one block, memoized, what
everything reads) and on numpy integer arrays (many blocks of one structure at once, what
:func:`archdesign.cost.cost_many` uses). The branches that change a block's structure are
therefore decided up front by the kind's ``structure``, whose rules are elementwise
(``&``, ``|``, comparisons): on one block's arguments they give scalars, on many blocks'
arrays they give one boolean array per choice, which ``cost_many`` splits its batch by.
Everything after them is arithmetic that works on both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from archdesign.ops import Layer, Op, Role, make_divisible


class BlockArgs(NamedTuple):
    """Everything a block's expansion depends on: its fields and its input shape."""

    kind: str
    c_in: int
    c_out: int
    stride: int
    kernel: int
    h: int
    w: int
    expansion: float = 1.0
    hidden_width: int | None = None  # explicit inner width (None: the expansion rule)
    group_width: int | None = None  # channels per group of a bottleneck's kxk conv
    se_ratio: float = 0.0
    se_style: str = "efficientnet"
    activation: str = "relu"
    pointwise_groups: int = 1  # groups of an IRF block's 1x1 convs


#: Fields of :class:`BlockArgs` that are numbers (arrays in a batched expansion); the
#: others (and whether the optional ones are set) are part of the structure.
NUMERIC_FIELDS: tuple[str, ...] = ("c_in", "c_out", "stride", "kernel", "expansion",
                                   "hidden_width", "group_width", "se_ratio",
                                   "pointwise_groups", "h", "w")
FLOAT_FIELDS = frozenset({"expansion", "se_ratio"})
#: Numeric fields that may be unset (None); whether they are is part of the structure.
OPTIONAL_FIELDS: tuple[str, ...] = ("hidden_width", "group_width")


class Structure(NamedTuple):
    """The structural choices of a block, decided from its arguments (bools; boolean
    arrays, one entry per block, when the arguments are arrays)."""

    project: bool  # a projection shortcut / downsampling layer / skip block's conv
    expand: bool  # a 1x1 expansion conv
    residual: bool  # an identity shortcut
    grouped: bool  # a grouped kxk conv (bottleneck)
    se: bool  # squeeze-excitation
    shuffle: bool  # a channel shuffle after grouped 1x1 convs


class BlockConfig(NamedTuple):
    """The fields of one block of a stage (its stage's, with per-block overrides)."""

    kind: str
    kernel: int
    expansion: float
    hidden_width: int | None
    group_width: int | None
    se_ratio: float
    se_style: str
    activation: str
    pointwise_groups: int


def _width(x: Any) -> Any:
    """A derived channel count: rounded half to even (as Python's round), at least 1."""
    if hasattr(x, "dtype"):
        import numpy as np

        return np.maximum(1, np.rint(x)).astype(np.int64)
    return max(1, round(x))


def _floor(x: Any) -> Any:
    if hasattr(x, "dtype"):
        import numpy as np

        return np.floor(x).astype(np.int64)
    return int(x)


class Program:
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

    def conv(self, name: str, c_out: Any, kernel: Any, stride: Any = 1, groups: Any = 1,
             bias: bool = False, padding: Any = None, src: int | None = None,
             role: Role = "main") -> int:
        src = self.last if src is None else src
        c, h, w = self.shape(src)
        pad = kernel // 2 if padding is None else padding
        h_out = (h + 2 * pad - kernel) // stride + 1
        w_out = (w + 2 * pad - kernel) // stride + 1
        self.layers.append(Layer(name, "conv", c, c_out, h, w, h_out, w_out, kernel, stride,
                                 pad, groups, bias, "", (src,), role))
        return self.last

    def linear(self, name: str, c_out: Any, bias: bool, role: Role = "head") -> int:
        c, _, _ = self.shape(self.last)
        self.layers.append(Layer(name, "linear", c, c_out, 1, 1, 1, 1, bias=bias,
                                 inputs=(self.last,), role=role))
        return self.last

    def unary(self, name: str, op: Op, act: str = "", src: int | None = None,
              groups: Any = 1, role: Role = "main") -> int:
        """A shape-preserving op (norm, activation, layer scale, shuffle, flatten)."""
        src = self.last if src is None else src
        c, h, w = self.shape(src)
        self.layers.append(Layer(name, op, c, c, h, w, h, w, groups=groups, act=act,
                                 inputs=(src,), role=role))
        return self.last

    def binary(self, name: str, op: Op, a: int, b: int, role: Role = "main") -> int:
        c, h, w = self.shape(a)
        self.layers.append(Layer(name, op, c, c, h, w, h, w, inputs=(a, b), role=role))
        return self.last

    def maxpool(self, name: str, kernel: int, stride: int) -> int:
        c, h, w = self.shape(self.last)
        pad = kernel // 2
        h_out = (h + 2 * pad - kernel) // stride + 1
        w_out = (w + 2 * pad - kernel) // stride + 1
        self.layers.append(Layer(name, "maxpool", c, c, h, w, h_out, w_out, kernel, stride,
                                 pad, inputs=(self.last,)))
        return self.last

    def gap(self, name: str, role: Role) -> int:
        c, h, w = self.shape(self.last)
        self.layers.append(Layer(name, "gap", c, c, h, w, 1, 1, inputs=(self.last,),
                                 role=role))
        return self.last

    def conv_norm_act(self, suffix: str, c_out: Any, kernel: Any, activation: str | None,
                      stride: Any = 1, groups: Any = 1, src: int | None = None,
                      role: Role = "main") -> int:
        self.conv(f"conv_{suffix}", c_out, kernel, stride, groups, src=src, role=role)
        self.unary(f"bn_{suffix}", "bn", role=role)
        if activation and activation != "none":
            self.unary(f"act_{suffix}", "act", activation, role=role)
        return self.last

    def squeeze_excite(self, a: BlockArgs, hidden: Any) -> int:
        """Squeeze-excitation of the last layer's output, in the style ``a.se_style``:

        - ``efficientnet``: round(block input width · se_ratio) channels, the block's
          activation, a sigmoid gate (EfficientNet, RegNetY);
        - ``mobilenetv3``: make_divisible(⌊hidden width · se_ratio⌋, 8) channels, ReLU, a
          hard-sigmoid gate (MobileNetV3, Once-for-All).
        """
        if a.se_style == "mobilenetv3":
            squeeze, act, gate = make_divisible(_floor(hidden * a.se_ratio), 8), "relu", \
                "hsigmoid"
        else:
            squeeze, act, gate = _width(a.c_in * a.se_ratio), a.activation, "sigmoid"
        x = self.last
        c, _, _ = self.shape(x)
        self.gap("se_pool", role="se")
        self.conv("se_reduce", squeeze, 1, bias=True, role="se")
        self.unary("se_act", "act", act, role="se")
        self.conv("se_expand", c, 1, bias=True, role="se")
        gated = self.unary("se_gate", "act", gate, role="se")
        return self.binary("se_scale", "mul", x, gated, role="se")


# -- the kinds -------------------------------------------------------------------------------


def _changes_shape(a: BlockArgs) -> bool:
    return (a.stride != 1) | (a.c_in != a.c_out)


def _inverted_hidden(a: BlockArgs) -> Any:
    return a.hidden_width if a.hidden_width is not None else _width(a.c_in * a.expansion)


def _stage_hidden(a: BlockArgs) -> Any:
    return a.hidden_width if a.hidden_width is not None else _width(a.c_out * a.expansion)


def _residual(p: Program, s: Structure, a: BlockArgs, main: int) -> None:
    shortcut = -1
    if s.project:
        p.conv("proj", a.c_out, 1, a.stride, src=-1, role="shortcut")
        shortcut = p.unary("proj_bn", "bn", role="shortcut")
    p.binary("add", "add", main, shortcut)
    p.unary("act_out", "act", a.activation)


def _residual_structure(a: BlockArgs) -> Structure:
    return Structure(project=_changes_shape(a), expand=False, residual=True,
                     grouped=a.group_width is not None, se=a.se_ratio > 0, shuffle=False)


def _basic(p: Program, s: Structure, a: BlockArgs) -> None:
    p.conv_norm_act("a", a.c_out, a.kernel, a.activation, a.stride)
    main = p.conv_norm_act("b", a.c_out, a.kernel, None)
    _residual(p, s, a, main)


def _bottleneck(p: Program, s: Structure, a: BlockArgs) -> None:
    inner = _stage_hidden(a)
    p.conv_norm_act("a", inner, 1, a.activation)
    groups = inner // a.group_width if s.grouped else 1
    p.conv_norm_act("b", inner, a.kernel, a.activation, a.stride, groups)
    if s.se:
        p.squeeze_excite(a, inner)
    main = p.conv_norm_act("c", a.c_out, 1, None)
    _residual(p, s, a, main)


def _inverted_structure(a: BlockArgs) -> Structure:
    hidden = _inverted_hidden(a)
    return Structure(project=False, expand=(a.kind == "irf") | (hidden != a.c_in),
                     residual=(a.stride == 1) & (a.c_in == a.c_out), grouped=False,
                     se=a.se_ratio > 0, shuffle=(a.kind == "irf") & (a.pointwise_groups > 1))


def _inverted_residual(p: Program, s: Structure, a: BlockArgs) -> None:
    hidden = _inverted_hidden(a)
    groups = a.pointwise_groups if a.kind == "irf" else 1
    if s.expand:
        p.conv_norm_act("expand", hidden, 1, a.activation, groups=groups)
    if s.shuffle:
        p.unary("shuffle", "shuffle", groups=groups)
    p.conv_norm_act("dw", hidden, a.kernel, a.activation, a.stride, groups=hidden)
    if s.se:
        p.squeeze_excite(a, hidden)
    main = p.conv_norm_act("project", a.c_out, 1, None, groups=groups)
    if s.residual:
        p.binary("add", "add", main, -1)


def _convnext_structure(a: BlockArgs) -> Structure:
    return Structure(project=_changes_shape(a), expand=False, residual=True, grouped=False,
                     se=False, shuffle=False)


def _convnext(p: Program, s: Structure, a: BlockArgs) -> None:
    block_input = -1
    if s.project:
        p.unary("down_norm", "ln", src=-1)
        block_input = p.conv("down_conv", a.c_out, a.stride, a.stride, bias=True, padding=0)
    p.conv("dw", a.c_out, a.kernel, groups=a.c_out, bias=True, src=block_input)
    p.unary("norm", "ln")
    p.conv("pw_expand", _stage_hidden(a), 1, bias=True)
    p.unary("act", "act", a.activation)
    p.conv("pw_project", a.c_out, 1, bias=True)
    main = p.unary("layer_scale", "scale")
    p.binary("add", "add", main, block_input)


def _skip_structure(a: BlockArgs) -> Structure:
    return Structure(project=_changes_shape(a), expand=False, residual=False, grouped=False,
                     se=False, shuffle=False)


def _skip(p: Program, s: Structure, a: BlockArgs) -> None:
    if s.project:
        p.conv_norm_act("skip", a.c_out, 1, a.activation, a.stride)


# -- field rules ------------------------------------------------------------------------------


def _no_group_width(c: BlockConfig, c_in: int, width: int) -> str | None:
    if c.group_width is not None:
        return (f"group_width: only bottleneck blocks take a group width (the kxk conv of "
                f"{c.kind} blocks is depthwise or dense); use null")
    return None


def _check_basic(c: BlockConfig, c_in: int, width: int) -> str | None:
    if c.expansion != 1:
        return f"expansion: basic blocks have no expansion; must be 1, got {c.expansion}"
    if c.se_ratio:
        return "se_ratio: basic blocks have no squeeze-excitation; must be 0"
    if c.hidden_width is not None:
        return "hidden_width: basic blocks have no inner width; use null"
    return _no_group_width(c, c_in, width)


def _as_args(c: BlockConfig, c_in: int, width: int) -> BlockArgs:
    """A block of these fields between these widths (shapes do not matter to the rules)."""
    return BlockArgs(c.kind, c_in, width, 1, c.kernel, 1, 1, c.expansion, c.hidden_width,
                     c.group_width, c.se_ratio, c.se_style, c.activation, c.pointwise_groups)


def _check_bottleneck(c: BlockConfig, c_in: int, width: int) -> str | None:
    if c.group_width is not None:
        inner = _stage_hidden(_as_args(c, c_in, width))
        if inner % c.group_width:
            return (f"group_width: {c.group_width} does not divide the bottleneck width "
                    f"{inner}")
    return None


def _check_inverted(c: BlockConfig, c_in: int, width: int) -> str | None:
    return _no_group_width(c, c_in, width)


def _check_irf(c: BlockConfig, c_in: int, width: int) -> str | None:
    g = c.pointwise_groups
    hidden = _inverted_hidden(_as_args(c, c_in, width))
    for name, channels in (("input width", c_in), ("hidden width", hidden),
                           ("output width", width)):
        if channels % g:
            return f"pointwise_groups: {g} does not divide the block's {name} {channels}"
    return _no_group_width(c, c_in, width)


def _check_convnext(c: BlockConfig, c_in: int, width: int) -> str | None:
    if c.se_ratio:
        return "se_ratio: convnext blocks have no squeeze-excitation; must be 0"
    return _no_group_width(c, c_in, width)


def _check_skip(c: BlockConfig, c_in: int, width: int) -> str | None:
    if c.se_ratio:
        return "se_ratio: skip blocks have no squeeze-excitation; must be 0"
    return _no_group_width(c, c_in, width)


@dataclass(frozen=True, slots=True)
class BlockKind:
    """One kind of block: its structure, its expansion and its field rules."""

    description: str
    structure: Callable[[BlockArgs], Structure]
    expand: Callable[[Program, Structure, BlockArgs], None]
    check: Callable[[BlockConfig, int, int], str | None]  # (config, c_in, width) -> error


BLOCK_KINDS: dict[str, BlockKind] = {
    "basic": BlockKind("ResNet basic block: two kxk convs, projection shortcut when the "
                       "shape changes", _residual_structure, _basic, _check_basic),
    "bottleneck": BlockKind("ResNet/ResNeXt/RegNet bottleneck: 1x1, kxk (grouped with "
                            "group_width), optional SE, 1x1; inner width hidden_width or "
                            "round(width * expansion)", _residual_structure, _bottleneck,
                            _check_bottleneck),
    "inverted_residual": BlockKind("MobileNetV2/EfficientNet inverted residual: 1x1 "
                                   "expansion (dropped when the hidden width equals the "
                                   "input's), kxk depthwise, optional SE, 1x1 projection; "
                                   "hidden width hidden_width or round(c_in * expansion)",
                                   _inverted_structure, _inverted_residual, _check_inverted),
    "irf": BlockKind("FBNet's IRF block: an inverted residual whose 1x1 expansion is kept "
                     "at expansion 1 and whose 1x1 convs have pointwise_groups groups, with "
                     "a channel shuffle after the expansion when grouped",
                     _inverted_structure, _inverted_residual, _check_irf),
    "convnext": BlockKind("ConvNeXt block: kxk depthwise, LayerNorm, MLP (hidden width "
                          "hidden_width or round(width * expansion)), layer scale",
                          _convnext_structure, _convnext, _check_convnext),
    "skip": BlockKind("a skip layer: the identity, or a 1x1 conv + BN (+ the activation; "
                      "'none' for none) when the stride or the width changes",
                      _skip_structure, _skip, _check_skip),
}


def kind(name: str) -> BlockKind:
    try:
        return BLOCK_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown block kind {name!r}; known: {sorted(BLOCK_KINDS)}") \
            from None


def block_structure(a: BlockArgs) -> Structure:
    """The structure of the block ``a``, or of many blocks of one kind, SE style and
    activation, with the same optional widths set, when its numeric fields are arrays."""
    return kind(a.kind).structure(a)


def expand_block(s: Structure, a: BlockArgs) -> tuple[Layer, ...]:
    """The layers of blocks of structure ``s``; numeric fields of ``a`` may be numpy
    arrays (then every numeric field of the layers is an array: one entry per block)."""
    p = Program(a.c_in, a.h, a.w)
    kind(a.kind).expand(p, s, a)
    return tuple(p.layers)
