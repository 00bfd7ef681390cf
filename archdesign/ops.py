"""The op table: every op type a network is made of, defined once.

Like fvcore's table from op name to cost handle, one row per op type (:class:`OpDef`)
holds everything the rest of archdesign needs to know about it:

- its **costs** (FLOPs, params, activations) as a short sum of :class:`Term` s, each a
  coefficient from the layer's non-channel fields (kernel, output size, bias) times a
  product of its channel counts. :func:`evaluate` turns a sum into a number (on Python
  ints, or on numpy arrays for batches of blocks); the MP designer turns the same terms
  into monomials of its log-width variables (:mod:`archdesign.optimize.posynomial`). No
  cost formula is written anywhere else;
- its **op class** for latency models (``conv``, ``depthwise``, ``linear``, ``norm``,
  ``elementwise``, ``pool``; ``None``: a view that runs no kernel);
- whether it runs **in place** (inference runtimes fuse elementwise ops into the kernel
  that produced their input: they allocate no activation memory);
- its **PyTorch module** (built lazily: importing this table does not import torch).

A :class:`Layer` is one concrete instance of an op with its shapes, and a :data:`Role`
saying what part of the network it belongs to (DeepMAD's entropy, the MP and the
importers read roles, never layer names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

if TYPE_CHECKING:
    from torch import nn

Op = Literal["conv", "linear", "bn", "ln", "act", "maxpool", "gap", "flatten", "add", "mul",
             "scale", "shuffle"]

#: What part of a network a layer belongs to: the main path, a squeeze-excitation branch,
#: a projection shortcut, or the classifier head.
Role = Literal["main", "se", "shortcut", "head"]
ROLES: tuple[str, ...] = get_args(Role)

#: Channel factors a cost term may multiply (``per_group`` = c_in / groups).
Factor = Literal["c_in", "c_out", "per_group"]


class Layer(NamedTuple):
    """One concrete layer with its shapes (per sample; batch is applied by the caller).

    A named tuple rather than a dataclass: block expansion creates millions of these
    in a search, and tuples are several times cheaper to create. Numeric fields are
    Python ints, or numpy arrays when many blocks of one structure are expanded at once.
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
    role: Role = "main"

    @property
    def out_elements(self) -> int:
        return self.c_out * self.h_out * self.w_out

    @property
    def in_elements(self) -> int:
        return self.c_in * self.h_in * self.w_in

    @property
    def per_group(self) -> int:
        """Input channels each output channel reads (c_in / groups)."""
        return self.c_in // self.groups


class Term(NamedTuple):
    """``coef(layer) · Π factors``: one monomial of a cost in the layer's channel counts."""

    coef: Callable[[Layer], Any]
    factors: tuple[Factor, ...]


def evaluate(terms: tuple[Term, ...], layer: Layer) -> Any:
    """The value of a cost (a sum of terms) for ``layer`` (ints, or numpy arrays)."""
    total: Any = 0
    for term in terms:
        value = term.coef(layer)
        for factor in term.factors:
            value = value * getattr(layer, factor)
        total = total + value
    return total


@dataclass(frozen=True, slots=True)
class OpDef:
    """One op type: its costs, latency op class, in-place behaviour and module."""

    flops: tuple[Term, ...]
    params: tuple[Term, ...]
    activations: tuple[Term, ...]
    op_class: Callable[[Layer], str | None]
    inplace: bool
    module: Callable[[Layer], nn.Module]


def _spatial(layer: Layer) -> Any:
    return layer.h_out * layer.w_out


def _kernel_area_spatial(layer: Layer) -> Any:
    return layer.kernel * layer.kernel * layer.h_out * layer.w_out


def _kernel_area(layer: Layer) -> Any:
    return layer.kernel * layer.kernel


def _bias(layer: Layer) -> int:
    return 1 if layer.bias else 0


def _one(layer: Layer) -> int:
    return 1


def _two(layer: Layer) -> int:
    return 2


def _conv_class(layer: Layer) -> str:
    depthwise = (layer.groups > 1) & (layer.groups == layer.c_in)
    if hasattr(depthwise, "all"):  # numpy arrays hold blocks of one structure: one class
        depthwise = depthwise.all()
    return "depthwise" if depthwise else "conv"


def _class(name: str | None) -> Callable[[Layer], str | None]:
    return lambda layer: name


