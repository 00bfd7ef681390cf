"""Multi-objective architecture search with Optuna, driven by ask/tell from one driver.

The driver alone samples and tells, in trial-number order, in batches whose size depends
only on the strategy; evaluation (in process or on Ray, see :mod:`archdesign.evaluate`)
is a pure function of the parameters. The same seed therefore gives the same trials with
one worker or many.

Storage: the sampler works on an in-memory study; each told trial is appended to the
durable study (a journal file in the run directory, or ``--storage URL``) as one record,
in trial-number order. A journal op costs an fsync, and an Optuna trial written through
a live storage takes one op per parameter and attribute (about 35 fsyncs, ~75 ms, for a
MobileNet trial); one record per trial is ~20x faster and leaves nothing half-written.
On resume the durable trials are loaded back into a fresh in-memory study and the search
continues to the requested number of trials.

Constraints use Optuna's current API (``Trial.set_constraint``): one constraint per
budget, ``value / budget - 1`` (feasible when <= 0), which NSGA-II, TPE and GP all read.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from archdesign.cost import DTYPE_BYTES
from archdesign.errors import InputError
from archdesign.evaluate import (
    BUDGET_NAMES,
    METRICS,
    OBJECTIVE_NAMES,
    EvalConfig,
    Evaluation,
    LocalEvaluator,
    RayEvaluator,
    check_metric,
    check_ray_address,
    make_evaluator,
)
from archdesign.pareto import Frame, FrontTracker
from archdesign.runs import STUDY_NAME, TRIAL_ATTR, RunDir, RunError, open_rdb
from archdesign.spaces import Parameter, SearchSpace, SpaceError, Value, get_space

logger = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("mp+nsga2", "mp", "nsga2", "tpe", "gp", "random")
DEFAULT_OBJECTIVES: tuple[str, ...] = ("score", "latency")
# Budget levels of the MP sweep that seeds the mp and mp+nsga2 strategies.
MP_SWEEP_POINTS = 8
# At most this many seeds in all (the sweep's optima, then designs from the MP fronts).
MP_FRONT_SEEDS = 120
# Relaxations the MP designer solves at each sweep level: the seeding is bounded by work,
# never by wall-clock time, so a seed gives the same trials on any machine under any load.
# (MobileNet's levels on x86-avx2 close their 1% gap in 8-24 nodes.)
MP_SEED_NODES = 40
# A budget "binds" a design that uses at least this fraction of it.
BINDING_FRACTION = 0.95
# Batches in a row whose every sample falls outside the space's feasible set before the
# search gives up (those samples are not spent as trials, so nothing else would stop it).
MAX_INFEASIBLE_BATCHES = 100


# -- configuration -----------------------------------------------------------------------


_UNITS: dict[str, dict[str, float]] = {
    "latency": {"": 1.0, "ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3, "ns": 1e-6},
    "memory": {"": 1.0, "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2.0**10,
               "mib": 2.0**20, "gib": 2.0**30},
    "count": {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12},
    "rho": {"": 1.0},
}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


def parse_quantity(metric: str, text: str | float) -> float:
    """``"5ms"`` -> 5.0 (ms), ``"600M"`` -> 6e8, ``"2MiB"`` -> 2097152.0 (bytes)."""
    check_metric(metric, BUDGET_NAMES, "budget")
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _QUANTITY.match(str(text))
        table = _UNITS.get(metric, _UNITS["count"])
        unit = match.group(2).lower() if match else ""
        if metric not in _UNITS:
            unit = re.sub(r"(flops?|macs?)$", "", unit)
        if not match or unit not in table:
            allowed = ", ".join(u for u in table if u)
            raise InputError(f"--{metric}: cannot read {text!r}; expected a number with an "
                             f"optional unit ({allowed})")
        value = float(match.group(1)) * table[unit]
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"--{metric}: the budget must be a positive number, got {text!r}")
    return value


def format_metric(name: str, value: float) -> str:
    """A metric value for people: ``1.23 ms``, ``312.5M``, ``4.20 MiB``."""
    if name == "latency":
        return f"{value:.3g} ms" if value >= 0.01 else f"{value * 1e3:.3g} us"
    if name == "memory":
        for unit, scale in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
            if value >= scale:
                return f"{value / scale:.2f} {unit}"
        return f"{value:.0f} B"
    if name == "score":
        return f"{value:.4g}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class SearchConfig:
    """What a search computes (execution options such as workers are not part of it)."""

    space: str
    hardware: str
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    budgets: Mapping[str, float] = field(default_factory=dict)
    strategy: str = "mp+nsga2"
    trials: int = 3000
    seed: int = 0
    batch: int = 1
    dtype: str | None = None
    latency_model: str | None = None
    score: str = "deepmad"
    population: int = 50
    measure: int = 0  # number of front candidates whose latency is measured (0: none)
    storage: str | None = None  # an RDB URL; None: the run directory's journal file

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "budgets", dict(self.budgets))
        if not self.objectives:
            raise InputError(f"--objectives: give at least one of {list(OBJECTIVE_NAMES)}")
        for name in self.objectives:
            check_metric(name, OBJECTIVE_NAMES, "--objectives")
        if len(set(self.objectives)) != len(self.objectives):
            raise InputError(f"--objectives: {list(self.objectives)} names an objective twice")
        for name, value in self.budgets.items():
            check_metric(name, BUDGET_NAMES, "budget")
            parse_quantity(name, value)
        check_metric(self.strategy, STRATEGIES, "--strategy")
        for key, low in (("trials", 1), ("batch", 1), ("population", 2), ("measure", 0),
                         ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"--{key}: expected an integer >= {low}, got {value!r}")
        if self.dtype is not None and self.dtype not in DTYPE_BYTES:
            raise InputError(f"--dtype: {self.dtype!r} is not one of {sorted(DTYPE_BYTES)}")
        if self.strategy.startswith("mp") and "score" not in self.objectives:
            raise InputError(f"--strategy {self.strategy}: the MP designer maximizes the "
                             f"score, so --objectives must include score")

    @property
    def eval_config(self) -> EvalConfig:
        return EvalConfig(self.space, self.hardware, self.batch, self.dtype,
                          self.latency_model, self.score)

    @property
    def maximize(self) -> list[bool]:
        return [METRICS[m].maximize for m in self.objectives]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        data["budgets"] = dict(self.budgets)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> SearchConfig:
        allowed = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise InputError(f"{source}: unknown keys {unknown}; allowed keys: {allowed}")
        for key in ("space", "hardware"):
            if key not in data:
                raise InputError(f"{source}: missing required key {key!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"{source}: {exc}") from None


# -- Optuna pieces -------------------------------------------------------------------------


def distribution(param: Parameter) -> Any:
    """The Optuna distribution of a search-space parameter."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.kind == "categorical":
        return CategoricalDistribution(list(param.choices))
    assert param.low is not None and param.high is not None
    if param.kind == "int":
        step = int(param.step or 1)
        log = param.log and step == 1  # Optuna allows log only with step 1
        return IntDistribution(int(param.low), int(param.high), step=step, log=log)
    return FloatDistribution(param.low, param.high, log=param.log and not param.step,
                             step=None if param.log else param.step)


