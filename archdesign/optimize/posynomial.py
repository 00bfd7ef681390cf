"""A staged space as posynomials in its width and expansion variables, from the layer expansion.

The MP designer relaxes every width and expansion parameter to a continuous variable
z = log(value). This module finds, for each layer the space can produce, how its channel
counts depend on those variables, by *probing*: it decodes the space with distinct marker
values for the variables (twice, with different markers) and matches every channel count
against the markers (a width, a width times an expansion, a constant, or a fixed
fraction of the block's input width for squeeze-excitation). No layer shape is re-derived
by hand: the shapes come from :mod:`archdesign.layers`, and every layer's monomials are
checked against :mod:`archdesign.cost` on the probe before they are used.

A stage contributes its first block once and its repeated block depth−1 times, so a probe
at depth 2 describes every depth; kernels change coefficients only, so one probe per
kernel choice describes every kernel assignment. Some structural branches depend on the
widths themselves: a block whose input width equals another width it reads is a different
block (a stride-1 first block whose input width equals its own has no projection shortcut;
an inverted residual whose hidden width equals its input width has no expansion conv).
Each such equality is a *tie* (:class:`Tie`: a stage, its first or repeated block, and the
pair of size variables), found by probing the block with the two tied and comparing its
layers; the block is probed again for every combination of its ties that can hold
(``Model.ties``). Finally the whole model is checked against :func:`cost` at sampled
points of the space, every tied variant included: a branch the probes missed raises
:class:`ModelingError` instead of giving bounds that quietly cut off designs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np

from archdesign.cost import cost, dtype_bytes, live_sets
from archdesign.errors import InputError
from archdesign.hardware.kernels import OP_CLASS_INDEX, fused_indices
from archdesign.hardware.models import RooflineModel, roofline_constants, shape_factors
from archdesign.layers import Block as PlacedBlock
from archdesign.layers import blocks
from archdesign.objectives.deepmad import counts_for_entropy
from archdesign.ops import (
    OPS,
    Layer,
    layer_activations,
    layer_flops,
    layer_params,
    op_class,
)
from archdesign.spaces import Parameter, SearchSpace, StagedSpace, Value

COSTS = ("flops", "params", "activations")
WIDTH_FIELDS = ("width", "hidden_width")
SIZE_FIELDS = (*WIDTH_FIELDS, "expansion")
_WIDTH_MARKERS = ((1009, 1013, 1019, 1021, 1031, 1033, 1039, 1049, 1051, 1061, 1063, 1069,
                   1087, 1091, 1093, 1097), (2003, 2011, 2017, 2027, 2029, 2039, 2053, 2063,
                                             2069, 2081, 2083, 2087, 2089, 2099, 2111, 2113))
_EXPANSION_MARKERS = ((1.13, 1.29, 1.47, 1.61, 1.79, 1.93, 2.17, 2.39, 2.57, 2.71, 2.93, 3.11),
                      (3.37, 3.53, 3.71, 3.89, 4.13, 4.31, 4.57, 4.73, 4.91, 5.17, 5.33, 5.59))


Tag = tuple[np.ndarray, float]  # log(channel count) = vec·z + const


class ModelingError(InputError):
    """The space cannot be written as the MP's posynomial model."""


def field_of(param: Parameter) -> str:
    return param.name.rsplit(".", 1)[-1]


def grid(param: Parameter) -> tuple[float, ...]:
    """Every value of a size parameter, ascending."""
    try:
        values = param.values()
    except InputError:
        raise ModelingError(f"parameter {param.name!r}: the MP needs a finite grid (a step)") \
            from None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ModelingError(f"parameter {param.name!r}: non-numeric choices")
    return tuple(sorted(float(v) for v in values))


def typed(param: Parameter, value: float) -> Value:
    """A grid value in the parameter's own type."""
    if param.kind == "int":
        return round(value)
    if param.kind == "categorical":
        return min(param.choices, key=lambda c: abs(float(c) - value))
    return float(value)


