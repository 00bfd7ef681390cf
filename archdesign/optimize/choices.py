"""The DeepMAD program over per-block choices: OFA, FBNet, NAS-Bench-Macro.

A space whose widths are all fixed, and whose parameters each choose one block (a
kernel, an expansion, an op of one block slot) or one stage's depth (elastic depth),
gives every block option constant figures: FLOPs, params, activations, peak activation
memory, its share of the latency (any latency model's: a network's predicted latency is
its blocks' shares plus a constant, :meth:`LatencyModel.block_latency`), its entropy
terms and conv count. A network is one option per active slot (a slot past its stage's
depth is inactive). With indicators x, one per slot option and per depth value, the
DeepMAD program is

    max  Σ_b e_b·W_g(b)·x_b − β·exp(std(stage depths(x)))
    s.t. one option per active slot, one depth per elastic stage,
         linear budgets,  Σlog(c·k²/g) ≥ L·log(L/ρ0) per group prefix (ρ ≤ ρ0),

where W_g = Σ_{g' ≥ g} α_g'·(log C_g' + log r_g'²) is the weight of a block of group g
(the group outputs are fixed). Relaxing x to [0, 1] relaxes every slot to the convex hull
of its options and every elastic stage to the hull of its depths: a convex program
(linear, one exponential cone per group for ρ and one for the depth penalty) that is
exact at integral points, so its optimum bounds every design the node allows. Branch and
bound (:mod:`~archdesign.optimize.tree`) splits a slot's or a stage's allowed choices.

Parameters that change every block (resolution) are enumerated outside, one root each.
The model is found by probing the space (which parameter changes which block) and
checked against the exact cost, latency and objective at sampled networks: a space that
is not separable this way raises :class:`ModelingError`. Being exact, the model also
screens the local search's moves: a step moves a block to any of its options (an FBNet op
to any op, not only its neighbours in the choices list), ranks the moves by the model's
figures and recounts only the moves that may beat the best so far.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from archdesign.cost import dtype_bytes
from archdesign.errors import InputError
from archdesign.layers import block_key, blocks
from archdesign.objectives import DeepMAD
from archdesign.objectives.deepmad import block_entropy, groups
from archdesign.optimize.local import by_group, figure_merit_bounds
from archdesign.optimize.posynomial import ModelingError, other_assignments, param_values
from archdesign.optimize.problem import Evaluation, Problem
from archdesign.optimize.relaxation import BOUND_MARGIN, INACCURATE_MARGIN, solve_clarabel
from archdesign.optimize.tree import BranchAndBound
from archdesign.spaces import SearchSpace, Value
from archdesign.spec import ArchSpec

# the budgets that are sums over blocks (latency: when the profile's model is used)
SUMMED = ("flops", "params", "activations", "latency_ms")

Position = tuple[int, int]  # (stage, block index in the stage); stem (-1, 0), head (S, 0)


@dataclass(frozen=True)
class DepthChoice:
    """A parameter that sets one stage's depth."""

    param: str
    stage: int
    values: tuple[Value, ...]
    blocks: tuple[int, ...]  # the stage's number of blocks at each value
    depths: tuple[int, ...]  # the stage's depth in the spec (the depth penalty's) at each


@dataclass(frozen=True)
class Slot:
    """A block position whose block the parameters choose, or that a depth may drop."""

    position: Position
    params: tuple[str, ...]
    options: tuple[tuple[Value, ...], ...]  # every assignment of ``params``
    depth: int | None  # index of the stage's DepthChoice when the block may be dropped

    def option_of(self, params: dict[str, Value]) -> int:
        return self.options.index(tuple(params[p] for p in self.params))


@dataclass
class Structure:
    """Which parameter chooses what, found by probing the space."""

    depths: list[DepthChoice]
    slots: list[Slot]
    outer: list[str]  # parameters that change many blocks: enumerated outside
    idle: list[str]  # parameters that change nothing (held at their defaults)
    base: dict[str, Value]  # defaults with every stage at its deepest

    def active(self, slot: Slot, depth_index: dict[int, int]) -> bool:
        """Whether the slot's block exists at the given depth value indices."""
        if slot.depth is None:
            return True
        d = self.depths[slot.depth]
        return d.blocks[depth_index[slot.depth]] > slot.position[1]


def _decode(space: SearchSpace, params: dict[str, Value]) -> ArchSpec | None:
    try:
        return space.decode(params)
    except InputError:
        return None


def _placed(spec: ArchSpec) -> dict[Position, tuple[Any, ...]]:
    return {(b.stage, b.index): block_key(b.fn, b.args) for b in blocks(spec)}


def _counts(spec: ArchSpec) -> list[int]:
    counts = [0] * len(spec.stages)
    for b in blocks(spec):
        if 0 <= b.stage < len(spec.stages):
            counts[b.stage] += 1
    return counts


