"""A design problem: a space, budgets, design rules and an objective; exact evaluation.

Every optimizer (the MP designer, the evolutionary and Optuna baselines, a brute-force
test) judges a candidate with :meth:`Problem.evaluate`, which recounts it with the exact
cost model: a design is feasible only if every budget holds with no tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from archdesign.block_kinds import BlockArgs
from archdesign.cost import BlockCost, block_cost, cost, summarize
from archdesign.errors import InputError
from archdesign.layers import (
    block_output_hw,
    block_runs,
    expand_many,
    is_stage_key,
    numbered_block,
)
from archdesign.objectives import Objective, effectiveness, get_objective
from archdesign.objectives.deepmad import BlockEntropy, block_entropy, summarize_entropy
from archdesign.spaces import SearchSpace, StagedSpace, Value
from archdesign.spec import ArchSpec


@dataclass(frozen=True, slots=True)
class Budgets:
    """Upper bounds a design must respect (None: unconstrained).

    ``latency_ms`` needs a hardware profile; ``peak_activation_bytes`` and ``latency_ms``
    are for ``batch`` and ``dtype``.
    """

    flops: float | None = None
    params: float | None = None
    activations: float | None = None
    peak_activation_bytes: float | None = None
    rho: float | None = None
    latency_ms: float | None = None
    batch: int = 1
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in self.names():
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0
                                          and math.isfinite(value)):
                raise InputError(f"budget {name}: expected a positive number, got {value!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(f"budget batch: expected a positive integer, got {self.batch!r}")

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Budgets) if f.name not in ("batch", "dtype"))

    def items(self) -> dict[str, float]:
        """The budgets that are set, by name."""
        return {n: float(getattr(self, n)) for n in self.names() if getattr(self, n) is not None}

    def to_dict(self) -> dict[str, Any]:
        return {**self.items(), "batch": self.batch, "dtype": self.dtype}


@dataclass(frozen=True, slots=True)
class DesignRules:
    """The reference search's design rules, applied by every optimizer alike.

    ``monotone_widths``: stage widths never decrease from one stage to the next.
    ``max_kernel_ratio``: every block's kernel is at most its stage's output feature map /
    ratio (DeepMAD: "kernel not larger than the feature map / 1.5"); None disables the
    rule.
    """

    monotone_widths: bool = True
    max_kernel_ratio: float | None = 1.5

    def kernel_ok(self, kernel: int, feature_map: int) -> bool:
        return self.max_kernel_ratio is None or kernel <= feature_map / self.max_kernel_ratio

    def violations(self, spec: ArchSpec) -> list[str]:
        out = []
        widths = [s.width for s in spec.stages]
        if self.monotone_widths:
            for i in range(1, len(widths)):
                if widths[i] < widths[i - 1]:
                    out.append(f"stage {i + 1} width {widths[i]} < stage {i} width "
                               f"{widths[i - 1]}")
        for message in dict.fromkeys(m for _, _, m in self.kernel_violations(spec)):
            out.append(message)
        return out

    def kernel_violations(self, spec: ArchSpec) -> list[tuple[int, range, str]]:
        """(stage, block positions, message) of every run of blocks whose kernel breaks
        the kernel rule: each block's own kernel (per-block spaces choose it block by
        block) against its stage's output feature map; identity blocks have none."""
        if self.max_kernel_ratio is None:
            return []
        sizes = stage_output_sizes(spec)
        out = []
        for run in block_runs(spec):
            if not 0 <= run.stage < len(spec.stages):
                continue
            a = BlockArgs(*run.args)
            if a.kind != "skip" and not self.kernel_ok(a.kernel, sizes[run.stage]):
                out.append((run.stage, range(run.first, run.first + run.repeat),
                            f"stage {run.stage + 1} kernel {a.kernel} > feature map "
                            f"{sizes[run.stage]} / {self.max_kernel_ratio:g}"))
        return out