@dataclass(frozen=True, slots=True)
class Monomial:
    """coef · exp(exps · z)."""

    coef: float
    exps: tuple[float, ...]

    def __mul__(self, other: Monomial | float) -> Monomial:
        if isinstance(other, Monomial):
            return Monomial(self.coef * other.coef,
                            tuple(a + b for a, b in zip(self.exps, other.exps, strict=True)))
        return Monomial(self.coef * other, self.exps)

    def __truediv__(self, other: Monomial | float) -> Monomial:
        if isinstance(other, Monomial):
            return self * (1.0 / other)
        return Monomial(self.coef / other, self.exps)

    def __rtruediv__(self, other: float) -> Monomial:
        return Monomial(other / self.coef, tuple(-a for a in self.exps))

    @staticmethod
    def of(tag: Tag) -> Monomial:
        """exp(vec·z + const) from a channel count's log tag."""
        return Monomial(math.exp(tag[1]), tuple(tag[0]))


@dataclass
class Part:
    """A block (stem, a stage's first or repeated block, head) as a function of z."""

    costs: dict[str, list[Monomial]]
    entropy: tuple[np.ndarray, float]  # Σ ½log(c·k²/g) = vec·z + const
    convs: int
    downsamples: bool
    out_channels: tuple[np.ndarray, float]  # log of the output channels
    out_size: int
    layers: tuple[Layer, ...] = ()  # the block's layers in the first probe (for shapes)
    # per layer: log of (c_in, c_out, c_in per group) as (vec, const), and the block input
    tags: list[tuple[Tag, Tag, Tag]] = field(default_factory=list)
    block_in: Tag = (np.zeros(0), 0.0)


@dataclass(frozen=True, slots=True)
class Tie:
    """A structural branch: the ``block`` (0: first, 1: repeated) of ``stage`` is another
    block when the size variables ``pair`` = (i, j) are equal (i: the block's input width).
    """

    stage: int
    block: int
    pair: tuple[int, int]


def part_block(block: int, mask: int) -> int:
    """The ``Model.parts`` block index of block kind ``block`` (0: first, 1: repeated)
    with the ties of bit mask ``mask`` holding (bit b: the kind's b-th tie)."""
    return block + 2 * mask


@dataclass
class Model:
    """The posynomial model of a staged space at one fixed assignment of the rest."""

    variables: list[Parameter]  # the relaxed size parameters, in z order
    grids: list[tuple[float, ...]]
    depth_params: list[Parameter]
    kernel_params: list[Parameter]
    fixed: dict[str, Value]  # resolution and other parameters held fixed
    stage_depth: list[tuple[int | None, int]]  # per stage: (depth param index or None, depth)
    stage_kernel: list[int | None]  # per stage: kernel param index or None
    stage_width: list[int | None]  # per stage: z index of its width, if a variable
    parts: dict[tuple[int, int, int], Part] = field(default_factory=dict)
    # (stage, block, kernel choice index); block: part_block(kind, mask), kind 0: the
    # first block, 1: a repeated block, mask: which of the kind's ties hold (a block whose
    # input width equals another width it reads: see ``ties``); stem: (-1, 0, 0); head:
    # (S, 0, 0)
    num_stages: int = 0
    # the structural branches on equal widths, by stage and block kind
    ties: list[Tie] = field(default_factory=list)
    # the space's ratio constraints, low <= value_i / value_j <= high, as
    # (i, j, log low, log high) on z: linear in log space
    ratios: list[tuple[int, int, float, float]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.variables)

    def block_ties(self, stage: int, block: int) -> list[Tie]:
        """The ties of a stage's first (0) or repeated (1) block; bit b of a mask: the b-th."""
        return [t for t in self.ties if t.stage == stage and t.block == block]

    def tie_mask(self, stage: int, block: int, z: np.ndarray) -> int:
        """Which ties of the block hold at z (a bit mask)."""
        return sum(1 << b for b, t in enumerate(self.block_ties(stage, block))
                   if z[t.pair[0]] == z[t.pair[1]])

    def common_values(self, pairs: Iterable[tuple[int, int]]) -> list[list[float]]:
        """Per set of variables the pairs tie together: the grid values they share."""
        return [sorted(set.intersection(*(set(self.grids[i]) for i in group)))
                for group in components(pairs)]