def probe_structure(space: SearchSpace, held: dict[str, Value]) -> Structure:
    """Find the space's depth choices, block slots and outer parameters by decoding it
    with one parameter changed at a time; :class:`ModelingError` when a parameter is
    neither."""
    names = [p.name for p in space.parameters if p.name not in held]
    base = {**space.defaults(), **held}
    spec0 = _decode(space, base)
    if spec0 is None:
        raise ModelingError(f"space {space.name!r}: its defaults do not decode")
    counts0 = _counts(spec0)
    depths: list[DepthChoice] = []
    for name in names:
        p = space.parameter(name)
        found: dict[Value, tuple[list[int], ArchSpec]] = {}
        for v in param_values(p):
            spec = _decode(space, {**base, name: v})
            if spec is not None:
                found[v] = (_counts(spec), spec)
        changed = {s for c, _ in found.values()
                   for s, (a, b) in enumerate(zip(c, counts0, strict=True)) if a != b} \
            if all(len(c) == len(counts0) for c, _ in found.values()) else None
        if changed is None or len(changed) > 1:
            raise ModelingError(f"space {space.name!r}: parameter {name!r} changes the "
                                f"number of stages or the depth of several stages")
        if changed:
            (stage,) = changed
            values = tuple(found)
            depths.append(DepthChoice(name, stage, values,
                                      tuple(found[v][0][stage] for v in values),
                                      tuple(found[v][1].stages[stage].depth for v in values)))
    for d in depths:  # probe the blocks with every stage at its deepest
        base[d.param] = d.values[int(np.argmax(d.blocks))]
    spec0 = _decode(space, base)
    if spec0 is None:
        raise ModelingError(f"space {space.name!r}: its deepest network does not decode")
    placed0 = _placed(spec0)
    chosen: dict[Position, list[str]] = {}
    outer, idle = [], []
    depth_names = {d.param for d in depths}
    for name in names:
        if name in depth_names:
            continue
        moved: set[Position] = set()
        for v in param_values(space.parameter(name)):
            spec = _decode(space, {**base, name: v})
            if spec is None:
                raise ModelingError(f"space {space.name!r}: {name}={v!r} does not decode "
                                    f"with the other parameters at their defaults")
            placed = _placed(spec)
            moved |= {pos for pos in placed0.keys() | placed.keys()
                      if placed0.get(pos) != placed.get(pos)}
        if len(moved) == 1:
            chosen.setdefault(next(iter(moved)), []).append(name)
        elif moved:
            outer.append(name)
        else:
            idle.append(name)
    stage_depth = {d.stage: j for j, d in enumerate(depths)}
    slots = []
    for pos in placed0:
        stage, index = pos
        j = stage_depth.get(stage)
        droppable = j is not None and index >= min(depths[j].blocks)
        params = tuple(chosen.get(pos, ()))
        if not params and not droppable:
            continue
        options = tuple(itertools.product(*(param_values(space.parameter(p))
                                            for p in params)))
        slots.append(Slot(pos, params, options, j if droppable else None))
    return Structure(depths, slots, outer, idle, base)


@dataclass
class ChoiceModel:
    """The program's data at one assignment of the outer parameters (x: every slot's
    options, then every depth choice's values)."""

    structure: Structure
    combo: dict[str, Value]
    offsets: list[int]  # per slot, then per depth choice: the first x index
    nx: int
    sums: dict[str, np.ndarray]  # summed figure per x entry
    sums_fixed: dict[str, float]
    peak: np.ndarray  # peak activation elements per x entry
    peak_fixed: int
    weight: np.ndarray  # score per x entry (entropy x group weight)
    weight_fixed: float
    convs: np.ndarray  # per group prefix, per x entry (rows)
    convs_fixed: np.ndarray
    sum_log: np.ndarray
    sum_log_fixed: np.ndarray
    stage_depth: np.ndarray  # per stage, per x entry (rows)
    stage_depth_fixed: np.ndarray
    rule_excluded: np.ndarray  # per x entry: a block option the design rules rule out
    alpha: tuple[float, ...] = ()
    rules_violated: list[str] = field(default_factory=list)  # whatever the blocks

    def slot_range(self, k: int) -> range:
        return range(self.offsets[k], self.offsets[k] + len(self.structure.slots[k].options))

    def depth_range(self, j: int) -> range:
        start = self.offsets[len(self.structure.slots) + j]
        return range(start, start + len(self.structure.depths[j].values))

    def indicator(self, params: dict[str, Value]) -> np.ndarray:
        """x of a network of the space."""
        st = self.structure
        x = np.zeros(self.nx)
        index = {}
        for j, d in enumerate(st.depths):
            index[j] = d.values.index(params[d.param])
            x[self.depth_range(j)[index[j]]] = 1.0
        for k, slot in enumerate(st.slots):
            if st.active(slot, index):
                x[self.slot_range(k)[slot.option_of(params)]] = 1.0
        return x

    def penalty(self, objective: DeepMAD, depths: np.ndarray) -> float:
        return objective.depth_penalty([round(float(d)) for d in depths])