def _module(name: str) -> Callable[[Layer], nn.Module]:
    """A factory that builds the module lazily from :mod:`archdesign.modules`."""
    def build(layer: Layer) -> nn.Module:
        from archdesign import modules

        module: nn.Module = getattr(modules, name)(layer)
        return module
    return build


NONE: tuple[Term, ...] = ()

OPS: dict[str, OpDef] = {
    "conv": OpDef(flops=(Term(_kernel_area_spatial, ("per_group", "c_out")),),
                  params=(Term(_kernel_area, ("per_group", "c_out")), Term(_bias, ("c_out",))),
                  activations=(Term(_spatial, ("c_out",)),),
                  op_class=_conv_class, inplace=False, module=_module("conv")),
    "linear": OpDef(flops=(Term(_one, ("c_in", "c_out")),),
                    params=(Term(_one, ("c_in", "c_out")), Term(_bias, ("c_out",))),
                    activations=(Term(_one, ("c_out",)),),
                    op_class=_class("linear"), inplace=False, module=_module("linear")),
    "bn": OpDef(flops=NONE, params=(Term(_two, ("c_out",)),), activations=NONE,
                op_class=_class("norm"), inplace=True, module=_module("batch_norm")),
    "ln": OpDef(flops=NONE, params=(Term(_two, ("c_out",)),), activations=NONE,
                op_class=_class("norm"), inplace=True, module=_module("layer_norm")),
    "scale": OpDef(flops=NONE, params=(Term(_one, ("c_out",)),), activations=NONE,
                   op_class=_class("elementwise"), inplace=True,
                   module=_module("layer_scale")),
    "act": OpDef(flops=NONE, params=NONE, activations=NONE, op_class=_class("elementwise"),
                 inplace=True, module=_module("activation")),
    "add": OpDef(flops=NONE, params=NONE, activations=NONE, op_class=_class("elementwise"),
                 inplace=True, module=_module("add")),
    "mul": OpDef(flops=NONE, params=NONE, activations=NONE, op_class=_class("elementwise"),
                 inplace=True, module=_module("mul")),
    # a channel shuffle is a permutation copy: it reads and writes every element
    "shuffle": OpDef(flops=NONE, params=NONE, activations=NONE,
                     op_class=_class("elementwise"), inplace=False,
                     module=_module("channel_shuffle")),
    "maxpool": OpDef(flops=NONE, params=NONE, activations=(Term(_spatial, ("c_out",)),),
                     op_class=_class("pool"), inplace=False, module=_module("max_pool")),
    "gap": OpDef(flops=NONE, params=NONE, activations=NONE, op_class=_class("pool"),
                 inplace=False, module=_module("global_pool")),
    # a view: no kernel, no memory of its own
    "flatten": OpDef(flops=NONE, params=NONE, activations=NONE, op_class=_class(None),
                     inplace=True, module=_module("flatten")),
}

#: Ops that write their output over their first input.
INPLACE_OPS = frozenset(name for name, op in OPS.items() if op.inplace)

#: Activation functions a layer's ``act`` may name (block activations and SE gates).
ACTIVATION_FUNCTIONS: tuple[str, ...] = ("relu", "relu6", "silu", "hswish", "gelu", "sigmoid",
                                         "hsigmoid")


def layer_flops(layer: Layer) -> Any:
    return evaluate(OPS[layer.op].flops, layer)


def layer_params(layer: Layer) -> Any:
    return evaluate(OPS[layer.op].params, layer)


def layer_activations(layer: Layer) -> Any:
    return evaluate(OPS[layer.op].activations, layer)


def op_class(layer: Layer) -> str | None:
    """The latency op class of the kernel ``layer`` starts (None: a view, no kernel)."""
    return OPS[layer.op].op_class(layer)


def moves_data(layer: Layer) -> bool:
    """Whether running ``layer`` reads and writes activations (a view does not)."""
    return OPS[layer.op].op_class(layer) is not None


def make_divisible(value: Any, divisor: int = 8) -> Any:
    """``value`` rounded to a multiple of ``divisor``, never below ``divisor`` nor more than
    10% below ``value`` (the MobileNet / Once-for-All rule); ints or numpy arrays."""
    if hasattr(value, "dtype"):
        import numpy as np

        rounded = np.maximum(divisor, np.floor((value + divisor / 2) / divisor) * divisor)
        return np.where(rounded < 0.9 * value, rounded + divisor, rounded).astype(np.int64)
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded

