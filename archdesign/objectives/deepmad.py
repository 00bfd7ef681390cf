"""The DeepMAD objective (Shen et al., CVPR 2023) computed from the layer expansion.

Every counted conv layer (c_in inputs, kernel k, groups g) contributes the entropy term
½·log(c_in·k²/g); squeeze-excitation convs and projection shortcuts (layers of role
``se`` and ``shortcut``) and the classifier (a linear layer) are not counted. The
network is cut into *groups* at every block that downsamples (the stem opens the first
group; the head joins the last), as the reference implementation cuts its "stages". For
group g with output channels C_g and output resolution r_g, H_g = (log C_g + log r_g²)·S_g,
where S_g is the sum of the entropy terms of all counted layers up to the end of group g,
and

    score = Σ_g α_g·H_g − β·exp(std of the per-stage depths).

α defaults to the reference's (1, 1, 1, 1, 8) for five groups; for a network with n
groups the default is n−1 ones then 8 (the deepest group always weighs 8). β = 10.

Effectiveness: ρ_g = L_g / exp(mean over the L_g counted convs up to group g of
log(c_in·k²/g)); ρ = max_g ρ_g.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from archdesign.errors import InputError
from archdesign.layers import (
    NumberedRuns,
    block_key,
    block_runs,
    expand_many,
    number_runs,
    numbered_block,
)
from archdesign.objectives.base import Objective
from archdesign.ops import Layer
from archdesign.spec import ArchSpec

REFERENCE_ALPHA = (1.0, 1.0, 1.0, 1.0, 8.0)
REFERENCE_BETA = 10.0
LAST_GROUP_WEIGHT = 8.0

# Roles of convs that carry an entropy term (not SE branches, not projection shortcuts).
COUNTED_ROLES = frozenset({"main", "head"})


def counts_for_entropy(layer: Layer) -> bool:
    """Whether ``layer`` contributes a DeepMAD entropy term (and counts in ρ's depth)."""
    return layer.op == "conv" and layer.role in COUNTED_ROLES


def log_effective_width(layer: Layer) -> Any:
    """log(c_in·k²/g): twice the layer's entropy term (a depthwise conv: log k²); for a
    layer of many blocks (arrays), math.log of each distinct width, as for one block."""
    width = layer.per_group * layer.kernel * layer.kernel
    if isinstance(width, np.ndarray):
        values, inverse = np.unique(width, return_inverse=True)
        return np.array([math.log(v) for v in values.tolist()])[inverse.reshape(-1)]
    return math.log(width)


class BlockEntropy(NamedTuple):
    """Entropy figures of one block: Σ½log(c·k²/g), counted convs, Σlog(c·k²/g)."""

    entropy: float
    convs: int
    sum_log_width: float
    downsamples: bool
    c_out: int | None  # None: an identity block (its output is its input)
    h_out: int | None


def summarize_entropy(layers: tuple[Layer, ...]) -> BlockEntropy:
    """A block's entropy figures (arrays, one entry per block, for array-valued layers)."""
    counted = [log_effective_width(layer) for layer in layers if counts_for_entropy(layer)]
    if not layers:
        return BlockEntropy(0.0, 0, 0.0, False, None, None)
    last = layers[-1]
    return BlockEntropy(0.5 * sum(counted), len(counted), sum(counted),
                        last.h_out < layers[0].h_in, last.c_out, last.h_out)


#: Entropy figures by block key (:func:`~archdesign.layers.block_key`): filled one block
#: at a time by :func:`block_entropy`, or many at once by :func:`entropy_many`.
_ENTROPY: dict[tuple[Any, ...], BlockEntropy] = {}
_ENTROPY_LIMIT = 1 << 17  # then the memo starts afresh


def _remember(key: tuple[Any, ...], value: BlockEntropy) -> None:
    if len(_ENTROPY) >= _ENTROPY_LIMIT:
        _ENTROPY.clear()
    _ENTROPY[key] = value


def block_entropy(fn: Callable[..., tuple[Layer, ...]], args: tuple[Any, ...]) -> BlockEntropy:
    """The entropy figures of the block ``fn(*args)``; memoized (pure)."""
    key = block_key(fn, args)
    found = _ENTROPY.get(key)
    if found is None:
        found = summarize_entropy(fn(*args))
        _remember(key, found)
    return found


def entropy_many(keys: Sequence[tuple[Any, ...]]) -> None:
    """Memoize the entropy figures of many blocks (keys of
    :class:`~archdesign.layers.NumberedRuns`) at once: the stage blocks not yet seen are
    expanded by structure on arrays (:func:`~archdesign.layers.expand_many`) and
    summarized by the same :func:`summarize_entropy`, equal to one block at a time."""
    missing = [key for key in keys if key not in _ENTROPY]
    for where, layers in expand_many(missing):
        n = len(where)
        e = summarize_entropy(layers)
        if e.c_out is None or e.h_out is None:  # identity blocks
            for j in where.tolist():
                _remember(missing[j], e)
            continue
        columns = zip(np.broadcast_to(e.entropy, n).tolist(),
                      np.broadcast_to(e.sum_log_width, n).tolist(),
                      np.broadcast_to(e.downsamples, n).tolist(),
                      np.broadcast_to(e.c_out, n).tolist(),
                      np.broadcast_to(e.h_out, n).tolist(), strict=True)
        for j, (entropy, sum_log, down, c_out, h_out) in zip(where.tolist(), columns,
                                                             strict=True):
            _remember(missing[j], BlockEntropy(entropy, e.convs, sum_log, down, c_out, h_out))


class Group(NamedTuple):
    """One DeepMAD group: its output and the cumulative figures up to its end (a named
    tuple: a search builds several per candidate)."""

    channels: int
    resolution: int
    entropy: float  # S_g: entropy terms of all counted layers up to here
    convs: int  # L_g
    sum_log_width: float

    @property
    def feature(self) -> float:
        """log C_g + log r_g²: the factor multiplying S_g."""
        return math.log(self.channels) + 2 * math.log(self.resolution)

    @property
    def rho(self) -> float:
        return self.convs / math.exp(self.sum_log_width / self.convs) if self.convs else 0.0


#: Groups by spec: a design is usually scored and its ρ checked together, and
#: :func:`groups_many` finds them for a batch before it is scored.
_GROUPS: dict[ArchSpec, tuple[Group, ...]] = {}
_GROUPS_LIMIT = 1 << 12


def clear_memos() -> None:
    """Forget every memoized block entropy and group (benchmarks time cold paths)."""
    _ENTROPY.clear()
    _GROUPS.clear()


# A network as the cut walks it: per run of identical blocks, whether it is a stage's
# (not the stem's nor the head's), whether it is the head's, its repeat and its block key.
_Part = tuple[bool, bool, int, tuple[Any, ...]]


def _cut(parts: Iterable[_Part]) -> tuple[Group, ...]:
    out: list[Group] = []
    entropy = sum_log = 0.0
    convs = 0
    channels = resolution = 0
    for in_stage, head, repeat, key in parts:
        info = _ENTROPY.get(key) or block_entropy(*numbered_block(key))
        # only a stage's first block can downsample; a run repeats stride-1 blocks
        if in_stage and info.downsamples and (convs or out):
            out.append(Group(channels, resolution, entropy, convs, sum_log))
        entropy += repeat * info.entropy
        convs += repeat * info.convs
        sum_log += repeat * info.sum_log_width
        if not head and info.c_out is not None and info.h_out is not None:
            channels, resolution = info.c_out, info.h_out
        elif info.convs:  # a head conv (before the pool) widens the last feature map
            fn, args = numbered_block(key)
            channels = [la for la in fn(*args) if counts_for_entropy(la)][-1].c_out
    out.append(Group(channels, resolution, entropy, convs, sum_log))
    return tuple(out)


def _memo_groups(spec: ArchSpec, value: tuple[Group, ...]) -> None:
    if len(_GROUPS) >= _GROUPS_LIMIT:
        _GROUPS.clear()
    _GROUPS[spec] = value


def groups(spec: ArchSpec) -> tuple[Group, ...]:
    """The network cut at every downsampling block (the head joins the last group);
    memoized per spec."""
    found = _GROUPS.get(spec)
    if found is None:
        n = len(spec.stages)
        found = _cut((0 <= r.stage < n, r.stage == n, r.repeat, block_key(r.fn, r.args))
                     for r in block_runs(spec))
        _memo_groups(spec, found)
    return found


def groups_many(specs: Sequence[ArchSpec], runs: NumberedRuns | None = None,
                ) -> list[tuple[Group, ...]]:
    """:func:`groups` of many specs (memoized for them), their blocks' entropy found at
    once (:func:`entropy_many`); ``runs``: ``number_runs(specs)`` when the caller has it."""
    runs = number_runs(specs) if runs is None else runs
    entropy_many(runs.keys)
    keys, repeats = runs.keys, runs.repeats
    out = []
    first = 0
    for spec, count in zip(specs, runs.counts, strict=True):
        last = first + count - 1  # a network's runs: the stem, its stages', the head
        found = _cut((first < j < last, j == last, repeats[j], keys[number])
                     for j, number in enumerate(runs.numbers[first:last + 1], first))
        _memo_groups(spec, found)
        out.append(found)
        first = last + 1
    return out


def effectiveness(spec: ArchSpec) -> float:
    """ρ = max over group prefixes of L_g / exp(mean log(c·k²/g))."""
    return max(g.rho for g in groups(spec))


def default_alpha(num_groups: int) -> tuple[float, ...]:
    """The reference weights for five groups; otherwise ones with 8 on the deepest group."""
    if num_groups == len(REFERENCE_ALPHA):
        return REFERENCE_ALPHA
    return (1.0,) * (num_groups - 1) + (LAST_GROUP_WEIGHT,)


class DeepMAD(Objective):
    """The DeepMAD expressiveness score; ``alpha=None`` adapts to the number of groups."""

    name = "deepmad"

    def __init__(self, alpha: tuple[float, ...] | list[float] | None = None,
                 beta: float = REFERENCE_BETA, skip_first_stage_depth: bool = False) -> None:
        if alpha is not None:
            alpha = tuple(float(a) for a in alpha)
            if any(a < 0 for a in alpha):
                raise InputError(f"deepmad alpha: weights must be >= 0, got {list(alpha)}")
        if beta < 0:
            raise InputError(f"deepmad beta: must be >= 0, got {beta}")
        self.alpha = alpha
        self.beta = float(beta)
        # The reference drops the first stage from the depth-uniformity penalty for
        # ResNet-style spaces ("the first block needs <= 3"); off by default.
        self.skip_first_stage_depth = skip_first_stage_depth

    def alpha_for(self, num_groups: int) -> tuple[float, ...]:
        if self.alpha is None:
            return default_alpha(num_groups)
        if len(self.alpha) != num_groups:
            raise InputError(f"deepmad alpha: {len(self.alpha)} weights given but the network "
                             f"has {num_groups} groups (cut at each downsampling block)")
        return self.alpha

    def depth_penalty(self, depths: list[int] | tuple[int, ...]) -> float:
        if self.beta == 0:
            return 0.0
        counted = list(depths[1:]) if self.skip_first_stage_depth and len(depths) > 1 \
            else list(depths)
        mean = sum(counted) / len(counted)
        std = math.sqrt(sum((d - mean) ** 2 for d in counted) / len(counted))
        return self.beta * math.exp(std)

    def stage_scores(self, spec: ArchSpec) -> list[float]:
        """α_g·H_g per group."""
        parts = groups(spec)
        alpha = self.alpha_for(len(parts))
        return [a * g.feature * g.entropy for a, g in zip(alpha, parts, strict=True)]

    def score(self, spec: ArchSpec) -> float:
        return sum(self.stage_scores(spec)) - self.depth_penalty([s.depth for s in spec.stages])

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        parts = groups(spec)
        alpha = self.alpha_for(len(parts))
        return {
            "score": self.score(spec),
            "rho": max(g.rho for g in parts),
            "depth_penalty": self.depth_penalty([s.depth for s in spec.stages]),
            "groups": [{"channels": g.channels, "resolution": g.resolution,
                        "entropy": g.entropy, "convs": g.convs, "rho": g.rho,
                        "alpha": a, "weighted": a * g.feature * g.entropy}
                       for a, g in zip(alpha, parts, strict=True)],
        }

    def settings(self) -> dict[str, Any]:
        return {"alpha": list(self.alpha) if self.alpha else None, "beta": self.beta,
                "skip_first_stage_depth": self.skip_first_stage_depth}