def classify(space: SearchSpace) -> dict[str, list[Parameter]]:
    if not isinstance(space, StagedSpace):
        raise ModelingError(f"space {space.name!r}: the MP designer models staged spaces "
                            f"(per-stage width/depth/kernel/expansion); use the Optuna "
                            f"search for {type(space).__name__}")
    out: dict[str, list[Parameter]] = {"size": [], "depth": [], "kernel": [], "other": []}
    for p in space.parameters:
        kind = field_of(p)
        if kind in SIZE_FIELDS:
            out["size"].append(p)
        elif kind in ("depth", "kernel") and not p.name.startswith(("stem.", "head.")):
            out[kind].append(p)
        else:
            out["other"].append(p)
    sizes = {p.name for p in out["size"]}
    for c in space.constraints:
        if c.numerator not in sizes or c.denominator not in sizes:
            raise ModelingError(f"space {space.name!r}: the MP models ratio constraints "
                                f"between widths and expansions only, not {c.describe()}; "
                                f"use the Optuna search")
    return out


def ratio_rows(space: StagedSpace, sizes: list[Parameter]) -> list[tuple[int, int, float, float]]:
    """The space's ratio constraints as bounds on z_i − z_j (a ratio of two sizes is a
    monomial: its bounds are linear in log space)."""
    index = {p.name: i for i, p in enumerate(sizes)}
    return [(index[c.numerator], index[c.denominator],
             math.log(c.low) if c.low > 0 else -math.inf,
             math.log(c.high) if math.isfinite(c.high) else math.inf)
            for c in space.constraints]


def other_assignments(params: list[Parameter], limit: int = 64) -> list[dict[str, Value]]:
    """Every assignment of the parameters the MP enumerates outside (resolution, SE, ...)."""
    choices = []
    for p in params:
        values = p.choices if p.kind == "categorical" else tuple(typed(p, v) for v in grid(p))
        choices.append([(p.name, v) for v in values])
    count = math.prod(len(c) for c in choices)
    if count > limit:  # counted before enumerating: per-block spaces have ~10^20
        names = [p.name for p in params]
        shown = names if len(names) <= 8 else [*names[:8], f"... ({len(names)} in all)"]
        raise ModelingError(f"{count:.3g} assignments of {shown} to enumerate; the MP "
                            f"handles at most {limit} (per-block choices are not modeled "
                            f"yet); use the Optuna search")
    return [dict(c) for c in itertools.product(*choices)]