def build_choice_model(space: SearchSpace, problem: Problem, objective: DeepMAD,
                       structure: Structure, combo: dict[str, Value]) -> ChoiceModel:
    """Probe every option of every slot at one assignment of the outer parameters: one
    decode per option index, every slot at that option (the slots are independent, which
    :func:`verify` checks)."""
    st = structure
    base = {**st.base, **combo}
    probes: list[tuple[ArchSpec, dict[Position, tuple[Any, ...]]]] = []
    for o in range(max([len(s.options) for s in st.slots] or [1])):
        params = dict(base)
        for slot in st.slots:
            params.update(zip(slot.params, slot.options[min(o, len(slot.options) - 1)],
                              strict=True))
        spec = _decode(space, params)
        if spec is None:
            raise ModelingError(f"space {space.name!r}: option {o} of every block slot does "
                                f"not decode at {combo}")
        probes.append((spec, _placed(spec)))
    slot_at = {s.position: k for k, s in enumerate(st.slots)}
    fixed_positions = [pos for pos in probes[0][1] if pos not in slot_at]
    for _, placed in probes[1:]:
        if any(placed.get(pos) != probes[0][1][pos] for pos in fixed_positions):
            raise ModelingError(f"space {space.name!r}: a block's choice changes another "
                                f"block (the slots are not independent)")
    # which DeepMAD group each position's entropy falls in, and the groups' weights
    membership: dict[Position, int] = {}
    features = None
    for spec, _ in probes:
        cut = groups(spec)
        if features is None:
            features = [g.feature for g in cut]
        elif [g.feature for g in cut] != features:
            raise ModelingError(f"space {space.name!r}: the DeepMAD groups' outputs depend "
                                f"on the block choices")
        seen = 0
        for b in blocks(spec):
            n = block_entropy(b.fn, b.args).convs
            seen += n
            if n:
                g = next(i for i, grp in enumerate(cut) if seen <= grp.convs)
                if membership.setdefault((b.stage, b.index), g) != g:
                    raise ModelingError(f"space {space.name!r}: block {b.stage}.{b.index} "
                                        f"changes DeepMAD group with its choice")
    assert features is not None
    alpha = objective.alpha_for(len(features))
    feature_weight = np.array(alpha) * np.array(features)
    group_weight = np.cumsum(feature_weight[::-1])[::-1]  # W_g = Σ_{g' >= g}
    n_groups = len(features)

    offsets, nx = [], 0
    for slot in st.slots:
        offsets.append(nx)
        nx += len(slot.options)
    for d in st.depths:
        offsets.append(nx)
        nx += len(d.values)
    keys: list[tuple[Any, ...]] = []
    where: list[tuple[int, int]] = []  # (x index, group of the block or -1)
    for k, slot in enumerate(st.slots):
        for o in range(len(slot.options)):
            keys.append(probes[o][1][slot.position])
            where.append((offsets[k] + o, membership.get(slot.position, -1)))
    fixed_keys = [probes[0][1][pos] for pos in fixed_positions]
    fig = problem.block_figures(keys + fixed_keys)
    n = len(keys)
    index = np.array([i for i, _ in where], int)
    group_of = np.array([g for _, g in where] + [membership.get(pos, -1)
                                                 for pos in fixed_positions], int)

    def spread(values: np.ndarray) -> tuple[np.ndarray, float]:
        vec = np.zeros(nx)
        vec[index] = values[:n]
        return vec, float(values[n:].sum())

    sums, sums_fixed = {}, {}
    for name in SUMMED:
        if name in fig:
            sums[name], sums_fixed[name] = spread(fig[name])
    if "latency_ms" in sums_fixed and problem.latency is not None:
        sums_fixed["latency_ms"] += problem.latency.network_constant()
    weights = fig["entropy"] * np.where(group_of >= 0, group_weight[np.maximum(group_of, 0)], 0)
    weight, weight_fixed = spread(weights)
    peak = np.zeros(nx)
    peak[index] = fig["peak"][:n]
    prefix = [(group_of <= g) & (group_of >= 0) for g in range(n_groups)]
    convs = np.array([spread(fig["convs"] * m)[0] for m in prefix])
    convs_fixed = np.array([spread(fig["convs"] * m)[1] for m in prefix])
    sum_log = np.array([spread(fig["sum_log"] * m)[0] for m in prefix])
    sum_log_fixed = np.array([spread(fig["sum_log"] * m)[1] for m in prefix])
    spec0 = probes[0][0]
    stage_depth = np.zeros((len(spec0.stages), nx))
    stage_depth_fixed = np.array([s.depth for s in spec0.stages], float)
    for j, d in enumerate(st.depths):
        stage_depth_fixed[d.stage] = 0.0
        start = offsets[len(st.slots) + j]
        stage_depth[d.stage, start:start + len(d.values)] = d.depths
    # the design rules: a block whose kernel breaks the kernel rule rules out its option
    # (its kernel and its stage's feature map are fixed); any other violation, the combo
    excluded = np.zeros(nx, bool)
    violated: list[str] = []
    for o, (spec, _) in enumerate(probes):
        by_kernel = set()
        for stage, positions, message in problem.rules.kernel_violations(spec):
            by_kernel.add(message)
            for place in positions:
                which = slot_at.get((stage, place))
                if which is None:
                    violated.append(message)
                else:
                    excluded[offsets[which] + min(o, len(st.slots[which].options) - 1)] = True
        violated += [m for m in problem.rules.violations(spec) if m not in by_kernel]
    return ChoiceModel(st, dict(combo), offsets, nx, sums, sums_fixed, peak,
                       int(fig["peak"][n:].max(initial=0)), weight, weight_fixed, convs,
                       convs_fixed, sum_log, sum_log_fixed, stage_depth, stage_depth_fixed,
                       excluded, alpha, list(dict.fromkeys(violated)))