def distributions(space: SearchSpace) -> dict[str, Any]:
    return {p.name: distribution(p) for p in space.parameters}


def make_sampler(strategy: str, seed: int, population: int) -> Any:
    """The Optuna sampler of a strategy, pinned explicitly with its seed."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if strategy in ("nsga2", "mp+nsga2"):
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        if strategy == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                              n_startup_trials=min(20, population))
        if strategy == "gp":
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)
        if strategy in ("random", "mp"):
            return optuna.samplers.RandomSampler(seed=seed)
    raise InputError(f"--strategy: {strategy!r} is not one of {list(STRATEGIES)}")


def batch_size(config: SearchConfig) -> int:
    """Trials asked before the next tell: by strategy only, never by the worker count."""
    if config.strategy in ("nsga2", "mp+nsga2"):
        return config.population
    return {"tpe": 8, "gp": 1, "random": 64, "mp": 64}[config.strategy]


def session_seed(seed: int, done: int) -> int:
    """The sampler seed for a session that starts with ``done`` trials recorded.

    A resumed sampler must not replay the random stream that produced the first trials.
    """
    if done == 0:
        return seed
    return int(np.random.SeedSequence([seed, done]).generate_state(1)[0])


# -- the space's extent: the frame, the cheapest network -------------------------------------


def _extreme(param: Parameter, largest: bool) -> Value:
    if param.kind == "categorical":
        numeric = [c for c in param.choices if isinstance(c, (int, float))
                   and not isinstance(c, bool)]
        if len(numeric) == len(param.choices):
            return max(numeric) if largest else min(numeric)
        return param.default
    assert param.low is not None and param.high is not None
    if param.kind == "int":
        step = int(param.step or 1)
        return int(param.low) + step * ((int(param.high) - int(param.low)) // step) \
            if largest else int(param.low)
    return param.high if largest else param.low


@dataclass(frozen=True)
class SpaceExtent:
    """Metrics of the smallest and largest networks of the space and of random samples."""

    smallest: dict[str, float] | None
    minimum: dict[str, float]  # per metric, over everything evaluated
    maximum: dict[str, float]
    samples: list[dict[str, float]]  # the metrics of everything evaluated


def space_extent(evaluator: LocalEvaluator, seed: int, samples: int = 256) -> SpaceExtent:
    space = evaluator.space
    rng = np.random.default_rng(seed)
    candidates = [(0, {p.name: _extreme(p, False) for p in space.parameters}),
                  (1, {p.name: _extreme(p, True) for p in space.parameters})]
    candidates += [(2 + i, space.sample(rng)) for i in range(samples)]
    results = [e for e in evaluator.evaluate(candidates) if e.ok]
    if not results:
        raise InputError(f"space {space.name!r}: no sampled network could be evaluated")
    smallest = results[0].metrics if results[0].number == 0 else None
    minimum = {m: min(e.metrics[m] for e in results) for m in METRICS}
    maximum = {m: max(e.metrics[m] for e in results) for m in METRICS}
    return SpaceExtent(smallest, minimum, maximum, [e.metrics for e in results])


def make_frame(config: SearchConfig, extent: SpaceExtent) -> Frame:
    """The fixed hypervolume frame: ideal and reference of each (minimized) objective.

    A budgeted objective's reference is its budget; otherwise the worst value seen over
    the space's extremes and samples (the score's lowest, the other metrics' highest).
    """
    ideal, reference = [], []
    for name in config.objectives:
        lo, hi = extent.minimum[name], extent.maximum[name]
        if METRICS[name].maximize:
            ideal.append(-hi)
            reference.append(-lo)
        else:
            ideal.append(lo)
            reference.append(min(hi, config.budgets.get(name, math.inf)))
        if not reference[-1] > ideal[-1]:
            reference[-1] = ideal[-1] + max(abs(ideal[-1]) * 1e-6, 1e-12)
    return Frame(tuple(ideal), tuple(reference))


def check_budgets(config: SearchConfig, extent: SpaceExtent) -> None:
    """An impossible budget is an InputError saying what the cheapest network costs."""
    for name, budget in config.budgets.items():
        cheapest = extent.minimum[name]
        if cheapest > budget:
            smallest = extent.smallest or {}
            figures = ", ".join(f"{m} {format_metric(m, smallest[m])}" for m in BUDGET_NAMES
                                if m in smallest)
            raise InputError(
                f"--{name} {format_metric(name, budget)}: impossible in space "
                f"{config.space!r} on {config.hardware!r}: the cheapest network of the space "
                f"needs {format_metric(name, cheapest)}"
                + (f" (its smallest network: {figures})" if figures else ""))


# -- results of a trial --------------------------------------------------------------------


def constraints(metrics: Mapping[str, float], budgets: Mapping[str, float]) -> dict[str, float]:
    """Optuna constraint values: ``value / budget - 1`` (feasible when <= 0)."""
    return {name: metrics[name] / budget - 1.0 for name, budget in sorted(budgets.items())}


def binding(metrics: Mapping[str, float], budgets: Mapping[str, float]) -> list[str]:
    """The budgets a design uses at least ``BINDING_FRACTION`` of."""
    return [name for name, budget in sorted(budgets.items())
            if metrics[name] >= BINDING_FRACTION * budget]


@dataclass(frozen=True)
class SearchProgress:
    done: int
    total: int
    feasible: int
    pareto_size: int
    hypervolume: float


@dataclass(frozen=True)
class SearchResult:
    run_dir: RunDir
    done: int
    feasible: int
    pareto_size: int
    hypervolume: float
    evaluated: int  # by this session
    seconds: float
    reused: int = 0  # trials answered from the study: their network was evaluated before
    outside: int = 0  # samples outside the space's feasible set, not spent as trials


# -- MP seeds ------------------------------------------------------------------------------


# Search metric -> the MP's budget field, for the metrics its relaxation models exactly
# (the search's "memory" is peak activations plus weights: not one of them).
_MP_BUDGETS = {"flops": "flops", "params": "params", "activations": "activations",
               "latency": "latency_ms", "rho": "rho"}


def mp_seeds(config: SearchConfig, extent: SpaceExtent, count: int = MP_SWEEP_POINTS,
             max_nodes: int = MP_SEED_NODES) -> list[dict[str, Value]]:
    """Designs of the mathematical program swept across a budget range.

    The sweep runs over the search's first cost objective that the MP's relaxation models
    exactly (latency under a roofline model, FLOPs, params, activations; FLOPs otherwise),
    with budgets log-spaced from the cheapest network to the largest one seen that meets
    the user's budgets, which the MP also respects where it models them. Each design's
    parameters seed the study and are judged by the search like any trial's.
    A sweep point the MP cannot solve is logged and skipped: the sampler fills the front
    anyway. Each level's MP stops after ``max_nodes`` relaxations (no time limit). The MP
    solves the search's own problem (without the kernel-to-feature-map rule, which the
    search does not impose).
    """
    from archdesign.hardware import get_profile, model_for
    from archdesign.hardware.models import RooflineModel
    from archdesign.optimize import mp
    from archdesign.optimize.problem import Budgets, DesignRules

    roofline = isinstance(model_for(get_profile(config.hardware), config.latency_model),
                          RooflineModel)
    modeled = [m for m in _MP_BUDGETS if m != "latency" or roofline]
    swept = next((m for m in config.objectives if m in modeled), "flops")
    low = extent.minimum[swept]
    high = extent.maximum[swept]
    if config.budgets:
        # the level at which each sampled network, scaled, would meet the tightest budget
        reach = [m[swept] * min(v / m[k] for k, v in config.budgets.items())
                 for m in extent.samples]
        high = float(np.clip(np.median(reach), low, high))
    levels = np.geomspace(low * 1.05, high, count) if high > low * 1.05 else np.array([high])
    native = {_MP_BUDGETS[k]: v for k, v in config.budgets.items() if k in modeled}
    hardware = config.hardware if "latency_ms" in native or swept == "latency" else None
    dtype = config.dtype or _profile_precision(config.hardware)
    seeds: list[dict[str, Value]] = []
    explored: list[dict[str, Value]] = []  # designs on each MP's way, non-dominated
    failures: list[str] = []
    started = time.perf_counter()
    for level in levels.tolist():
        field = _MP_BUDGETS[swept]
        budgets = Budgets(**{**native, field: min(level, native.get(field, math.inf))},
                          batch=config.batch, dtype=dtype)
        try:
            found = mp.design(config.space, budgets, config.score, hardware,
                              rules=DesignRules(monotone_widths=False, max_kernel_ratio=None),
                              tolerance=0.01,
                              max_nodes=max_nodes, latency_model=config.latency_model,
                              front_of=field)
        except InputError as exc:
            logger.info("MP sweep: no design at %s <= %s: %s", swept,
                        format_metric(swept, level), exc)
            continue
        except Exception as exc:  # the seeding is an aid: its failure must not stop a search
            failures.append(f"{type(exc).__name__}: {exc}")
            logger.info("MP sweep: the MP designer failed at %s <= %s (%s)", swept,
                        format_metric(swept, level), failures[-1])
            continue
        if found.params not in seeds:
            seeds.append(dict(found.params))
        explored.extend(p for p in found.front if p != found.params)
    # the optima first, then the explored fronts evenly thinned, up to a tenth of the trials
    room = max(0, min(config.trials // 10, MP_FRONT_SEEDS) - len(seeds))
    known = {tuple(sorted(p.items())) for p in seeds}
    unique = []
    for p in explored:
        key = tuple(sorted(p.items()))
        if key not in known:
            known.add(key)
            unique.append(p)
    if unique and room:
        picks = np.unique(np.linspace(0, len(unique) - 1, min(room, len(unique))).round())
        seeds.extend(unique[int(i)] for i in picks)
    logger.info("MP sweep: %d designs from %d budget levels in %.1f s", len(seeds),
                len(levels), time.perf_counter() - started)
    if failures:
        logger.warning("the MP designer failed at %d of %d budget levels (first: %s)",
                       len(failures), len(levels), failures[0])
    if not seeds:
        logger.warning("the MP designer found no design to seed the search; continuing with "
                       "the sampler alone")
    return seeds


def _profile_precision(hardware: str) -> str:
    from archdesign.hardware import get_profile

    return get_profile(hardware).precision


# -- the search ----------------------------------------------------------------------------


def _resolve_config(run: RunDir, config: SearchConfig, resume: bool) -> SearchConfig:
    if not run.exists():
        if resume:
            raise RunError(f"{run.path}: nothing to resume (no {run.config_path.name})")
        return config
    if not resume:
        raise RunError(f"{run.path}: already holds a search; pass --resume to continue it "
                       f"or choose another --run-dir")
    stored = SearchConfig.from_dict(run.read_config().get("search", {}), str(run.config_path))
    # The number of trials and of measured candidates may change; nothing else may.
    differ = [f.name for f in fields(SearchConfig)
              if f.name not in ("trials", "measure")
              and getattr(stored, f.name) != getattr(config, f.name)]
    if differ:
        stored_values = ", ".join(f"{k}={getattr(stored, k)!r}" for k in differ)
        raise RunError(f"{run.config_path}: --resume continues the stored search, but "
                       f"{differ} differ from it (stored: {stored_values})")
    recorded = run.recorded_trials()
    if config.trials < recorded:
        raise RunError(f"--trials {config.trials}: the run already records {recorded} "
                       f"trials; give --trials {recorded} or more to continue it")
    return replace(stored, trials=config.trials, measure=config.measure)


def _config_document(config: SearchConfig) -> dict[str, Any]:
    from archdesign import __version__
    from archdesign.objectives import get_objective

    scorer = get_objective(config.score)  # recorded as data: a fitted file may move
    return {"archdesign_version": __version__, "search": config.to_dict(),
            "score_objective": {"name": scorer.name, "settings": scorer.settings(),
                                "validation": scorer.validation()}}


def frame_for(config: SearchConfig) -> Frame:
    """The run's fixed hypervolume frame (recomputed: it depends on the config only)."""
    local = LocalEvaluator(config.eval_config)
    return make_frame(config, space_extent(local, config.seed))