def stage_output_sizes(spec: ArchSpec) -> list[int]:
    """Output feature-map size of every stage."""
    sizes = [0] * len(spec.stages)
    for run in block_runs(spec):
        if 0 <= run.stage < len(spec.stages) and run.first == 0:
            a = BlockArgs(*run.args)
            sizes[run.stage] = block_output_hw(a.kind, a.stride, a.kernel, a.h, a.w)[0]
    return sizes


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An exactly recounted candidate."""

    params: dict[str, Value]
    spec: ArchSpec
    score: float
    usage: dict[str, float]  # every budgeted figure, exact
    figures: dict[str, float]  # flops, params, activations, peak bytes, rho (+ latency)
    violations: tuple[str, ...] = field(default=())
    broken: tuple[str, ...] = field(default=())  # the space's constraints it breaks


    @property
    def feasible(self) -> bool:
        return not self.violations


class Problem:
    """Maximize an objective over a space subject to budgets and design rules."""

    def __init__(self, space: SearchSpace, budgets: Budgets,
                 objective: str | Objective = "deepmad", hardware: str | None = None,
                 rules: DesignRules | None = None, latency_model: str | None = None) -> None:
        self.space = space
        self.budgets = budgets
        self.limits = budgets.items()  # the budgets that are set (read on every evaluation)
        self.objective = get_objective(objective) if isinstance(objective, str) else objective
        self.rules = rules or DesignRules()
        self.hardware = hardware
        self.latency = None
        if budgets.latency_ms is not None and hardware is None:
            raise InputError("a latency budget needs a hardware profile (--hardware NAME)")
        if hardware is not None:
            from archdesign.hardware import get_profile, model_for

            self.latency = model_for(get_profile(hardware), latency_model)

    def figures(self, spec: ArchSpec) -> dict[str, float]:
        c = cost(spec, self.budgets.batch, self.budgets.dtype)
        out: dict[str, float] = {
            "flops": c.flops, "params": c.params, "activations": c.activations,
            "peak_activation_bytes": c.peak_activation_bytes, "rho": effectiveness(spec)}
        if self.latency is not None:
            out["latency_ms"] = self.latency.predict(spec, self.budgets.batch,
                                                     self.budgets.dtype)
        return out

    def block_figures(self, keys: Sequence[tuple[Any, ...]]) -> dict[str, np.ndarray]:
        """Figures of many blocks (keys of :class:`~archdesign.layers.NumberedRuns`), an
        entry per key: ``flops``, ``params``, ``activations``, ``peak`` (live elements per
        sample), ``latency_ms`` (its share, with a latency model), and DeepMAD's
        ``entropy``, ``convs`` and ``sum_log`` (Σlog(c·k²/g)). A network's sums are its
        blocks' sums (its latency plus the model's network constant); its peak, their
        maximum. Stage blocks are expanded by structure on arrays, as ``cost_many`` does."""
        n = len(keys)
        names = ("flops", "params", "activations", "peak", "entropy", "convs", "sum_log")
        table = np.zeros((len(names), n))

        def columns(c: BlockCost, e: BlockEntropy) -> tuple[Any, ...]:
            return (c.flops, c.params, c.activations, c.peak_elements, e.entropy, e.convs,
                    e.sum_log_width)

        for j, key in enumerate(keys):  # stems and heads: few, memoized
            if not is_stage_key(key):
                block = numbered_block(key)
                table[:, j] = columns(block_cost(*block), block_entropy(*block))
        for where, layers in expand_many(keys):
            for row, value in enumerate(columns(summarize(layers),
                                                summarize_entropy(layers))):
                table[row, where] = value
        out = dict(zip(names, table, strict=True))
        if self.latency is not None:
            out["latency_ms"] = np.array(self.latency.block_latency(
                keys, self.budgets.batch, self.budgets.dtype))
        return out

    def check(self, spec: ArchSpec) -> tuple[dict[str, float], list[str]]:
        """Exact figures and every violated budget or rule."""
        figures = self.figures(spec)
        violations = [f"{name} {figures[name]:.6g} > budget {limit:.6g}"
                      for name, limit in self.limits.items() if figures[name] > limit]
        return figures, violations + self.rules.violations(spec)

    def evaluate(self, params: dict[str, Value]) -> Evaluation:
        """The candidate recounted exactly. A candidate outside the space's ratio
        constraints is counted as the network it decodes to and is infeasible, naming the
        constraints it breaks (optimizers step across them)."""
        space = self.space
        if isinstance(space, StagedSpace) and space.constraints:
            spec = space.decode_unconstrained(params)
            broken = tuple(f"constraint {c.describe()}" for c in space.constraints
                           if not c.holds(params))
        else:
            spec, broken = space.decode(params), ()
        figures, violations = self.check(spec)
        usage = {name: figures[name] for name in self.limits}
        return Evaluation(dict(params), spec, self.objective.score(spec), usage, figures,
                          (*violations, *broken), broken)