def model_figures(model: ChoiceModel, objective: DeepMAD, x: np.ndarray,
                  batch: int, dtype: str) -> dict[str, np.ndarray]:
    """The model's figures and score at integral indicators: one network per row of
    ``x`` (for :func:`verify`, and to screen local-search candidates)."""
    out = {name: x @ vec + model.sums_fixed[name] for name, vec in model.sums.items()}
    peak = np.max(np.where(x > 0.5, model.peak, 0.0), axis=1)
    out["peak_activation_bytes"] = np.maximum(peak, model.peak_fixed) * \
        batch * dtype_bytes(dtype)
    convs = x @ model.convs.T + model.convs_fixed
    sum_log = x @ model.sum_log.T + model.sum_log_fixed
    counted = convs > 0
    safe = np.where(counted, convs, 1.0)
    out["rho"] = np.max(np.where(counted, safe / np.exp(sum_log / safe), -np.inf), axis=1)
    depths = x @ model.stage_depth.T + model.stage_depth_fixed
    keys = [tuple(row) for row in np.rint(depths).astype(int).tolist()]
    penalties = {key: model.penalty(objective, np.array(key))  # rows often share depths
                 for key in set(keys)}
    penalty = np.array([penalties[key] for key in keys])
    out["score"] = x @ model.weight + model.weight_fixed - penalty
    return out


# How close the model's figures must come to the exact evaluation at sampled networks
# (:func:`verify`); a local-search candidate they put this much further below the best or
# over a budget is passed over uncounted.
MODEL_RTOL = 1e-6
SCREEN_MARGIN = 10 * MODEL_RTOL


def verify(space: SearchSpace, problem: Problem, objective: DeepMAD, model: ChoiceModel,
           samples: int = 12) -> None:
    """The model must give the exact figures and score at sampled networks."""
    rng = np.random.default_rng(0)
    b = problem.budgets
    for _ in range(samples):
        params = {**space.sample(rng), **model.combo}
        spec = _decode(space, params)
        if spec is None:
            continue
        exact = {**problem.figures(spec), "score": objective.score(spec)}
        got = model_figures(model, objective, model.indicator(params)[None], b.batch, b.dtype)
        for name, values in got.items():
            value = float(values[0])
            if abs(value - exact[name]) > MODEL_RTOL * max(1.0, abs(exact[name])):
                raise ModelingError(f"space {space.name!r}: the per-block model gives {name} "
                                    f"{value:.8g} where the exact evaluation gives "
                                    f"{exact[name]:.8g} at {params}")


Models = tuple[Structure, list[dict[str, Value]], list[ChoiceModel]]
# the models built within a :func:`shared_models` block, by what they depend on
_SHARED: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("shared_models",
                                                                    default=None)
T = TypeVar("T")