def run_search(config: SearchConfig, run: RunDir, *, workers: int = 1,
               ray_address: str | None = None, resume: bool = False,
               on_progress: Callable[[SearchProgress], None] | None = None,
               evaluator: LocalEvaluator | RayEvaluator | None = None,
               results_every_s: float = 5.0) -> SearchResult:
    """Run (or resume) a search in ``run`` until ``config.trials`` trials are recorded.

    ``evaluator``: evaluate with this one (kept open) instead of one made from
    ``workers`` and ``ray_address`` (closed at the end).
    """
    from archdesign.report import read_measured, summarize, write_results

    started = time.perf_counter()
    # Validate everything before the run directory is created or touched.
    given = _resolve_config(run, config, resume)
    config = run.with_sources(given)  # on resume: the run's copies where needed
    local = LocalEvaluator(config.eval_config)  # fails fast on a bad space or profile
    extent = space_extent(local, config.seed)
    check_budgets(config, extent)
    frame = make_frame(config, extent)
    if config.storage:
        open_rdb(config.storage)  # a bad URL fails before the run directory is made
    if evaluator is None and ray_address:
        check_ray_address(ray_address)
    with run.lock():
        given = _resolve_config(run, given, resume)
        run.store_sources(given)
        config = run.with_sources(given)
        run.write_config(_config_document(given))
        with run.logging_to_file():
            logger.info("search %s: %s", "resumed" if resume else "started", config.to_dict())
            own = evaluator is None
            evaluator = evaluator or make_evaluator(config.eval_config, workers, ray_address)
            try:
                counts, durable = _search_loop(config, run, evaluator, local, frame, extent,
                                               on_progress, results_every_s)
                trials = _finished(durable)
                if config.measure:
                    summary = summarize(trials, config, frame)
                    measure_front(run, summary, config, evaluator)
            finally:
                if own:
                    evaluator.close()
            summary = summarize(trials, config, frame, read_measured(run))
            write_results(run, summary)
            logger.info("search finished: %d trials, %d feasible, %d on the front, "
                        "hypervolume %.4f", summary.done, summary.feasible,
                        len(summary.front), summary.hypervolume)
    return SearchResult(run, summary.done, summary.feasible, len(summary.front),
                        summary.hypervolume, counts.evaluated, time.perf_counter() - started,
                        counts.reused, counts.outside)