def build_model(space: SearchSpace, fixed: dict[str, Value]) -> Model:
    kinds = classify(space)
    sizes, depths, kernels = kinds["size"], kinds["depth"], kinds["kernel"]
    index = {p.name: i for i, p in enumerate(sizes)}
    widths = [p for p in sizes if field_of(p) in WIDTH_FIELDS]
    expansions = [p for p in sizes if field_of(p) == "expansion"]
    if len(widths) > len(_WIDTH_MARKERS[0]) or len(expansions) > len(_EXPANSION_MARKERS[0]):
        raise ModelingError("too many width/expansion parameters to probe")

    def markers(m: int, ties: Iterable[tuple[int, int]] = ()) -> dict[int, float]:
        """Marker value of every size variable in probe m; the variables the pairs ``ties``
        tie together all take the marker of the last of them."""
        out = {index[p.name]: float(_WIDTH_MARKERS[m][k]) for k, p in enumerate(widths)}
        out |= {index[p.name]: _EXPANSION_MARKERS[m][k] for k, p in enumerate(expansions)}
        for group in components(ties):
            for i in group:
                out[i] = out[max(group)]
        return out

    def probe(m: int, depth: dict[str, int], kernel: dict[str, Value],
              ties: Iterable[tuple[int, int]] = ()) -> list:
        params: dict[str, Value] = dict(fixed)
        for i, value in markers(m, ties).items():
            params[sizes[i].name] = round(value) if sizes[i].kind == "int" else value
        params.update(depth)
        params.update(kernel)
        try:
            spec = space.decode_unconstrained(params) if isinstance(space, StagedSpace) \
                else space.decode(params)
        except InputError as exc:
            raise ModelingError(f"space {space.name!r} cannot be probed for the MP: {exc}") \
                from None
        return blocks(spec)

    two = {p.name: 2 for p in depths}
    k0 = {p.name: p.choices[0] if p.choices else p.default for p in kernels}
    base = probe(0, two, k0)
    num_stages = base[-1].stage
    # which stages each depth / kernel parameter governs (decode with one changed)
    stage_depth: list[tuple[int | None, int]] = []
    stage_counts = _depths(base, num_stages)
    governed_depth: dict[int, int] = {}
    for j, p in enumerate(depths):
        changed = _depths(probe(0, {**two, p.name: 3}, k0), num_stages)
        for s in range(num_stages):
            if changed[s] != stage_counts[s]:
                governed_depth[s] = j
    for s in range(num_stages):
        stage_depth.append((governed_depth.get(s), stage_counts[s]))
    stage_kernel: list[int | None] = [None] * num_stages
    for j, p in enumerate(kernels):
        if len(param_values(p)) < 2:
            continue
        alt = {**k0, p.name: param_values(p)[1]}
        changed_k = _kernels(probe(0, two, alt), num_stages)
        for s, (a, b) in enumerate(zip(_kernels(base, num_stages), changed_k, strict=True)):
            if a != b:
                stage_kernel[s] = j

    model = Model(sizes, [grid(p) for p in sizes], depths, kernels, dict(fixed), stage_depth,
                  stage_kernel, [None] * num_stages, num_stages=num_stages)
    if isinstance(space, StagedSpace):
        model.ratios = ratio_rows(space, sizes)
    variants = max([len(param_values(p)) for p in kernels] or [1])
    for v in range(variants):
        kv = {p.name: param_values(p)[min(v, len(param_values(p)) - 1)] for p in kernels}
        first, second = probe(0, two, kv), probe(1, two, kv)
        values = [markers(0), markers(1)]
        for b1, b2 in zip(first, second, strict=True):
            in_stage = 0 <= b1.stage < num_stages
            if b1.index > 1 or (v > 0 and not (in_stage and stage_kernel[b1.stage] is not None)):
                continue
            key = (b1.stage, min(b1.index, 1), v)
            model.parts[key] = _part(b1.layers, b2.layers, values, len(sizes))
    for s in range(num_stages):
        model.stage_width[s] = _single(model.parts[(s, 0, 0)].out_channels)
    # A block whose input width can equal another width it reads may be another block then
    # (no projection shortcut, no expansion conv): a tie, where the probe with the two
    # tied has other layers. Each combination of a block's ties that can hold is probed.
    def block_of(placed: list[PlacedBlock], s: int, block: int) -> PlacedBlock:
        return next(b for b in placed if b.stage == s and min(b.index, 1) == block)

    for s in range(num_stages):
        for block in (0, 1):
            if (s, block, 0) not in model.parts:
                continue
            part, i = model.parts[(s, block, 0)], _single(model.parts[(s, block, 0)].block_in)
            if i is None:
                continue
            shape = _shape(block_of(base, s, block).layers)
            for j in sorted(used_variables(part) - {i}):
                if field_of(sizes[i]) in WIDTH_FIELDS and field_of(sizes[j]) in WIDTH_FIELDS \
                        and set(model.grids[i]) & set(model.grids[j]) \
                        and _shape(block_of(probe(0, two, k0, [(i, j)]), s, block).layers) \
                        != shape:
                    model.ties.append(Tie(s, block, (i, j)))
            ties = model.block_ties(s, block)
            for mask in range(1, 1 << len(ties)):
                pairs = [t.pair for b, t in enumerate(ties) if mask >> b & 1]
                if not all(model.common_values(pairs)):
                    continue  # these ties cannot hold together
                for v in range(variants if stage_kernel[s] is not None else 1):
                    kv = {p.name: param_values(p)[min(v, len(param_values(p)) - 1)]
                          for p in kernels}
                    pair = [block_of(probe(m, two, kv, pairs), s, block) for m in (0, 1)]
                    model.parts[(s, part_block(block, mask), v)] = _part(
                        pair[0].layers, pair[1].layers, [markers(0, pairs), markers(1, pairs)],
                        len(sizes))
    _verify(space, model)
    return model