def shared(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """``build()``, or within a :func:`shared_models` block what it gave for ``key`` (all
    that the value depends on) the first time."""
    memo = _SHARED.get()
    if memo is None:
        return build()
    if key not in memo:
        memo[key] = build()
    return cast(T, memo[key])


def objective_key(objective: DeepMAD) -> tuple[str, str]:
    """What a shared model or check depends on of the objective: its kind and settings."""
    return type(objective).__name__, repr(sorted(vars(objective).items()))


@contextmanager
def shared_models() -> Iterator[None]:
    """Within the block, problems that differ only in their budgets (the levels of one
    MP seeding sweep) probe the space and build and verify its models once (the per-block
    models here; the posynomial models of :mod:`~archdesign.optimize.mp`, their roofline
    latency terms and the checks of their relaxations' terms): none of it reads a budget."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def choice_models(problem: Problem, held: dict[str, Value]) -> Models:
    """The space's probed structure, its outer assignments and the verified model of each
    (:class:`ModelingError` where the space is not per-block); reused within a
    :func:`shared_models` block."""
    objective = problem.objective
    assert isinstance(objective, DeepMAD)
    space, b = problem.space, problem.budgets
    latency = problem.latency
    key = (space.source, space.name, tuple(sorted(held.items())), objective_key(objective),
           problem.rules, problem.hardware,
           None if latency is None else latency.kind, b.batch, b.dtype)

    def build() -> Models:
        st = probe_structure(space, held)
        combos = [{**c, **held} for c in other_assignments([space.parameter(name)
                                                            for name in st.outer])]
        models = []
        for combo in combos:
            model = build_choice_model(space, problem, objective, st, combo)
            verify(space, problem, objective, model)
            models.append(model)
        return st, combos, models

    return shared(key, build)


@dataclass
class ChoiceSolution:
    value: float
    x: np.ndarray
    # per x entry, the dual of x >= 0 in score units: a design of the node using entry i
    # scores at most value - reduced[i]. Why: cvxpy gives the multipliers of the Maximize
    # problem as posed (λ >= 0 for x >= 0: the Lagrangian is s·f(x) + λ·x + the other
    # multipliers times their constraints' slacks, s the objective scale; the clip at 0
    # only drops a bound), so by weak duality every x within the node's constraints has
    # s·f(x) <= d - λ·x - (those nonnegative terms) <= d - λ_i·x_i, d the dual objective.
    # A design using i has x_i = 1 and, the relaxation being exact at integral points,
    # f(x) its score: score <= d/s - reduced[i]. d is not the primal value the solver
    # reports: Clarabel stops with them within its gap tolerance (SOLVER_SETTINGS, 1e-6)
    # and duals feasible to 1e-7, which BOUND_MARGIN (1e-5, in value) covers: without it
    # the bound fails by up to 7e-7 of the score, measured on the tiny space, FBNet and
    # OFA (tests/optimize/test_choices.py). Only an "optimal" solve gives reduced costs.
    reduced: np.ndarray | None = None


class ChoiceRelaxation:
    """The node relaxation of one :class:`ChoiceModel`: x in [0, ``allowed``] (a cvxpy
    parameter: one compiled program, re-solved at every node)."""

    def __init__(self, model: ChoiceModel, problem: Problem, objective: DeepMAD) -> None:
        self.model = model
        st = model.structure
        nx = model.nx
        self.x = x = cp.Variable(nx)
        self.allowed = cp.Parameter(nx, nonneg=True)
        self.nonneg = x >= 0
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        rhs: list[float] = []
        for j in range(len(st.depths)):  # one value per elastic stage
            for i in model.depth_range(j):
                rows.append(len(rhs))
                cols.append(i)
                vals.append(1.0)
            rhs.append(1.0)
        for k, slot in enumerate(st.slots):  # one option per active slot
            r = len(rhs)
            for i in model.slot_range(k):
                rows.append(r)
                cols.append(i)
                vals.append(1.0)
            if slot.depth is None:
                rhs.append(1.0)
                continue
            d = st.depths[slot.depth]
            for v, i in enumerate(model.depth_range(slot.depth)):
                if d.blocks[v] > slot.position[1]:
                    rows.append(r)
                    cols.append(i)
                    vals.append(-1.0)
            rhs.append(0.0)
        eq = sp.csr_matrix((vals, (rows, cols)), shape=(len(rhs), nx))
        cons = [self.nonneg, x <= self.allowed, eq @ x == np.array(rhs)]
        self.limits = problem.limits
        self.budget_cons: dict[str, cp.Constraint] = {}
        for name, limit in problem.limits.items():
            if name in model.sums:
                con = (model.sums[name] / limit) @ x <= 1.0 - model.sums_fixed[name] / limit
                self.budget_cons[name] = con
                cons.append(con)
        self.rho0 = problem.budgets.rho
        self.rho_con = None
        if self.rho0 is not None:
            convs = model.convs @ x + model.convs_fixed
            sum_log = model.sum_log @ x + model.sum_log_fixed
            # ρ_g <= ρ0  <=>  Σlog(c·k²/g) >= L·log(L/ρ0), convex in L
            self.rho_con = sum_log >= cp.rel_entr(convs, np.full(model.convs.shape[0], self.rho0))
            cons.append(self.rho_con)
        self.scale = 1.0 / max(1.0, abs(model.weight_fixed) + float(np.abs(model.weight).sum())
                               / max(1, len(st.slots)))
        score = model.weight @ x + model.weight_fixed
        depths = model.stage_depth @ x + model.stage_depth_fixed
        if objective.skip_first_stage_depth and len(model.stage_depth_fixed) > 1:
            depths = depths[1:]
        if objective.beta and st.depths:
            n = depths.shape[0]
            centered = depths - cp.sum(depths) / n
            score = score - objective.beta * cp.exp(cp.norm(centered, 2) / math.sqrt(n))
        elif objective.beta:
            score = score - model.penalty(objective, model.stage_depth_fixed)
        self.problem = cp.Problem(cp.Maximize(self.scale * score), cons)

    def solve(self, allowed: np.ndarray) -> ChoiceSolution | None:
        """The bound of the designs ``allowed`` permits; None when it permits none."""
        self.allowed.value = allowed.astype(float)
        status = solve_clarabel(self.problem)
        if status == "infeasible":
            return None
        if status not in ("optimal", "optimal_inaccurate") or self.x.value is None:
            return ChoiceSolution(math.inf, np.asarray(allowed, float))  # keeps it open
        value = float(self.problem.value) / self.scale
        margin = INACCURATE_MARGIN if status == "optimal_inaccurate" else BOUND_MARGIN
        reduced = None
        if status == "optimal" and self.nonneg.dual_value is not None:
            reduced = np.maximum(np.asarray(self.nonneg.dual_value, float), 0.0) / self.scale
        return ChoiceSolution(value + margin * max(1.0, abs(value)),
                              np.clip(np.asarray(self.x.value, float), 0.0, 1.0), reduced)

    def shadow_prices(self) -> dict[str, dict[str, float]]:
        """d(relaxed score)/d(budget) from the duals of the last solve."""
        out = {}
        for name, con in self.budget_cons.items():
            per_unit = float(con.dual_value or 0.0) / (self.scale * self.limits[name])
            out[name] = {"per_unit": per_unit,
                         "per_10_percent": per_unit * 0.1 * self.limits[name]}
        if self.rho_con is not None and self.rho0 is not None and self.x.value is not None:
            duals = np.asarray(self.rho_con.dual_value, float).ravel() / self.scale
            counts = self.model.convs @ self.x.value + self.model.convs_fixed
            per_unit = float(np.sum(duals * counts) / self.rho0)
            out["rho"] = {"per_unit": per_unit, "per_10_percent": per_unit * self.rho0 * 0.1}
        return out


# A choice whose relaxed share is this far from one entry is fractional.
FRACTIONAL = 1e-6


def _fraction(x: np.ndarray, r: range) -> float:
    """How far a choice's relaxed share is from a single entry (0: integral)."""
    share = x[r.start:r.stop]
    return float(share.sum() - share.max())


@dataclass
class ChoiceNode:
    combo: int
    allowed: np.ndarray  # bool per x entry
    bound: float = math.inf
    sol: ChoiceSolution | None = None


class ChoiceSolver(BranchAndBound[ChoiceNode]):
    """Branch and bound over the slots' and stages' allowed choices."""

    # every latency model is a sum of block shares: the bound respects any of them
    latency_modeled = True

    def __init__(self, problem: Problem, held: dict[str, Value], tolerance: float,
                 max_nodes: int, time_limit: float | None, screen: bool = True) -> None:
        objective = problem.objective
        if not isinstance(objective, DeepMAD):
            raise ModelingError(f"the per-block program bounds the deepmad objective only, "
                                f"not {objective.name!r}")
        super().__init__(problem, held, tolerance, max_nodes, time_limit)
        self.structure, self.combos, self.models = choice_models(problem, held)
        st = self.structure
        self.fixed = {**held, **{name: st.base[name] for name in st.idle}}
        self.relaxations = [ChoiceRelaxation(m, problem, objective) for m in self.models]
        self.objective: DeepMAD = objective
        self.excluded: list[str] = []
        # move a block to any of its options and pass over the moves the model rules out
        # (off when every evaluated design is wanted, for the front: grid steps, each
        # recounted)
        self.screen = screen

    def roots(self) -> list[ChoiceNode]:
        out = []
        peak_limit = self.problem.limits.get("peak_activation_bytes")
        b = self.problem.budgets
        for c, m in enumerate(self.models):
            if m.rules_violated:  # the design rules fail whatever the blocks
                self.excluded.append(f"{self.combos[c]}: {'; '.join(m.rules_violated)}")
                continue
            allowed = ~m.rule_excluded
            if peak_limit is not None:  # an option whose own peak is too much never fits
                per_element = b.batch * dtype_bytes(b.dtype)
                if m.peak_fixed * per_element > peak_limit:
                    continue
                allowed &= m.peak * per_element <= peak_limit
            out.append(ChoiceNode(c, allowed))
        return out

    def bound(self, node: ChoiceNode, parent_bound: float = math.inf) -> None:
        sol = self.relaxations[node.combo].solve(node.allowed)
        self.nodes += 1
        node.sol = sol
        node.bound = -math.inf if sol is None else min(sol.value, parent_bound)
        self._fix(node)

    def _fix(self, node: ChoiceNode) -> None:
        """Reduced-cost fixing: an entry whose designs score at most bound − reduced cost,
        within the tolerance of the incumbent, is removed from the node (and its
        children); the largest such bound is recorded as closed. The bound is the node's
        own relaxation's (``sol.value``, margin included; see :class:`ChoiceSolution`),
        valid for any subset of the node: after an earlier fixing, and at its children."""
        sol = node.sol
        if sol is None or sol.reduced is None or self.incumbent is None:
            return
        lower = self.incumbent.score
        caps = sol.value - sol.reduced
        pruned = node.allowed & (caps <= lower + self._slack(lower))
        if not pruned.any():
            return
        self.closed_bound = max(self.closed_bound, float(caps[pruned].max()))
        allowed = node.allowed & ~pruned
        m, st = self.models[node.combo], self.structure
        for k, slot in enumerate(st.slots):  # a slot left without options: its stage
            r = m.slot_range(k)  # cannot be deep enough to hold it
            if not allowed[r.start:r.stop].any():
                if slot.depth is None:
                    allowed[:] = False
                    break
                d = st.depths[slot.depth]
                for v, i in enumerate(m.depth_range(slot.depth)):
                    if d.blocks[v] > slot.position[1]:
                        allowed[i] = False
        node.allowed = allowed
        if any(not allowed[r.start:r.stop].any()
               for r in (m.depth_range(j) for j in range(len(st.depths)))) \
                or not allowed.any():
            node.bound = -math.inf  # nothing in it beats the incumbent by the tolerance
            node.sol = None

    def _depth_indices(self, node: ChoiceNode, x: np.ndarray) -> dict[int, int]:
        m = self.models[node.combo]
        out = {}
        for j in range(len(self.structure.depths)):
            r = m.depth_range(j)
            out[j] = max((i for i in range(len(r)) if node.allowed[r[i]]),
                         key=lambda i: (x[r[i]], -i))
        return out

    def _params(self, node: ChoiceNode, x: np.ndarray) -> dict[str, Value]:
        """A network from x: each stage at its heaviest allowed depth value, each active
        slot at its heaviest allowed option; inactive slots at their defaults."""
        m = self.models[node.combo]
        st = self.structure
        params: dict[str, Value] = {**st.base, **m.combo}
        depth = self._depth_indices(node, x)
        for j, d in enumerate(st.depths):
            params[d.param] = d.values[depth[j]]
        for k, slot in enumerate(st.slots):
            if not st.active(slot, depth):
                continue
            r = m.slot_range(k)
            o = max((i for i in range(len(r)) if node.allowed[r[i]]),
                    key=lambda i: (x[r[i]], -i))
            params.update(zip(slot.params, slot.options[o], strict=True))
        return params

    def round_solution(self, node: ChoiceNode, sol: ChoiceSolution) -> dict[str, Value]:
        return self._params(node, sol.x)

    def leaf_params(self, node: ChoiceNode) -> dict[str, Value]:
        return self._params(node, node.allowed.astype(float))

    def _choices(self, node: ChoiceNode) -> list[range]:
        """The x ranges of the choices still open at the node: depth choices, then the
        slots active at some allowed depth."""
        m = self.models[node.combo]
        out = [m.depth_range(j) for j in range(len(self.structure.depths))]
        out += [m.slot_range(k) for k in range(len(self.structure.slots))]
        return [r for r in out if node.allowed[r.start:r.stop].sum() > 1]

    def is_leaf(self, node: ChoiceNode) -> bool:
        m = self.models[node.combo]
        if any(node.allowed[m.depth_range(j).start:m.depth_range(j).stop].sum() > 1
               for j in range(len(self.structure.depths))):
            return False
        depth = self._depth_indices(node, node.allowed.astype(float))
        return all(node.allowed[m.slot_range(k).start:m.slot_range(k).stop].sum() <= 1
                   for k, slot in enumerate(self.structure.slots)
                   if self.structure.active(slot, depth))

    def branch(self, node: ChoiceNode) -> list[ChoiceNode]:
        """Split the most fractional open choice (a stage's depth values or a slot's
        options) in two at the relaxed solution's weighted middle (options ordered by
        their score)."""
        assert node.sol is not None
        self._fix(node)  # with the incumbent found since the node was bounded
        if node.sol is None:
            return []
        x = node.sol.x
        m = self.models[node.combo]
        open_ = self._choices(node)
        if not open_:
            return []

        # a fractional depth first: it decides which slots exist, and the slots' hulls
        # are loose while it mixes them (OFA within a latency budget: 83 nodes instead
        # of over 1,000); then the most fractional choice, the first of equals
        first_depth = m.depth_range(0).start if self.structure.depths else m.nx
        depths = [r for r in open_ if r.start >= first_depth and _fraction(x, r) > FRACTIONAL]
        r = max(depths or open_, key=lambda r: _fraction(x, r))
        entries = [i for i in r if node.allowed[i]]
        if r.start < first_depth:
            entries.sort(key=lambda i: (m.weight[i], i))
        share = np.array([x[i] for i in entries])
        middle = float(share @ np.arange(len(entries)) / share.sum()) if share.sum() > 1e-9 \
            else (len(entries) - 1) / 2
        cut = min(max(math.floor(middle), 0), len(entries) - 2)
        children = []
        for part in (entries[:cut + 1], entries[cut + 1:]):
            allowed = node.allowed.copy()
            allowed[[i for i in entries if i not in part]] = False
            children.append(ChoiceNode(node.combo, allowed))
        return children

    def combo_of(self, params: dict[str, Value]) -> int:
        """The index of the outer assignment ``params`` has."""
        return next(i for i, combo in enumerate(self.combos)
                    if all(params[k] == v for k, v in combo.items()))

    # -- local search: every option of a block, screened by the model -----------------------

    def merit_bounds(self, cands: list[dict[str, Value]]
                     ) -> list[tuple[int, float]] | None:
        """The model's figures are exact (:func:`verify`) and, batched, cost a fraction of
        a recount: each candidate's score, its costs over the budgets and whether a block
        breaks a design rule (:func:`figure_merit_bounds`, to ``SCREEN_MARGIN``)."""
        if not self.screen:
            return None
        b = self.problem.budgets

        def bounds(combo: int, group: list[dict[str, Value]]) -> list[tuple[int, float]]:
            model = self.models[combo]
            x = np.array([model.indicator(cand) for cand in group])
            fig = model_figures(model, self.objective, x, b.batch, b.dtype)
            over = np.array([fig[name] / limit for name, limit in self.problem.limits.items()]
                            ).reshape(-1, len(group))
            ruled = np.logical_or((x[:, model.rule_excluded] > 0.5).any(axis=1),
                                  bool(model.rules_violated))
            return figure_merit_bounds(fig["score"], over, SCREEN_MARGIN, ruled)

        return by_group(cands, self.combo_of, bounds)

    def moves(self, params: dict[str, Value], fixed_names: set[str]
              ) -> list[tuple[str, dict[str, Value]]]:
        """Every other option of every active block slot (an FBNet op to any op, not only
        to its neighbours in the choices list; an OFA block's kernel and expansion
        together): a step recounts the best by the model's exact figures and passes over
        the rest (:meth:`merit_bounds`); then a grid step of each other parameter (depths,
        outer parameters). A slot past its stage's depth changes nothing and is not
        moved."""
        if not self.screen:
            return super().moves(params, fixed_names)
        st = self.structure
        depth = {j: d.values.index(params[d.param]) for j, d in enumerate(st.depths)}
        jumps: list[tuple[str, dict[str, Value]]] = []
        slot_params = set(fixed_names)
        for slot in st.slots:
            slot_params.update(slot.params)
            if not slot.params or not st.active(slot, depth) or \
                    fixed_names.intersection(slot.params):
                continue
            now = slot.option_of(params)
            for o, option in enumerate(slot.options):
                cand = self.step({**params, **dict(zip(slot.params, option, strict=True))},
                                 slot.params[0]) if o != now else None
                if cand is not None:
                    jumps.append((slot.params[0], cand))
        return jumps + self._neighbors(params, slot_params)

    def shadow_prices(self, best: Evaluation) -> dict[str, dict[str, float]]:
        """The root relaxation's duals at the design's outer assignment."""
        c = self.combo_of(best.params)
        relax = self.relaxations[c]
        relax.solve(np.ones(self.models[c].nx, bool))
        return relax.shadow_prices()


def latency_certified(problem: Problem) -> str | None:
    """Which part of the predicted latency the per-block bound respects, in words."""
    model = problem.latency
    if problem.budgets.latency_ms is None or model is None:
        return None
    return (f"all of it: the {model.kind} model of {model.profile.name} gives every block "
            f"option a constant share (+ {model.network_constant():.3g} ms per network), "
            f"checked against its own predictions at sampled networks")