def measure_front(run: RunDir, summary: Any, config: SearchConfig,
                  evaluator: LocalEvaluator | RayEvaluator) -> None:
    """Measure the latency of up to ``config.measure`` front designs, spread along it.

    On Ray, timings run in actors holding the timer resource; in process, one by one.
    Results go to ``measured.json`` (trials already measured are kept, not redone).
    """
    from archdesign.evaluate import MeasureConfig, measure_on_ray, measure_specs
    from archdesign.report import MEASURED_FILE, read_measured
    from archdesign.spec import ArchSpec

    measured = read_measured(run)
    front = summary.front
    if not front:
        return
    picks = sorted({front[round(i)].trial for i in
                    np.linspace(0, len(front) - 1, min(config.measure, len(front)))})
    todo = [t for t in picks if t not in measured]
    if not todo:
        return
    specs = [ArchSpec.from_dict(summary.entry(t).spec) for t in todo]
    measure = MeasureConfig(batch=config.batch)
    logger.info("measuring the latency of %d front designs on this machine", len(specs))
    timings = (measure_on_ray(specs, measure) if isinstance(evaluator, RayEvaluator)
               else measure_specs(specs, measure))
    measured.update(dict(zip(todo, timings, strict=True)))
    run.write_text(MEASURED_FILE, json.dumps({str(k): v for k, v in sorted(measured.items())},
                                             indent=2) + "\n")


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    return sorted(trials, key=lambda t: t.number)