def components(pairs: Iterable[tuple[int, int]]) -> list[set[int]]:
    """The sets of variables that equal pairs tie together."""
    out: list[set[int]] = []
    for pair in pairs:
        touching = [g for g in out if g & set(pair)]
        merged = set(pair).union(*touching)
        out = [g for g in out if not g & set(pair)] + [merged]
    return out


def used_variables(part: Part) -> set[int]:
    """The z indices a part's costs or entropy read."""
    used = {int(i) for i in np.flatnonzero(part.entropy[0])}
    for monos in part.costs.values():
        for mono in monos:
            used.update(i for i, e in enumerate(mono.exps) if e)
    return used


def _shape(layers: tuple[Layer, ...]) -> tuple[tuple[str, str], ...]:
    """A block's structure: its layers' names and ops."""
    return tuple((la.name, str(la.op)) for la in layers)


def _single(log_channels: tuple[np.ndarray, float]) -> int | None:
    """The z index a channel count equals, if it is exactly one size variable."""
    vec, const = log_channels
    nonzero = np.flatnonzero(vec)
    if len(nonzero) == 1 and vec[nonzero[0]] == 1 and const == 0:
        return int(nonzero[0])
    return None


def _structure(model: Model, params: dict[str, Value],
               z: np.ndarray) -> list[tuple[tuple[int, int, int], int]]:
    """The parts a point of the space uses, with their multiplicities."""
    out = []
    for key in model.parts:
        s, block, variant = key
        mult = 1
        if 0 <= s < model.num_stages:
            dp, fixed_depth = model.stage_depth[s]
            depth = fixed_depth if dp is None else int(params[model.depth_params[dp].name])
            kp = model.stage_kernel[s]
            kernel = 0 if kp is None else \
                param_values(model.kernel_params[kp]).index(params[model.kernel_params[kp].name])
            kind = block % 2
            if variant != kernel or block != part_block(kind, model.tie_mask(s, kind, z)):
                continue
            mult = depth - 1 if kind == 1 else 1
        if mult:
            out.append((key, mult))
    return out


def model_costs(model: Model, params: dict[str, Value]) -> dict[str, float]:
    """The model's costs at a point of the space (the parts the point's structure uses),
    and its peak live activation elements per sample."""
    z = np.array([math.log(float(params[p.name])) for p in model.variables])
    out = dict.fromkeys((*COSTS, "peak_elements"), 0.0)
    for key, mult in _structure(model, params, z):
        for name in COSTS:
            out[name] += mult * _evaluate(model.parts[key].costs[name], z)
        out["peak_elements"] = max(out["peak_elements"], *(
            _evaluate(live, z) for live in peak_terms(model.parts[key])))
    return out


def model_latency(model: Model, params: dict[str, Value],
                  terms: dict[tuple[int, int, int], LatencyTerms],
                  calibration: dict[str, float]) -> float:
    """The roofline latency (ms) the model gives at a point of the space."""
    z = np.array([math.log(float(params[p.name])) for p in model.variables])
    total, count = 0.0, 0
    for key, mult in _structure(model, params, z):
        t = terms[key]
        total += mult * (t.overhead + sum(max(_evaluate(a, z) for a in alternatives)
                                          for alternatives in t.kernels))
        count += mult * len(t.kernels)
    return (calibration.get("scale", 1.0) * total + calibration.get("per_kernel_ms", 0.0)
            * count + calibration.get("constant_ms", 0.0))


