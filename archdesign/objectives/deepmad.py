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
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from archdesign.errors import InputError
from archdesign.layers import block_runs
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


def log_effective_width(layer: Layer) -> float:
    """log(c_in·k²/g): twice the layer's entropy term (a depthwise conv: log k²)."""
    return math.log(layer.per_group * layer.kernel * layer.kernel)


class BlockEntropy(NamedTuple):
    """Entropy figures of one block: Σ½log(c·k²/g), counted convs, Σlog(c·k²/g)."""

    entropy: float
    convs: int
    sum_log_width: float
    downsamples: bool
    c_out: int | None  # None: an identity block (its output is its input)
    h_out: int | None


def summarize_entropy(layers: tuple[Layer, ...]) -> BlockEntropy:
    counted = [log_effective_width(layer) for layer in layers if counts_for_entropy(layer)]
    if not layers:
        return BlockEntropy(0.0, 0, 0.0, False, None, None)
    last = layers[-1]
    return BlockEntropy(0.5 * sum(counted), len(counted), sum(counted),
                        last.h_out < layers[0].h_in, last.c_out, last.h_out)


@lru_cache(maxsize=1 << 16)
def block_entropy(fn: Callable[..., tuple[Layer, ...]], args: tuple[Any, ...]) -> BlockEntropy:
    return summarize_entropy(fn(*args))


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


@lru_cache(maxsize=256)
def groups(spec: ArchSpec) -> tuple[Group, ...]:
    """The network cut at every downsampling block (the head joins the last group).

    Memoized per spec: a design is usually scored and its ρ checked together."""
    out: list[Group] = []
    entropy = sum_log = 0.0
    convs = 0
    channels = resolution = 0
    n_stages = len(spec.stages)
    for stage, _, repeat, fn, args in block_runs(spec):
        info = block_entropy(fn, args)
        # only a stage's first block can downsample; a run repeats stride-1 blocks
        if 0 <= stage < n_stages and info.downsamples and (convs or out):
            out.append(Group(channels, resolution, entropy, convs, sum_log))
        entropy += repeat * info.entropy
        convs += repeat * info.convs
        sum_log += repeat * info.sum_log_width
        if stage < n_stages and info.c_out is not None and info.h_out is not None:
            channels, resolution = info.c_out, info.h_out
        elif info.convs:  # a head conv (before the pool) widens the last feature map
            channels = [la for la in fn(*args) if counts_for_entropy(la)][-1].c_out
    out.append(Group(channels, resolution, entropy, convs, sum_log))
    return tuple(out)


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