@dataclass
class _Counts:
    evaluated: int = 0
    reused: int = 0
    outside: int = 0


def _search_loop(config: SearchConfig, run: RunDir, evaluator: LocalEvaluator | RayEvaluator,
                 local: LocalEvaluator, frame: Frame, extent: SpaceExtent,
                 on_progress: Callable[[SearchProgress], None] | None,
                 results_every_s: float) -> tuple[_Counts, Any]:
    """Ask, evaluate, tell until the trials are recorded.

    The driver decodes every asked trial (microseconds): a sample outside the space's
    feasible set is told FAIL to the sampler but neither evaluated nor recorded nor
    counted; one whose network was evaluated before (in this study or this batch) is
    answered with those figures. Evaluation is a pure function of the network, so both
    leave the trials exactly as evaluating would.
    """
    import optuna
    from optuna.trial import TrialState

    from archdesign.report import summarize, write_results

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna.study import StudyDirection

    directions = [StudyDirection.MAXIMIZE if m else StudyDirection.MINIMIZE
                  for m in config.maximize]
    durable = optuna.create_study(storage=run.storage(config.storage), study_name=STUDY_NAME,
                                  directions=directions, load_if_exists=True)
    if list(durable.directions) != directions:
        raise RunError(f"{run.path}: the stored study optimizes {durable.directions}, not "
                       f"{directions}")
    recorded = _finished(durable)
    done = len(recorded)
    study = optuna.create_study(directions=directions,
                                sampler=make_sampler(config.strategy,
                                                     session_seed(config.seed, done),
                                                     config.population))
    study.add_trials(recorded)
    dists = distributions(get_space(config.space))
    tracker = FrontTracker(frame)
    feasible = 0
    for t in recorded:
        if _feasible(t):
            feasible += 1
            tracker.add(t.number, _minimized(t.values, config.maximize))

    if config.strategy.startswith("mp"):
        seen = [t.params for t in recorded]
        for params in mp_seeds(config, extent, min(config.trials, MP_SWEEP_POINTS)):
            if params not in seen:
                study.enqueue_trial(params, skip_if_exists=True)

    from archdesign.spec import ArchSpec

    known: dict[ArchSpec, Evaluation] = {}
    for t in recorded:
        if t.state == TrialState.COMPLETE and "metrics" in t.user_attrs:
            spec = ArchSpec.from_dict(t.user_attrs["spec"])
            known[spec] = Evaluation(t.number, dict(t.params), dict(t.user_attrs["metrics"]),
                                     t.user_attrs["spec"])
    counts = _Counts()
    barren = 0  # batches in a row with no sample in the feasible set
    per_batch = batch_size(config)
    last_write = time.perf_counter()
    report = _progress_reporter(on_progress, config.trials)
    report(done, feasible, tracker)
    while done < config.trials:
        n = min(per_batch, config.trials - done)
        if config.strategy == "mp":
            waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
            if waiting == 0:
                logger.info("strategy mp: all %d MP designs evaluated", done)
                break
            n = min(n, waiting)
        asked = [study.ask(dists) for _ in range(n)]
        specs: list[ArchSpec | None] = []
        first: dict[ArchSpec, Any] = {}  # a network new to the study -> its first trial
        for trial in asked:
            decoded: ArchSpec | None
            try:
                decoded = local.decode(trial.params)
            except SpaceError:
                decoded = None
            specs.append(decoded)
            if decoded is not None and decoded not in known and decoded not in first:
                first[decoded] = trial
        fresh = list(first.values())
        results = evaluator.evaluate([(t.number, t.params) for t in fresh])
        for trial, result in zip(fresh, results, strict=True):
            if result.number != trial.number:
                raise RuntimeError(f"evaluator returned trial {result.number} for "
                                   f"{trial.number}")
        counts.evaluated += len(fresh)
        by_number = {r.number: r for r in results}
        known.update((net, by_number[t.number]) for net, t in first.items()
                     if by_number[t.number].ok)
        barren = barren + 1 if all(s is None for s in specs) else 0
        if barren >= MAX_INFEASIBLE_BATCHES:
            raise InputError(f"space {config.space!r}: the {config.strategy} sampler drew "
                             f"{barren} batches in a row outside the space's feasible set")
        for trial, network in zip(asked, specs, strict=True):
            if network is None:  # the sampler learns it; the study does not spend a trial on it
                study.tell(trial, state=TrialState.FAIL)
                counts.outside += 1
                continue
            answer = by_number.get(trial.number)
            if answer is None:
                source = known.get(network) or by_number[first[network].number]
                answer = replace(source, number=trial.number, params=trial.params)
                counts.reused += 1
            frozen = _tell(study, trial, answer, config, record=done)
            durable.add_trial(frozen)  # one fsynced record: the trial is now safe
            done += 1
            if _feasible(frozen):
                feasible += 1
                tracker.add(frozen.number, _minimized(frozen.values, config.maximize))
        report(done, feasible, tracker)
        if time.perf_counter() - last_write > results_every_s:
            write_results(run, summarize(_finished(durable), config, frame), plot=False)
            last_write = time.perf_counter()
    logger.info("%d trials evaluated, %d answered from the study (networks evaluated "
                "before), %d samples outside the space's feasible set not spent as trials",
                counts.evaluated, counts.reused, counts.outside)
    return counts, durable