def verify_latency(space: SearchSpace, model: Model, roofline: RooflineModel,
                   terms: dict[tuple[int, int, int], LatencyTerms], batch: int, dtype: str,
                   samples: int = 8) -> None:
    """Like :func:`_verify`, for the roofline latency posynomials."""
    rng = np.random.default_rng(1)
    for _ in range(samples):
        params = {**space.sample(rng), **model.fixed}
        try:
            spec = space.decode(params)
        except InputError:
            continue
        want = roofline.predict(spec, batch, dtype)
        got = model_latency(model, params, terms, roofline.calibration)
        if abs(got - want) > 1e-6 * max(want, 1e-9):
            raise ModelingError(f"space {space.name!r}: the MP's roofline posynomials give "
                                f"{got:.6g} ms where the {roofline.profile.name} roofline "
                                f"model gives {want:.6g} ms at {params}")


def sample_points(space: SearchSpace, model: Model, rng: np.random.Generator,
                  samples: int) -> Iterable[dict[str, Value]]:
    """Points of the space for the model's checks: random ones, and as often (at least
    twice each, when there are more) ones with a tied variant's widths tied to a shared
    grid value."""
    tied = [key for key in model.parts if 0 <= key[0] < model.num_stages and key[1] > 1]
    for k in range(max(samples, 4 * len(tied))):
        params = {**space.sample(rng), **model.fixed}
        if tied and k % 2:
            s, block, _ = tied[k // 2 % len(tied)]
            ties = model.block_ties(s, block % 2)
            pairs = [t.pair for b, t in enumerate(ties) if block // 2 >> b & 1]
            for group, common in zip(components(pairs), model.common_values(pairs),
                                     strict=True):
                value = common[int(rng.integers(len(common)))]
                for var in group:
                    params[model.variables[var].name] = typed(model.variables[var], value)
        yield params


def _verify(space: SearchSpace, model: Model, samples: int = 12) -> None:
    """The model must reproduce the cost model at sampled points of the space (every tied
    variant included): a structural branch the probes missed is an error, not a bound
    that quietly cuts off designs."""
    for params in sample_points(space, model, np.random.default_rng(0), samples):
        try:
            exact = cost(space.decode(params))
        except InputError:  # a sample the space's own rules reject
            continue
        got = model_costs(model, params)
        for name in (*COSTS, "peak_elements"):
            want = float(exact.peak_activation_bytes / 4 if name == "peak_elements"
                         else getattr(exact, name))
            if abs(got[name] - want) > 1e-6 * max(1.0, want):
                raise ModelingError(
                    f"space {space.name!r}: the MP's posynomial model gives {name} "
                    f"{got[name]:.6g} where the cost model counts {want:.6g} at {params}; "
                    f"the space has a structural branch the MP does not model")


@lru_cache(maxsize=1024)
def param_values(p: Parameter) -> tuple[Value, ...]:
    """Every value a parameter takes, in its own type (memoized: the MP's hot loops)."""
    return p.values()


def _depths(placed: list, num_stages: int) -> list[int]:
    counts = [0] * num_stages
    for b in placed:
        if 0 <= b.stage < num_stages:
            counts[b.stage] += 1
    return counts


def _kernels(placed: list, num_stages: int) -> list[int]:
    out = [0] * num_stages
    for b in placed:
        if 0 <= b.stage < num_stages:
            out[b.stage] = b.args.kernel
    return out


def _tag(a: int, b: int, values: list[dict[int, float]], n: int,
         scaled_from: tuple[int, int, tuple[np.ndarray, float]] | None = None
         ) -> tuple[np.ndarray, float]:
    """log(channel count) as vec·z + const, from its values in the two probes.

    ``scaled_from=(a0, b0, tag)``: the count may also be a fixed fraction r of that
    channel count (squeeze-excitation: round(r·c_in)); r is recovered as the simplest
    fraction that reproduces both probes exactly."""
    vec = np.zeros(n)
    if a == b:
        return vec, math.log(a)
    for i, wa in values[0].items():
        if wa == int(wa) and a == wa and b == values[1][i]:
            vec[i] = 1
            return vec, 0.0
    for i, j in itertools.combinations(values[0], 2):
        if (max(1, round(values[0][i] * values[0][j])) == a
                and max(1, round(values[1][i] * values[1][j])) == b):
            vec[i] = vec[j] = 1
            return vec, 0.0
    if scaled_from is not None:
        a0, b0, (vec0, const0) = scaled_from
        ratio = Fraction(a / a0).limit_denominator(64)
        if ratio > 0 and round(ratio * a0) == a and round(ratio * b0) == b:
            return vec0.copy(), const0 + math.log(ratio)
    raise ModelingError(f"cannot express a channel count ({a} / {b} in the two probes) "
                        f"as a monomial of the space's widths and expansions")


def _monomials(layer: Layer, c_in: tuple[np.ndarray, float], c_out: tuple[np.ndarray, float],
               per_group: tuple[np.ndarray, float]) -> dict[str, list[Monomial]]:
    """The layer's costs as monomials of z: the op table's terms (:mod:`archdesign.ops`),
    each channel factor replaced by its log-linear tag."""
    tags = {"c_in": c_in, "c_out": c_out, "per_group": per_group}
    out: dict[str, list[Monomial]] = {}
    for name in COSTS:
        out[name] = []
        for term in getattr(OPS[layer.op], name):
            coef = float(term.coef(layer))
            if coef:
                logs = [tags[f] for f in term.factors]
                vec = sum((lg[0] for lg in logs), np.zeros_like(c_out[0]))
                out[name].append(Monomial(coef * math.exp(sum(lg[1] for lg in logs)),
                                          tuple(vec)))
    return out


def _evaluate(monos: Iterable[Monomial], z: np.ndarray) -> float:
    return sum(m.coef * math.exp(float(np.dot(m.exps, z))) for m in monos)


def _part(layers1: tuple[Layer, ...], layers2: tuple[Layer, ...],
          values: list[dict[int, float]], n: int) -> Part:
    costs: dict[str, list[Monomial]] = {c: [] for c in COSTS}
    ent_vec, ent_const, convs = np.zeros(n), 0.0, 0
    out_channels = (np.zeros(n), 0.0)
    block_in = _tag(layers1[0].c_in, layers2[0].c_in, values, n)
    tags: list[tuple[Tag, Tag, Tag]] = []
    for la, lb in zip(layers1, layers2, strict=True):
        scaled = la.role == "se"
        # squeeze-excitation widths are a fraction of the block's input width
        source = (layers1[0].c_in, layers2[0].c_in, block_in) if scaled else None
        c_in = _tag(la.c_in, lb.c_in, values, n, source)
        c_out = _tag(la.c_out, lb.c_out, values, n, source)
        per_group = _tag(la.c_in // la.groups, lb.c_in // lb.groups, values, n, source)
        tags.append((c_in, c_out, per_group))
        monos = _monomials(la, c_in, c_out, per_group)
        # the monomial form must reproduce the cost model at the probe's channel counts
        zero = np.zeros(n)
        actual = _monomials(la, (zero, math.log(la.c_in)), (zero, math.log(la.c_out)),
                            (zero, math.log(la.c_in // la.groups)))
        for name, fn in (("flops", layer_flops), ("params", layer_params),
                         ("activations", layer_activations)):
            got = _evaluate(actual[name], zero)
            if abs(got - fn(la)) > 1e-9 * max(1.0, abs(fn(la))):
                raise ModelingError(f"layer {la.name}: the {name} monomials give {got}, "
                                    f"the cost model {fn(la)}")
        for name in COSTS:
            costs[name].extend(monos[name])
        if counts_for_entropy(la):
            ent_vec = ent_vec + 0.5 * per_group[0]
            ent_const += 0.5 * (per_group[1] + 2 * math.log(la.kernel))
            convs += 1
        if la.op == "conv" and not scaled:
            out_channels = c_out
    last = layers1[-1]
    if last.op not in ("linear", "flatten", "gap"):
        out_channels = _tag(last.c_out, layers2[-1].c_out, values, n)
    return Part(costs, (ent_vec, ent_const), convs, last.h_out < layers1[0].h_in,
                out_channels, last.h_out, layers1, tags, block_in)


def _elements(part: Part, index: int) -> Monomial:
    """Output elements (per sample) of layer ``index`` of a block (-1: its input)."""
    if index < 0:
        first = part.layers[0]
        return Monomial(first.h_in * first.w_in * math.exp(part.block_in[1]),
                        tuple(part.block_in[0]))
    la, (_, c_out, _) = part.layers[index], part.tags[index]
    return Monomial(la.h_out * la.w_out * math.exp(c_out[1]), tuple(c_out[0]))


def peak_terms(part: Part) -> list[list[Monomial]]:
    """A block's live activation elements at each allocation, as posynomials (the block's
    peak is their maximum: :func:`archdesign.cost.live_sets`)."""
    return [[_elements(part, b) for b in live] for live in live_sets(part.layers)]


# -- roofline latency as posynomials ----------------------------------------------------


@dataclass
class LatencyTerms:
    """A block's roofline latency (ms): Σ over its fused kernels of the maximum of the
    kernel's alternatives (compute, memory and, when the overhead overlaps the kernel,
    the overhead), each a posynomial in exp(z), plus ``overhead`` ms (the constant
    per-kernel overheads that add to the kernels)."""

    kernels: list[list[list[Monomial]]]
    overhead: float


def roofline_terms(part: Part, roofline: RooflineModel, batch: int,
                   dtype: str) -> LatencyTerms:
    """The roofline model of one block, kernel by kernel, in the model's own grouping
    (:func:`archdesign.hardware.kernels.fused_indices`), rates
    (:meth:`RooflineModel.rates`) and calibrated constants
    (:func:`~archdesign.hardware.models.roofline_constants`: per-class and per-group
    overheads, the shape factor of :func:`~archdesign.hardware.models.shape_factors`,
    overlap). :func:`verify_latency` checks the sum against the model's own prediction
    at sampled networks."""
    layers = part.layers
    compute_rate, memory_rate = roofline.rates(dtype)
    class_overhead, per_group, shape, overlap = roofline_constants(roofline.profile,
                                                                   roofline.calibration)

    def elements(index: int) -> Monomial:
        return _elements(part, index)

    def scaled(monos: list[Monomial], factor: float) -> list[Monomial]:
        return [m * factor for m in monos]

    zero = (0.0,) * len(part.block_in[0])
    kernels = []
    constant = 0.0  # ms
    for indices in fused_indices(layers, roofline.profile.fusion):
        head = layers[indices[0]]
        cls = OP_CLASS_INDEX[str(op_class(head))]
        c_in, c_out, in_per_group = part.tags[indices[0]]
        flops = _monomials(head, c_in, c_out, in_per_group)["flops"]
        moved = [elements(i) for i in head.inputs] + [elements(indices[0])]
        for i in indices[1:]:  # a fused residual add reads its other operand
            if layers[i].op == "add":
                moved.append(elements(min(layers[i].inputs)))
        weights = [m for i in indices if layers[i].op in ("conv", "linear")
                   for m in _monomials(layers[i], *part.tags[i])["params"]]
        peak = scaled(flops, 2.0 * batch / compute_rate[cls] * 1e3)
        groups = Monomial.of(c_in) / Monomial.of(in_per_group)
        factors = shape_factors(Monomial.of(c_in), Monomial.of(c_out), groups,
                                Monomial(float(head.h_out * head.w_out * batch), zero))
        # compute × (1 + Σ_j a_j·g_j), the calibration's shape factor
        compute = peak + [m * g * float(a) for a, g in zip(shape, factors, strict=True)
                          if a for m in peak]
        memory = scaled(moved, batch * dtype_bytes(dtype) / memory_rate[cls] * 1e3) + \
            scaled(weights, dtype_bytes(dtype) / memory_rate[cls] * 1e3)
        fixed = float(class_overhead[cls]) * 1e3
        grouped = [groups * (per_group * batch * 1e3)] if per_group else []
        if overlap:
            overhead = [Monomial(fixed, zero)] * (fixed > 0) + grouped
            kernels.append([compute, memory, overhead])
        else:
            constant += fixed
            kernels.append([compute + grouped, memory + grouped])
    return LatencyTerms(kernels, constant)