def _tell(study: Any, trial: Any, result: Evaluation, config: SearchConfig,
          record: int) -> Any:
    """Tell the sampler's study; ``record`` is the trial's number in the stored study (the
    sampler's own numbering also counts samples outside the space, which are not stored)."""
    from optuna.trial import TrialState

    trial.set_user_attr(TRIAL_ATTR, record)  # lets a reader see a lost record
    if not result.ok:
        trial.set_user_attr("error", result.error)
        return study.tell(trial, state=TrialState.FAIL)
    trial.set_user_attr("metrics", result.metrics)
    trial.set_user_attr("spec", result.spec)
    for name, value in constraints(result.metrics, config.budgets).items():
        trial.set_constraint(name, value)
    return study.tell(trial, [result.metrics[m] for m in config.objectives])


def _feasible(trial: Any) -> bool:
    from optuna.trial import TrialState

    return trial.state == TrialState.COMPLETE and all(
        v <= 0 for v in trial.constraints.values())


def _minimized(values: Sequence[float], maximize: Sequence[bool]) -> np.ndarray:
    return np.array([-v if m else v for v, m in zip(values, maximize, strict=True)])


def _progress_reporter(on_progress: Callable[[SearchProgress], None] | None,
                       total: int) -> Callable[[int, int, FrontTracker], None]:
    def report(done: int, feasible: int, tracker: FrontTracker) -> None:
        if on_progress is not None:
            on_progress(SearchProgress(done, total, feasible, len(tracker),
                                       tracker.hypervolume()))

    return report
